"""The few ONNX protobuf messages an exported graph needs, encoded by hand.

``onnx`` is a test-only dependency, so the writer is the wire format itself: a field is its
number and wire type as a varint, then a varint (ints) or a length and bytes (strings, nested
messages, packed floats). Field numbers are onnx.proto3's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

FLOAT, INT64 = 1, 7  # TensorProto.DataType
ATTR_FLOAT, ATTR_INT, ATTR_STRING, ATTR_FLOATS, ATTR_INTS, ATTR_STRINGS = 1, 2, 3, 6, 7, 8


def varint(n: int) -> bytes:
    """A protobuf varint; a negative int64 is written as its 64-bit two's complement."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def float32_field(number: int, value: float) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<f", value)


def tensor(name: str, array: np.ndarray) -> bytes:
    """TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian)."""
    arr = np.asarray(array)
    kind = INT64 if arr.dtype.kind in "iu" else FLOAT
    raw = np.ascontiguousarray(arr, dtype="<i8" if kind == INT64 else "<f4").tobytes()
    dims = b"".join(field(1, int(n)) for n in arr.shape)
    return dims + field(2, kind) + field(8, name) + field(9, raw)


def attribute(name: str, value: int | float | str | Sequence[float] | Sequence[str]) -> bytes:
    """AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, strings=9, type=20."""
    out = field(1, name)
    if isinstance(value, bool | int):
        return out + field(3, int(value)) + field(20, ATTR_INT)
    if isinstance(value, float):
        return out + float32_field(2, value) + field(20, ATTR_FLOAT)
    if isinstance(value, str):
        return out + field(4, value) + field(20, ATTR_STRING)
    items = list(value)
    if all(isinstance(v, str) for v in items):
        return out + b"".join(field(9, v) for v in items) + field(20, ATTR_STRINGS)
    if all(isinstance(v, int) for v in items):
        return out + b"".join(field(8, v) for v in items) + field(20, ATTR_INTS)
    packed = struct.pack(f"<{len(items)}f", *items)
    return out + field(7, packed) + field(20, ATTR_FLOATS)


def node(
    op: str, inputs: Iterable[str], outputs: Iterable[str], name: str, **attrs: object
) -> bytes:
    """NodeProto: input=1, output=2, name=3, op_type=4, attribute=5."""
    out = b"".join(field(1, i) for i in inputs) + b"".join(field(2, o) for o in outputs)
    out += field(3, name) + field(4, op)
    return out + b"".join(field(5, attribute(k, v)) for k, v in attrs.items())  # type: ignore[arg-type]


def value_info(name: str, shape: Sequence[int | str]) -> bytes:
    """ValueInfoProto of a float tensor; a str dimension is symbolic (dim_param)."""
    dims = b"".join(
        field(1, field(2, d) if isinstance(d, str) else field(1, int(d))) for d in shape
    )
    tensor_type = field(1, FLOAT) + field(2, dims)
    return field(1, name) + field(2, field(1, tensor_type))


def model(
    nodes: Sequence[bytes],
    initializers: Sequence[bytes],
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    *,
    graph_name: str,
    opset: int,
    doc: str = "",
    producer: str = "lstmviz",
    version: str = "",
) -> bytes:
    """ModelProto (ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7,
    opset_import=8) around GraphProto (node=1, name=2, initializer=5, doc_string=10, input=11,
    output=12)."""
    graph = b"".join(field(1, n) for n in nodes) + field(2, graph_name)
    graph += b"".join(field(5, t) for t in initializers)
    if doc:
        graph += field(10, doc)
    graph += b"".join(field(11, v) for v in inputs) + b"".join(field(12, v) for v in outputs)
    ir_version = 8 if opset <= 17 else 9
    out = field(1, ir_version) + field(2, producer)
    if version:
        out += field(3, version)
    return out + field(7, graph) + field(8, field(1, "") + field(2, opset))
