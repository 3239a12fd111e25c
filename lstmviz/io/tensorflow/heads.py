"""The head of a TF1 network, read from its graph: ``tf.matmul(outputs[-1], W) + b``.

The classic TF1 network ends in raw variables applied by hand (``weights['out']`` (H, C) and
``biases['out']`` (C,), named ``Variable`` and ``Variable_1`` when created unnamed). The
checkpoint has only their values; the graph has the wiring: a ``MatMul`` whose second input
reads a variable of shape ``(out, C)`` and whose first input comes, through slicing and
reshaping ops, from the last LSTM's scope; then an ``Add``/``AddV2``/``BiasAdd`` of a ``(C,)``
variable. Further ``act(h W + b)`` layers after an activation op are followed too; a final
``Softmax`` is not taken (``trace.final_output`` is the logits). A head that reads one step
(``outputs[-1]``, ``outputs[:, -1]``) makes the layer ``return_sequences=False``, so
``trace.final_output`` is the head on the last step; one behind a ``Reshape`` of the whole
sequence runs at every step. Anything else is left out, with a note when it was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.dense import DenseLayer
from lstmviz.core.model import LayerInfo, LSTMLayer, StoredTensor
from lstmviz.io.tensorflow.context import rnn_scope
from lstmviz.io.tensorflow.graph import ACTIVATION_OPS
from lstmviz.io.tensorflow.nodes import PASS_OPS, Graph, Node, attr_int
from lstmviz.io.tensorflow.states import const_int_values

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.bundle import Bundle
    from lstmviz.io.tensorflow.graph import GraphInfo
    from lstmviz.io.tensorflow.scopes import Cell

_ADD_OPS = frozenset({"Add", "AddV2", "BiasAdd"})
#: Ops between the RNN's outputs and the head's MatMul that keep one step's values as they are
_STEP_OPS = frozenset({"StridedSlice", "Unpack", "GatherV2", "Gather", "Slice", "Squeeze"})
_SEQ_OPS = frozenset({"Reshape", "Transpose", "ConcatV2", "Exit", "TensorListStack"})
_SEQ_OPS |= frozenset({"TensorArrayGatherV3", "Pack"})
MAX_LAYERS = 8
MAX_WALK = 16


@dataclass(frozen=True)
class Head:
    transforms: tuple[DenseLayer, ...]
    return_sequences: bool


def _roots(cells: list[Cell]) -> tuple[str, ...]:
    return tuple(sorted({r + "/" for c in cells for r in (rnn_scope(c), c.stack) if r}))


def _reaches(graph: Graph, ref: str, roots: tuple[str, ...], kernels: set[str]) -> str | None:
    """How the MatMul input ``ref`` comes from the RNN: "step", "sequence" or None."""
    how = ""
    for _ in range(MAX_WALK):
        found = graph.resolve(ref)
        if found is None:
            return None
        node = found[1]
        if node.name.startswith(roots) or any(f"/{r}" in node.name for r in roots):
            if not how and _feeds_next_step(graph, node, kernels):
                return None  # an h of an earlier static_rnn step
            return how or "step"
        if node.op in _STEP_OPS:
            if node.op == "StridedSlice" and not _last_step(graph, node):
                return None
            how = how or "step"
        elif node.op == "Reshape":
            how = how or "sequence"
        elif node.op not in _SEQ_OPS and node.op not in PASS_OPS:
            return None
        if not node.inputs:
            return None
        ref = node.inputs[0]
    return None


def _last_step(graph: Graph, node: Node) -> bool:
    """``x[:, -1]`` or ``x[-1]``: the slice's begin holds -1 on the axis it shrinks."""
    begin = graph.resolve(node.inputs[1]) if len(node.inputs) > 1 else None
    values = const_int_values(begin[1]) if begin is not None else None
    mask = attr_int(node, "shrink_axis_mask") or 0
    if not values or not mask:
        return False
    return all(values[k] == -1 for k in range(len(values)) if mask >> k & 1)


def _feeds_next_step(graph: Graph, node: Node, kernels: set[str]) -> bool:
    """Whether ``node`` (an h) is concatenated into another step's cell input."""
    for concat, _k in graph.users(node.name, frozenset({"ConcatV2", "Concat"})):
        for matmul, _k2 in graph.users(concat.name, frozenset({"MatMul"})):
            if len(matmul.inputs) == 2 and graph.variable(matmul.inputs[1]) in kernels:
                return True
    return False


def _dense_after(
    graph: Graph, matmul: Node, bundle: Bundle, width: int, used: set[str]
) -> tuple[DenseLayer, Node] | None:
    """``h W (+ b)`` at ``matmul``, and the node whose output it is."""
    if attr_int(matmul, "transpose_a") or attr_int(matmul, "transpose_b"):
        return None
    var = graph.variable(matmul.inputs[1])
    entry = bundle.entries.get(var) if var is not None else None
    if entry is None or var in used or len(entry.shape) != 2 or entry.shape[0] != width:
        return None
    C = entry.shape[1]
    bias_name, out = None, matmul
    reshaped = graph.users(matmul.name)
    if len(reshaped) == 1 and reshaped[0][0].op == "Reshape":  # tf.tensordot (Dense on 3-D)
        out = reshaped[0][0]
    for add, k in graph.users(out.name, _ADD_OPS):
        if len(add.inputs) != 2:
            continue
        b = graph.variable(add.inputs[1 - k])
        b_entry = bundle.entries.get(b) if b is not None else None
        if b_entry is not None and b not in used and b_entry.shape == (C,):
            bias_name, out = b, add
            break
    W = np.asarray(bundle.read(var), dtype=np.float32)
    stored = [StoredTensor("W", var, entry.shape, transposed=True, dtype=entry.dtype_name)]
    b_arr = None
    if bias_name is not None:
        b_arr = np.asarray(bundle.read(bias_name), dtype=np.float32)
        be = bundle.entries[bias_name]
        stored.append(StoredTensor("b", bias_name, be.shape, dtype=be.dtype_name))
    kind = "tf.matmul + bias" if bias_name else "tf.matmul"
    layer = DenseLayer(layer_name(var), W.T, b_arr, kind=kind, stored=tuple(stored))
    return layer, out


