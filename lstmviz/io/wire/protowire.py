"""A minimal protobuf wire-format decoder: just enough for checkpoint and graph protos.

lstmviz must not depend on ``protobuf`` or TensorFlow, and the messages it reads
(BundleHeaderProto, BundleEntryProto, MetaGraphDef) are decoded by field number. Every loop is
bounded by the buffer length and every length is checked before slicing, so garbage input
raises :class:`ProtoError` and never hangs. Sub-messages are decoded lazily: a
length-delimited field is returned as a ``memoryview`` the caller parses if it needs it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

Value = int | memoryview
Fields = dict[int, list[Value]]


class ProtoError(ValueError):
    """The bytes are not a valid protobuf message."""


def read_varint(buf: memoryview | bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns (value, next position)."""
    if pos < len(buf) and buf[pos] < 0x80:  # one byte: field keys, short lengths, small ints
        return buf[pos], pos + 1
    result, shift = 0, 0
    end = min(len(buf), pos + 10)
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise ProtoError("truncated or overlong varint")


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Value]]:
    """Yield ``(field number, wire type, value)`` for each field of one message.

    Varints and fixed-width fields come back as unsigned ints, length-delimited ones as
    memoryviews into ``data``. Groups (deprecated) are refused.
    """
    buf = memoryview(data)
    pos, n = 0, len(buf)
    while pos < n:
        key = buf[pos]
        if key < 0x80:  # the usual one-byte key (fields 1-15)
            pos += 1
        else:
            key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtoError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
            yield field, wire, value
        elif wire == FIXED64:
            if pos + 8 > n:
                raise ProtoError("truncated fixed64 field")
            yield field, wire, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > n:
                raise ProtoError("truncated fixed32 field")
            yield field, wire, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif wire == LEN:
            length, pos = read_varint(buf, pos)
            if length > n - pos:
                raise ProtoError(f"field {field} length {length} runs past the message end")
            yield field, wire, buf[pos : pos + length]
            pos += length
        else:
            raise ProtoError(f"unsupported wire type {wire} (field {field})")


def parse(data: bytes | memoryview) -> Fields:
    """All fields of one message: field number → list of values in file order."""
    out: Fields = {}
    for field, _wire, value in iter_fields(data):
        out.setdefault(field, []).append(value)
    return out


def get_int(fields: Fields, number: int, default: int = 0) -> int:
    """Last value of a scalar integer field (proto3 semantics: last one wins)."""
    values = [v for v in fields.get(number, ()) if isinstance(v, int)]
    return values[-1] if values else default


def get_signed(fields: Fields, number: int, default: int = 0) -> int:
    """An ``int32``/``int64`` field: two's complement of the 64-bit varint."""
    v = get_int(fields, number, default)
    return v - (1 << 64) if v >= 1 << 63 else v


def get_bytes(fields: Fields, number: int) -> memoryview | None:
    values = [v for v in fields.get(number, ()) if isinstance(v, memoryview)]
    return values[-1] if values else None


def get_message(fields: Fields, number: int) -> Fields:
    """A sub-message field decoded (an absent one is the empty message)."""
    raw = get_bytes(fields, number)
    return parse(raw) if raw is not None else {}


def get_string(fields: Fields, number: int, default: str = "") -> str:
    raw = get_bytes(fields, number)
    return bytes(raw).decode("utf-8", "replace") if raw is not None else default


def get_strings(fields: Fields, number: int) -> list[str]:
    return [
        bytes(v).decode("utf-8", "replace")
        for v in fields.get(number, ())
        if isinstance(v, memoryview)
    ]


def get_floats(fields: Fields, number: int) -> list[float]:
    """A ``repeated float`` field, packed (one LEN run) or not (FIXED32 values)."""
    out: list[float] = []
    for v in fields.get(number, ()):
        if isinstance(v, memoryview):
            if len(v) % 4:
                raise ProtoError(f"packed float field {number} has {len(v)} bytes")
            out.extend(np.frombuffer(v, dtype="<f4").tolist())
        else:
            out.append(struct.unpack("<f", (v & 0xFFFFFFFF).to_bytes(4, "little"))[0])
    return out


