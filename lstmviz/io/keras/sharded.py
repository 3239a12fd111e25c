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
import os
import re
from pathlib import Path

import h5py

from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import load_json, read_small_file
from lstmviz.io.keras.datasets import MAX_EXPANSION, check_global_heaps_of, local, stored_sizes
from lstmviz.io.keras.guard import ReadBudget, check_chunks, check_storage, regular_file
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


def _merge(src: h5py.Group, dst: h5py.Group, file: str, budget: ReadBudget, depth: int = 0) -> None:
    """Copy one shard's tree into the merged one; every dataset is checked as a weight read
    is and counted against ``budget`` (the shards' own size: a shard whose names all point
    at one block would otherwise multiply it in memory)."""
    if depth > 64:
        raise LoadError(f"{file}: shard tree nests deeper than 64 groups")
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in written_order(src, file):  # keeps the layer order the addresses tell
        obj = local(src, key, file)
        if isinstance(obj, h5py.Group):
            _merge(obj, dst.require_group(key), file, budget, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            if key in dst:
                raise LoadError(f"{file}: {obj.name} is stored in two shards")
            declared = int(obj.size) * obj.dtype.itemsize
            compressed = check_storage(obj, obj.name, file)
            stored, _ = stored_sizes(obj, obj.name, file)
            if declared > MAX_EXPANSION * stored + (1 << 20):
                raise LoadError(
                    f"{file}: {obj.name} declares {declared} bytes but its shard stores "
                    f"{stored} (truncated or damaged)"
                )
            budget.take(declared, obj.name, file)
            if compressed:
                check_chunks(obj, obj.name, file)
            try:
                data = obj[()]
            except (OSError, ValueError, TypeError) as exc:
                raise LoadError(f"{file}: cannot read {obj.name} ({exc})") from exc
            copy = dst.create_dataset(key, data=data)
            for k, v in obj.attrs.items():
                copy.attrs[k] = v


def merged_shards(index_path: Path, file: str, factor: object = None) -> tuple[h5py.File, int, int]:
    """(one in-memory HDF5 tree holding every shard, number of shards, their total size).
    Shards are regular files beside the index (a FIFO would block, a link out of the folder
    would read elsewhere)."""
    chosen = index_path.resolve()  # the file the user chose may itself be a link
    regular_file(chosen, chosen.parent, file, "index")
    too_large = f"sharded weights index is larger than {MAX_INDEX_BYTES} bytes"
    raw = read_small_file(index_path, MAX_INDEX_BYTES, file, too_large)
    names = _shard_names(load_json(raw, "sharded weights index", file), file)
    paths = [index_path.with_name(n) for n in names]
    missing = [p.name for p in paths if not os.path.lexists(p)]
    if missing:
        raise LoadError(
            f"{file}: shard {missing[0]} of {index_path.name} is missing; keep every "
            f"{len(paths)} shard file beside the index"
        )
    total = sum(regular_file(p, index_path.parent, file, "shard") for p in paths)
    if total > MAX_MERGED_BYTES:
        raise LoadError(f"{file}: sharded weights over {MAX_MERGED_BYTES >> 30} GiB are not read")
    # the merge and the reads of the merged tree each decode the weights once
    budget = ReadBudget(total, factor, file)
    merged = h5py.File(io.BytesIO(), "w")
    try:
        for path in paths:
            check_global_heaps_of(path, file)
            try:
                shard = h5py.File(path, "r")
            except (OSError, ValueError) as exc:
                raise LoadError(f"{file}: shard {path.name} is not HDF5 ({exc})") from exc
            with shard:
                _merge(shard, merged, file, budget)
    except BaseException:
        merged.close()
        raise
    return merged, len(paths), total
