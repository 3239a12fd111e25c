"""ONNX ``ModelProto`` decoded by field number with ``protowire``: no onnx or protobuf needed.

Only what an LSTM reader uses is decoded (field numbers from onnx/onnx.proto, proto2):
ModelProto {ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8},
GraphProto {node 1, initializer 5, input 11, output 12}, NodeProto {input 1, output 2,
name 3, op_type 4, attribute 5, domain 7}, AttributeProto {name 1, f 2, i 3, s 4, t 5, g 6,
floats 7, ints 8, strings 9, graphs 11, type 20} and TensorProto {dims 1, data_type 2,
float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9, double_data 10, external_data 13,
data_location 14}. Tensors are kept undecoded (``TensorInfo``) until a reader needs one
(``tensors.tensor_array``). Every length was checked by ``protowire``.

Subgraphs (the ``then_branch``/``else_branch`` of ``If``, the ``body`` of ``Loop`` and ``Scan``)
are decoded into ``Graph`` objects that know their enclosing graph, so names resolve from the
enclosing scopes as onnxruntime resolves them. Nesting is bounded (``MAX_GRAPH_DEPTH``) before
anything recurses, and every decoded field costs at most a constant amount of work, so a
hostile file is decoded in time linear in its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstmviz.io.probe import Probe
from lstmviz.io.wire import protowire as pw

#: TensorProto.DataType → (name, little-endian NumPy dtype of raw_data, typed field).
DATA_TYPES: dict[int, tuple[str, str, int]] = {
    1: ("float32", "<f4", 4),
    2: ("uint8", "u1", 5),
    3: ("int8", "i1", 5),
    4: ("uint16", "<u2", 5),
    5: ("int16", "<i2", 5),
    6: ("int32", "<i4", 5),
    7: ("int64", "<i8", 7),
    9: ("bool", "u1", 5),
    10: ("float16", "<f2", 5),  # typed: the 16 bits in int32_data
    11: ("float64", "<f8", 10),
    12: ("uint32", "<u4", 11),
    13: ("uint64", "<u8", 11),
    16: ("bfloat16", "<u2", 5),  # read as its bits, then widened to float32
}
OTHER_TYPES = {
    8: "string",
    14: "complex64",
    15: "complex128",
    17: "float8e4m3fn",
    18: "float8e4m3fnuz",
    19: "float8e5m2",
    20: "float8e5m2fnuz",
    23: "float4e2m1",
}
#: 4-bit integers, two per byte (low nibble first), unpacked to one int8/uint8 each.
NIBBLE_TYPES = {21: ("uint4", "u1"), 22: ("int4", "i1")}
#: Subgraphs nested deeper than this are refused (exporters nest If inside If a few levels deep:
#: silero-vad's model has 6 levels).
MAX_GRAPH_DEPTH = 24
#: ModelProto top-level fields → wire type (1 ir_version ... 7 graph, 8 opset_import ...).
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
#: First byte of a GraphProto: node, name, initializer, doc_string, input, output, value_info.
_GRAPH_TAGS = frozenset(b"\x0a\x12\x2a\x52\x5a\x62\x6a")


@dataclass(frozen=True)
class TensorInfo:
    """One TensorProto, not yet decoded: name, dims, type and its raw fields."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    fields: pw.Fields

    @property
    def dtype_name(self) -> str:
        known = DATA_TYPES.get(self.data_type) or NIBBLE_TYPES.get(self.data_type)
        return known[0] if known else OTHER_TYPES.get(self.data_type, f"type {self.data_type}")


@dataclass(frozen=True)
class Node:
    op_type: str
    name: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]

    def subgraphs(self) -> list[Graph]:
        out: list[Graph] = []
        for value in self.attrs.values():
            if isinstance(value, Graph):
                out.append(value)
            elif isinstance(value, list):
                out.extend(v for v in value if isinstance(v, Graph))
        return out


class GraphTooDeep(pw.ProtoError):
    """Subgraphs nested past ``MAX_GRAPH_DEPTH``."""


@dataclass
class Graph:
    """One graph and its place among the scopes: ``parent`` is the enclosing graph (None for
    the main graph), ``path`` names it for messages (``If_1.then_branch``)."""

    nodes: list[Node]
    initializers: dict[str, TensorInfo]
    inputs: list[str]
    outputs: list[str]
    producers: dict[str, Node] = field(default_factory=dict)
    parent: Graph | None = None
    path: str = ""
    owner_op: str = ""  # the op holding this subgraph: If, Loop, Scan...
    #: Names defined twice in this graph (by two nodes, or by a node and an initializer).
    duplicates: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._inputs = frozenset(self.inputs)
        self.index_nodes()

    def has_input(self, name: str) -> bool:
        return name in self._inputs

    def index_nodes(self) -> None:
        self.producers, self.duplicates = {}, []
        for n in self.nodes:
            for out in n.outputs:
                if not out:
                    continue
                if out in self.producers or out in self.initializers:
                    self.duplicates.append(out)
                self.producers[out] = n

    def producer(self, name: str) -> Node | None:
        """The node defining ``name`` in this graph or an enclosing one (innermost first);
        None for initializers, graph inputs and unknown names."""
        graph: Graph | None = self
        while graph is not None:
            if name in graph.initializers:
                return None
            if (node := graph.producers.get(name)) is not None:
                return node
            if graph.parent is not None and graph.has_input(name):
                return None  # a Loop/Scan body input shadows the enclosing scopes
            graph = graph.parent
        return None

    def subgraphs(self) -> list[Graph]:
        """The graphs directly nested in this one's nodes, in file order."""
        return [g for n in self.nodes for g in n.subgraphs()]


