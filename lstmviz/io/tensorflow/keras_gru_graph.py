"""Keras GRU layers inside a frozen TensorFlow graph, found by their ops.

tf_keras' ``standard_gru`` / ``GRUCell`` with ``reset_after=True`` (the tf.keras 2 and Keras 3
default) computes, each step, ``x K + b_in`` and ``h R + b_rec`` and splits each into three
(``Split(num_split=3)``, blocks z, r, h); ``z = σ(x_z + h_z)``, ``r = σ(x_r + h_r)``,
``hh = tanh(x_h + r ⊙ h_h)``. The two biases are the rows of one ``[2, 3H]`` variable, taken
apart by an ``Unpack`` outside the loop. The h-side Split is the one whose third output is
multiplied by r; the other reads x. The activations are the ops on the two sums. The layers
join ``keras_graph``'s LSTM cells for ordering, pairing and the head (``KerasCell`` fields).
A ``reset_after=False`` GRU (tf.keras 1 and Keras < 2.3 default) slices its recurrent kernel
instead: ``h R[:, :2H]`` gives z and r, ``(r ⊙ h) R[:, 2H:]`` is added to ``x_h``; it is
matched from the x-side Split and the ``StridedSlice`` of R feeding that second product, with
one ``[3H]`` bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lstmviz.core.activations import Activation
from lstmviz.core.cells import GRU_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import Provenance, Setting, StoredTensor
from lstmviz.io.convert import reorder_gates
from lstmviz.io.tensorflow.graph import ACTIVATION_OPS
from lstmviz.io.tensorflow.keras_graph import KerasCell, _hard_sigmoid, _scope
from lstmviz.io.tensorflow.nodes import MAX_WALK, PASS_OPS, Graph, Node, attr_int

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.assemble import Request
    from lstmviz.io.tensorflow.graphdef import ConstBundle

_ADD = frozenset({"Add", "AddV2"})


@dataclass
class KerasGRUCell(KerasCell):
    """A Keras GRU step: ``bias`` is the ``[2, 3H]`` variable (rows: input, recurrent)."""

    kind: str = "GRU"
    reset_after: bool = True


def _side(graph: Graph, split: Node) -> tuple[str, str | None, Node] | None:
    """(weight variable, bias variable row ref or None, MatMul) of ``split``'s input:
    ``MatMul(a, W)`` or ``BiasAdd/Add(MatMul(a, W), b)`` with ``b`` a row of an Unpack."""
    found = graph.resolve(split.inputs[1]) if len(split.inputs) == 2 else None
    if found is None:
        return None
    g, node = found
    bias = None
    if node.op in ("BiasAdd", *_ADD) and len(node.inputs) == 2:
        bias = node.inputs[1]
        found = g.resolve(node.inputs[0])
        if found is None:
            return None
        g, node = found
    if node.op != "MatMul" or len(node.inputs) != 2:
        return None
    weight = g.variable(node.inputs[1])
    return (weight, bias, node) if weight is not None else None


def _recurrent_shaped(bundle: ConstBundle, weight: str) -> bool:
    """``[H, 3H]``: checked before anything costlier (a graph may hold 10,000s of Splits)."""
    entry = bundle.entries.get(weight)
    shape = entry.shape if entry is not None else ()
    return len(shape) == 2 and shape[0] > 0 and shape[1] == 3 * shape[0]


def _bias_row(graph: Graph, ref: str) -> tuple[str, int] | None:
    """(variable, row) of a bias read as ``Unpack(variable):row`` through reads/arguments."""
    found = graph.resolve(ref)
    row = int(ref.rsplit(":", 1)[1]) if ref.count(":") == 1 and ref[-1].isdigit() else 0
    for _ in range(MAX_WALK):
        if found is None:
            return None
        g, node = found
        if node.op == "Unpack" and node.inputs:
            var = g.variable(node.inputs[0])
            return (var, row) if var is not None else None
        # Merge: a loop-invariant value lowered control flow passes as a loop variable is
        # Merge(Enter(value), NextIteration(itself)); its value is input 0
        if (node.op not in PASS_OPS and node.op != "Merge") or not node.inputs:
            return None
        ref = node.inputs[0]
        row = int(ref.rsplit(":", 1)[1]) if ":" in ref and ref.rsplit(":", 1)[1].isdigit() else 0
        found = g.resolve(ref)
    return None


def _act(graph: Graph, ref: str) -> str | None:
    """The activation op applied to a sum ``ref`` takes part in."""
    for add, _k in graph.users(ref, _ADD):
        for user, _j in graph.users(add.name):
            found = ACTIVATION_OPS.get(user.op) or _hard_sigmoid(graph, user, add.name)
            if found:
                return found
    return None


def _partner(graph: Graph, h_split: Node) -> Node | None:
    """The x-side Split added to ``h_split``'s first output (``x_z + h_z``)."""
    for add, _k in graph.users(h_split.name, _ADD):
        for ref in add.inputs:
            found = graph.resolve(ref)
            if found is None or found[1] is h_split:
                continue
            node = found[1]
            if node.op == "Split" and attr_int(node, "num_split") == 3 and found[0] is graph:
                return node
    return None


