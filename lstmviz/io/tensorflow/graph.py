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

import re
from collections import defaultdict
from dataclasses import dataclass, field

from lstmviz.io.tensorflow.context import scan_block, scan_cell, scope_marks
from lstmviz.io.tensorflow.functions import Instances, library
from lstmviz.io.tensorflow.nodes import Graph, Node, attr_float, attr_int, const_scalar, parse_node
from lstmviz.io.tensorflow.states import StateSource
from lstmviz.io.wire import protowire as pw

_ADD_OPS = frozenset({"Add", "AddV2"})
_WHILE_OPS = frozenset({"While", "StatelessWhile", "_While"})
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
#: Op → index of its ``w`` input; defaults of stripped attrs from the op registry.
_BLOCK_OPS = {"LSTMBlockCell": 3, "BlockLSTM": 4}
_BLOCK_DEFAULTS = {"forget_bias": 1.0, "cell_clip": 3.0, "use_peephole": False}
MAX_META_BYTES = 512 << 20
#: Nodes decoded per graph: each costs a few hundred bytes of Python objects and ~10 µs, so
#: this bounds memory and time (a static_rnn over 1,000 steps has about 20,000 forward nodes)
MAX_GRAPH_NODES = 100_000
#: All nodes, gradient ones included (they cost a name comparison each, not an object)
MAX_ALL_NODES = 1_000_000
_GRADIENTS = re.compile(rb"gradients(_\d+)?/")

__all__ = ["ACTIVATION_OPS", "CellGraph", "GraphInfo", "Node", "read_graph"]


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
    residual: bool = False  # a ResidualWrapper adds the cell's input to its output
    initial_state: str = ""  # the graph tensor feeding the first c/h ("" = zeros)
    h_sources: list[StateSource] = field(default_factory=list)  # what feeds the first h
    c_sources: list[StateSource] = field(default_factory=list)  # … and the first c


@dataclass
class GraphInfo:
    tensorflow_version: str
    cells: dict[str, CellGraph]  # kernel variable name → settings
    proj_clips: dict[str, float | None]  # projection kernel variable name → clip (None = none)
    loops: frozenset[str] = frozenset()  # scopes holding a while loop (dynamic_rnn), e.g. "rnn"
    notes: list[str] = field(default_factory=list)  # what was not scanned, for the model notes
    seq_len_scopes: frozenset[str] = frozenset()  # "rnn" for an rnn/sequence_length node
    residual_scopes: frozenset[str] = frozenset()  # scopes of ResidualWrapperZeroState nodes
    top: Graph | None = None  # the top-level nodes, for what follows the cells (the head)
    source: str = ".meta"  # how notes name the graph: ".meta", "saved_model.pb", "the graph"

    def is_dynamic(self, scope: str) -> bool:
        """Whether ``scope`` (or a scope under it) runs a while loop: dynamic_rnn, not static."""
        return any(loop == scope or loop.startswith(scope + "/") for loop in self.loops)


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
            where = f" in function {graph.name}" if graph.name else ""
            cell.forget_bias_node = f"{const.name}{where}" if const is not None else ""
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


def _scan(graph: Graph, cells: dict[str, CellGraph], proj_clips: dict[str, float | None]) -> None:
    """Find every cell (by its kernel variable) whose ops are in ``graph``."""
    for node in graph.nodes.values():
        if node.op == "MatMul" and len(node.inputs) == 2:
            var = graph.variable(node.inputs[1])
            if var is None:
                continue
            if var.endswith(("projection/kernel", "projection/weights")):
                clip = graph.clip_after(node.name)
                if clip is not None or var not in proj_clips:  # gradient MatMuls have no clip
                    proj_clips[var] = clip
                continue
            for bias_add, _k in graph.users(node.name, frozenset({"BiasAdd"} | _ADD_OPS)):
                for split, k in graph.users(bias_add.name, frozenset({"Split"})):
                    if k == 1 and attr_int(split, "num_split") == 4:
                        _scan_split_cell(graph, cells[var], split)
                        scan_cell(graph, cells[var], node, split, var)
        elif node.op in _BLOCK_OPS and len(node.inputs) > _BLOCK_OPS[node.op]:
            var = graph.variable(node.inputs[_BLOCK_OPS[node.op]])
            if var is not None:
                _scan_block_cell(cells[var], node)
                scan_block(graph, cells[var], node, var)


def _scan_block_cell(cell: CellGraph, node: Node) -> None:
    cell.located, cell.op_kind = True, node.op
    fb = attr_float(node, "forget_bias")
    clip = attr_float(node, "cell_clip")
    fb = _BLOCK_DEFAULTS["forget_bias"] if fb is None else fb  # stripped default attr
    clip = _BLOCK_DEFAULTS["cell_clip"] if clip is None else clip
    _record(cell, "forget_bias", fb)
    cell.forget_bias_node = f"{node.name} attr forget_bias"
    _record(cell, "cell_clip", clip if clip > 0 else None)
    _record(cell, "activation", "tanh")  # the fused op hard-codes tanh