def walk(root: Graph) -> list[Graph]:
    """Every graph, the main one first, then depth-first; iterative (depth was bounded when
    the file was decoded)."""
    out, todo = [], [root]
    while todo:
        graph = todo.pop()
        out.append(graph)
        todo.extend(reversed(graph.subgraphs()))
    return out


@dataclass(frozen=True)
class Model:
    ir_version: int
    producer: str
    opset: int
    graph: Graph


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_counted(raw: memoryview, what: str, free: int = 0) -> pw.Fields:
    """``pw.parse`` refusing more than ``MAX_ATTRIBUTE_VALUES`` values stored one field each
    (every one becomes a Python int; ONNX packs tensor data, and attribute lists are short).
    Field ``free`` (a tensor's dims, unpacked in ONNX) is bounded by ``MAX_DIMS_FIELDS``."""
    fields: pw.Fields = {}
    unpacked = dims = 0
    for number, wire, value in pw.iter_fields(raw):
        if number == free:
            dims += 1
            if dims > MAX_DIMS_FIELDS:
                raise pw.ProtoError(f"{what} declares over {MAX_DIMS_FIELDS} dims")
        elif wire != pw.LEN:
            unpacked += 1
            if unpacked > MAX_ATTRIBUTE_VALUES:
                raise pw.ProtoError(f"{what} holds over {MAX_ATTRIBUTE_VALUES} values")
        fields.setdefault(number, []).append(value)
    return fields


def tensor_info(raw: memoryview | pw.Fields) -> TensorInfo:
    fields = _parse_counted(raw, "a tensor", free=1) if isinstance(raw, memoryview) else raw
    dims = tuple(_signed(d) for d in pw.get_varints(fields, 1))
    return TensorInfo(pw.get_string(fields, 8), dims, pw.get_int(fields, 2), fields)


#: FLOATS/INTS attributes longer than this stay NumPy arrays: every node's attributes are
#: decoded when the graph is read, and a Constant's 16 million ``value_floats`` as Python
#: floats (and varints decoded one by one) took over 8 s and gigabytes.
SMALL_LIST = 4096
#: Values one attribute may hold as fields of their own (each becomes a Python int while the
#: attribute is read: 16 million ``value_floats`` took over 8 s); real LSTM graphs' lists
#: hold a handful, and large constants are stored as tensors.
MAX_ATTRIBUTE_VALUES = 1 << 16
MAX_DIMS_FIELDS = 1 << 20  # dims past MAX_RANK are refused by name, after reading


def _small_list(values: np.ndarray) -> list | np.ndarray:
    """A Python list for the short lists attributes hold, the array itself for long ones."""
    return values.tolist() if values.size <= SMALL_LIST else values


