"""Keras 3 ``.keras`` files: a zip of ``metadata.json``, ``config.json``, ``model.weights.h5``.

The config gives the layer list and every setting; the weights sit in the Keras 3 tree
(``keras_v3``). Keras stores the members uncompressed, so h5py reads the inner HDF5 file in
place through a window onto the zip (no copy of the weights before h5py's own); a member
someone re-compressed is inflated into memory, or into a temporary file when large. Sizes
are checked against what the zip stores first, so a zip bomb is refused before anything is
inflated. ``saving_lib.save_model(..., zipped=False)`` writes the same three files into a
folder, read the same way. tf.keras 2.13+ writes the same container (``keras_version`` 2.x in
metadata.json, which decides hard_sigmoid = k2).
"""

from __future__ import annotations

import io
import mmap
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

import h5py

from lstmviz.core.model import LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.chain import build_model
from lstmviz.io.keras.choice import choosing
from lstmviz.io.keras.config import (
    MAX_CONFIG_BYTES,
    flatten_layers,
    load_json,
    parse_version,
    read_small_file,
)
from lstmviz.io.keras.datasets import check_global_heaps
from lstmviz.io.keras.guard import ReadBudget, read_budget, regular_file, take
from lstmviz.io.keras.layers import Source
from lstmviz.io.keras.v3 import layers_from_config, layers_without_config
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader

SOURCE_FORMAT = "Keras 3 .keras"
WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
IN_MEMORY_LIMIT = 256 << 20
MAX_WEIGHTS_BYTES = 16 << 30
MAX_DEFLATE_RATIO = 1100  # deflate cannot do better than ~1032:1
BOMB_FLOOR, BOMB_RATIO = 16 << 20, 100  # float weights never compress 100:1 (Keras: same)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, …, name length, extra length


def sniff(probe: Probe) -> bool:
    if probe.is_dir:
        # lexists: a special file or a link there is refused by load, not passed to others
        return os.path.lexists(probe.path / "config.json") and os.path.lexists(
            probe.path / WEIGHTS_H5
        )
    names = set(probe.zip_names)
    return "config.json" in names and bool({WEIGHTS_H5, WEIGHTS_NPZ, "metadata.json"} & names)


class _Window(io.RawIOBase):
    """A read-only file object over bytes ``[start, start + size)`` of a file: h5py opens
    the stored zip member through it as if it were a file of its own."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        super().__init__()
        self._fh = path.open("rb")
        self._start, self._size, self._pos = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        if not n:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(view[:n]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def _info(zf: zipfile.ZipFile, name: str, probe: Probe, limit: int) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise LoadError(
            f"{probe.name}: .keras archive has no {name} (members: "
            f"{', '.join(zf.namelist()[:6])}); re-save the model with model.save('m.keras')"
        ) from None
    if info.flag_bits & 0x1:
        raise LoadError(
            f"{probe.name}: .keras member {name} is encrypted; lstmviz reads the unencrypted "
            "archives Keras writes"
        )
    stored = info.compress_type == zipfile.ZIP_STORED
    if (
        info.compress_size > probe.size
        or (stored and info.file_size != info.compress_size)
        or info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 4096
        or info.file_size > limit
        or (info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * info.compress_size)
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


def _stored_window(info: zipfile.ZipInfo, probe: Probe) -> IO[bytes] | None:
    """The stored member's bytes in place, or None if the local header does not allow it."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    try:
        with probe.path.open("rb") as fh:
            fh.seek(info.header_offset)
            head = fh.read(_LOCAL_HEADER.size)
    except OSError as exc:
        raise LoadError(f"{probe.name}: cannot read file ({exc})") from exc
    if len(head) != _LOCAL_HEADER.size:
        return None
    magic, name_len, extra_len = _LOCAL_HEADER.unpack(head)
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if magic != b"PK\x03\x04" or start + info.file_size > probe.size:
        return None
    try:
        with probe.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            check_global_heaps(mm, probe.name, start, start + info.file_size)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{probe.name}: cannot read file ({exc})") from exc
    return _Window(probe.path, start, info.file_size)  # type: ignore[return-value]


