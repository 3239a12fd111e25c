"""Recover TF1 cell settings that live only in the graph (``.meta``), never in the checkpoint.

``forget_bias``, ``cell_clip``, ``proj_clip`` and ``activation`` are Python arguments of
``BasicLSTMCell``/``LSTMCell``; TensorFlow bakes them into graph constants. The cell's ops are
found from its kernel variable: ``MatMul(concat, kernel) → BiasAdd → Split(4)`` gives
``i, j, f, o`` (outputs 0..3). Then (tf_keras ``legacy_cells.py``, ``rnn_cell_impl.py``):

* forget_bias: the scalar ``Const`` that an ``Add``/``AddV2`` adds to ``split:2``;
* activation: the op applied to ``split:1`` (``Tanh`` by default; none at all = linear);
* cell_clip: ``clip_by_value`` = ``Minimum(c, Const)`` then ``Maximum``, right after the
  ``Add`` that forms c (reached from ``act(j)`` through ``Mul`` and ``Add``);
* proj_clip: the same pattern right after the ``MatMul`` with ``projection/kernel``.

``LSTMBlockCell``/``BlockLSTM`` ops carry ``forget_bias`` and ``cell_clip`` as attributes.
Variable reads are followed back through ``Identity``/``Enter``/``ReadVariableOp`` to the
``VariableV2``/``VarHandleOp`` node, whose name is the checkpoint key. A setting found with
several different values (e.g. two graphs sharing variables) is left unresolved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lstmviz.io import protowire as pw

_VAR_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
_PASS_OPS = frozenset(
    {"Identity", "Enter", "RefEnter", "ReadVariableOp", "Switch", "RefSwitch", "Snapshot"}
)
_ADD_OPS = frozenset({"Add", "AddV2"})
ACTIVATION_OPS = {
    "Tanh": "tanh",
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Selu": "selu",
    "Softsign": "softsign",
    "Softplus": "softplus",
    "Sigmoid": "sigmoid",
}
#: Op → (index of its ``w`` input, default forget_bias, default cell_clip) from the op registry.
_BLOCK_OPS = {"LSTMBlockCell": 3, "BlockLSTM": 4}
_BLOCK_DEFAULTS = {"forget_bias": 1.0, "cell_clip": 3.0, "use_peephole": False}
MAX_META_BYTES = 512 << 20


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]  # data inputs only ("name" or "name:k"), control inputs dropped
    attrs: dict[str, memoryview]


@dataclass
class CellGraph:
    """What the graph says about the cell whose kernel variable is the key.

    A field that stays ``None`` was not found; ``cell_clip_found``/``proj_clip_found`` tell a
    "no clip in the graph" (False with the cell located) from "not located".
    """

    located: bool = False
    op_kind: str = ""  # "LSTMBlockCell" when the fused op uses the kernel
    forget_bias: float | None = None
    forget_bias_node: str = ""
    activation: str | None = None
    activation_op: str = ""
    cell_clip: float | None = None
    proj_clip: float | None = None
    conflicts: list[str] = field(default_factory=list)


@dataclass
class GraphInfo:
    tensorflow_version: str
    cells: dict[str, CellGraph]  # kernel variable name → settings
    proj_clips: dict[str, float | None]  # projection kernel variable name → clip (None = none)
    loops: frozenset[str] = frozenset()  # scopes holding a while loop (dynamic_rnn), e.g. "rnn"

    def is_dynamic(self, scope: str) -> bool:
        """Whether ``scope`` (or a scope under it) runs a while loop: dynamic_rnn, not static."""
        return any(loop == scope or loop.startswith(scope + "/") for loop in self.loops)


def _node(raw: memoryview) -> Node:
    f = pw.parse(raw)
    attrs: dict[str, memoryview] = {}
    for entry in f.get(5, ()):
        if isinstance(entry, memoryview):
            e = pw.parse(entry)
            value = pw.get_bytes(e, 2)
            if value is not None:
                attrs[pw.get_string(e, 1)] = value
    inputs = [s for s in pw.get_strings(f, 3) if not s.startswith("^")]
    return Node(pw.get_string(f, 1), pw.get_string(f, 2), inputs, attrs)


def attr_float(node: Node, key: str) -> float | None:
    """``AttrValue.f`` (field 4, fixed32)."""
    raw = node.attrs.get(key)
    if raw is None:
        return None
    values = [v for n, w, v in pw.iter_fields(raw) if n == 4 and w == pw.FIXED32]
    return pw.fixed32_float(values[-1]) if values else None


def attr_int(node: Node, key: str) -> int | None:
    raw = node.attrs.get(key)
    if raw is None:
        return None
    values = [v for n, w, v in pw.iter_fields(raw) if n in (3, 5) and w == pw.VARINT]
    return values[-1] if values else None


def const_scalar(node: Node) -> float | None:
    """The value of a scalar float ``Const`` (TensorProto in ``AttrValue.tensor``, field 8)."""
    if node.op != "Const" or "value" not in node.attrs:
        return None
    tensor = pw.get_message(pw.parse(node.attrs["value"]), 8)
    dtype = pw.get_int(tensor, 1)
    content = pw.get_bytes(tensor, 4)
    values: list[float]
    if dtype == 1:  # FLOAT
        values = pw.get_floats(tensor, 5) or (
            [pw.fixed32_float(int.from_bytes(content, "little"))]
            if content is not None and len(content) == 4
            else []
        )
    elif dtype == 2:  # DOUBLE
        values = pw.get_doubles(tensor, 6)
    else:
        return None
    return float(values[0]) if len(values) == 1 else None


class Graph:
    """A GraphDef's nodes by name and the consumers of each output."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.consumers: dict[str, list[tuple[Node, int]]] = defaultdict(list)
        for n in nodes:
            for k, ref in enumerate(n.inputs):
                self.consumers[_canonical(ref)].append((n, k))

    def node_of(self, ref: str) -> Node | None:
        return self.nodes.get(ref.split(":")[0])

    def users(self, ref: str, ops: frozenset[str] | None = None) -> list[tuple[Node, int]]:
        found = self.consumers.get(_canonical(ref), [])
        return [(n, k) for n, k in found if ops is None or n.op in ops]

    def variable(self, ref: str) -> str | None:
        """The variable node feeding ``ref`` through reads/identities, or None."""
        node = self.node_of(ref)
        for _ in range(32):  # bounded walk
            if node is None:
                return None
            if node.op in _VAR_OPS:
                return node.name
            if node.op not in _PASS_OPS or not node.inputs:
                return None
            node = self.node_of(node.inputs[0])
        return None

    def other_const(self, node: Node, skip: str) -> Node | None:
        for ref in node.inputs:
            if _canonical(ref) != _canonical(skip):
                other = self.node_of(ref)
                if other is not None and other.op == "Const":
                    return other
        return None

    def clip_after(self, ref: str) -> float | None:
        """The bound of a ``clip_by_value`` applied to ``ref``, or None if there is none."""
        for node, _k in self.users(ref, frozenset({"Minimum"})):
            const = self.other_const(node, ref)
            value = const_scalar(const) if const is not None else None
            if value is not None and self.users(node.name, frozenset({"Maximum"})):
                return value
        return None


