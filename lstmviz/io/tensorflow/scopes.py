"""Which checkpoint variables form which TF1 LSTM cell, and where each cell sits in a stack.

A TF1 cell is a scope holding ``kernel [D+H (or D+P), 4H]`` and ``bias [4H]`` (TF <= 1.2:
``weights``/``biases``), optionally ``w_i_diag``/``w_f_diag``/``w_o_diag`` and
``projection/kernel [H, P]`` (CONVENTIONS.md §3.3). A Dense layer with 4H outputs has the
same two arrays, so a scope counts as a cell only when something says so: its name (the
cell classes name their scope ``basic_lstm_cell``, ``lstm_cell``, …), peepholes, the ``.meta``
graph splitting its MatMul into four gates, or the user's ``scope=``. Stacks come from
``multi_rnn_cell/cell_k``, ``bidirectional_rnn/{fw,bw}`` and
``stack_bidirectional_rnn/cell_k/bidirectional_rnn/{fw,bw}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice

from lstmviz.core.model import LayerInfo
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.bundle import Bundle
from lstmviz.io.tensorflow.graph import GraphInfo
from lstmviz.io.tensorflow.objects import Names

KNOWN_CELLS = {
    "basic_lstm_cell": "BasicLSTMCell",
    "lstm_cell": "LSTMCell",
    "cudnn_compatible_lstm_cell": "CudnnCompatibleLSTMCell",
    "lstm_fused_cell": "LSTMBlockFusedCell",
}
KERNELS, BIASES = ("kernel", "weights"), ("bias", "biases")
PEEPHOLES = {"p_i": "w_i_diag", "p_f": "w_f_diag", "p_o": "w_o_diag"}
MAX_LISTED = 40


@dataclass
class Cell:
    """The variables (checkpoint keys) of one TF1 LSTM cell and its place in a stack."""

    scope: str
    kernel: str
    bias: str
    kind: str
    kernel_name: str = ""  # the variable name, as the .meta graph calls it
    peepholes: dict[str, str] = field(default_factory=dict)  # "p_i" → checkpoint key
    projection: str | None = None
    stack: str = ""
    layer: int = 0
    direction: str = ""  # "", "fw" or "bw"
    backward_stack: bool = False  # a layer of the bw MultiRNNCell of a bidirectional RNN
    wrapper: str = ""  # "", "bidirectional_dynamic_rnn", "stack_bidirectional_dynamic_rnn"


@dataclass
class Found:
    """The TF1 cells of a checkpoint, every other variable group, and near-misses."""

    cells: list[Cell]
    others: list[LayerInfo]
    unnamed: list[str]  # kernel + bias [4H] scopes not recognised as cells (for the message)


def _find(names: dict[str, str], scope: str, candidates: tuple[str, ...]) -> str | None:
    """The first ``scope/candidate`` variable name that exists."""
    return next((f"{scope}/{c}" for c in candidates if f"{scope}/{c}" in names), None)


def _fits(bundle: Bundle, kernel: str, bias: str) -> bool:
    k, b = bundle.entries[kernel].shape, bundle.entries[bias].shape
    return len(k) == 2 and len(b) == 1 and b[0] % 4 == 0 and b[0] > 0 and k[1] == b[0]


def _is_cell(
    scope: str, kernel_name: str, peepholes: bool, graph: GraphInfo | None, chosen: str | None
) -> bool:
    cell_name = scope.rsplit("/", 1)[-1]
    located = graph is not None and graph.cells.get(kernel_name) is not None
    picked = chosen is not None and (scope == chosen or scope.startswith(chosen + "/"))
    return cell_name in KNOWN_CELLS or "lstm" in cell_name.lower() or peepholes or located or picked


def find_cells(bundle: Bundle, names: Names, graph: GraphInfo | None, chosen: str | None) -> Found:
    """Split the checkpoint's variables into TF1 LSTM cells and other variable groups."""
    from lstmviz.io.tensorflow.gru import find_cells as find_gru_cells  # imports this module

    by_name = names.by_name
    used: set[str] = set(names.skipped)
    cells: list[Cell] = list(find_gru_cells(by_name, used))  # GRU and plain-RNN cells
    unnamed: list[str] = []
    normed = _normed_scopes(by_name)
    for name in sorted(by_name):
        scope, _, last = name.rpartition("/")
        if last not in KERNELS or name in used or scope.endswith("/projection") or not scope:
            continue
        bias = _find(by_name, scope, BIASES)
        if bias is None or f"{scope}/recurrent_kernel" in by_name:  # Keras cells: tf1_keras
            continue
        peep = {r: f"{scope}/{v}" for r, v in PEEPHOLES.items() if f"{scope}/{v}" in by_name}
        kernel_key, bias_key = by_name[name], by_name[bias]
        if not _is_cell(scope, name, bool(peep), graph, chosen):
            if _fits(bundle, kernel_key, bias_key):
                unnamed.append(scope)
            continue
        _check_cell_shapes(bundle, scope, kernel_key, bias_key)
        _refuse_layer_norm(bundle, normed, scope)
        kind = KNOWN_CELLS.get(scope.rsplit("/", 1)[-1], "LSTM cell")
        cell = Cell(scope, kernel_key, bias_key, kind, kernel_name=name)
        cell.peepholes = {role: by_name[n] for role, n in peep.items()}
        projection = _find(by_name, f"{scope}/projection", KERNELS)
        cell.projection = by_name[projection] if projection else None
        used.update({name, bias, *peep.values(), *([projection] if projection else [])})
        cells.append(cell)
    return Found(cells, _others(bundle, names, used), unnamed)