def _sliced_recurrent(graph: Graph, x_split: Node, bundle: ConstBundle, H: int) -> str | None:
    """reset_after=False: the variable R ``[H, 3H]`` whose column slice multiplies ``r ⊙ h``
    in the product added to ``x_split``'s third output."""
    ref = f"{x_split.name}:2"
    for add, _k in graph.users(ref, _ADD):
        for other in add.inputs:
            found = graph.resolve(other)
            if found is None or found[1].op != "MatMul" or len(found[1].inputs) != 2:
                continue
            g, mat = found
            sliced = g.resolve(mat.inputs[1])
            if sliced is None or sliced[1].op != "StridedSlice" or not sliced[1].inputs:
                continue
            var = sliced[0].variable(sliced[1].inputs[0])
            entry = bundle.entries.get(var) if var is not None else None
            if entry is not None and tuple(entry.shape) == (H, 3 * H):
                return var
    return None


def _found(
    graph: Graph,
    x_split: Node,
    x_mat: Node,
    kernel: str,
    recurrent: str,
    bias: str | None,
    reset_after: bool,
) -> KerasGRUCell:
    """The cell both step patterns found: the x-side Split's outputs z, r, n carry the
    recurrent activation (output 0) and the candidate's (output 2) in either reset mode."""
    x = x_split.name
    return KerasGRUCell(
        scope=_scope(x, kernel),
        kernel=kernel,
        recurrent=recurrent,
        bias=bias,
        split=x_split,
        x_ref=x_mat.inputs[0],
        activation=_act(graph, f"{x}:2"),
        recurrent_activation=_act(graph, x),
        graph=graph,
        reset_after=reset_after,
    )


def _before_cell(graph: Graph, bundle: ConstBundle, x_split: Node) -> KerasGRUCell | None:
    """A reset_after=False step read from its x-side Split (module docstring)."""
    side = _side(graph, x_split)
    if side is None:
        return None
    kernel, b_ref, x_mat = side
    entry = bundle.entries.get(kernel)
    shape = tuple(entry.shape) if entry is not None else ()
    if len(shape) != 2 or shape[1] == 0 or shape[1] % 3:
        return None
    H = shape[1] // 3
    if attr_int(x_split, "num_split") != 3 or attr_int(x_mat, "transpose_b"):
        return None
    recurrent = _sliced_recurrent(graph, x_split, bundle, H)
    if recurrent is None:
        return None
    bias = graph.variable(b_ref) if b_ref is not None else None
    if b_ref is not None and (bias is None or tuple(bundle.entries[bias].shape) != (3 * H,)):
        return None
    return _found(graph, x_split, x_mat, kernel, recurrent, bias, reset_after=False)


def find_cells(graph: Graph, bundle: ConstBundle) -> list[KerasGRUCell]:
    """Every reset-after Keras GRU step of ``graph``: a 3-way Split of ``h R`` whose third
    output r multiplies, added to a 3-way Split of ``x K`` (one pass over the nodes)."""
    out = []
    for h_split in list(graph.nodes.values()):
        if h_split.op != "Split":
            continue
        h_side = _side(graph, h_split)  # dictionary look-ups only, then the weight's shape
        if h_side is None or not _recurrent_shaped(bundle, h_side[0]):
            continue
        if attr_int(h_split, "num_split") != 3 or attr_int(h_side[2], "transpose_b"):
            continue
        if not graph.users(f"{h_split.name}:2", frozenset({"Mul"})):
            continue
        x_split = _partner(graph, h_split)
        x_side = _side(graph, x_split) if x_split is not None else None
        if x_split is None or x_side is None or attr_int(x_side[2], "transpose_b"):
            continue
        cell = _cell(graph, bundle, x_split, h_split, x_side, h_side)
        if cell is not None:
            out.append(cell)
    taken = {id(c.split) for c in out}
    for node in list(graph.nodes.values()):  # reset_after=False: from the x-side Split
        if node.op == "Split" and id(node) not in taken:
            cell = _before_cell(graph, bundle, node)
            if cell is not None:
                out.append(cell)
    return out


