"""``torch.export.save`` archives (``.pt2``): an ExportedProgram's weights, read without torch.

Since torch 2.8 the zip holds ``<stem>/archive_format`` (``pt2``), the graph in
``models/<model>.json`` (not read) and the weights in ``data/weights/``: one raw C-order byte
record per storage (``weight_0``...) and ``<model>_weights_config.json`` mapping each
state-dict name to ``{path_name, use_pickle, tensor_meta: {dtype, sizes, strides,
storage_offset}}``, so a weight is ``as_strided`` over its record. Tensor subclasses are
stored as nested ``torch.save`` archives (``use_pickle``), as is the whole state dict in older
layouts (``data/weights/<model>.pt``; before torch 2.8 a flat ``serialized_state_dict.pt``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lstmviz.io.errors import LoadError
from lstmviz.io.torch.checkpoint import DTYPES, SAVE_ADVICE
from lstmviz.io.torch.containers import split_checkpoint
from lstmviz.io.torch.state_dict import LazyTensor, Tensor

SOURCE_FORMAT = "PyTorch ExportedProgram (torch.export.save)"
WEIGHTS = "data/weights/"
CONFIG_SUFFIX = "_weights_config.json"
LEGACY_STATE = "serialized_state_dict.pt"
MAX_CONFIG = 16 << 20  # JSON parses to ~8x its bytes of objects; 20,000 entries take ~5 MB
#: A deflated config may inflate to 16x its stored bytes over a 4 MB floor, and list one
#: weight per 16 stored bytes over 10,000 (torch stores it uncompressed at ~250 bytes an
#: entry): 280,000 entries of repetitive JSON deflated to 0.8 MB took over 8 s to read.
CONFIG_FLOOR, CONFIG_RATIO = 4 << 20, 16
ENTRIES_FLOOR, BYTES_PER_ENTRY = 10_000, 16
#: Weights one config may list at all (times budget=): exported programs of the largest
#: models hold a few thousand, and each entry costs ~30 us (280,000 stored: past 8 s).
MAX_ENTRIES = 20_000
MAX_NDIM = 32  # checked before any product of sizes (a 40,000-dim shape took 5 s)
#: ``torch._export.serde.schema.ScalarType`` → dtype name.
SCALAR_TYPES = {
    1: "uint8",
    2: "int8",
    3: "int16",
    4: "int32",
    5: "int64",
    6: "float16",
    7: "float32",
    8: "float64",
    9: "complex32",
    10: "complex64",
    11: "complex128",
    12: "bool",
    13: "bfloat16",
    28: "uint16",
    29: "float8_e4m3fn",
    30: "float8_e5m2",
    31: "float8_e4m3fnuz",
    32: "float8_e5m2fnuz",
    33: "float8_e8m0fnu",
    34: "uint32",
    35: "uint64",
}
Nested = Callable[[bytes, str, str], object]


def find_export(names: list[str]) -> str | None:
    """The member prefix of a ``.pt2`` archive ('<stem>/', or '' for the flat < 2.8 layout)."""
    for name in names:
        head, _, last = name.rpartition("/")
        if last == "archive_format" and "/" not in head:
            return f"{head}/" if head else ""
    if LEGACY_STATE in names and "serialized_exported_program.json" in names:
        return ""
    return None


def _int(value: object, what: str, file: str) -> int:
    """A ``{"as_int": n}`` size; symbolic sizes (``as_expr``) cannot describe stored weights."""
    n = value.get("as_int") if isinstance(value, dict) else None
    if type(n) is not int or not 0 <= n < 1 << 62:
        raise LoadError(
            f"{file}: a weight's {what} is {str(value)[:40]}, not a non-negative integer"
        )
    return n


def _raw_tensor(archive: Any, meta: dict, fqn: str) -> Tensor:
    file = archive.file
    tmeta, path = meta.get("tensor_meta"), meta.get("path_name")
    if not isinstance(tmeta, dict) or not isinstance(path, str):
        raise LoadError(f"{file}: weights config entry {fqn!r} has no tensor_meta/path_name")
    dtype = SCALAR_TYPES.get(tmeta.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise LoadError(f"{file}: weight {fqn!r} has unknown dtype code {tmeta.get('dtype')!r}")
    raw_sizes, raw_strides = tmeta.get("sizes", ()), tmeta.get("strides", ())
    if not isinstance(raw_sizes, list) or not isinstance(raw_strides, list):
        raise LoadError(f"{file}: weight {fqn!r} has no size/stride lists")
    if len(raw_sizes) > MAX_NDIM or len(raw_strides) > MAX_NDIM:
        raise LoadError(
            f"{file}: weight {fqn!r} has {len(raw_sizes)} dimensions, more than {MAX_NDIM}"
        )
    sizes = tuple(_int(v, "size", file) for v in raw_sizes)
    strides = tuple(_int(v, "stride", file) for v in raw_strides)
    offset = _int(tmeta.get("storage_offset", {"as_int": 0}), "storage offset", file)
    member = WEIGHTS + path
    nbytes = archive.member_size(member)
    if nbytes == 0 and math.prod(sizes) == 0:  # torch writes empty tensors as empty records
        return np.zeros(sizes, DTYPES[dtype][0])
    storage = archive.make_storage(member, path, dtype, nbytes // DTYPES[dtype][1])
    return archive.tensor(storage, offset, sizes, strides, None)


def _from_config(archive: Any, config: str, open_nested: Nested) -> dict[str, Tensor]:
    file = archive.file
    stored = archive.stored_size(archive.prefix + config)
    factor = archive.budget.factor
    limit = int(min(MAX_CONFIG, max(CONFIG_FLOOR, CONFIG_RATIO * stored)) * factor)
    try:
        spec = json.loads(archive.read(archive.prefix + config, limit=limit))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(f"{file}: {config} is not valid JSON ({exc}); re-export the file") from exc
    entries = spec.get("config") if isinstance(spec, dict) else None
    if not isinstance(entries, dict):
        raise LoadError(f"{file}: {config} has no 'config' mapping; re-export the file")
    if len(entries) > min(MAX_ENTRIES, ENTRIES_FLOOR + stored // BYTES_PER_ENTRY) * factor:
        raise LoadError(
            f"{file}: {config} lists {len(entries)} weights in {stored} stored bytes, far more "
            "than an exported program writes; if you trust the file, raise the limit with "
            "--option budget=4"
        )
    tensors: dict[str, Tensor] = {}
    for fqn, meta in entries.items():
        if not isinstance(meta, dict):
            raise LoadError(f"{file}: weights config entry {fqn!r} is not an object")
        if meta.get("use_pickle"):
            member = WEIGHTS + str(meta.get("path_name"))
            obj = open_nested(archive.read(archive.prefix + member), file, member)
            if not isinstance(obj, (np.ndarray, LazyTensor)):
                raise LoadError(f"{file}: weight {fqn!r} ({member}) is not a plain tensor")
            tensors[fqn] = obj
        else:
            tensors[fqn] = _raw_tensor(archive, meta, fqn)
    return tensors


def _nested_state(archive: Any, member: str, open_nested: Nested) -> dict[str, Tensor]:
    obj = open_nested(archive.read(archive.prefix + member), archive.file, member)
    return split_checkpoint(obj, archive.file).tensors


def read_weights(
    archive: Any, names: list[str], open_nested: Nested
) -> tuple[dict[str, Tensor], list[str]]:
    """The exported program's state dict and a note saying where it came from."""
    file, prefix = archive.file, archive.prefix
    if prefix == "" and LEGACY_STATE in names:
        note = f"torch.export archive (torch < 2.8 layout): weights from {LEGACY_STATE}"
        return _nested_state(archive, LEGACY_STATE, open_nested), [note]
    kind = archive.text("archive_format", "")
    if kind != "pt2":
        raise LoadError(f"{file}: archive_format says {kind!r}, not pt2; {SAVE_ADVICE}")
    inside = [n[len(prefix) :] for n in names if n.startswith(prefix + WEIGHTS)]
    configs = sorted(n for n in inside if n.endswith(CONFIG_SUFFIX))
    tensors: dict[str, Tensor] = {}
    for config in configs:
        model = config[len(WEIGHTS) : -len(CONFIG_SUFFIX)]
        for fqn, t in _from_config(archive, config, open_nested).items():
            tensors[fqn if len(configs) == 1 else f"{model}.{fqn}"] = t
    if configs:
        return tensors, [f"torch.export archive (.pt2): weights from {', '.join(configs)}"]
    legacy = sorted(n for n in inside if n.endswith(".pt"))
    if legacy:
        for member in legacy:
            tensors.update(_nested_state(archive, member, open_nested))
        return tensors, [f"torch.export archive (.pt2): weights from {', '.join(legacy)}"]
    if any("/aotinductor/" in n for n in names):
        raise LoadError(
            f"{file}: file is an AOTInductor package whose weights are compiled into the model "
            f"code, which lstmviz cannot read; {SAVE_ADVICE}"
        )
    raise LoadError(f"{file}: .pt2 archive holds no weights ({WEIGHTS}); {SAVE_ADVICE}")
