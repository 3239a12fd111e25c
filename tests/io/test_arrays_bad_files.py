"""Broken or unusable .npz/.npy files: each one a one-line LoadError naming the file."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.io import LoadError

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "arrays"
rng = np.random.default_rng(0)


def f32(*shape: int) -> np.ndarray:
    return rng.uniform(-1, 1, shape).astype(np.float32)


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def object_array() -> np.ndarray:
    arr = np.empty(2, dtype=object)
    arr[:] = [{"a": 1}, "b"]
    return arr


def zip_bomb() -> bytes:
    """A real archive whose central directory declares a ~4 GB member."""
    data = bytearray(npz(kernel=f32(3, 16)))
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = struct.pack("<I", 0xF0000000)
    return bytes(data)


def big_header_npy() -> bytes:
    raw = bytearray(npy(f32(4, 4)))
    return bytes(raw).replace(b"(4, 4)", b"(9999999, 4)", 1)


def member_lies() -> bytes:
    """A member whose .npy header claims more data than the member holds."""
    inner = npy(f32(4, 4)).replace(b"(4, 4)", b"(400, 4)", 1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("kernel.npy", inner)
    return buf.getvalue()


def extra_member() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("arr_0.npy", npy(f32(3, 16)))
        zf.writestr("notes.txt", b"hello")
    return buf.getvalue()


def first_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


TORCH_LIKE = npz(arr_0=f32(16, 3), arr_1=f32(16, 4), arr_2=f32(16), arr_3=f32(16))

BAD: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "pickled_npy": (".npy", lambda: npy(object_array(), True), "contains Python objects"),
    "pickled_member": (".npz", lambda: npz(kernel=object_array()), "lstmviz never unpickles"),
    "truncated_npz": (".npz", lambda: first_half(TORCH_LIKE), "truncated or damaged"),
    "truncated_npy": (".npy", lambda: npy(f32(64, 16))[:300], "the file is truncated"),
    "huge_npy_shape": (".npy", big_header_npy, "more than the"),
    "zip_bomb": (".npz", zip_bomb, "a possible zip bomb; if you trust the file"),
    "member_lies": (".npz", member_lies, "more than its"),
    "damaged_header": (".npy", lambda: b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4  }\n", "header"),
    "ints_only": (".npz", lambda: npz(a=np.arange(12), b=np.arange(4)), "no floating-point"),
    "int_kernel": (
        ".npz",
        lambda: npz(**{"lstm/kernel": np.ones((3, 16), int), "lstm/recurrent_kernel": f32(4, 16)}),
        "must be floating point",
    ),
    "keras_2h_columns": (  # [H, 3H] (GRU) and [H, H] (SimpleRNN) open since issue 14
        ".npz",
        lambda: npz(**{"rnn/kernel:0": f32(3, 8), "rnn/recurrent_kernel:0": f32(4, 8)}),
        "are not a Keras LSTM kernel [D,4H] and recurrent kernel [H,4H]",
    ),
    "torch_odd_rows": (  # 3H rows (a GRU) open since issue 14; 10 rows for H = 4 fit nothing
        ".npz",
        lambda: npz(weight_ih_l0=f32(10, 3), weight_hh_l0=f32(10, 4)),
        "is no recurrent module lstmviz knows",
    ),
    "keras_cudnn_bias": (
        ".npz",
        lambda: npz(
            **{"c/kernel:0": f32(3, 16), "c/recurrent_kernel:0": f32(4, 16), "c/bias:0": f32(32)}
        ),
        "a CuDNNLSTM",
    ),
    "keras_bad_bias": (
        ".npz",
        lambda: npz(**{"c/kernel": f32(3, 16), "c/recurrent_kernel": f32(4, 16), "c/bias": f32(5)}),
        "do not fit the keras layout",
    ),
    "fits_nothing": (".npz", lambda: npz(a=f32(5, 7), b=f32(3)), "fit no LSTM layout"),
    "vector_npy": (".npy", lambda: npy(f32(16)), "fit no LSTM layout"),
    "kernel_no_recurrent": (
        ".npz",
        lambda: npz(**{"lstm/kernel": f32(3, 16), "lstm/bias": f32(16)}),
        "recurrent_kernel",
    ),
    "layers_do_not_chain": (
        ".npz",
        lambda: npz(
            **{
                "a/kernel": f32(3, 16),
                "a/recurrent_kernel": f32(4, 16),
                "b/kernel": f32(7, 8),
                "b/recurrent_kernel": f32(2, 8),
            }
        ),
        "do not chain",
    ),
    "non_npy_member": (".npz", extra_member, "zip archive holds no model"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_gives_one_line_load_error(case: str, tmp_path: Path) -> None:
    suffix, make, message = BAD[case]
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(make())
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    text = str(info.value)
    assert text.startswith(f"{path.name}: ") and "\n" not in text
    assert message in text, text


def test_pickled_arrays_are_never_unpickled(tmp_path: Path) -> None:
    """A pickle that would run code when loaded must be refused before anything runs."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    arr = np.empty(1, dtype=object)
    arr[0] = Evil()
    path = tmp_path / "evil.npz"
    np.savez(path, kernel=arr)
    with pytest.raises(LoadError, match="never unpickles"):
        lstmviz.load_model(path)
    assert not marker.exists()


