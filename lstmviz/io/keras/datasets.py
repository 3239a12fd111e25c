"""Careful access to the HDF5 parts of Keras files: datasets, name-list attributes.

A hostile file can declare a dataset of 10^12 floats in a few bytes, an attribute that is not
a string list, or a dataset where a group should be. Everything here checks before it reads
and turns surprises into one-line ``LoadError``s.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import h5py
import numpy as np

from lstmviz.core.model import freeze
from lstmviz.io.convert import widen
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import decode_text
from lstmviz.io.keras.guard import (
    MAX_PATH_PARTS,
    check_chunks,
    check_storage,
    current_budget,
    take,
)
from lstmviz.io.keras.layers import MAX_WEIGHT_VALUES, Weight

MAX_EXPANSION = 1100  # compressed chunks expand at most ~1000:1; more means unwritten data
MAX_NAMES = 1 << 20
_GCOL = b"GCOL\x01\x00\x00\x00"  # global heap collection, version 1 (holds vlen strings)
_SCAN_BLOCK = 4 << 20


def check_global_heaps(
    data: bytes | mmap.mmap, file: str, begin: int = 0, end: int | None = None
) -> None:
    """Refuse a global heap that would make libhdf5 loop forever.

    Keras stores ``model_config`` and name lists as variable-length strings in HDF5 global heap
    collections. libhdf5 walks a collection object by object and advances by each object's
    size; a damaged free-space object of size 0 (or an object header cut off by zeros) makes
    it loop without end inside C code, where no timeout can stop it. The walk is redone here
    first, on the raw bytes ``[begin, end)`` (an HDF5 file inside a zip is checked in place),
    exactly as libhdf5's ``H5HG__cache_heap_deserialize`` does it.
    """
    stop = len(data) if end is None else min(end, len(data))
    for start in _signature_offsets(data, begin, stop):
        if start + 16 <= stop:
            (size,) = struct.unpack_from("<Q", data, start + 8)
            heap_end = start + size
            p = start + 16
            while size >= 16 and heap_end <= stop and p < heap_end:
                if p + 16 > heap_end:
                    break  # a tail too small for an object header is free space
                idx, _refs, _reserved, length = struct.unpack_from("<HHIQ", data, p)
                need = 16 + ((length + 7) & ~7) if idx > 0 else length
                if need <= 0:
                    raise LoadError(
                        f"{file}: damaged HDF5 file (a global heap object at byte {p - begin} "
                        "has size 0); re-save the model"
                    )
                p += need


def _signature_offsets(data: bytes | mmap.mmap, begin: int, stop: int) -> list[int]:
    """Offsets of ``_GCOL`` in ``data[begin:stop]``, in order. NumPy compares a block at a
    time for the first byte and checks the other seven only there: a third faster than
    ``bytes.find`` on weights, whose random bytes defeat its skip table (this pass over the
    whole file was half of a large ``.weights.h5`` load). A list, not a generator: no view
    of an mmap may outlive the call, or closing the mmap would fail."""
    arr = np.frombuffer(data, np.uint8)
    sig = np.frombuffer(_GCOL, np.uint8)
    found: list[int] = []
    last = stop - len(_GCOL)  # the last offset a whole signature fits at
    for s in range(begin, last + 1, _SCAN_BLOCK):
        e = min(last + 1, s + _SCAN_BLOCK)
        hits = np.flatnonzero(arr[s:e] == sig[0]) + s
        if hits.size:
            ok = np.ones(hits.size, bool)
            for k in range(1, len(_GCOL)):
                ok &= arr[hits + k] == sig[k]
            found.extend(int(h) for h in hits[ok])
    return found


def check_global_heaps_of(path: Path, file: str) -> None:
    """``check_global_heaps`` on a file, memory-mapped so a large file is not read into RAM."""
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            check_global_heaps(mm, file)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{file}: cannot read file ({exc})") from exc


def dataset_dtype(ds: h5py.Dataset) -> str:
    """The dtype name shown in provenance. h5py stores bfloat16 as a 2-byte opaque type; the
    Keras 3 tree marks it with ``dtype="bfloat16"``, Keras 3's legacy ``.h5`` does not (and
    Keras cannot read it back), but bfloat16 is the only 2-byte opaque type Keras writes."""
    if decode_text(ds.attrs.get("dtype", "")) == "bfloat16":
        return "bfloat16"
    if ds.dtype.kind == "V" and ds.dtype.itemsize == 2 and ds.dtype.fields is None:
        return "bfloat16"
    return str(ds.dtype)


def weight(obj: object, name: str, role: str, file: str) -> Weight:
    """A ``Weight`` for an HDF5 dataset; shape and dtype are checked now, data read later."""
    if not isinstance(obj, h5py.Dataset):
        raise LoadError(f"{file}: {name} is a {type(obj).__name__}, expected a weight array")
    # before the shape: a virtual dataset of unlimited extent opens its sources to tell it
    compressed = check_storage(obj, name, file)
    shape = tuple(int(s) for s in (obj.shape or ()))
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size > MAX_WEIGHT_VALUES:
        raise LoadError(
            f"{file}: {name} declares shape {shape}, far too large for recurrent weights"
        )
    dtype = dataset_dtype(obj)
    kind = obj.dtype.kind
    if not (kind == "f" or (kind == "V" and obj.dtype.itemsize == 2 and dtype == "bfloat16")):
        raise LoadError(f"{file}: {name} has dtype {obj.dtype}; Keras weights are floating point")
    nbytes = size * obj.dtype.itemsize
    stored, file_bytes = stored_sizes(obj, name, file)
    if nbytes > MAX_EXPANSION * stored + (1 << 20):
        raise LoadError(
            f"{file}: {name} declares {nbytes} bytes but the file stores {stored} for it "
            "(truncated or damaged)"
        )

    def read() -> np.ndarray:
        take(nbytes, name, file, file_bytes)
        if compressed:
            check_chunks(obj, name, file)
        try:
            raw = obj[()]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise LoadError(f"{file}: cannot read {name} ({exc}); the file is damaged") from exc
        arr = widen(np.asarray(raw), name)
        if arr.shape != shape:
            raise LoadError(f"{file}: {name} read as {arr.shape}, declared {shape}")
        # a finite sum means every value is finite (NaN and ±Inf propagate); only a sum that
        # is not (a NaN, an Inf or an overflow) needs the element-wise check
        if not np.isfinite(arr.sum()) and not np.all(np.isfinite(arr)):
            raise LoadError(f"{file}: {name} holds NaN or Inf values")
        freeze(arr)  # read-only and lstmviz's own: the model keeps it (and views of it) uncopied
        return arr

    return Weight(name=name, role=role, shape=shape, dtype=dtype, read=read)


def stored_sizes(ds: h5py.Dataset, name: str, file: str) -> tuple[int, int]:
    """(bytes the file stores for ``ds``, size of its HDF5 file). Stored bytes beyond the
    file's size mean chunks that share their bytes (one compressed block listed a thousand
    times), a way to make a few KB decode to gigabytes."""
    try:
        stored = int(ds.id.get_storage_size())
        file_bytes = int(ds.file.id.get_filesize())
    except (OSError, ValueError, RuntimeError) as exc:
        raise LoadError(f"{file}: cannot read the storage of {name}; the file is damaged") from exc
    if stored > file_bytes:
        raise LoadError(
            f"{file}: {name} claims {stored} stored bytes in a file of {file_bytes} (chunks "
            "that share their bytes, or a damaged file)"
        )
    return stored, file_bytes


def name_list(attrs: h5py.AttributeManager, key: str, file: str) -> list[str] | None:
    """A Keras string-list attribute, joined from ``key0, key1, …`` when it was split.

    Keras splits lists longer than 64 KB into numbered attributes (CONVENTIONS §3.2).
    Returns None when neither form is present.
    """
    try:
        if key in attrs:
            parts = [attrs[key]]
        elif f"{key}0" in attrs:
            parts, n = [], 0
            while f"{key}{n}" in attrs:
                parts.append(attrs[f"{key}{n}"])
                n += 1
        else:
            return None
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise LoadError(
            f"{file}: cannot read attribute {key} ({detail}); the file is damaged"
        ) from exc
    names: list[str] = []
    for part in parts:
        arr = np.asarray(part)
        if arr.size and arr.dtype.kind not in ("S", "U", "O"):
            raise LoadError(f"{file}: attribute {key} is {arr.dtype}, expected a list of names")
        names.extend(decode_text(x) for x in arr.reshape(-1) if arr.size)
        if len(names) > MAX_NAMES:
            raise LoadError(f"{file}: attribute {key} lists more than {MAX_NAMES} names")
    return names


def local(parent: h5py.Group, path: str, file: str) -> object | None:
    """``parent[path]``, or None if missing, following links only inside the file.

    An HDF5 external link would make h5py open another file named by the weights file
    (any path on the user's disk, a FIFO that blocks forever), so it is refused. Within a
    load each link is looked up once (``child_of``) and paths are bounded in depth.
    """
    parts = [p for p in path.split("/") if p] or ["."]
    if len(parts) > MAX_PATH_PARTS:
        raise LoadError(
            f"{file}: a path {len(parts)} groups deep ({path[:60]}...); Keras writes paths of "
            "a few groups, so the file is damaged or crafted"
        )
    obj: object = parent
    for part in parts:
        if not isinstance(obj, h5py.Group):
            return None
        obj = child_of(obj, part, path, file)
        if obj is None:
            return None
    return obj


def child_of(parent: h5py.Group, part: str, path: str, file: str) -> object | None:
    """``parent[part]`` (None if missing), an external link refused; remembered per load,
    keyed by the HDF5 object (a hard-linked group reached by two paths is one key), and
    counted against the load's lookup budget."""
    budget = current_budget()
    key = None
    if budget is not None:
        try:
            key = (parent.id, part)
        except (TypeError, ValueError):
            key = None
        if key is not None and key in budget.children:
            return budget.children[key]
        if len(budget.children) >= budget.max_lookups:
            raise LoadError(
                f"{file}: {path[:80]} is lookup number {budget.max_lookups + 1} in the file's "
                "groups, more than lstmviz makes for one model; if you trust the file, raise "
                "the limit with --option budget=4"
            )
    try:
        link = parent.get(part, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise LoadError(
                f"{file}: {path} is an HDF5 external link to {link.filename!r}; lstmviz "
                "reads weights stored in the file itself"
            )
        obj = parent.get(part) if link is not None else None
    except LoadError:
        raise
    except (KeyError, ValueError, OSError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise LoadError(f"{file}: cannot open {path} ({detail}); the file is damaged") from exc
    if key is not None and budget is not None:
        budget.children[key] = obj
    return obj


def group(parent: h5py.Group, path: str, file: str) -> h5py.Group | None:
    """``parent[path]`` if it is a group, None if missing; a dataset there is an error."""
    obj = local(parent, path, file)
    if obj is None:
        return None
    if not isinstance(obj, h5py.Group):
        raise LoadError(f"{file}: {path} is a {type(obj).__name__}, expected a group")
    return obj
