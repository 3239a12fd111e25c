"""safetensors files: a u64 LE header length N, N bytes of JSON, then raw LE C-order data.

Parsed by hand rather than with the ``safetensors`` package: the format is 20 lines of
logic, and the package would be one more compiled runtime dependency (lstmviz depends on
numpy, h5py, PySide6 and pyqtgraph only). The JSON maps each name to
``{dtype, shape, data_offsets: [begin, end]}`` with offsets counted from the end of the header;
``__metadata__`` is a str→str map. Every number is checked against the file before a byte is
read: header inside the file, offsets inside the data area, byte count = shape × itemsize,
no two tensors overlapping. Names are PyTorch state-dict keys, so ``state_dict`` builds the model.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from pathlib import Path

import numpy as np

from lstmviz.core.model import LSTMModel
from lstmviz.io.convert import bfloat16_to_float32, budget_factor
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.torch.state_dict import LazyTensor, model_from_state_dict

SOURCE_FORMAT = "safetensors"
MAX_HEADER = 100 << 20  # the reference implementation refuses headers over 100 MB
MAX_DIMS = 32  # weights have 1 to 3 axes; the library has no limit but overflows at 2**64 bytes
MAX_TENSORS = 50_000  # validating one costs ~10 µs; a whole LLM has a few thousand
#: Fields of one tensor entry: the library deserialises them into a struct, which refuses a
#: field given twice ("duplicate field"), as it does ``__metadata__`` given twice.
_STRUCT_FIELDS = frozenset({"dtype", "shape", "data_offsets", "__metadata__"})
ADVICE = "re-save it with safetensors.torch.save_file(model.state_dict(), path)"

#: safetensors dtype → (our dtype name, NumPy little-endian dtype, element size).
DTYPES: dict[str, tuple[str, str, int]] = {
    "F64": ("float64", "<f8", 8),
    "F32": ("float32", "<f4", 4),
    "F16": ("float16", "<f2", 2),
    "BF16": ("bfloat16", "<u2", 2),
    "I64": ("int64", "<i8", 8),
    "I32": ("int32", "<i4", 4),
    "I16": ("int16", "<i2", 2),
    "I8": ("int8", "<i1", 1),
    "U64": ("uint64", "<u8", 8),
    "U32": ("uint32", "<u4", 4),
    "U16": ("uint16", "<u2", 2),
    "U8": ("uint8", "<u1", 1),
    "BOOL": ("bool", "<b1", 1),
}


def _is_count(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _entry(
    name: str, spec: object, data_len: int, file: str
) -> tuple[str, tuple[int, ...], int, int]:
    """Validate one header entry → (dtype code, shape, begin, end)."""
    if not isinstance(spec, dict):
        raise LoadError(f"{file}: header entry {name!r} is not an object; {ADVICE}")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in DTYPES:
        raise LoadError(
            f"{file}: tensor {name!r} has dtype {dtype!r}; lstmviz reads "
            f"{', '.join(DTYPES)} safetensors"
        )
    if not (isinstance(shape, list) and all(_is_count(n) for n in shape)):
        raise LoadError(f"{file}: tensor {name!r} has an invalid shape {shape!r}")
    if len(shape) > MAX_DIMS:
        raise LoadError(
            f"{file}: tensor {name!r} has {len(shape)} axes; recurrent weights have at most 3"
        )
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_count(n) for n in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise LoadError(
            f"{file}: tensor {name!r} has data_offsets {offsets!r} outside the {data_len}-byte "
            f"data area; the file is truncated or damaged"
        )
    nbytes = math.prod(shape) * DTYPES[dtype][2]  # at most 32 factors: a small integer
    if nbytes >= 2**64:
        raise LoadError(
            f"{file}: tensor {name!r} of shape {tuple(shape)} overflows 2**64 bytes "
            f"(the safetensors library refuses it too)"
        )
    if offsets[1] - offsets[0] != nbytes:
        raise LoadError(
            f"{file}: tensor {name!r} of shape {tuple(shape)} {dtype} needs {nbytes} bytes but "
            f"data_offsets span {offsets[1] - offsets[0]}"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


def read_header(
    path: Path, size: int, file: str, factor: float = 1.0
) -> tuple[dict[str, tuple], dict[str, str], int]:
    """Validate the header → ({name: (dtype, shape, begin, end)}, metadata, data start)."""
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise LoadError(f"{file}: file is too short for a safetensors header")
        (n,) = struct.unpack("<Q", prefix)
        if n > size - 8 or n > MAX_HEADER:
            raise LoadError(
                f"{file}: safetensors header claims {n} bytes but the file has {size - 8} after "
                "the length; the file is truncated or not safetensors"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_last_wins)
    except _DuplicateField as exc:
        raise LoadError(
            f"{file}: safetensors header gives {exc.args[0]!r} twice; the safetensors library "
            f"refuses such a header; {ADVICE}"
        ) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(f"{file}: safetensors header is not valid JSON ({exc}); {ADVICE}") from exc
    if not isinstance(header, dict):
        raise LoadError(f"{file}: safetensors header is not a JSON object; {ADVICE}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise LoadError(f"{file}: safetensors __metadata__ is not an object")
    if len(header) > MAX_TENSORS * factor:
        raise LoadError(
            f"{file}: the header lists {len(header):,} tensors; lstmviz reads at most "
            f"{int(MAX_TENSORS * factor):,} from one file; if you trust the file, raise the "
            "limit with --option budget=4"
        )
    data_start = 8 + n
    data_len = size - data_start
    entries = {name: _entry(name, spec, data_len, file) for name, spec in header.items()}
    _check_tiling(entries, data_len, file)
    meta = {str(k): str(v)[:200] for k, v in metadata.items()}
    return entries, meta, data_start


class _DuplicateField(ValueError):
    """A key the safetensors library refuses to see twice."""


def _last_wins(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object as serde reads it into safetensors' ``HashMap``: a tensor name given twice
    keeps its last entry (the library loads such a file with the last one, as ``json`` does);
    a struct field or ``__metadata__`` given twice is an error there, so here too."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out and key in _STRUCT_FIELDS:
            raise _DuplicateField(key)
        out[key] = value
    return out


def _check_tiling(entries: dict[str, tuple], data_len: int, file: str) -> None:
    """The library's own rule (``Metadata::validate``): sorted by offsets, each tensor starts
    where the previous one ended, from 0 to the end of the file. So no two tensors alias the
    same bytes (one storage shown as two weights), no bytes hide between them, and a tensor
    named twice whose dropped copy leaves a hole is refused as the library refuses it."""
    spans = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items())
    for (_, end_a, a), (begin_b, _, b) in itertools.pairwise(spans):
        if begin_b < end_a:
            raise LoadError(f"{file}: tensors {a!r} and {b!r} overlap in the data area")
    expected = 0
    for begin, end, name in spans:
        if begin != expected:
            raise LoadError(
                f"{file}: tensor {name!r} starts at byte {begin} of the data area but the "
                f"previous one ends at {expected}; the safetensors library refuses such gaps"
            )
        expected = end
    if expected != data_len:
        raise LoadError(
            f"{file}: tensors end at byte {expected} of the {data_len}-byte data area; the "
            "file has bytes no tensor covers (the safetensors library refuses it)"
        )


def _lazy(
    path: Path, data_start: int, dtype: str, shape: tuple[int, ...], begin: int, end: int
) -> LazyTensor:
    name, np_dtype, _ = DTYPES[dtype]

    def read() -> np.ndarray:
        with path.open("rb") as fh:
            fh.seek(data_start + begin)
            raw = fh.read(end - begin)
        if len(raw) != end - begin:
            raise LoadError(f"{path.name}: file shrank while reading")
        # native order: a read-only view of the bytes read, which the model keeps uncopied
        arr = np.frombuffer(raw, dtype=np_dtype).reshape(shape).astype(np_dtype[1:], copy=False)
        return bfloat16_to_float32(arr) if name == "bfloat16" else arr

    return LazyTensor(shape, name, read)


def load_safetensors(
    probe: Probe, prefix: str | None = None, budget: object = 1.0, nonlinearity: str | None = None
) -> LSTMModel:
    """Read a safetensors state dict; ``prefix`` picks one LSTM when there are several;
    ``budget`` multiplies the tensor-count limit; ``nonlinearity`` (tanh|relu) is an
    ``nn.RNN``'s, which the file does not record."""
    file = probe.name
    factor = budget_factor(budget, file)
    entries, metadata, data_start = read_header(probe.path, probe.size, file, factor)
    tensors = {
        name: _lazy(probe.path, data_start, dtype, shape, begin, end)
        for name, (dtype, shape, begin, end) in entries.items()
    }
    notes = tuple(f"metadata {k} = {v}" for k, v in list(metadata.items())[:10])
    return model_from_state_dict(
        tensors,
        file=file,
        source_format=SOURCE_FORMAT,
        source_path=str(probe.path),
        prefix=prefix,
        notes=notes,
        nonlinearity=nonlinearity,
    )


def sniff(probe: Probe) -> bool:
    """A plausible u64 LE header length followed by ``{``."""
    head = probe.head
    if len(head) < 10 or probe.is_dir:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    # A length past the end still sniffs (with the ``{``), so load can say the file is cut.
    return 2 <= n <= MAX_HEADER and head[8:9] == b"{"


READER = Reader(
    name="safetensors",
    sniff=sniff,
    load=load_safetensors,
    priority=5,
    options=("prefix", "budget", "nonlinearity"),
)

__all__ = ["READER", "load_safetensors", "read_header", "sniff"]