def _cell(
    graph: Graph,
    bundle: ConstBundle,
    x_split: Node,
    h_split: Node,
    x_side: tuple[str, str | None, Node],
    h_side: tuple[str, str | None, Node],
) -> KerasGRUCell | None:
    (kernel, b_in, x_mat), (recurrent, b_rec, _h_mat) = x_side, h_side
    k_shape = bundle.entries[kernel].shape if kernel in bundle.entries else ()
    r_shape = bundle.entries[recurrent].shape if recurrent in bundle.entries else ()
    if len(k_shape) != 2 or len(r_shape) != 2 or k_shape[1] != r_shape[1] or r_shape[1] % 3:
        return None
    H = r_shape[1] // 3
    if r_shape[0] != H:
        return None
    bias = None
    if b_in is not None and b_rec is not None:
        rows = _bias_row(graph, b_in), _bias_row(graph, b_rec)
        if None in rows or rows[0][0] != rows[1][0] or (rows[0][1], rows[1][1]) != (0, 1):  # type: ignore[index]
            return None
        bias = rows[0][0]  # type: ignore[index]
        if bundle.entries[bias].shape != (2, 3 * H):
            return None
    elif (b_in, b_rec) != (None, None):
        return None
    return _found(graph, x_split, x_mat, kernel, recurrent, bias, reset_after=True)


def direction(bundle: ConstBundle, cell: KerasGRUCell, req: Request, reverse: bool) -> GRUDirection:
    """The canonical reset-after GRU of one matched step (Keras z, r, h → r, z, n)."""
    K, R = bundle.read(cell.kernel), bundle.read(cell.recurrent)
    order = GRU_CELL.stored_order("keras")

    settings = []
    acts = {}
    for key, default in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        user = getattr(req, key)
        found = getattr(cell, key)
        name = user or found or default
        note = (
            "given by the user"
            if user
            else "read from the graph"
            if found
            else (f"the graph's op is not one lstmviz names; Keras default {default}")
        )
        acts[key] = Activation(name)
        settings.append(Setting(key, name, assumed=not (user or found), note=note))
    stored = [
        StoredTensor("W_x", cell.kernel, K.shape, transposed=True),
        StoredTensor("W_h", cell.recurrent, R.shape, transposed=True),
    ]
    b_x = b_h = None
    if cell.bias and cell.reset_after:
        b = bundle.read(cell.bias)
        b_x, b_h = reorder_gates(b[0], order.perm), reorder_gates(b[1], order.perm)
        stored.append(StoredTensor("b", cell.bias, b.shape))
    elif cell.bias:
        b = bundle.read(cell.bias)
        b_x = reorder_gates(b, order.perm)
        stored.append(StoredTensor("b", cell.bias, b.shape))
    how = "r multiplies h·R + b_rec" if cell.reset_after else "R's n columns multiply r ⊙ h"
    settings.append(Setting("reset_after", cell.reset_after, assumed=False, note=how))
    prov = Provenance(
        framework="Keras GRU (frozen TensorFlow graph)",
        source_format=req.kind,
        gate_order=order.names,
        perm=order.perm,
        stored=tuple(stored),
        transforms=(
            f"kernel {tuple(K.shape)} and recurrent kernel {tuple(R.shape)} transposed",
            "gate blocks reordered z,r,h → r,z,n; bias rows 0/1 → b_x/b_h",
            f"weights found from the gate Splits {cell.split.name}",
        ),
        settings=tuple(settings),
        notes=(f"scope {cell.scope}",),
    )
    return GRUDirection(
        W_x=reorder_gates(K.T, order.perm),
        W_h=reorder_gates(R.T, order.perm),
        b_x=b_x,
        b_h=b_h,
        reset_after=cell.reset_after,
        act_gate=acts["recurrent_activation"],
        act_cand=acts["activation"],
        reverse=reverse,
        provenance=prov,
    )
