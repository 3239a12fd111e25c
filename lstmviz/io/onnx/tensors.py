"""Tensor bytes of an ONNX file as NumPy arrays, with every size checked before anything
is allocated (issue 18).

``raw_data`` becomes a read-only view of the file's bytes (no copy); typed fields
(``float_data``, ``int32_data``...) are counted before they are decoded and refused when they
would decode to far more than they store; dims are bounded in rank and element count; external
data is read only from files inside the model's folder and only as many bytes as the dims
need. Messages show at most 8 dims and quoted, bounded names.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lstmviz.io.convert import bfloat16_to_float32
from lstmviz.io.errors import LoadError
from lstmviz.io.onnx.proto import DATA_TYPES, NIBBLE_TYPES, TensorInfo, quote
from lstmviz.io.probe import safe_member
from lstmviz.io.wire import protowire as pw

MAX_ELEMENTS = 1 << 34
#: Rank of a tensor beyond which its dims are refused (ONNX tensors in practice have < 10).
MAX_RANK = 64
#: A typed (not raw_data) tensor may decode to at most this many times its stored bytes.
TYPED_SLACK = 4
EXTERNAL = 1


def _typed_values(t: TensorInfo, np_dtype: str, number: int, count: int) -> np.ndarray:
    """The typed repeated field (float_data, int32_data...) as an array of ``np_dtype``.

    The number of values is counted before anything is decoded, and a field that would
    decode to more than ``TYPED_SLACK`` times its bytes (1-byte varints as int64) is refused,
    so a small file cannot declare a huge typed tensor.
    """
    if number in (4, 10):
        size = 4 if number == 4 else 8
        found, nbytes = pw.count_packed(t.fields, number, size)
    else:
        found, nbytes = pw.count_packed(t.fields, number)
    if found != count:
        raise pw.ProtoError(f"{found} values for dims {short_dims(t.dims)}")
    if count * np.dtype(np_dtype).itemsize > TYPED_SLACK * nbytes + (1 << 20):
        raise pw.ProtoError(f"{count} values decode to far more than the {nbytes} bytes stored")
    if number == 4:
        return pw.fixed_array(t.fields, 4, "<f4")
    if number == 10:
        return pw.fixed_array(t.fields, 10, "<f8")
    values = pw.varints_array(t.fields, number)
    if t.data_type in (10, 16, 4):  # 16-bit types keep their bit pattern in int32_data
        return values.astype(np.uint16).view(np_dtype)
    return values.view(np.int64).astype(np_dtype)


def short_dims(dims: tuple[int, ...] | list[int], keep: int = 8) -> str:
    """Dims for a message, at most ``keep`` of them shown (a hostile file may declare 40,000)."""
    shown = ", ".join(str(d) for d in dims[:keep])
    more = f", ... ({len(dims)} dims)" if len(dims) > keep else ""
    return f"[{shown}{more}]"


def _prod(dims: tuple[int, ...]) -> int:
    """The element count, stopping as soon as it passes ``MAX_ELEMENTS`` (no bignum work)."""
    out = 1
    for d in dims:
        out *= d
        if out > MAX_ELEMENTS:
            return out
    return out


def tensor_array(t: TensorInfo, folder: Path, file: str, what: str) -> np.ndarray:
    """Decode a TensorProto to an array (``raw_data``: a read-only view, no copy).

    bfloat16 comes back widened to float32 (NumPy has no bfloat16); float16 stays float16.
    """
    name = quote(t.name)
    if len(t.dims) > MAX_RANK or any(d < 0 for d in t.dims) or _prod(t.dims) > MAX_ELEMENTS:
        raise LoadError(
            f"{file}: {what} ({name}) has absurd dims {short_dims(t.dims)}; the file is "
            "damaged or not a real model"
        )
    if t.data_type in NIBBLE_TYPES:
        return _nibbles(t, file, what)
    if t.data_type not in DATA_TYPES:
        raise LoadError(
            f"{file}: {what} ({name}) has dtype {t.dtype_name}; lstmviz reads float, "
            "integer and bool tensors"
        )
    _, np_dtype, number = DATA_TYPES[t.data_type]
    count = math.prod(t.dims)
    if pw.get_int(t.fields, 14) == EXTERNAL:
        arr = _external(t, np_dtype, count, folder, file, what)
    elif (raw := pw.get_bytes(t.fields, 9)) is not None:
        itemsize = np.dtype(np_dtype).itemsize
        if len(raw) != count * itemsize:
            raise LoadError(
                f"{file}: {what} ({name}) is damaged (raw_data holds {len(raw)} bytes, "
                f"dims {short_dims(t.dims)} need {count * itemsize})"
            )
        arr = np.frombuffer(raw, np_dtype)
    else:
        try:
            arr = _typed_values(t, np_dtype, number, count)
        except (pw.ProtoError, OverflowError, ValueError) as exc:
            raise LoadError(f"{file}: {what} ({name}) is damaged ({exc})") from exc
    arr = arr.reshape(t.dims)
    return bfloat16_to_float32(arr) if t.data_type == 16 else arr


def _nibbles(t: TensorInfo, file: str, what: str) -> np.ndarray:
    """An int4/uint4 tensor (opset 21 quantized weights) as int8/uint8: ``raw_data`` packs
    two values per byte, the first in the low nibble; int4 is sign-extended."""
    name, (kind, np_dtype) = quote(t.name), NIBBLE_TYPES[t.data_type]
    count = math.prod(t.dims)
    raw = pw.get_bytes(t.fields, 9)
    if raw is None or pw.get_int(t.fields, 14) == EXTERNAL:
        raise LoadError(
            f"{file}: {what} ({name}) is {kind} outside raw_data; lstmviz reads 4-bit "
            "tensors stored in raw_data"
        )
    if len(raw) != (count + 1) // 2:
        raise LoadError(
            f"{file}: {what} ({name}) is damaged (raw_data holds {len(raw)} bytes, {kind} "
            f"dims {short_dims(t.dims)} need {(count + 1) // 2})"
        )
    packed = np.frombuffer(raw, np.uint8)
    values = np.empty(2 * len(packed), np.uint8)
    values[0::2], values[1::2] = packed & 0x0F, packed >> 4
    out = values[:count]
    if np_dtype == "i1":
        out = ((out.astype(np.int8) ^ 8) - 8).astype(np.int8)
    return out.reshape(t.dims)


def _external(
    t: TensorInfo, np_dtype: str, count: int, folder: Path, file: str, what: str
) -> np.ndarray:
    """Raw little-endian bytes from a file next to the model, never outside its folder."""
    entries = [pw.parse(e) for e in t.fields.get(13, []) if isinstance(e, memoryview)]
    info = {pw.get_string(e, 1): pw.get_string(e, 2) for e in entries}
    location = info.get("location", "")
    rel = Path(location)
    if not location or rel.is_absolute() or ".." in rel.parts:
        raise LoadError(
            f"{file}: {what} ({quote(t.name)}) points to external data {quote(location)} "
            "outside the model's folder; lstmviz reads external data only from beside the model"
        )
    if not (folder / rel).exists() and not (folder / rel).is_symlink():
        raise LoadError(f"{file}: external data file {quote(location)} for {what} is missing")
    # inside the folder, a regular file (no FIFO or device); a hub cache's blob links are fine
    target = safe_member(folder, rel, what=f"{file}: external data {quote(location)}")
    need = count * np.dtype(np_dtype).itemsize
    try:
        offset = int(info.get("offset") or 0)
        length = int(info.get("length") or need)
    except ValueError as exc:
        raise LoadError(
            f"{file}: {what} ({quote(t.name)}) has a bad external offset/length"
        ) from exc
    size = target.stat().st_size
    if length != need or offset < 0 or offset + length > size:
        raise LoadError(
            f"{file}: {what} ({quote(t.name)}) needs {need} bytes at offset {offset} of "
            f"{quote(location)} ({size} bytes, length {length}); the data file is truncated or "
            "does not match"
        )
    with target.open("rb") as fh:
        fh.seek(offset)
        raw = fh.read(need)
    return np.frombuffer(raw, np_dtype)
