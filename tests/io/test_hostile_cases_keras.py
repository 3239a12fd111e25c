"""Hostile Keras files (see test_hostile_formats.py): HDF5 datasets declaring gigabytes in
unwritten chunks or gzip zeros, deep groups, repeated names, and .keras zips of the same."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from test_hostile_case import FIXTURES, Case, write_zip

import lstmviz
from lstmviz.resources import default_model_path

KERAS_H5 = FIXTURES / "keras" / "keras224_weights_only.h5"  # kernel (3,16), D=3, H=4


# --- Keras -----------------------------------------------------------------------------------


def keras_h5(edit: Callable, name: str = "w.h5") -> Callable[[Path], Path]:
    """The Keras 2.2.4 weights file (kernel (3,16), recurrent (4,16), bias (16,)) edited by
    ``edit(h5py.File, group)``, where group is the ``lstm_1/lstm_1`` group."""

    def make(folder: Path) -> Path:
        import h5py

        path = folder / name
        shutil.copy(KERAS_H5, path)
        with h5py.File(path, "r+") as f:
            edit(f, f["lstm_1/lstm_1"])
        return path

    return make


def _replace(group, name: str, **create) -> None:
    del group[name]
    group.create_dataset(name, **create)


def h5_declared_huge(f, g) -> None:
    """D = 16384, H = 16384: 4 GB + 4 GB of float32 declared, no chunk ever written."""
    for name, shape in (
        ("kernel:0", (1 << 14, 1 << 16)),
        ("recurrent_kernel:0", (1 << 14, 1 << 16)),
    ):
        _replace(g, name, shape=shape, dtype="f4", chunks=(1024, 1024))
    _replace(g, "bias:0", shape=(1 << 16,), dtype="f4")


def h5_gzip_bomb(f, g) -> None:
    """256 MB of zeros, gzip, in a file of about 1 MB."""
    zeros = np.zeros((1 << 14, 1 << 12), "f4")
    _replace(g, "kernel:0", data=zeros, chunks=(1024, 1024), compression="gzip", compression_opts=1)
    _replace(g, "recurrent_kernel:0", data=zeros[:1024], chunks=True, compression="gzip")
    _replace(g, "bias:0", data=np.zeros(1 << 12, "f4"))


def h5_deep_groups(f, g) -> None:
    path = "/".join(["a"] * 2000)
    f.create_group(path)


def h5_duplicate_weight_names(f, g) -> None:
    names = [b"lstm_1/kernel:0", b"lstm_1/kernel:0", b"lstm_1/recurrent_kernel:0", b"lstm_1/bias:0"]
    f["lstm_1"].attrs["weight_names"] = np.array(names)


def h5_many_layers(f, g) -> None:
    names = [b"lstm_1"] + [f"dense_{k}".encode() for k in range(20_000)]
    for name in names[1:2000]:
        f.create_group(name).attrs["weight_names"] = np.array([], dtype="S1")
    f.attrs["layer_names"] = np.array(names[:2000])


def keras_zip(edit: Callable[[dict[str, bytes]], list], method=zipfile.ZIP_STORED):
    """The bundled Keras 3 example with its members edited (a list of (name, bytes))."""

    def make(folder: Path) -> Path:
        with zipfile.ZipFile(default_model_path()) as zf:
            members = {i.filename: zf.read(i) for i in zf.infolist()}
        return write_zip(folder / "m.keras", edit(members), method)

    return make


def _keras_weights_edit(edit: Callable) -> Callable[[dict[str, bytes]], list]:
    def change(members: dict[str, bytes]) -> list:
        import h5py

        buf = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buf, "r+") as f:
            edit(f)
        return [
            *((k, v) for k, v in members.items() if k != "model.weights.h5"),
            ("model.weights.h5", buf.getvalue()),
        ]

    return change


def _keras_gzip(f) -> None:
    g = f["layers/lstm/cell/vars"]
    zeros = np.zeros((1 << 14, 1 << 12), "f4")
    _replace(g, "0", data=zeros, chunks=(1024, 1024), compression="gzip", compression_opts=1)


def _keras_declared(f) -> None:
    g = f["layers/lstm/cell/vars"]
    _replace(g, "1", shape=(1 << 16, 1 << 16), dtype="f4", chunks=(1024, 1024))


def _keras_dup_weights(members: dict[str, bytes]) -> list:
    import h5py

    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        f["layers/lstm/cell/vars/0"][...] = 7.0
    return [*members.items(), ("model.weights.h5", buf.getvalue())]


def keras_last_copy_or_refused(path: Path) -> None:
    """Keras opens members with zipfile, which reads the last copy of a duplicate name."""
    try:
        model = lstmviz.load_model(path)
    except lstmviz.LoadError:
        return
    assert np.all(model.layers[0].directions[0].W_x == 7.0)


KERAS_CASES = {
    "keras h5: 8 GB declared in unwritten chunks": Case(
        "size", "Keras HDF5", keras_h5(h5_declared_huge)
    ),
    "keras h5: 256 MB of gzip zeros": Case("compression", "Keras HDF5", keras_h5(h5_gzip_bomb)),
    "keras h5: groups nested 2,000 deep": Case(
        "depth", "Keras HDF5", keras_h5(h5_deep_groups), "bounded"
    ),
    "keras h5: a weight name listed twice": Case(
        "duplicates", "Keras HDF5", keras_h5(h5_duplicate_weight_names), "bounded"
    ),
    "keras h5: 2,000 layers": Case("many", "Keras HDF5", keras_h5(h5_many_layers), "bounded"),
    "keras zip: config.json nested 100,000 deep": Case(
        "depth",
        "Keras 3 .keras",
        keras_zip(lambda m: [*m.items(), ("config.json", b"[" * 100_000 + b"]" * 100_000)]),
        "bounded",
    ),
    "keras zip: 256 MB of gzip zeros in the weights": Case(
        "compression", "Keras 3 .keras", keras_zip(_keras_weights_edit(_keras_gzip))
    ),
    "keras zip: 16 GB declared in the weights": Case(
        "size", "Keras 3 .keras", keras_zip(_keras_weights_edit(_keras_declared))
    ),
    "keras zip: 300 MB of deflated config": Case(
        "compression",
        "Keras 3 .keras",
        keras_zip(
            lambda m: (
                [(k, v) for k, v in m.items() if k != "config.json"]
                + [("config.json", b" " * (300 << 20) + m["config.json"])]
            ),
            zipfile.ZIP_DEFLATED,
        ),
    ),
    "keras zip: model.weights.h5 stored twice": Case(
        "duplicates",
        "Keras 3 .keras",
        keras_zip(_keras_dup_weights),
        "bounded",
        keras_last_copy_or_refused,
    ),
}
