"""Broken safetensors files: each one a one-line LoadError, checked before any data is read."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import lstmviz
from lstmviz.io import LoadError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "torch" / "lstm.safetensors"


def build(header: dict | bytes, data: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def lstm_header(**override: object) -> dict:
    """D=2, H=1: weight_ih (4, 2) then weight_hh (4, 1), 48 bytes of F32."""
    header = {
        "weight_ih_l0": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
        "weight_hh_l0": {"dtype": "F32", "shape": [4, 1], "data_offsets": [32, 48]},
    }
    for key, value in override.items():
        name, _, field = key.partition("__")
        header[name] = {**header[name], field: value} if field else value
    return header


DATA = np.arange(12, dtype="<f4").tobytes()

BAD = {
    "length_past_end": (build(lstm_header(), DATA, length=10_000), "header claims 10000 bytes"),
    "too_short": (b"\x05\x00\x00", "unrecognised binary content"),
    "bad_json": (build(b'{"weight_ih_l0": {"dtype": ', DATA), "header is not valid JSON"),
    "not_utf8": (build(b'{"\xff": 1}', DATA), "header is not valid JSON"),
    "json_list": (build(b"[1, 2, 3]" + b" " * 8, DATA), "unrecognised binary content"),
    "offsets_out_of_range": (
        build(lstm_header(weight_hh_l0__data_offsets=[32, 4800]), DATA),
        "outside the 48-byte data area",
    ),
    "offsets_reversed": (
        build(lstm_header(weight_hh_l0__data_offsets=[48, 32]), DATA),
        "outside the 48-byte data area",
    ),
    "byte_count_mismatch": (
        build(lstm_header(weight_ih_l0__shape=[4, 3]), DATA),
        "needs 48 bytes but data_offsets span 32",
    ),
    "overlap": (
        build(lstm_header(weight_hh_l0__data_offsets=[16, 32], weight_hh_l0__shape=[4, 1]), DATA),
        "overlap in the data area",
    ),
    "unknown_dtype": (build(lstm_header(weight_ih_l0__dtype="F8_E4M3"), DATA), "dtype 'F8_E4M3'"),
    "negative_shape": (build(lstm_header(weight_ih_l0__shape=[-4, 2]), DATA), "invalid shape"),
    "entry_not_object": (build(lstm_header(weight_ih_l0=[1, 2]), DATA), "is not an object"),
    "metadata_not_object": (
        build({**lstm_header(), "__metadata__": [1]}, DATA),
        "__metadata__ is not an object",
    ),
    "truncated_data": (build(lstm_header(), DATA[:40]), "outside the 40-byte data area"),
    "int_weights": (
        build(lstm_header(weight_ih_l0__dtype="I32"), DATA),
        "dtype int32; recurrent weights must be float",
    ),
    "odd_rows": (  # 5 rows for H = 1: not 4H (LSTM), 3H (GRU) or H (RNN)
        build(
            {
                "rec.weight_ih_l0": {"dtype": "F32", "shape": [5, 1], "data_offsets": [0, 20]},
                "rec.weight_hh_l0": {"dtype": "F32", "shape": [5, 1], "data_offsets": [20, 40]},
            },
            DATA[:40],
        ),
        "rec is no recurrent module lstmviz knows",
    ),
}


def test_crafted_header_is_valid_when_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ok.safetensors"
    path.write_bytes(build(lstm_header(), DATA))
    d = lstmviz.load_model(path).layers[0].directions[0]
    assert d.W_x.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


@pytest.mark.parametrize("name", list(BAD))
def test_bad_safetensors(tmp_path: Path, name: str) -> None:
    data, expect = BAD[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "\n" not in message
    assert expect in message


def test_truncated_real_file(tmp_path: Path) -> None:
    data = FIXTURE.read_bytes()
    for cut in (9, 60, len(data) - 1):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(data[:cut])
        with pytest.raises(LoadError):
            lstmviz.load_model(path)


def test_several_lstms_need_a_prefix(tmp_path: Path) -> None:
    a, b = torch.nn.LSTM(2, 3), torch.nn.LSTM(3, 2)
    tensors = {f"a.{k}": v for k, v in a.state_dict().items()}
    tensors.update({f"b.{k}": v for k, v in b.state_dict().items()})
    path = tmp_path / "two.safetensors"
    save_file(tensors, path)
    with pytest.raises(lstmviz.io.ChoiceRequired) as info:
        lstmviz.load_model(path)
    assert info.value.choices == ("a", "b")
    assert lstmviz.load_model(path, prefix="b").input_size == 3


HOSTILE = {
    "length 2**64-1": (struct.pack("<Q", 2**64 - 1) + b'{"a": 1}', "unrecognised binary content"),
    "length past the 100 MB cap": (
        build(lstm_header(), DATA, length=(100 << 20) + 1),
        "unrecognised binary content",
    ),
    "deeply nested JSON": (
        build(b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", DATA),
        "not valid JSON",
    ),
    "float offsets": (
        build(lstm_header(weight_hh_l0__data_offsets=[32.0, 48.0]), DATA),
        "outside the 48-byte data area",
    ),
    "huge shape": (
        build(lstm_header(weight_ih_l0__shape=[1 << 40, 1 << 40]), DATA),
        "overflows 2**64 bytes",
    ),
    "large shape": (
        build(lstm_header(weight_ih_l0__shape=[1 << 20, 1 << 20]), DATA),
        "data_offsets span 32",
    ),
    "40,000 axes": (
        build(lstm_header(weight_ih_l0__shape=[1 << 62] * 40_000), DATA),
        "40000 axes; recurrent weights have at most 3",
    ),
    "bool shape": (build(lstm_header(weight_ih_l0__shape=[True, 2]), DATA), "invalid shape"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_safetensors(tmp_path: Path, name: str) -> None:
    import time

    data, expect = HOSTILE[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "\n" not in message
    assert expect in message


def test_hand_written_header_odd_order_and_padding(tmp_path: Path) -> None:
    """Keys in reverse data order, __metadata__ between them, space padding to 8 bytes: the
    safetensors library reads it, and lstmviz runs it like torch runs the same weights."""
    from safetensors.torch import load_file

    lstm = torch.nn.LSTM(2, 3)
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    names = list(sd)
    offsets, blob = {}, b""
    for name in names:
        raw = sd[name].astype("<f4").tobytes()
        offsets[name] = [len(blob), len(blob) + len(raw)]
        blob += raw
    header: dict = {}
    for k, name in enumerate(reversed(names)):
        header[name] = {
            "shape": list(sd[name].shape),
            "data_offsets": offsets[name],
            "dtype": "F32",
        }
        if k == 1:
            header["__metadata__"] = {"format": "pt", "note": "hand-written"}
    text = json.dumps(header, indent=1).encode()
    text += b" " * (-len(text) % 8)
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob)
    lstm.load_state_dict(load_file(path))  # the reference reader accepts the file
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    with torch.no_grad():
        expected = lstm(torch.from_numpy(x)[:, None])[0][:, 0].numpy()
    model = lstmviz.load_model(path)
    assert "metadata note = hand-written" in model.notes
    np.testing.assert_allclose(lstmviz.run(model, x).layers[0].output, expected, atol=1e-5)