def _canonical(ref: str) -> str:
    return ref[:-2] if ref.endswith(":0") else ref


def _record(cell: CellGraph, attr: str, value: object) -> None:
    old = getattr(cell, attr)
    if old is not None and old != value:
        cell.conflicts.append(attr)
    setattr(cell, attr, value)


def _scan_split_cell(graph: Graph, cell: CellGraph, split: Node) -> None:
    cell.located = True
    for add, _k in graph.users(f"{split.name}:2", _ADD_OPS):
        const = graph.other_const(add, f"{split.name}:2")
        value = const_scalar(const) if const is not None else None
        if value is not None:
            _record(cell, "forget_bias", value)
            cell.forget_bias_node = const.name if const is not None else ""
    users_j = graph.users(f"{split.name}:1")
    act_ref = f"{split.name}:1"
    for node, _k in users_j:
        if node.op in ACTIVATION_OPS:
            _record(cell, "activation", ACTIVATION_OPS[node.op])
            act_ref = node.name
        elif node.op == "Mul" and len(users_j) == 1:
            _record(cell, "activation", "linear")
        else:
            cell.activation_op = node.op
    for mul, _k in graph.users(act_ref, frozenset({"Mul"})):
        for c_new, _k2 in graph.users(mul.name, _ADD_OPS):
            _record(cell, "cell_clip", graph.clip_after(c_new.name))


def read_graph(data: bytes | memoryview) -> GraphInfo:
    """Decode a MetaGraphDef (field 1 meta_info_def, field 2 graph_def) and scan its cells.

    Raises ``protowire.ProtoError`` for bytes that are not a MetaGraphDef.
    """
    if len(data) > MAX_META_BYTES:
        raise pw.ProtoError(
            f"graph is {len(data)} bytes; lstmviz reads graphs up to {MAX_META_BYTES}"
        )
    meta = pw.parse(data)
    info = pw.get_message(meta, 1)
    version = pw.get_string(info, 5)
    graph_raw = pw.get_bytes(meta, 2)
    if graph_raw is None:
        raise pw.ProtoError("no graph_def (field 2) in the MetaGraphDef")
    nodes = [_node(raw) for raw in pw.parse(graph_raw).get(1, ()) if isinstance(raw, memoryview)]
    if not nodes or any(not n.name or not n.op for n in nodes):
        raise pw.ProtoError("graph_def has no nodes or nodes without name/op")
    graph = Graph(nodes)
    cells: dict[str, CellGraph] = defaultdict(CellGraph)
    proj_clips: dict[str, float | None] = {}
    for node in nodes:
        if node.op == "MatMul" and len(node.inputs) == 2:
            var = graph.variable(node.inputs[1])
            if var is None:
                continue
            if var.endswith(("projection/kernel", "projection/weights")):
                proj_clips[var] = graph.clip_after(node.name)
                continue
            for bias_add, _k in graph.users(node.name, frozenset({"BiasAdd"} | _ADD_OPS)):
                for split, k in graph.users(bias_add.name, frozenset({"Split"})):
                    if k == 1 and attr_int(split, "num_split") == 4:
                        _scan_split_cell(graph, cells[var], split)
        elif node.op in _BLOCK_OPS and len(node.inputs) > _BLOCK_OPS[node.op]:
            var = graph.variable(node.inputs[_BLOCK_OPS[node.op]])
            if var is None:
                continue
            cell = cells[var]
            cell.located, cell.op_kind = True, node.op
            fb = attr_float(node, "forget_bias")
            clip = attr_float(node, "cell_clip")
            fb = _BLOCK_DEFAULTS["forget_bias"] if fb is None else fb  # stripped default attr
            clip = _BLOCK_DEFAULTS["cell_clip"] if clip is None else clip
            _record(cell, "forget_bias", fb)
            cell.forget_bias_node = f"{node.name} attr forget_bias"
            _record(cell, "cell_clip", clip if clip > 0 else None)
            _record(cell, "activation", "tanh")  # the fused op hard-codes tanh
    loops = frozenset(n.name.split("/while/")[0] for n in nodes if "/while/" in n.name)
    return GraphInfo(version, dict(cells), proj_clips, loops)
