"""Broken, hostile or unsupported Keras files: each raises a one-line LoadError naming the problem.

Cases are real files (the committed tf.keras fixtures, or Keras 3 models saved here with the
torch backend) edited with h5py / zipfile into a temporary folder.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from lstmviz.io import LoadError, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
L = keras.layers


def copy(base: str, edit: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / base
        shutil.copy(FIXTURES / base, path)
        if edit is not None:
            edit(path)
        return path

    return make


def keras3(build: Callable[[], keras.Model], name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        build().save(path)
        return path

    return make


def raw(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def truncate(fraction: float) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return edit


def edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            change(cfg)
            f.attrs["model_config"] = json.dumps(cfg)

    return edit


def first_lstm(cfg: dict) -> dict:
    return next(e for e in cfg["config"]["layers"] if e["class_name"] == "LSTM")["config"]


def set_attr(key: str, value: object) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            f.attrs[key] = value

    return edit


def replace_dataset(name: str, data: np.ndarray | None, **kw: object) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            del f[name]
            if data is not None or kw:
                f.create_dataset(name, data=data, **kw)

    return edit


def rezip(drop: str = "", replace: dict[str, bytes] | None = None) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist() if n != drop}
        members.update(replace or {})
        with zipfile.ZipFile(path, "w") as zf:
            for n, data in members.items():
                zf.writestr(n, data)

    return edit


def dense_only() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), L.Dense(3)])


def conv_dense() -> keras.Model:
    return keras.Sequential([keras.Input((6, 2)), L.Conv1D(2, 3), L.Flatten(), L.Dense(1)])


def conv_lstm_only() -> keras.Model:
    """A recurrent layer lstmviz still does not run (GRUs open since issue 14)."""
    return keras.Sequential([keras.Input((5, 4, 2)), L.ConvLSTM1D(2, 3)])


def _add_layer_name(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        names = [n if isinstance(n, bytes) else n.encode() for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array([*names, b"nope"])


def _zero_heap_object(path: Path) -> None:
    """Zero the first object header of the first global heap (where vlen strings live): a
    size-0 object sends libhdf5 into an endless loop, so the reader must refuse it first."""
    data = bytearray(path.read_bytes())
    start = data.find(b"GCOL")
    data[start + 16 : start + 32] = bytes(16)
    path.write_bytes(bytes(data))


def _zero_inner_heap(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        inner = bytearray(zf.read("model.weights.h5"))
    start = inner.find(b"GCOL")
    if start == -1:  # no vlen strings inside: put a damaged heap after the HDF5 data
        inner += b"GCOL\x01\x00\x00\x00" + (4096).to_bytes(8, "little") + bytes(4080)
    else:
        inner[start + 16 : start + 32] = bytes(16)
    rezip(replace={"model.weights.h5": bytes(inner)})(path)


def _keras1_weights(folder: Path) -> Path:
    """The Keras 1 ``save_weights`` layout: twelve arrays W/U/b per gate (i, c, f, o)."""
    path = folder / "k1.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm_1"])
        f.attrs["keras_version"] = b"1.2.2"
        g = f.create_group("lstm_1")
        names = [f"lstm_1_{m}_{k}" for k in "icfo" for m in "WUb"]
        g.attrs["weight_names"] = np.array([n.encode() for n in names])
        for n in names:
            shape = {"W": (2, 3), "U": (3, 3), "b": (3,)}[n.split("_")[2]]
            g[n] = np.zeros(shape, np.float32)
    return path


def _set_group_attr(path: Path, key: str, value: object) -> None:
    with h5py.File(path, "r+") as f:
        first = next(iter(f.attrs["layer_names"]))
        f[first].attrs[key] = value


def raw_h5(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        with h5py.File(path, "w") as f:
            f["data"] = np.zeros(3)
        return path

    return make


def link_kernel(link: Callable[[], object]) -> Callable[[Path], None]:
    """Replace the first kernel by an HDF5 link."""

    def edit(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            del f[KERNEL]
            f[KERNEL] = link()

    return edit


def _zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _deflate_and_declare(size: int) -> Callable[[Path], None]:
    """Re-compress the archive, then make the central directory declare that
    model.weights.h5 inflates to ``size`` bytes: a bomb, refused before inflating."""

    def edit(path: Path) -> None:
        members = _zip_members(path)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, data in members.items():
                zf.writestr(n, data)
        data = bytearray(path.read_bytes())
        at = data.find(b"PK\x01\x02")
        while at != -1:
            name_len = int.from_bytes(data[at + 28 : at + 30], "little")
            if data[at + 46 : at + 46 + name_len] == b"model.weights.h5":
                data[at + 24 : at + 28] = size.to_bytes(4, "little")
            at = data.find(b"PK\x01\x02", at + 1)
        path.write_bytes(bytes(data))

    return edit


def _encrypt_flag(path: Path) -> None:
    """Set the 'encrypted' bit on every member (local and central headers)."""
    data = bytearray(path.read_bytes())
    for magic, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(magic)
        while at != -1:
            data[at + flag_at] |= 1
            at = data.find(magic, at + 1)
    path.write_bytes(bytes(data))


def custom_lstm_class(cfg: dict) -> None:
    for entry in cfg["config"]["layers"]:
        if entry["class_name"] == "LSTM":
            entry["class_name"] = "MyLSTM"


def time_distributed_lstm() -> keras.Model:
    return keras.Sequential([keras.Input((2, 4, 3)), L.TimeDistributed(L.LSTM(2))])


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FULL = "full_hard_sigmoid.h5"
KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"

CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (raw("m.h5", b""), "file is empty"),
    "truncated h5": (copy(FULL, truncate(0.5)), "damaged or truncated HDF5 file"),
    "truncated to the superblock": (copy(FULL, truncate(0.01)), "damaged or truncated HDF5"),
    "random bytes after HDF5 magic": (
        raw("r.h5", HDF5_MAGIC + np.random.default_rng(0).bytes(4000)),
        "r.h5:",
    ),
    "dense only": (
        keras3(dense_only, "d.h5"),
        "d.h5: HDF5 file has no LSTM layer (found Dense); lstmviz shows recurrent layers only",
    ),
    "conv1d and dense": (keras3(conv_dense, "c.keras"), "found Conv1D, Flatten, Dense"),
    "conv lstm only": (keras3(conv_lstm_only, "g.h5"), "ConvLSTM1D — convolutional LSTM"),
    "conv lstm only .keras": (keras3(conv_lstm_only, "g.keras"), "convolutional LSTM, not"),
    ".keras without model.weights.h5": (
        copy("tf_keras_model.keras", rezip(drop="model.weights.h5")),
        "has no model.weights.h5",
    ),
    ".keras with non-JSON config": (
        copy("tf_keras_model.keras", rezip(replace={"config.json": b"{not json"})),
        "config.json is not valid JSON",
    ),
    ".keras with npz weights": (
        copy(
            "tf_keras_model.keras",
            rezip(drop="model.weights.h5", replace={"model.weights.npz": b"PK"}),
        ),
        "model.weights.npz",
    ),
    ".keras with text as weights": (
        copy("tf_keras_model.keras", rezip(replace={"model.weights.h5": b"hello"})),
        "is not HDF5",
    ),
    "units disagree with weights": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(units=5))),
        "expected (3, 20) (units=5 in the config)",
    ),
    "units not a number": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(units="many"))),
        "units='many'",
    ),
    "unknown activation": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(activation="sparsemax"))),
        "uses activation 'sparsemax', which lstmviz does not know",
    ),
    "softmax inside the LSTM": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(activation="softmax"))),
        "uses activation 'softmax' across units; lstmviz runs it only in a Dense head",
    ),
    "merge_mode unknown": (
        copy(
            "bidirectional.h5",
            edit_config(lambda c: c["config"]["layers"][1]["config"].update(merge_mode="max")),
        ),
        "merge_mode 'max'",
    ),
    "model_config not JSON": (copy(FULL, set_attr("model_config", "{oops")), "is not valid JSON"),
    "model_config not a model": (copy(FULL, set_attr("model_config", "[1, 2]")), "not a Keras"),
    "dataset missing": (
        copy(FULL, replace_dataset(KERNEL, None)),
        "is listed in weight_names but missing",
    ),
    "kernel wrong shape": (
        copy(FULL, replace_dataset(KERNEL, np.zeros((3, 15), np.float32))),
        "has shape (3, 15), expected (3, 16)",
    ),
    "kernel absurd shape": (
        copy(FULL, replace_dataset(KERNEL, None, shape=(1 << 20, 1 << 20), dtype="f4")),
        "far too large",
    ),
    "kernel declared but not stored": (
        copy(FULL, replace_dataset(KERNEL, None, shape=(3, 1 << 24), dtype="f4", chunks=True)),
        "declares",
    ),
    "kernel of integers": (
        copy(FULL, replace_dataset(KERNEL, np.zeros((3, 16), np.int32))),
        "floating point",
    ),
    "kernel holds NaN": (
        copy(FULL, replace_dataset(KERNEL, np.full((3, 16), np.nan, np.float32))),
        "NaN or Inf",
    ),
    "weights-only layer group missing": (
        copy("weights_only.h5", _add_layer_name),
        "'nope' is listed in layer_names but has no group",
    ),
    "weight_names not strings": (
        copy("weights_only.h5", lambda p: _set_group_attr(p, "weight_names", np.arange(3))),
        "expected a list of names",
    ),
    "global heap object of size 0": (copy(FULL, _zero_heap_object), "global heap object"),
    ".keras with a size-0 global heap object": (
        copy("tf_keras_model.keras", _zero_inner_heap),
        "global heap object",
    ),
    "keras 1 layout": (_keras1_weights, "Keras 1 layout"),
    "hdf5 without keras content": (raw_h5("plain.h5"), "holds no Keras model or weights"),
    "kernel is an external link": (
        copy(FULL, link_kernel(lambda: h5py.ExternalLink("/etc/other.h5", "/k"))),
        "is an HDF5 external link to '/etc/other.h5'",
    ),
    "kernel is a soft-link loop": (
        copy(FULL, link_kernel(lambda: h5py.SoftLink("/" + KERNEL))),
        "too many links",
    ),
    "kernel is a group": (
        copy(FULL, link_kernel(lambda: h5py.SoftLink("/model_weights"))),
        "is a Group, expected a weight array",
    ),
    "kernel with no rows": (
        copy(FULL, replace_dataset(KERNEL, np.zeros((0, 16), np.float32))),
        "kernel has shape (0, 16), expected (D, 16)",
    ),
    "kernel of strings": (
        copy(FULL, replace_dataset(KERNEL, np.array([b"ab", b"cd"]))),
        "floating point",
    ),
    "go_backwards not a boolean": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(go_backwards="yes"))),
        "go_backwards='yes', expected true or false",
    ),
    "use_bias as a string": (
        copy(FULL, edit_config(lambda c: first_lstm(c).update(use_bias="false"))),
        "use_bias='false', expected true or false",
    ),
    "lambda activation": (
        copy(
            FULL,
            edit_config(
                lambda c: first_lstm(c).update(
                    activation={"class_name": "__lambda__", "config": {"code": "ZXZpbA=="}}
                )
            ),
        ),
        "which lstmviz does not know",
    ),
    "custom LSTM subclass": (
        copy(FULL, edit_config(custom_lstm_class)),
        "no LSTM layer (found MyLSTM, Dropout, Dense)",
    ),
    "Bidirectional without its layer": (
        copy(
            "bidirectional.h5",
            edit_config(lambda c: c["config"]["layers"][1]["config"].update(layer=[1])),
        ),
        "Bidirectional layer 'bidirectional' config has no wrapped layer",
    ),
    "model_config nested 100000 deep": (
        copy(FULL, set_attr("model_config", "[" * 100_000 + "]" * 100_000)),
        "is not valid JSON",
    ),
    "models nested 200 deep": (
        copy(
            FULL,
            set_attr(
                "model_config",
                '{"class_name": "Sequential", "config": {"layers": [' * 200 + "]}}" * 200,
            ),
        ),
        "nests models deeper than 32 levels",
    ),
    ".keras weights declared 4 GiB (zip bomb)": (
        copy("tf_keras_model.keras", _deflate_and_declare(0xFFFF0000)),
        "declares 4294901760 bytes",
    ),
    ".keras config an empty object": (
        copy("tf_keras_model.keras", rezip(replace={"config.json": b" " * 100 + b"{}"})),
        "model config is not a Keras model description",
    ),
    ".keras encrypted members": (copy("tf_keras_model.keras", _encrypt_flag), "is encrypted"),
    ".keras metadata not JSON": (
        copy("tf_keras_model.keras", rezip(replace={"metadata.json": b"\xff\xfe"})),
        "metadata.json is not valid JSON",
    ),
    ".keras truncated inner HDF5": (
        copy(
            "tf_keras_model.keras",
            rezip(replace={"model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(100)}),
        ),
        "is not HDF5",
    ),
    "TimeDistributed(LSTM)": (
        keras3(time_distributed_lstm, "td.h5"),
        "TimeDistributed(LSTM) — an LSTM run on each time slice separately, not supported",
    ),
}  # RNN(GRUCell) opens since issue 14 (tests/io/test_gru_keras.py)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_raises_one_line_load_error(tmp_path: Path, case: str) -> None:
    make, fragment = CASES[case]
    path = make(tmp_path)
    with pytest.raises(LoadError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path.name}:"), message
    assert fragment in message, message


def test_truncations_of_every_fixture_raise_load_error(tmp_path: Path) -> None:
    """Cut every committed file at several points: a model or LoadError, never anything else."""
    for src in sorted(FIXTURES.glob("*.h5")) + sorted(FIXTURES.glob("*.keras")):
        data = src.read_bytes()
        for fraction in (0.1, 0.5, 0.9, 0.99):
            path = tmp_path / src.name
            path.write_bytes(data[: int(len(data) * fraction)])
            try:
                load_model(path)
            except LoadError as exc:
                assert "\n" not in str(exc)


@pytest.mark.parametrize("keras_meta", [True, False])
def test_savedmodel_folder_says_what_it_is(tmp_path: Path, keras_meta: bool) -> None:
    """tf.keras 2 ``model.save('dir')`` / ``tf.saved_model.save``: the TensorFlow reader opens
    SavedModel folders now; one whose variables.index is damaged is refused in one line that
    names it (it was refused as a whole before SavedModels were read)."""
    (tmp_path / "variables").mkdir()
    for name in ("saved_model.pb", "fingerprint.pb", "variables/variables.index"):
        (tmp_path / name).write_bytes(b"\x08\x01")
    if keras_meta:
        (tmp_path / "keras_metadata.pb").write_bytes(b"\x08\x01")
    with pytest.raises(LoadError) as err:
        load_model(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "variables.index" in msg and "TensorFlow" in msg