_OP_PARTS = frozenset({"MatMul", "Tensordot", "Cast", "BiasAdd", "ReadVariableOp", "Read", "read"})


def layer_name(var: str) -> str:
    """The layer a head variable belongs to: ``fc1/kernel`` → ``fc1``, ``Variable`` stays,
    a frozen Keras read ``model/dense/MatMul/ReadVariableOp/resource`` → ``model/dense``."""
    parts = var.split("/")
    for k, part in enumerate(parts[1:], start=1):
        if part in _OP_PARTS:
            return "/".join(parts[:k])
    return var.rpartition("/")[0] or var


def head_infos(head: Head, others: list[LayerInfo]) -> list[LayerInfo]:
    """``others`` with each head layer's variables listed as one entry named like the head
    layer (so the summary and the tree mark it as run), whatever groups they were in."""
    used = {t.name for d in head.transforms for t in d.stored}
    kept = [i for i in others if not any(n in used for n, _s in i.weights)]
    kinds = {frozenset(n for n, _s in i.weights): i.kind for i in others}
    mine = []
    for d in head.transforms:
        names = frozenset(t.name for t in d.stored)
        kind = kinds.get(names, d.kind)  # a tf.layers.dense group stays "Dense"
        mine.append(LayerInfo(d.name, kind, tuple((t.name, tuple(t.shape)) for t in d.stored)))
    return kept + mine


def _activation_after(graph: Graph, node: Node) -> tuple[str, Node] | None:
    users = graph.users(node.name)
    if len(users) == 1 and users[0][0].op in ACTIVATION_OPS:
        return ACTIVATION_OPS[users[0][0].op], users[0][0]
    return None


def find_head(
    graph: GraphInfo,
    bundle: Bundle,
    chosen: list[Cell],
    last: LSTMLayer,
    used: set[str],
    notes: list[str],
) -> Head | None:
    """The dense layers the graph applies to the last TF1 LSTM layer's output, if any."""
    last_cells = [c for c in chosen if c.scope in last.name or c.stack == last.name]
    roots = _roots(last_cells or chosen)
    kernels = {c.kernel for c in chosen}
    if graph.top is None:
        return None
    return head_from(graph.top, bundle, roots, kernels, last.output_size, used, notes)


def head_from(
    top: Graph,
    bundle: Bundle,
    roots: tuple[str, ...],
    kernels: set[str],
    width: int,
    used: set[str],
    notes: list[str],
) -> Head | None:
    """The dense layers in ``top`` fed (through slicing and reshaping) by ops under ``roots``."""
    found: list[tuple[tuple[DenseLayer, ...], str]] = []
    for node in top.nodes.values():
        if node.op != "MatMul" or len(node.inputs) != 2:
            continue
        if top.variable(node.inputs[1]) in used:  # a cell's own product, one per static step
            continue
        how = _reaches(top, node.inputs[0], roots, kernels)
        if how is None:
            continue
        first = _dense_after(top, node, bundle, width, used)
        if first is None:
            continue
        found.append((_chain(top, first, bundle, used), how))
    if len({tuple(d.name for d in chain) for chain, _how in found}) != 1:
        if found:
            notes.append(
                f"the graph applies {len(found)} different dense heads to the recurrent "
                "output (not run; the output shown is the last recurrent layer's)"
            )
        return None
    chain, how = found[0]
    names = " → ".join(f"{d.name} {tuple(d.W.T.shape)}" for d in chain)
    where = "its last step (outputs[-1])" if how == "step" else "every step"
    notes.append(
        f"head read from the graph: {names} applied to {where}; trace.final_output is its "
        "output (the logits, before any softmax)"
    )
    return Head(chain, return_sequences=how != "step")


def _chain(
    top: Graph, first: tuple[DenseLayer, Node], bundle: Bundle, used: set[str]
) -> tuple[DenseLayer, ...]:
    """The first dense layer and those after it behind an activation op."""
    chain, end = [first[0]], first[1]
    while len(chain) < MAX_LAYERS:
        act = _activation_after(top, end)
        if act is None:
            break
        nxt = [m for m, k in top.users(act[1].name, frozenset({"MatMul"})) if k == 0]
        step = _dense_after(top, nxt[0], bundle, chain[-1].W.shape[0], used) if nxt else None
        if step is None:
            break
        chain[-1] = DenseLayer(
            chain[-1].name,
            chain[-1].W,
            chain[-1].b,
            Activation(act[0]),
            kind=chain[-1].kind,
            stored=chain[-1].stored,
        )
        chain.append(step[0])
        end = step[1]
    return tuple(chain)
