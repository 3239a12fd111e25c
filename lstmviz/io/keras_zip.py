"""Keras 3 ``.keras`` files: a zip of ``metadata.json``, ``config.json``, ``model.weights.h5``.

The config gives the layer list and every setting; the weights sit in the Keras 3 tree
(``keras_v3``). The inner HDF5 file is read into memory when it is of a sane size and copied
to a temporary file otherwise; its declared size is checked against what the zip stores
first, so a zip bomb is refused before anything is inflated. tf.keras 2.13+ writes the same
container (``keras_version`` 2.x in metadata.json, which decides hard_sigmoid = k2).
"""

from __future__ import annotations

import io
import mmap
import shutil
import tempfile
import zipfile
import zlib
from typing import IO

import h5py

from lstmviz.core.model import LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.keras_chain import build_model
from lstmviz.io.keras_config import MAX_CONFIG_BYTES, flatten_layers, load_json, parse_version
from lstmviz.io.keras_datasets import check_global_heaps
from lstmviz.io.keras_layers import Source
from lstmviz.io.keras_v3 import layers_from_config, layers_without_config
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader

SOURCE_FORMAT = "Keras 3 .keras"
WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
IN_MEMORY_LIMIT = 256 << 20
MAX_WEIGHTS_BYTES = 16 << 30
MAX_DEFLATE_RATIO = 1100  # deflate cannot do better than ~1032:1
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)


def sniff(probe: Probe) -> bool:
    names = set(probe.zip_names)
    return "config.json" in names and bool({WEIGHTS_H5, WEIGHTS_NPZ, "metadata.json"} & names)


def _info(zf: zipfile.ZipFile, name: str, probe: Probe, limit: int) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise LoadError(
            f"{probe.name}: .keras archive has no {name} (members: "
            f"{', '.join(zf.namelist()[:6])}); re-save the model with model.save('m.keras')"
        ) from None
    if (
        info.compress_size > probe.size
        or info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 4096
        or info.file_size > limit
    ):
        raise LoadError(
            f"{probe.name}: .keras member {name} declares {info.file_size} bytes from "
            f"{info.compress_size} stored (damaged, too large, or a zip bomb)"
        )
    return info


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, probe: Probe) -> bytes:
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except ZIP_ERRORS as exc:
        raise LoadError(f"{probe.name}: cannot inflate {info.filename} ({exc})") from exc
    if len(data) != info.file_size:
        raise LoadError(f"{probe.name}: {info.filename} inflates to a different size than declared")
    return data


def _weights_file(zf: zipfile.ZipFile, info: zipfile.ZipInfo, probe: Probe) -> IO[bytes]:
    """The inner HDF5 file as a seekable stream: in memory, or a temporary file if large."""
    if info.file_size <= IN_MEMORY_LIMIT:
        data = _read(zf, info, probe)
        check_global_heaps(data, probe.name)
        return io.BytesIO(data)
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    try:
        with zf.open(info) as fh:
            shutil.copyfileobj(fh, tmp, 1 << 20)
    except ZIP_ERRORS as exc:
        tmp.close()
        raise LoadError(f"{probe.name}: cannot inflate {info.filename} ({exc})") from exc
    try:
        with mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            check_global_heaps(mm, probe.name)
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp


def load_keras_zip(probe: Probe) -> LSTMModel:
    file = probe.name
    try:
        zf = zipfile.ZipFile(probe.path)
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: damaged .keras zip archive ({exc})") from exc
    with zf:
        names = set(zf.namelist())
        if WEIGHTS_H5 not in names and WEIGHTS_NPZ in names:
            raise LoadError(
                f"{file}: .keras archive stores its weights as {WEIGHTS_NPZ} (pickled dicts), "
                "which lstmviz does not unpickle; re-save with the default h5 weights format"
            )
        meta = {}
        if "metadata.json" in names:
            raw = _read(zf, _info(zf, "metadata.json", probe, 1 << 20), probe)
            meta = load_json(raw, "metadata.json", file)
        config = load_json(
            _read(zf, _info(zf, "config.json", probe, MAX_CONFIG_BYTES), probe), "config.json", file
        )
        version = parse_version(
            meta.get("keras_version") if isinstance(meta, dict) else None, default_major=3
        )
        info = _info(zf, WEIGHTS_H5, probe, MAX_WEIGHTS_BYTES)
        stream = _weights_file(zf, info, probe)
    src = Source(file, str(probe.path), SOURCE_FORMAT, version, ".keras file")
    with stream:
        try:
            h5 = h5py.File(stream, "r")
        except (OSError, ValueError) as exc:
            raise LoadError(
                f"{file}: {WEIGHTS_H5} inside the .keras file is not HDF5 ({exc})"
            ) from exc
        with h5:
            specs = flatten_layers(config, file)
            if specs:
                found, notes = layers_from_config(h5, specs, file)
            else:
                found, notes = layers_without_config(h5, file)
                notes.insert(0, "config.json lists no layers (subclassed model?)")
            return build_model(found, src, notes)


READER = Reader(name="Keras 3 .keras", sniff=sniff, load=load_keras_zip, priority=10)
