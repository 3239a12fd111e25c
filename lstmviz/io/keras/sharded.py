"""Keras 3 sharded weights: ``save_weights("m.weights.json", max_shard_size=…)``.

Keras writes a JSON index ``{"metadata": {"total_size": …}, "weight_map": {"/layers/lstm/
cell/vars": ["m_00000.weights.h5", …], …}}`` and shards ``m_00000.weights.h5``, … beside it,
each holding part of the Keras 3 weights tree (one layer's variables may span two shards).
The shards are merged into one in-memory HDF5 tree, then read like a ``.weights.h5``. Shard
names come from the index, so only plain file names in the index's own folder are opened.
Opening one shard finds its index and loads the whole set: a shard alone is a partial model.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import h5py

from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import load_json, read_small_file
from lstmviz.io.keras.datasets import MAX_EXPANSION, check_global_heaps_of, local
from lstmviz.io.keras.v3 import written_order
from lstmviz.io.probe import Probe

MAX_INDEX_BYTES = 64 << 20
MAX_SHARDS = 10_000
MAX_MERGED_BYTES = 4 << 30  # merged in memory
_SHARD_NAME = re.compile(r"^(?P<base>.+)_\d{5}\.weights\.h5$")


def is_index(probe: Probe) -> bool:
    """A JSON file whose first bytes show Keras' sharding index keys."""
    head = probe.head.lstrip()
    return head.startswith(b"{") and b'"weight_map"' in head


def index_of_shard(path: Path) -> Path | None:
    """The ``<base>.weights.json`` beside a ``<base>_NNNNN.weights.h5`` shard, if any."""
    m = _SHARD_NAME.match(path.name)
    if m is None:
        return None
    index = path.with_name(f"{m['base']}.weights.json")
    return index if index.is_file() else None


def _shard_names(index: object, file: str) -> list[str]:
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise LoadError(f"{file}: sharded weights index has no weight_map")
    names: dict[str, None] = {}
    for value in weight_map.values():
        for name in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or not name.endswith(".h5") or Path(name).name != name:
                raise LoadError(
                    f"{file}: sharded weights index names {name!r}, not a shard file beside it"
                )
            names[name] = None
    if len(names) > MAX_SHARDS:
        raise LoadError(f"{file}: sharded weights index lists {len(names)} shards")
    return list(names)


def _merge(src: h5py.Group, dst: h5py.Group, file: str, depth: int = 0) -> None:
    if depth > 64:
        raise LoadError(f"{file}: shard tree nests deeper than 64 groups")
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in written_order(src, file):  # keeps the layer order the addresses tell
        obj = local(src, key, file)
        if isinstance(obj, h5py.Group):
            _merge(obj, dst.require_group(key), file, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            if key in dst:
                raise LoadError(f"{file}: {obj.name} is stored in two shards")
            declared = int(obj.size) * obj.dtype.itemsize
            if declared > MAX_EXPANSION * int(obj.id.get_storage_size()) + (1 << 20):
                raise LoadError(
                    f"{file}: {obj.name} declares {declared} bytes but its shard stores "
                    f"{obj.id.get_storage_size()} (truncated or damaged)"
                )
            try:
                data = obj[()]
            except (OSError, ValueError, TypeError) as exc:
                raise LoadError(f"{file}: cannot read {obj.name} ({exc})") from exc
            copy = dst.create_dataset(key, data=data)
            for k, v in obj.attrs.items():
                copy.attrs[k] = v


def merged_shards(index_path: Path, file: str) -> tuple[h5py.File, int]:
    """(one in-memory HDF5 tree holding every shard, number of shards)."""
    too_large = f"sharded weights index is larger than {MAX_INDEX_BYTES} bytes"
    raw = read_small_file(index_path, MAX_INDEX_BYTES, file, too_large)
    names = _shard_names(load_json(raw, "sharded weights index", file), file)
    paths = [index_path.with_name(n) for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise LoadError(
            f"{file}: shard {missing[0]} of {index_path.name} is missing; keep every "
            f"{len(paths)} shard file beside the index"
        )
    if sum(p.stat().st_size for p in paths) > MAX_MERGED_BYTES:
        raise LoadError(f"{file}: sharded weights over {MAX_MERGED_BYTES >> 30} GiB are not read")
    merged = h5py.File(io.BytesIO(), "w")
    try:
        for path in paths:
            check_global_heaps_of(path, file)
            try:
                shard = h5py.File(path, "r")
            except (OSError, ValueError) as exc:
                raise LoadError(f"{file}: shard {path.name} is not HDF5 ({exc})") from exc
            with shard:
                _merge(shard, merged, file)
    except BaseException:
        merged.close()
        raise
    return merged, len(paths)