def _loop_scope(node: Node) -> str | None:
    """``rnn`` for ``rnn/while/...`` (control flow v1) or a ``rnn/while`` While op (v2)."""
    if "/while/" in node.name:
        return node.name.split("/while/")[0]
    if node.op in _WHILE_OPS and "/" in node.name:
        return node.name.rpartition("/")[0]
    return None


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
    graph_raw = pw.get_bytes(meta, 2)
    if graph_raw is None:
        raise pw.ProtoError("no graph_def (field 2) in the MetaGraphDef")
    return read_graph_def(parse_graph_def(graph_raw), pw.get_string(info, 5))


def _is_gradient(raw: memoryview) -> bool:
    """Whether a NodeDef's name (its first field) is under ``gradients/`` or ``gradients_k/``.

    A training graph's backward pass is most of its nodes (24,000 of 29,000 in a static_rnn
    over 300 steps); it never sets a forward setting, so it is skipped before decoding.
    """
    if len(raw) < 12 or raw[0] != 0x0A or raw[1] >= 0x80:
        return False
    return _GRADIENTS.match(bytes(raw[2 : 2 + min(raw[1], 24)])) is not None


def parse_nodes(graph_def: pw.Fields) -> list[Node]:
    """The nodes of a GraphDef from ``parse_graph_def`` (its gradient nodes already left out)."""
    return [parse_node(raw) for raw in graph_def.get(1, ()) if isinstance(raw, memoryview)]


def parse_graph_def(data: bytes | memoryview) -> pw.Fields:
    """A GraphDef's top-level fields, refused past ``MAX_GRAPH_NODES`` nodes while reading
    (a file of millions of empty nodes must not first become millions of objects); nodes of
    the backward pass (``_is_gradient``) are left out.

    Nodes (field 1, key byte 0x0A) are cut out with their length read inline: this loop runs
    once per node, so the general decoder's per-field overhead would show in big graphs.
    """
    buf = memoryview(data)
    n, pos, count = len(buf), 0, 0
    nodes: list[pw.Value] = []
    out: pw.Fields = {1: nodes}
    while pos < n:
        if buf[pos] == 0x0A and pos + 2 < n and (buf[pos + 1] < 0x80 or buf[pos + 2] < 0x80):
            lo, hi = buf[pos + 1], buf[pos + 2]  # a length under 2^14: one or two bytes
            length, pos = (lo, pos + 2) if lo < 0x80 else ((lo & 0x7F) | hi << 7, pos + 3)
        else:
            key, pos = pw.read_varint(buf, pos)
            number, wire = key >> 3, key & 7
            if number != 1 or wire != pw.LEN:
                value, pos = _other_field(buf, pos, number, wire)
                out.setdefault(number, []).append(value)
                continue
            length, pos = pw.read_varint(buf, pos)
        if pos + length > n:
            raise pw.ProtoError(f"node {count} runs past the end of the graph")
        if buf[pos + 2 : pos + 11] != b"gradients" or not _is_gradient(buf[pos : pos + 26]):
            nodes.append(buf[pos : pos + length])
        pos += length
        count += 1
        if len(nodes) > MAX_GRAPH_NODES or count > MAX_ALL_NODES:
            raise pw.ProtoError(
                f"graph has over {MAX_GRAPH_NODES:,} nodes ({MAX_ALL_NODES:,} with gradients), "
                "more than lstmviz reads"
            )
    return out


def _other_field(buf: memoryview, pos: int, number: int, wire: int) -> tuple[pw.Value, int]:
    """One non-node field of a GraphDef (library, versions): its value and the next position."""
    if number == 0:
        raise pw.ProtoError("field number 0")
    if wire == pw.VARINT:
        return pw.read_varint(buf, pos)
    if wire == pw.LEN:
        length, pos = pw.read_varint(buf, pos)
        if pos + length > len(buf):
            raise pw.ProtoError(f"field {number} runs past the end of the graph")
        return buf[pos : pos + length], pos + length
    width = {pw.FIXED64: 8, pw.FIXED32: 4}.get(wire)
    if width is None or pos + width > len(buf):
        raise pw.ProtoError(f"unsupported or truncated wire type {wire} (field {number})")
    return int.from_bytes(buf[pos : pos + width], "little"), pos + width


def read_graph_def(
    graph_def: pw.Fields,
    version: str = "",
    weights: frozenset[str] = frozenset(),
    nodes: list[Node] | None = None,
) -> GraphInfo:
    """Scan a decoded GraphDef (node = 1, library = 2): the top-level nodes, then every
    function body they call (control flow v2 loops, ``functions``). ``weights`` names the
    ``Const`` nodes that hold weights in a frozen graph; they count as variables. ``nodes``:
    the top-level nodes when the caller has parsed them already."""
    if nodes is None:
        nodes = parse_nodes(graph_def)
    if not nodes or any(not n.name or not n.op for n in nodes):
        raise pw.ProtoError("graph_def has no nodes or nodes without name/op")
    top = Graph(nodes, weights=weights)
    cells: dict[str, CellGraph] = defaultdict(CellGraph)
    proj_clips: dict[str, float | None] = {}
    _scan(top, cells, proj_clips)
    bodies = Instances(top, library(graph_def))
    for body in bodies:
        _scan(body, cells, proj_clips)
    notes = [f"the graph has {bodies.truncated}; the rest was not scanned"]
    loops = frozenset(s for s in map(_loop_scope, nodes) if s)
    lengths, residual = scope_marks(nodes)
    notes = notes if bodies.truncated else []
    return GraphInfo(version, dict(cells), proj_clips, loops, notes, lengths, residual, top)