def get_doubles(fields: Fields, number: int) -> list[float]:
    """A ``repeated double`` field, packed or not."""
    out: list[float] = []
    for v in fields.get(number, ()):
        if isinstance(v, memoryview):
            if len(v) % 8:
                raise ProtoError(f"packed double field {number} has {len(v)} bytes")
            out.extend(np.frombuffer(v, dtype="<f8").tolist())
        else:
            out.append(struct.unpack("<d", v.to_bytes(8, "little"))[0])
    return out


def get_varints(fields: Fields, number: int) -> list[int]:
    """A ``repeated int`` field, packed or not."""
    out: list[int] = []
    for v in fields.get(number, ()):
        if isinstance(v, memoryview):
            pos = 0
            while pos < len(v):
                value, pos = read_varint(v, pos)
                out.append(value)
        else:
            out.append(v)
    return out


def fixed32_float(value: int) -> float:
    """Reinterpret a FIXED32 field (e.g. ``AttrValue.f``) as a float."""
    return struct.unpack("<f", (value & 0xFFFFFFFF).to_bytes(4, "little"))[0]


def count_packed(fields: Fields, number: int, wire_size: int = 0) -> tuple[int, int]:
    """(values, bytes) of a repeated numeric field without decoding it: ``wire_size`` 4 or 8
    for fixed-width packed runs, 0 for varints (counted by their last bytes). Lets a reader
    compare a tensor's declared size with what the file holds before allocating anything."""
    count = size = 0
    for v in fields.get(number, ()):
        if isinstance(v, memoryview):
            size += len(v)
            if wire_size:
                count += len(v) // wire_size
            else:
                count += int(np.count_nonzero(np.frombuffer(v, np.uint8) < 0x80))
        else:
            size += wire_size or 1
            count += 1
    return count, size


def varints_array(fields: Fields, number: int, chunk: int = 1 << 20) -> np.ndarray:
    """A ``repeated`` varint field as a uint64 array, decoded with NumPy (no Python int per
    value), a chunk of values at a time so the temporaries stay small."""
    parts: list[np.ndarray] = []
    for v in fields.get(number, ()):
        if not isinstance(v, memoryview):
            parts.append(np.asarray([v], np.uint64))
            continue
        raw = np.frombuffer(v, np.uint8)
        ends = np.flatnonzero(raw < 0x80)
        if len(raw) and (not len(ends) or ends[-1] != len(raw) - 1):
            raise ProtoError(f"packed varint field {number} ends inside a varint")
        for lo in range(0, len(ends), chunk):
            stop = ends[lo : lo + chunk]
            start = np.empty_like(stop)
            start[0] = ends[lo - 1] + 1 if lo else 0
            start[1:] = stop[:-1] + 1
            width = stop - start + 1
            if width.size and int(width.max()) > 10:
                raise ProtoError(f"overlong varint in field {number}")
            out = np.zeros(len(stop), np.uint64)
            for k in range(int(width.max()) if width.size else 0):
                live = width > k
                byte = raw[start[live] + k].astype(np.uint64) & np.uint64(0x7F)
                out[live] |= byte << np.uint64(7 * k)
            parts.append(out)
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def fixed_array(fields: Fields, number: int, dtype: str) -> np.ndarray:
    """A ``repeated float``/``double`` field as an array (packed runs read in place)."""
    size = np.dtype(dtype).itemsize
    parts: list[np.ndarray] = []
    for v in fields.get(number, ()):
        if isinstance(v, memoryview):
            if len(v) % size:
                raise ProtoError(f"packed field {number} has {len(v)} bytes")
            parts.append(np.frombuffer(v, dtype))
        else:
            parts.append(np.frombuffer(v.to_bytes(size, "little"), dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype)
