"""Keras LSTM layers inside a TensorFlow graph whose weights are constants (a frozen GraphDef).

``convert_variables_to_constants_v2`` names a Keras layer's weights after their reads
(``model/lstm/Read/ReadVariableOp/resource``), so nothing says by name which is the kernel.
The ops do: Keras' LSTM step (tf_keras ``standard_lstm`` / ``LSTMCell`` implementation 2,
Keras 3 ``LSTMCell``) computes ``z = x K + h R (+ b)`` and splits it into four gates i, f, c, o:
a ``Split(num_split=4)`` fed by ``Add``/``AddV2``/``BiasAdd`` of two ``MatMul`` s with
constants ``K (D, 4H)`` and ``R (H, 4H)`` and a constant ``b (4H,)``. The x product comes
first (Keras writes ``dot(x, K) + dot(h, R)``), which tells K from R when D equals H. The op
on ``split:2`` is the activation, the one on ``split:0`` the recurrent activation. Layers are
ordered by data flow; ``forward_*``/``backward_*`` scopes of a ``Bidirectional`` pair up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.graph import ACTIVATION_OPS
from lstmviz.io.tensorflow.heads import head_from, head_infos
from lstmviz.io.tensorflow.keras_order import (
    ancestor_scopes,
    merge_mode,
    natural,
    pair,
    reads_reversed,
)
from lstmviz.io.tensorflow.nodes import PASS_OPS, Graph, Node, attr_int, const_scalar

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.assemble import Request
    from lstmviz.io.tensorflow.graph import GraphInfo
    from lstmviz.io.tensorflow.graphdef import ConstBundle

_SUM_OPS = frozenset({"Add", "AddV2", "BiasAdd"})
#: Keras 3 squeezes the h product it adds (``BiasAdd(x K, Squeeze(h R))``)
_SHAPE_OPS = frozenset({"Squeeze", "ExpandDims", "Reshape"})
_SCOPE_CUT = re.compile(r"/(while|PartitionedCall|StatefulPartitionedCall|rnn)(/|_\d+/|$)")
DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid"}


@dataclass
class KerasCell:
    scope: str
    kernel: str
    recurrent: str
    bias: str | None
    split: Node
    x_ref: str
    activation: str | None
    recurrent_activation: str | None
    graph: Graph | None = None  # where the gate Split is (a function body, for SavedModels)


def _terms(graph: Graph, ref: str, depth: int = 0) -> list[tuple[str, Node | str, Graph]]:
    """The summands of ``ref``: ("matmul", node, its graph), ("const", variable name, …) or
    ("other", ref, …). Each step goes on in the graph the last one resolved in (a loop
    body's argument leads to its caller)."""
    found = graph.resolve(ref)
    if found is None or depth > 4:
        return [("other", ref, graph)]
    g, node = found
    while (node.op in PASS_OPS or node.op in _SHAPE_OPS) and node.inputs:
        if g.variable(node.name) is not None:
            break
        found = g.resolve(node.inputs[0])
        if found is None:
            return [("other", ref, graph)]
        g, node = found
    if node.op in _SUM_OPS and len(node.inputs) == 2:
        return _terms(g, node.inputs[0], depth + 1) + _terms(g, node.inputs[1], depth + 1)
    if node.op == "MatMul" and len(node.inputs) == 2:
        return [("matmul", node, g)]
    var = g.variable(node.name)
    return [("const", var, g)] if var is not None else [("other", node.name, g)]


def _act(graph: Graph, split: Node, k: int) -> str | None:
    """The activation applied to gate ``k``: one op, or Keras' hard_sigmoid written out."""
    ref = f"{split.name}:{k}" if k else split.name
    found = {ACTIVATION_OPS.get(n.op) or _hard_sigmoid(graph, n, ref) for n, _i in graph.users(ref)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def _scalar_with(graph: Graph, node: Node, ref: str) -> float | None:
    const = graph.other_const(node, ref)
    return const_scalar(const) if const is not None else None


def _hard_sigmoid(graph: Graph, node: Node, ref: str) -> str | None:
    """tf_keras: ``clip(x * 0.2 + 0.5, 0, 1)`` (Mul, AddV2); Keras 3: ``relu6(x + 3) / 6``."""
    if node.op == "Mul" and _close(_scalar_with(graph, node, ref), 0.2):
        for add, _k in graph.users(node.name, frozenset({"Add", "AddV2"})):
            if _close(_scalar_with(graph, add, node.name), 0.5):
                return "hard_sigmoid_k2"
    plus_three = node.op in ("Add", "AddV2") and _close(_scalar_with(graph, node, ref), 3.0)
    if plus_three and graph.users(node.name, frozenset({"Relu6"})):
        return "hard_sigmoid_k3"
    return None


def _close(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) < 1e-6


def _cell(graph: Graph, split: Node, bundle: ConstBundle) -> KerasCell | None:
    if attr_int(split, "num_split") != 4 or len(split.inputs) != 2:
        return None
    terms = _terms(graph, split.inputs[1])
    mats = [(t[1], t[2]) for t in terms if t[0] == "matmul"]
    consts = [t[1] for t in terms if t[0] == "const"]
    if len(mats) != 2 or len(consts) > 1 or len(terms) != 2 + len(consts):
        return None
    weights = [g.variable(m.inputs[1]) for m, g in mats]  # type: ignore[union-attr]
    shapes = [bundle.entries[w].shape if w in bundle.entries else () for w in weights]
    if any(len(s) != 2 for s in shapes) or shapes[0][1] != shapes[1][1] or shapes[0][1] % 4:
        return None
    H = shapes[0][1] // 4
    order = [0, 1]
    if shapes[0][0] == H and shapes[1][0] != H:
        order = [1, 0]  # written h R + x K
    k, r = order
    if shapes[r][0] != H or any(attr_int(m, "transpose_b") for m, _g in mats):  # type: ignore[arg-type]
        return None
    bias = consts[0] if consts else None
    if bias is not None and bundle.entries[bias].shape != (4 * H,):
        return None
    scope = _scope(split.name, weights[k])
    return KerasCell(
        scope,
        weights[k],
        weights[r],
        bias,
        split,
        mats[k][0].inputs[0],  # type: ignore[union-attr]
        _act(graph, split, 2),
        _act(graph, split, 0),
        mats[k][1],
    )


def _scope(split: str, kernel: str) -> str:
    """The layer's scope: from the Split's name (``model/lstm/while/…/split``), or inside a
    SavedModel function, whose node names are local (``while/split``), from its kernel's
    variable name (``bidirectional/forward_lstm/lstm_cell/kernel``)."""
    if _SCOPE_CUT.search(split):
        return _SCOPE_CUT.split(split, maxsplit=1)[0]
    if "/" in split and not split.startswith("while/"):
        return split.rpartition("/")[0]
    parts = kernel.split("/")[:-1]  # drop "kernel"
    if parts and "cell" in parts[-1]:
        parts = parts[:-1]
    return "/".join(parts)


def _setting(cell: KerasCell, key: str, user: str | None) -> tuple[Activation, Setting]:
    found = getattr(cell, key)
    if user is not None:
        return Activation(user), Setting(key, user, assumed=False, note="given by the user")
    if found is not None:
        return Activation(found), Setting(key, found, assumed=False, note="read from the graph")
    name = DEFAULTS[key]
    return Activation(name), Setting(
        key,
        name,
        assumed=True,
        note=f"the graph's op is not one lstmviz names; Keras default {name}",
    )


def _direction(bundle: ConstBundle, cell: KerasCell, req: Request, reverse: bool) -> LSTMDirection:
    K = bundle.read(cell.kernel)
    R = bundle.read(cell.recurrent)
    H = R.shape[0]
    b = bundle.read(cell.bias) if cell.bias else np.zeros(4 * H, dtype=K.dtype)
    act, s_act = _setting(cell, "activation", req.activation)
    gate, s_gate = _setting(cell, "recurrent_activation", req.recurrent_activation)
    stored = [
        StoredTensor(
            "W_x",
            cell.kernel,
            K.shape,
            transposed=True,
            dtype=bundle.entries[cell.kernel].dtype_name,
        ),
        StoredTensor(
            "W_h",
            cell.recurrent,
            R.shape,
            transposed=True,
            dtype=bundle.entries[cell.recurrent].dtype_name,
        ),
    ]
    if cell.bias:
        stored.append(
            StoredTensor("b", cell.bias, b.shape, dtype=bundle.entries[cell.bias].dtype_name)
        )
    prov = Provenance(
        framework="Keras LSTM (frozen TensorFlow graph)",
        source_format=req.kind,
        gate_order=("i", "f", "c", "o"),
        perm=(0, 1, 2, 3),
        stored=tuple(stored),
        transforms=(
            f"kernel {tuple(K.shape)} and recurrent kernel {tuple(R.shape)} transposed",
            f"weights found from the gate Split {cell.split.name}",
        ),
        settings=(s_act, s_gate),
        notes=(f"scope {cell.scope}",),
    )
    return LSTMDirection(
        W_x=K.T,
        W_h=R.T,
        b=b,
        act_gate=gate,
        act_cand=act,
        act_cell=act,
        reverse=reverse,
        provenance=prov,
    )


def load_keras_graph(bundle: ConstBundle, graph: GraphInfo, req: Request) -> LSTMModel | None:
    """The Keras LSTM chain of a graph (a frozen one, or a TF1 ``.meta`` whose variables the
    checkpoint holds), or None when it has no Keras LSTM step."""
    if graph.top is None:
        return None
    return keras_layers_in([graph.top], graph.top, bundle, req)


def keras_layers_in(
    graphs: list[Graph], head_graph: Graph, bundle: ConstBundle, req: Request
) -> LSTMModel | None:
    """The Keras LSTM chain whose gate Splits are in ``graphs`` (the top graph, or function
    bodies), with the Dense head found in ``head_graph``; None without a Keras LSTM step."""
    from lstmviz.io.tensorflow import keras_gru_graph  # imports this module

    found = [
        c
        for g in graphs
        for n in list(g.nodes.values())
        if n.op == "Split"
        if (c := _cell(g, n, bundle))
    ]
    found += [c for g in graphs for c in keras_gru_graph.find_cells(g, bundle)]  # Keras GRUs
    if not found:
        return None
    # Keras' rnn() in a TF1 graph also calls the cell once outside its loop (to learn the
    # output shape): one layer per set of weights, named by its shortest scope
    by_weights: dict[tuple[str, str, str | None], KerasCell] = {}
    for c in sorted(found, key=lambda c: (len(c.scope), c.scope)):
        by_weights.setdefault((c.kernel, c.recurrent, c.bias), c)
    cells = list(by_weights.values())
    scopes = sorted({c.scope for c in cells})
    if len(scopes) != len(cells):
        raise LoadError(f"{req.file}: several Keras LSTM steps share a scope ({', '.join(scopes)})")
    before = {
        c.scope: len(ancestor_scopes(c.graph or head_graph, c.x_ref, scopes) - {c.scope})
        for c in cells
    }
    cells.sort(key=lambda c: (before[c.scope], natural(c.scope)))
    notes = list(req.notes)
    layers = []
    for group in pair(cells):
        backwards = [reads_reversed(c, head_graph) for c in group]
        if len(group) == 2 and backwards != [False, True]:
            notes.append(
                f"{group[0].scope.rpartition('/')[0]}: the backward layer's reversal was not "
                "found in the graph; Keras' Bidirectional reverses it"
            )
            backwards = [False, True]
        pairs = zip(group, backwards, strict=True)
        cell_kind = getattr(group[0], "kind", "LSTM")  # GRU: keras_gru_graph
        build = keras_gru_graph.direction if cell_kind == "GRU" else _direction
        dirs = tuple(build(bundle, c, req, back) for c, back in pairs)  # type: ignore[arg-type]
        if len(group) == 1:
            order = OutputOrder.PROCESSING if backwards[0] else OutputOrder.TIME
            layers.append(LSTMLayer(group[0].scope, dirs, output_order=order, kind=cell_kind))
            continue
        name = group[0].scope.rpartition("/")[0]
        merge = next((m for g in graphs if (m := merge_mode(g, name)) is not None), None)
        if merge is None:
            merge = MergeMode.CONCAT
            notes.append(f"{name}: no Bidirectional merge op found in the graph: concat assumed")
        kind = f"Bidirectional({cell_kind})"
        layers.append(LSTMLayer(name=name, directions=dirs, merge_mode=merge, kind=kind))
    last = [c for c in cells if c.scope.startswith(layers[-1].name)]
    roots = tuple(f"{pre}{c.scope}/" for c in last for pre in ("", "Func/"))
    used = {n for c in cells for n in (c.kernel, c.recurrent, c.bias) if n}
    head = head_from(head_graph, bundle, roots, set(), layers[-1].output_size, used, notes)
    if head is not None and not head.return_sequences:
        layers[-1] = replace(layers[-1], return_sequences=False)
    infos = tuple(
        LayerInfo(
            c.scope,
            getattr(c, "kind", "LSTM"),
            tuple((n, bundle.entries[n].shape) for n in (c.kernel, c.recurrent, c.bias) if n),
            is_lstm=True,
        )
        for c in cells
    )
    try:
        return LSTMModel(
            layers=tuple(layers),
            source_path=req.path,
            source_format=f"{req.kind} (Keras layers, {req.parts}{req.graph_label})",
            framework="Keras (TensorFlow graph)",
            all_layers=tuple(head_infos(head, list(infos))) if head is not None else infos,
            head=head.transforms if head is not None else (),
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{req.file}: the Keras LSTM layers do not chain: {exc}") from exc