def test_odd_but_valid_storage_loads(tmp_path: Path) -> None:
    """Big-endian, Fortran-order and float16 arrays are the same weights."""
    src = np.load(HERE / "torch_shapes.npz")
    odd = {}
    for k, key in enumerate(src.files):
        a = src[key]
        odd[key] = [a.astype(">f4"), np.asfortranarray(a), a.astype(np.float64)][k % 3]
    path = tmp_path / "odd.npz"
    np.savez_compressed(path, **odd)
    model = lstmviz.load_model(path)
    ref = lstmviz.load_model(HERE / "torch_shapes.npz")
    for layer, ref_layer in zip(model.layers, ref.layers, strict=True):
        for d, r in zip(layer.directions, ref_layer.directions, strict=True):
            np.testing.assert_array_equal(d.W_x, r.W_x)
            np.testing.assert_array_equal(d.W_h, r.W_h)
            np.testing.assert_allclose(d.b, r.b, rtol=1e-7)


def test_budget_raises_the_limits_of_a_trusted_file(tmp_path: Path) -> None:
    """An .npz of zeros inflating past 64 MB is refused by default, naming the option that
    reads it anyway; budget=4 reads it and the numbers are the file's."""
    path = tmp_path / "zeros.npz"
    kernel = np.zeros((4500, 4096), np.float32)
    kernel[0, :] = 1.5
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("kernel.npy", npy(kernel))
        zf.writestr("recurrent_kernel.npy", npy(np.zeros((1024, 4096), np.float32)))
        zf.writestr("bias.npy", npy(np.zeros(4096, np.float32)))
    with pytest.raises(LoadError, match=r"zip bomb; if you trust the file.*--option budget=4"):
        lstmviz.load_model(path)
    model = lstmviz.load_model(path, budget=4)
    assert model.layers[0].directions[0].W_x[:, 0].tolist() == [1.5] * 4096
    with pytest.raises(LoadError, match=r"budget=-1 is not a positive number"):
        lstmviz.load_model(path, budget=-1)


def test_members_stored_twice_are_refused(tmp_path: Path) -> None:
    """numpy.load reads the last copy of a name, unzip the first: neither is guessed."""
    import warnings

    path = tmp_path / "twice.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("kernel.npy", npy(f32(3, 16)))
            zf.writestr("recurrent_kernel.npy", npy(f32(4, 16)))
            zf.writestr("kernel.npy", npy(f32(3, 16)))
    with pytest.raises(LoadError, match=r"member 'kernel.npy' is stored twice"):
        lstmviz.load_model(path)


def test_gru_arrays_are_named_as_such(tmp_path: Path) -> None:
    """g2p_en ships its GRU as checkpoint20.npz (enc_w_ih (768, 256), ...): since issue 14 it
    opens (tests/io/test_gru_arrays.py), and so do unnamed Keras-layout [D, 3H] arrays
    (tests/io/test_gru_unnamed_arrays.py); GRU-shaped arrays out of order are refused as a GRU
    that fits no layout. Made here from torch.nn.GRU and in Keras' [D, 3H] layout."""
    import torch

    gru = torch.nn.GRU(5, 8)
    arrays = {
        f"enc_{k.replace('weight', 'w').replace('bias', 'b')}": v.detach().numpy()
        for k, v in gru.state_dict().items()
    }
    (tmp_path / "torch_gru.npz").write_bytes(
        npz(**{k.removesuffix("_l0"): v for k, v in arrays.items()})
    )
    assert lstmviz.load_model(tmp_path / "torch_gru.npz").layers[0].kind == "GRUCell"
    (tmp_path / "keras_gru.npz").write_bytes(npz(a=f32(5, 24), b=f32(8, 24), c=f32(2, 24)))
    assert lstmviz.load_model(tmp_path / "keras_gru.npz").layers[0].kind == "GRU"
    (tmp_path / "shuffled.npz").write_bytes(npz(b=f32(8, 24), a=f32(5, 24), c=f32(2, 24)))
    with pytest.raises(LoadError, match=r"look like a GRU \(b \(8, 24\).*fit no GRU layout"):
        lstmviz.load_model(tmp_path / "shuffled.npz")