def _others(bundle: Bundle, names: Names, used: set[str]) -> list[LayerInfo]:
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names.by_name:
        if name not in used:
            groups[name.rpartition("/")[0] or name].append(name)
    out = []
    for scope, group in islice(sorted(groups.items()), MAX_LISTED):
        kind, note = other_kind(scope, group)
        rec = names.by_name.get(f"{scope}/recurrent_kernel")
        shape = bundle.entries[rec].shape if rec is not None else ()
        if len(shape) == 2 and shape[0] and shape[1] == 3 * shape[0]:  # [H, 3H]: gates z, r, h
            kind, note = "Keras GRU cell", "GRU, not an LSTM"
        weights = tuple((n, bundle.entries[names.by_name[n]].shape) for n in sorted(group))
        out.append(LayerInfo(name=scope, kind=kind, weights=weights, note=note))
    return out


def other_kind(scope: str, group: list[str]) -> tuple[str, str]:
    """(kind, note) for a variable group that is not a TF1 LSTM cell."""
    last = {n.rsplit("/", 1)[-1] for n in group}
    if "recurrent_kernel" in last:
        return "Keras LSTM/GRU cell", "kernel + recurrent_kernel: Keras layout"
    if "gru_cell" in scope:
        return "GRUCell", "GRU, not an LSTM"
    if last == {"kernel", "bias"}:
        return "Dense", ""
    return "variables", ""


def _normed_scopes(by_name: dict[str, str]) -> dict[str, int]:
    """Scope → how many ``gamma``/``beta`` variables lie below it (each name's ancestors)."""
    out: dict[str, int] = defaultdict(int)
    for name in by_name:
        parts = name.split("/")
        if parts[-1] in ("gamma", "beta"):
            for k in range(1, min(len(parts), 12)):
                out["/".join(parts[:k])] += 1
    return out


def _refuse_layer_norm(bundle: Bundle, normed: dict[str, int], scope: str) -> None:
    """``LayerNormBasicLSTMCell`` normalises each gate (``<scope>/{input,transform,forget,
    output,state}/gamma|beta``): running it as a plain cell would give wrong numbers."""
    count = normed.get(scope, 0)
    if count or "layer_norm" in scope.rsplit("/", 1)[-1]:
        raise LoadError(
            f"{bundle.index_path.name}: {scope} is a layer-normalised LSTM cell "
            f"(LayerNormBasicLSTMCell: {count} gamma/beta variables inside its gates), "
            "which lstmviz does not compute"
        )


def _check_cell_shapes(bundle: Bundle, scope: str, kernel: str, bias: str) -> None:
    """An LSTM scope must hold ``kernel [R, 4H]`` and ``bias [4H]``."""
    if not _fits(bundle, kernel, bias):
        k, b = bundle.entries[kernel].shape, bundle.entries[bias].shape
        raise LoadError(
            f"{bundle.index_path.name}: LSTM cell {scope} has kernel shape {k} and bias shape "
            f"{b}; expected [D + H, 4H] and [4H]"
        )


def place(cell: Cell) -> None:
    """Fill ``stack``/``layer``/``direction`` from the scope structure."""
    prefix = cell.scope.split("/")[:-1]
    if (
        len(prefix) >= 2
        and prefix[-2] == "multi_rnn_cell"
        and re.fullmatch(r"cell_\d+", prefix[-1])
    ):
        cell.layer = int(prefix[-1][5:])
        outer = prefix[:-2]
        # bidirectional_dynamic_rnn over two MultiRNNCells: two separate stacks, merged only
        # at the end; the bw one reads time backwards in every layer and returns time order.
        cell.backward_stack = bool(outer) and outer[-1] == "bw"
        cell.stack = "/".join(prefix[:-1])
    elif prefix and prefix[-1] in ("fw", "bw"):
        cell.direction = prefix[-1]
        outer = prefix[:-1]
        if (
            len(outer) >= 2
            and outer[-1] == "bidirectional_rnn"
            and re.fullmatch(r"cell_\d+", outer[-2])
        ):
            cell.layer, cell.stack = int(outer[-2][5:]), "/".join(outer[:-2])
            cell.wrapper = "stack_bidirectional_dynamic_rnn"
        else:
            cell.stack, cell.wrapper = "/".join(outer), "bidirectional_dynamic_rnn"
    else:
        cell.stack = cell.scope