def _inflated(zf: zipfile.ZipFile, info: zipfile.ZipInfo, probe: Probe) -> IO[bytes]:
    """A compressed inner HDF5 file as a seekable stream: in memory, or a temporary file."""
    if info.file_size <= IN_MEMORY_LIMIT:
        data = _read(zf, info, probe)
        check_global_heaps(data, probe.name)
        return io.BytesIO(data)
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    try:
        with zf.open(info) as fh:
            shutil.copyfileobj(fh, tmp, 1 << 20)
        with mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            check_global_heaps(mm, probe.name)
    except ZIP_ERRORS as exc:
        tmp.close()
        raise LoadError(f"{probe.name}: cannot inflate {info.filename} ({exc})") from exc
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp


def _from_zip(probe: Probe) -> tuple[object, object, IO[bytes]]:
    """(metadata, config, weights stream) of a .keras zip."""
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
        meta: object = {}
        if "metadata.json" in names:
            raw = _read(zf, _info(zf, "metadata.json", probe, 1 << 20), probe)
            meta = load_json(raw, "metadata.json", file)
        config_info = _info(zf, "config.json", probe, MAX_CONFIG_BYTES)
        config = load_json(_read(zf, config_info, probe), "config.json", file)
        info = _info(zf, WEIGHTS_H5, probe, MAX_WEIGHTS_BYTES)
        stream = _stored_window(info, probe)
        if stream is None:  # compressed: what it inflates to counts against the budget
            take(info.file_size, f"the compressed member {WEIGHTS_H5}", file, probe.size)
            stream = _inflated(zf, info, probe)
    return meta, config, stream


def _small_file(path: Path, limit: int, file: str) -> bytes:
    return read_small_file(
        path, limit, file, f"{path.name} is larger than {limit} bytes, not a model config"
    )


def _from_folder(probe: Probe) -> tuple[object, object, IO[bytes]]:
    """(metadata, config, weights stream) of an unzipped Keras model folder."""
    file, folder = probe.name, probe.path
    meta: object = {}
    if os.path.lexists(folder / "metadata.json"):
        regular_file(folder / "metadata.json", folder, file, "member")
        meta = load_json(
            _small_file(folder / "metadata.json", 1 << 20, file), "metadata.json", file
        )
    regular_file(folder / "config.json", folder, file, "member")
    raw = _small_file(folder / "config.json", MAX_CONFIG_BYTES, file)
    config = load_json(raw, "config.json", file)
    weights = folder / WEIGHTS_H5
    size = regular_file(weights, folder, file, "member")
    try:
        with weights.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            check_global_heaps(mm, file)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{file}: cannot read {WEIGHTS_H5} ({exc})") from exc
    return meta, config, _Window(weights, 0, size)  # type: ignore[return-value]


def load_keras_zip(probe: Probe, layer: object = None, budget: object = None) -> LSTMModel:
    """``layer``: the LSTM to run when the model has several that do not feed each other;
    ``budget``: raises the bound on the bytes the weights decode to."""
    size = probe.size
    if probe.is_dir:
        size = regular_file(probe.path / WEIGHTS_H5, probe.path, probe.name, "member")
    with read_budget(ReadBudget(size, budget, probe.name)), choosing(layer):
        return _load(probe)


def _load(probe: Probe) -> LSTMModel:
    file = probe.name
    meta, config, stream = _from_folder(probe) if probe.is_dir else _from_zip(probe)
    version = parse_version(
        meta.get("keras_version") if isinstance(meta, dict) else None, default_major=3
    )
    container = "Keras model folder" if probe.is_dir else ".keras file"
    src = Source(file, str(probe.path), SOURCE_FORMAT, version, container)
    with stream:
        try:
            h5 = h5py.File(stream, "r")
        except (OSError, ValueError) as exc:
            detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
            raise LoadError(
                f"{file}: {WEIGHTS_H5} inside the {container} is not HDF5 ({detail})"
            ) from exc
        with h5:
            specs = flatten_layers(config, file)
            if specs:
                found, notes = layers_from_config(h5, specs, file)
            else:
                found, notes = layers_without_config(h5, file)
                notes.insert(0, "config.json lists no layers (subclassed model?)")
            return build_model(found, src, notes)


READER = Reader(
    name="Keras 3 .keras",
    sniff=sniff,
    load=load_keras_zip,
    priority=10,
    options=("layer", "budget"),
)