def _attribute(raw: memoryview, scope: _Scope | None = None) -> tuple[str, Any]:
    """(name, value) of an AttributeProto, by its ``type`` or else by the field present.

    ``scope`` (the enclosing graph and the node's label) lets GRAPH/GRAPHS attributes be
    decoded as subgraphs; without it they are skipped.
    """
    f = _parse_counted(raw, "an attribute")  # ONNX writes FLOATS/INTS one field per value
    name = pw.get_string(f, 1)
    kind = pw.get_int(f, 20)
    if not kind:  # IR < 2 files may omit the type
        kinds = ((1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (10, 11))
        kind = next((k for k, n in kinds if n in f), 0)
    if kind in (5, 10) and scope is not None:
        raws = f.get(6 if kind == 5 else 11, [])
        graphs = [
            _graph(pw.parse(g), scope.parent, f"{scope.label}.{name}", scope.depth + 1, scope.op)
            for g in raws
            if isinstance(g, memoryview)
        ]
        if kind == 5:
            return name, graphs[-1] if graphs else None
        return name, graphs
    if kind == 1:
        v = f.get(2, [0])[-1]
        return name, pw.fixed32_float(v) if isinstance(v, int) else 0.0
    if kind == 2:
        return name, pw.get_signed(f, 3)
    if kind == 3:
        raw_s = pw.get_bytes(f, 4)
        return name, bytes(raw_s) if raw_s is not None else b""
    if kind == 4:
        t = pw.get_bytes(f, 5)
        return name, tensor_info(t if t is not None else memoryview(b""))
    if kind == 6:
        return name, _small_list(pw.fixed_array(f, 7, "<f4"))
    if kind == 7:
        return name, _small_list(pw.varints_array(f, 8).view(np.int64))
    if kind == 8:
        return name, [bytes(v) for v in f.get(9, []) if isinstance(v, memoryview)]
    return name, None  # graphs, sparse tensors, types: not used by an LSTM


@dataclass(frozen=True)
class _Scope:
    parent: Graph
    label: str
    depth: int
    op: str


def _text(raw: memoryview) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _node(raw: memoryview, graph: Graph | None = None, index: int = 0, depth: int = 0) -> Node:
    """One NodeProto, read in a single pass over its fields (a graph may hold 100,000)."""
    inputs: list[str] = []
    outputs: list[str] = []
    attributes: list[memoryview] = []
    op_type = name = domain = ""
    for number, _wire, value in pw.iter_fields(raw):
        if not isinstance(value, memoryview):
            continue
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 3:
            name = _text(value)
        elif number == 4:
            op_type = _text(value)
        elif number == 5:
            attributes.append(value)
        elif number == 7:
            domain = _text(value)
    scope = None
    if graph is not None and attributes:
        label = name or f"{op_type} node {index}"
        scope = _Scope(graph, f"{graph.path}/{label}" if graph.path else label, depth, op_type)
    return Node(
        op_type=op_type,
        name=name,
        domain=domain,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        attrs=dict(_attribute(a, scope) for a in attributes),
    )


def _value_names(f: pw.Fields, number: int) -> list[str]:
    return [pw.get_string(pw.parse(v), 1) for v in f.get(number, []) if isinstance(v, memoryview)]


def _graph(g: pw.Fields, parent: Graph | None, path: str, depth: int, owner: str = "") -> Graph:
    """A GraphProto with its nodes (and their subgraphs) decoded; ``depth`` 0 is the main one.

    Initializers with the same name: the last one is kept, as onnxruntime does (it warns).
    """
    if depth > MAX_GRAPH_DEPTH:
        raise GraphTooDeep(f"subgraphs nested more than {MAX_GRAPH_DEPTH} deep")
    inits = [tensor_info(t) for t in g.get(5, []) if isinstance(t, memoryview)]
    graph = Graph(
        nodes=[],
        initializers={t.name: t for t in inits},
        inputs=_value_names(g, 11),
        outputs=_value_names(g, 12),
        parent=parent,
        path=path,
        owner_op=owner,
    )
    raws = [n for n in g.get(1, []) if isinstance(n, memoryview)]
    graph.nodes = [_node(n, graph, k, depth) for k, n in enumerate(raws)]
    graph.index_nodes()
    return graph


def parse_model(data: bytes) -> Model:
    """The graph of a ModelProto; raises ``protowire.ProtoError`` for malformed bytes
    (``GraphTooDeep`` for subgraphs nested past ``MAX_GRAPH_DEPTH``)."""
    top = pw.parse(data)
    if 7 not in top:
        raise pw.ProtoError("no graph")
    graph = _graph(pw.get_message(top, 7), None, "", 0)
    opsets = [pw.parse(o) for o in top.get(8, []) if isinstance(o, memoryview)]
    default = [pw.get_int(o, 2) for o in opsets if pw.get_string(o, 1) in ("", "ai.onnx")]
    producer = f"{pw.get_string(top, 2)} {pw.get_string(top, 3)}".strip()
    return Model(pw.get_int(top, 1), producer, default[0] if default else 0, graph)


def quote(text: str, limit: int = 80) -> str:
    """A name from the file, quoted for a message: printable, one line, at most ``limit``
    characters (the middle elided), so no file can make a long or multi-line message."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    if len(clean) > limit:
        clean = f"{clean[: limit // 2]}...{clean[-(limit // 2) :]}"
    return repr(clean)


def sniff(probe: Probe) -> bool:
    """A ModelProto: ``ir_version`` (tag 0x08) first, then known fields, including a graph."""
    head = probe.head
    if probe.is_dir or probe.is_hdf5 or probe.is_zip or not head.startswith(b"\x08"):
        return False
    pos, seen_graph = 0, False
    try:
        while pos < len(head):
            key, pos = pw.read_varint(head, pos)
            field, wire = key >> 3, key & 7
            if _MODEL_FIELDS.get(field) != wire:
                return False
            value, pos = pw.read_varint(head, pos)
            if field == 1 and not 1 <= value <= 100:
                return False
            if wire == pw.LEN:
                if pos + value > probe.size:  # a truncated ONNX file, if a graph starts here
                    return field == 7 and pos < len(head) and head[pos] in _GRAPH_TAGS
                seen_graph = seen_graph or field == 7
                pos += value
        return seen_graph
    except pw.ProtoError:  # the head ended inside a varint: judge what we saw
        return seen_graph
