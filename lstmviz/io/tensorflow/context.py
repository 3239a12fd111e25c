"""What around a TF1 cell changes TensorFlow's numbers, read from the ``.meta`` graph.

lstmviz runs the bare cell from zero state over every step. Three common graph features make
TensorFlow compute something else, and none of them is in the checkpoint:

* ``ResidualWrapper`` (tf_keras ``legacy_rnn/rnn_cell_wrapper_impl.py``): the wrapper returns
  ``inputs + cell(inputs)``; the graph shows an ``Add``/``AddV2`` of the cell's input (the
  first value of the ``concat`` feeding the kernel ``MatMul``) and an op of the cell's own
  scope. Its zero state is named ``…/ResidualWrapperZeroState/…``.
* ``sequence_length`` (``rnn.py``): ``dynamic_rnn``/``static_rnn`` name it
  ``<scope>/sequence_length`` (an ``Identity``); past each length TF outputs zeros and copies
  the state through; ``bidirectional_dynamic_rnn`` reverses only the first length steps.
* ``initial_state``: without it ``dynamic_rnn`` feeds ``cell.zero_state`` (nodes named
  ``…ZeroState/zeros``). The c/h that reach the cell's first step are followed back through
  ``Identity``/``Enter``/``Merge`` (control flow v1) or the ``While`` arguments (v2); a
  placeholder, a variable, a non-zero ``Const`` or any tensor from outside the RNN's scope
  means the graph feeds its own state; ``tf1_states`` reads its value where the files hold it
  (a ``PlaceholderWithDefault``'s ``Const``, a ``Const``, a checkpoint variable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lstmviz.io.tensorflow.nodes import MAX_WALK, PASS_OPS, VAR_OPS, Graph, Node, canonical
from lstmviz.io.tensorflow.states import const_array, state_source

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.graph import CellGraph, GraphInfo
    from lstmviz.io.tensorflow.scopes import Cell
    from lstmviz.io.tensorflow.states import States

ADD_OPS = frozenset({"Add", "AddV2"})
_CONCAT_OPS = frozenset({"ConcatV2", "Concat"})
_ZERO_OPS = frozenset({"Fill", "ZerosLike", "Zeros", "Const"})
_BLOCK_OPS = frozenset({"LSTMBlockCell", "BlockLSTM"})  # static steps name them at the top
_FEED_OPS = frozenset({"Placeholder", "PlaceholderWithDefault"}) | VAR_OPS

RESIDUAL_NOTE = (
    "ResidualWrapper: TF adds the cell's input to its output; lstmviz runs the bare cell, so "
    "this layer's outputs (and the layers after it) differ from TF's"
)
SEQ_LEN_NOTE = (
    "TF stops each sequence at sequence_length: outputs after it are zero in TF; lstmviz runs "
    "every step"
)
SEQ_LEN_BW_NOTE = (
    "; this backward direction reads only the first sequence_length steps, reversed, so all "
    "its outputs differ from TF's unless x is cut to that length"
)
STATE_NOTE = (
    "the graph feeds its own initial state ({}); lstmviz starts from zeros — pass h0/c0 to "
    "lstmviz.run or set them in the debugger's h0/c0 tab"
)
STATE_DEFAULT_NOTE = (
    "the graph's default initial state (from {}) is used; a different fed value would change "
    "the outputs"
)
STATE_READ_NOTE = "the graph's initial state is read from {}; lstmviz.run starts from it"


def scan_cell(graph: Graph, cell: CellGraph, matmul: Node, split: Node, var: str) -> None:
    """Residual add and initial state of the cell whose kernel ``MatMul`` is ``matmul``."""
    found = graph.resolve(matmul.inputs[0])
    if found is None or found[1].op not in _CONCAT_OPS:
        return
    concat = found[1]
    values = concat.inputs[1:] if concat.op == "Concat" else concat.inputs[:-1]
    if len(values) != 2:
        return
    x_ref, h_ref = values
    prefix = split.name.rpartition("/")[0] + "/"
    if _residual(found[0], x_ref, prefix):
        cell.residual = True
    root = var.split("/")[0]
    c_ref = _c_prev(graph, split)
    for ref, g, key in ((h_ref, found[0], "h"), (c_ref, graph, "c")):
        _add_source(cell, initial_node(g, ref, root) if ref else None, key)


def scan_block(graph: Graph, cell: CellGraph, node: Node, var: str) -> None:
    """The same for the fused ops: cs_prev/h_prev are inputs 1, 2 (LSTMBlockCell), 2, 3."""
    first = 1 if node.op == "LSTMBlockCell" else 2
    for ref, key in zip(node.inputs[first : first + 2], "ch", strict=False):
        _add_source(cell, initial_node(graph, ref, var.split("/")[0]), key)


def _add_source(cell: CellGraph, found: tuple[Graph, Node] | None, key: str) -> None:
    """Record the node feeding the first c (``key`` "c") or h, once per distinct node."""
    if found is None:
        return
    source = found[1].name
    known = cell.initial_state.split(", ") if cell.initial_state else []
    if source not in known and len(known) < 4:
        cell.initial_state = ", ".join([*known, source])
    sources = cell.h_sources if key == "h" else cell.c_sources
    if all(s.name != source for s in sources) and len(sources) < 4:
        sources.append(state_source(*found))


def _residual(graph: Graph, x_ref: str, prefix: str) -> bool:
    """An Add of the cell input and an op of the cell's scope (the wrapper's output)."""
    for add, _k in graph.users(x_ref, ADD_OPS):
        for ref in add.inputs:
            if canonical(ref) == canonical(x_ref):
                continue
            found = graph.resolve(ref)
            if found is not None and found[1].name.startswith(prefix):
                return True
    return False


def _c_prev(graph: Graph, split: Node) -> str:
    """c_{t-1}: the other factor of ``sigmoid(f + forget_bias [+ w_f⊙c]) * c``."""
    refs = [f"{split.name}:2"]
    for _ in range(3):
        nxt = []
        for ref in refs:
            for node, _k in graph.users(ref):
                if node.op == "Sigmoid":
                    for mul, k in graph.users(node.name, frozenset({"Mul"})):
                        if len(mul.inputs) == 2:
                            return mul.inputs[1 - k]
                elif node.op in ADD_OPS:
                    nxt.append(node.name)
        refs = nxt
    return ""


def initial_source(graph: Graph, ref: str, root: str) -> str:
    """The tensor that gives the cell its first state, or "" for zeros / the previous step."""
    found = initial_node(graph, ref, root)
    return found[1].name if found else ""


def initial_node(graph: Graph, ref: str, root: str) -> tuple[Graph, Node] | None:
    """The node that gives the cell its first state, or None for zeros / the previous step."""
    found = graph.resolve(ref)
    for _ in range(MAX_WALK):
        if found is None:
            return None
        g, node = found
        if node.op not in PASS_OPS and node.op != "Merge":  # Merge: (Enter, NextIteration)
            break
        found = g.resolve(node.inputs[0]) if node.inputs else None
    else:
        return None
    if node.op in _FEED_OPS:
        return g, node
    inside = node.name.split("/")[0] == root
    if node.op == "Const" and "ZeroState" not in node.name and not g.name and not inside:
        value = const_array(node)  # a constant initial state; zeros are the default anyway
        return (g, node) if value is not None and np.any(value) else None
    if "ZeroState" in node.name or node.op in _ZERO_OPS or node.op in _BLOCK_OPS or g.name:
        return None  # zero state, the fused cell's previous step, or computed inside a loop body
    return None if node.name.split("/")[0] == root else (g, node)


def scope_marks(nodes: list[Node]) -> tuple[frozenset[str], frozenset[str]]:
    """(scopes with a ``sequence_length``, scopes with a ``ResidualWrapperZeroState``)."""
    lengths, residual = set(), set()
    for node in nodes:
        scope, _, last = node.name.rpartition("/")
        if last == "sequence_length" and node.op == "Identity" and scope:
            lengths.add(scope)
        parts = node.name.split("/")
        if "ResidualWrapperZeroState" in parts:
            head = parts[: parts.index("ResidualWrapperZeroState")]
            residual.add("/".join(p for p in head if not p.endswith("ZeroState")))
    return frozenset(lengths), frozenset(residual)


def rnn_scope(cell: Cell) -> str:
    """The scope ``dynamic_rnn`` ran in: ``rnn`` for ``rnn/multi_rnn_cell/cell_1/lstm_cell``."""
    parts = cell.scope.split("/")[:-1]
    if len(parts) >= 2 and parts[-2] == "multi_rnn_cell":
        parts = parts[:-2]
    return "/".join(parts)


def _under(scope: str, root: str) -> bool:
    return scope == root or scope.startswith(root + "/")


def cell_notes(
    cell: Cell, cell_graph: CellGraph | None, graph: GraphInfo | None, states: States | None = None
) -> list[str]:
    """Provenance notes for one direction: what TF does that lstmviz does not."""
    if graph is None:
        return []
    notes = []
    if cell_graph is not None and cell_graph.residual:
        notes.append(RESIDUAL_NOTE)
    root = rnn_scope(cell)
    if root and any(_under(s, root) for s in graph.seq_len_scopes):
        backward = cell.direction == "bw" or cell.backward_stack
        notes.append(SEQ_LEN_NOTE + (SEQ_LEN_BW_NOTE if backward else ""))
    if cell_graph is not None and cell_graph.initial_state:
        notes.extend(_state_notes(cell_graph, states))
    return notes


def _state_notes(cell_graph: CellGraph, states: States | None) -> list[str]:
    """What lstmviz read of the graph's initial state, and what it left at zeros."""
    if states is None or not (states.read or states.unknown):
        return [STATE_NOTE.format(cell_graph.initial_state)]
    notes = []
    if states.defaults:
        notes.append(STATE_DEFAULT_NOTE.format(", ".join(states.defaults)))
    fixed = [r for r in states.read if not r.startswith("the default of ")]
    if fixed:
        notes.append(STATE_READ_NOTE.format(", ".join(fixed)))
    if states.unknown:
        notes.append(STATE_NOTE.format(", ".join(states.unknown)))
    return notes


def unplaced_residuals(cells: list[Cell], graph: GraphInfo | None) -> list[str]:
    """Model notes for ResidualWrappers seen by name but not tied to a cell's ops."""
    if graph is None:
        return []
    out = []
    for scope in sorted(graph.residual_scopes):
        near = [c for c in cells if scope and _under(rnn_scope(c), scope)]
        tied = any(
            graph.cells.get(c.kernel_name) and graph.cells[c.kernel_name].residual for c in near
        )
        if near and not tied:
            out.append(
                f"{scope}: the graph has a ResidualWrapper (TF adds a cell's input to its "
                "output) that lstmviz could not tie to one cell; it runs the bare cells, so "
                "the outputs from that layer on differ from TF's"
            )
    return out
