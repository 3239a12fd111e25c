"""Careful access to the HDF5 parts of Keras files: datasets, name-list attributes.

A hostile file can declare a dataset of 10^12 floats in a few bytes, an attribute that is not
a string list, or a dataset where a group should be. Everything here checks before it reads
and turns surprises into one-line ``LoadError``s.
"""

from __future__ import annotations

import h5py
import numpy as np

from lstmviz.io.convert import widen
from lstmviz.io.errors import LoadError
from lstmviz.io.keras_config import decode_text
from lstmviz.io.keras_layers import MAX_WEIGHT_VALUES, Weight

MAX_EXPANSION = 1100  # compressed chunks expand at most ~1000:1; more means unwritten data
MAX_NAMES = 1 << 20


def dataset_dtype(ds: h5py.Dataset) -> str:
    """The dtype name shown in provenance; Keras marks bfloat16 (stored as 2-byte opaque)."""
    if decode_text(ds.attrs.get("dtype", "")) == "bfloat16":
        return "bfloat16"
    return str(ds.dtype)


def weight(obj: object, name: str, role: str, file: str) -> Weight:
    """A ``Weight`` for an HDF5 dataset; shape and dtype are checked now, data read later."""
    if not isinstance(obj, h5py.Dataset):
        raise LoadError(f"{file}: {name} is a {type(obj).__name__}, expected a weight array")
    shape = tuple(int(s) for s in (obj.shape or ()))
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size > MAX_WEIGHT_VALUES:
        raise LoadError(f"{file}: {name} declares shape {shape}, far too large for LSTM weights")
    dtype = dataset_dtype(obj)
    kind = obj.dtype.kind
    if not (kind == "f" or (kind == "V" and obj.dtype.itemsize == 2 and dtype == "bfloat16")):
        raise LoadError(f"{file}: {name} has dtype {obj.dtype}; Keras weights are floating point")
    nbytes = size * obj.dtype.itemsize
    stored = int(obj.id.get_storage_size())
    if nbytes > MAX_EXPANSION * stored + (1 << 20):
        raise LoadError(
            f"{file}: {name} declares {nbytes} bytes but the file stores {stored} for it "
            "(truncated or damaged)"
        )

    def read() -> np.ndarray:
        try:
            raw = obj[()]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise LoadError(f"{file}: cannot read {name} ({exc}); the file is damaged") from exc
        arr = widen(np.asarray(raw), name)
        if arr.shape != shape:
            raise LoadError(f"{file}: {name} read as {arr.shape}, declared {shape}")
        if not np.all(np.isfinite(arr)):
            raise LoadError(f"{file}: {name} holds NaN or Inf values")
        return arr

    return Weight(name=name, role=role, shape=shape, dtype=dtype, read=read)


def name_list(attrs: h5py.AttributeManager, key: str, file: str) -> list[str] | None:
    """A Keras string-list attribute, joined from ``key0, key1, …`` when it was split.

    Keras splits lists longer than 64 KB into numbered attributes (CONVENTIONS §3.2).
    Returns None when neither form is present.
    """
    if key in attrs:
        parts = [attrs[key]]
    elif f"{key}0" in attrs:
        parts, n = [], 0
        while f"{key}{n}" in attrs:
            parts.append(attrs[f"{key}{n}"])
            n += 1
    else:
        return None
    names: list[str] = []
    for part in parts:
        arr = np.asarray(part)
        if arr.size and arr.dtype.kind not in ("S", "U", "O"):
            raise LoadError(f"{file}: attribute {key} is {arr.dtype}, expected a list of names")
        names.extend(decode_text(x) for x in arr.reshape(-1) if arr.size)
        if len(names) > MAX_NAMES:
            raise LoadError(f"{file}: attribute {key} lists more than {MAX_NAMES} names")
    return names


def group(parent: h5py.Group, path: str, file: str) -> h5py.Group | None:
    """``parent[path]`` if it is a group, None if missing; a dataset there is an error."""
    try:
        obj = parent.get(path)
    except (KeyError, ValueError, OSError) as exc:
        raise LoadError(f"{file}: cannot open {path} ({exc}); the file is damaged") from exc
    if obj is None:
        return None
    if not isinstance(obj, h5py.Group):
        raise LoadError(f"{file}: {path} is a {type(obj).__name__}, expected a group")
    return obj
