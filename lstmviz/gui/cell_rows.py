"""What the debugger views show of one direction, read from its cell description.

Every view asks this module (and through it ``CellDescription``: gate names, roles, states,
extras, terms) which rows, lines, colours and labels a direction has, instead of knowing the
LSTM's i, f, g, o, c. A new cell kind is a new description in ``lstmviz.core.cells``: its
gates, states and extras get rows here by their names, with the colours and labels below
where a name is known and generic ones (a palette by position, ``name_t``) otherwise.
Qt-free on purpose, so tests can check it without a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.cells import CellDescription
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.view_cache import memo

Kind = Literal["gate", "signed", "state"]

#: Colours of names every plot shares (the LSTM's since the first version, and the states).
NAMED_COLOURS: dict[str, str] = {
    "i": "#1f77b4",
    "f": "#2ca02c",
    "g": "#9467bd",
    "o": "#ff7f0e",
    "c": "#d62728",
    "act_c": "#e377c2",
    "h": "#17becf",
    "x": "#7f7f7f",
}
#: Gates with no colour of their own take one of these by their position in the cell.
GATE_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#bcbd22", "#7f7f7f")
#: The same for the other recorded arrays (states, extras) of a cell.
STATE_PALETTE = ("#d62728", "#e377c2", "#17becf", "#8c564b", "#bcbd22")
#: Bar colours of pre-activation terms, by term key; others by position in the cell.
TERM_COLOURS: dict[str, str] = {
    "z_x": "#4c72b0",
    "z_h": "#dd8452",
    "b": "#8c8c8c",
    "peep": "#55a868",
}
TERM_PALETTE = ("#c44e52", "#8172b3", "#937860", "#da8bc3")


def colour(cell: CellDescription, name: str) -> str:
    """The line/text colour of gate, state or extra ``name`` of ``cell``."""
    if name in NAMED_COLOURS:
        return NAMED_COLOURS[name]
    if name in cell.gate_names:
        return GATE_PALETTE[cell.gate_names.index(name) % len(GATE_PALETTE)]
    others = [*cell.state_names, *cell.extras]
    k = others.index(name) if name in others else len(others)
    return STATE_PALETTE[k % len(STATE_PALETTE)]


def term_keys(cell: CellDescription) -> tuple[str, ...]:
    """Every term key of the cell's gates, in first-seen order (the bar legend's order)."""
    keys: list[str] = []
    for g in cell.gates:
        for t in g.terms:
            if t.key not in keys:
                keys.append(t.key)
    return tuple(keys)


def term_colour(cell: CellDescription, key: str) -> str:
    if key in TERM_COLOURS:
        return TERM_COLOURS[key]
    others = [k for k in term_keys(cell) if k not in TERM_COLOURS]
    k = others.index(key) if key in others else 0
    return TERM_PALETTE[k % len(TERM_PALETTE)]


def term_labels(cell: CellDescription, key: str) -> str:
    """A term's label; gates that print the same key differently (the GRU's ``b`` of r and z,
    ``b_x`` of n) are joined: ``b / b_x``."""
    labels: list[str] = []
    for g in cell.gates:
        for t in g.terms:
            if t.key == key and t.label not in labels:
                labels.append(t.label)
    return " / ".join(labels)


def pre_activation_sum(cell: CellDescription, present: set[str] | None = None) -> str:
    """``W_x·x_t + W_h·h_(t-1) + b`` when every gate sums the same terms (an LSTM's
    candidate without the peephole counts as the same), else a phrase that fits any cell."""
    lists = [[t.label for t in g.terms if present is None or t.key in present] for g in cell.gates]
    longest = max(lists, key=len, default=[])
    if all(lst == longest[: len(lst)] for lst in lists):
        return " + ".join(longest)
    return "the sum of its terms"


@dataclass(frozen=True)
class Row:
    """One row of the step view (and one line of the time plots): ``name`` as the trace and
    the breakpoints call it, ``attr`` the trace array shown (``h`` shows the per-unit ``m``
    of a projected LSTM), ``label`` the axis text, ``kind`` its colour scale."""

    name: str
    attr: str
    label: str
    kind: Kind
    activation: Any = None  # bounds a signed row's scale when known (tanh: ±1)


def _act(w: Any, attr: str) -> Any:
    return getattr(w, attr, None)


def row_names(cell: CellDescription) -> tuple[str, ...]:
    """Row names of a cell before any are merged: gates, states but h, extras but the
    per-unit h (``m``), then h."""
    per_unit_h = "m" if "m" in cell.extras else "h"
    rest = (*[s for s in cell.state_names if s != "h"], *cell.extras)
    return (*cell.gate_names, *[n for n in rest if n != per_unit_h], "h")


def rows(dt: Any, distinct: bool = True) -> tuple[Row, ...]:
    """Rows of one direction's trace: its gates in the cell's order, then its states and
    extras (the hidden state last); ``distinct`` leaves out an array that is another row's
    (the plain RNN's ``n`` is its ``h``)."""
    cell: CellDescription = dt.cell
    w = dt.weights
    out: list[Row] = []
    for g in cell.gates:
        act = w.gate_activation(g.name)
        kind: Kind = "gate" if g.role == "gate" else "signed"
        out.append(Row(g.name, g.name, f"{g.name} = {act.name}(·)", kind, act))
    per_unit_h = "m" if "m" in cell.extras else "h"  # h before a projection, one per unit
    for name in row_names(cell)[cell.n_gates :]:
        attr = per_unit_h if name == "h" else name
        label, act = _state_label(name, w)
        out.append(Row(name, attr, label, "state" if name in cell.state_names else "signed", act))
    if not distinct:
        return tuple(out)
    seen: list[Any] = []
    kept = []
    for row in out:
        arr = getattr(dt, row.attr)
        if any(arr is other for other in seen):
            continue
        seen.append(arr)
        kept.append(row)
    return tuple(kept)


def _state_label(name: str, w: Any) -> tuple[str, Any]:
    """Axis text and bounding activation of a state or extra row: ``act_<state>`` is the
    cell activation of that state (the LSTM's ``tanh(c_t)``); h shows its per-unit value
    (``m_t = o·act(c)``) while a projection equation applies."""
    cell_act = _act(w, "act_cell")
    state = name.removeprefix("act_")
    if name != state and state in w.cell.state_names and cell_act is not None:
        return f"{cell_act.name}({state}_t)", cell_act
    if name == "h":
        source = per_unit_source(w)
        if source is not None:
            rhs = source.symbolic.partition(" = ")[2].replace("act_cell", "act")
            return f"{source.target}_t = {rhs}", cell_act
        return "h_t", cell_act
    return f"{name}_t", None


def projection(w: Any) -> Any:
    """The equation giving h a width of its own that applies to ``w`` (the LSTM's
    ``h = W_p·m`` when ``W_p`` is set), or None."""
    for eq in w.cell.equations:
        if eq.target == "h" and eq.when is not None and _act(w, eq.when) is not None:
            return eq
    return None


def per_unit_source(w: Any) -> Any:
    """The equation of the per-unit value a projection maps to h (the LSTM's ``m``)."""
    if projection(w) is None:
        return None
    eqs = [eq for eq in w.cell.equations if eq.target != "h"]
    return eqs[-1] if eqs else None


def projected(dt: Any) -> bool:
    """Whether h has a width of its own (a projection equation applies): then it gets a
    row of its own values below the per-unit rows."""
    return projection(dt.weights) is not None


def projection_label(dt: Any) -> str:
    """``h_t = W_p·m_t``: the projected row's label, from its equation."""
    eq = projection(dt.weights)
    lhs, _, rhs = eq.symbolic.partition(" = ")
    return f"{lhs}_t = {rhs}_t"


def gate_rows(cell: CellDescription) -> tuple[str, ...]:
    """Gates whose values lie in [0, 1] (role ``gate``): saturation, the gate colour bar."""
    return tuple(g.name for g in cell.gates if g.role == "gate")


def state_text(cell: CellDescription, suffix: str = "_(t-1)") -> str:
    """``h_(t-1), c_(t-1)``: the states a step starts from."""
    return ", ".join(f"{s}{suffix}" for s in cell.state_names)


def activation_text(w: Any, sep: str = " · ") -> str:
    """``gates sigmoid · candidate tanh · cell tanh``: the activations this direction has."""
    parts = []
    for role, word in (("gate", "gates"), ("candidate", "candidate"), ("cell", "cell")):
        if role != "cell" and not any(g.role == role for g in w.cell.gates):
            continue
        act = _act(w, {"gate": "act_gate", "candidate": "act_cand", "cell": "act_cell"}[role])
        if act is not None:
            parts.append(f"{word} {act}")
    return sep.join(parts)


def cell_text(cell: CellDescription) -> str:
    """``GRU (reset after): r reset, z update, n candidate``: the kind and its gates."""
    variant = f" ({cell.variant})" if cell.variant else ""
    gates = ", ".join(f"{g.name} {g.long_name}" for g in cell.gates)
    return f"{cell.name}{variant}: {gates}"


def hidden_size(dt: Any) -> int:
    """Units of a direction's trace (the width of its per-unit rows)."""
    return int(dt.weights.hidden_size)


def values_of(dt: Any, row: Row) -> np.ndarray:
    return getattr(dt, row.attr)


_BOUNDED = {"tanh", "softsign", "sigmoid", "hard_sigmoid_k2", "hard_sigmoid_k3", "hard_sigmoid_ab"}


def _signed_limit(values: np.ndarray, act: Activation | None = None) -> float:
    """±1 for a bounded activation, otherwise the largest magnitude in the whole run."""
    if act is not None and act.name in _BOUNDED:
        return 1.0
    return symmetric_limit(values)


def run_levels(dt: Any) -> tuple[dict, dict, tuple[float, float]]:
    """Fixed colour levels of one direction for the whole run: per row, per gate's term
    breakdown, and of the projected h. Computed once per run (``view_cache``), in the
    run's worker when ``prepare_trace`` got there first."""

    def compute() -> tuple[dict, dict, tuple[float, float]]:
        levels: dict[str, tuple[float, float]] = {}
        for row in rows(dt):
            if row.kind == "gate":
                levels[row.name] = (0.0, 1.0)
                continue
            lim = _signed_limit(values_of(dt, row), row.activation)
            levels[row.name] = (-lim, lim)
        terms = {}
        for gate in dt.cell.gate_names:
            parts = [v for _, v in dt.terms(gate)]
            lim = max(_signed_limit(p) for p in [*parts, dt.gate_pre(gate)])
            terms[gate] = (-lim, lim)
        lim = _signed_limit(dt.h) if projected(dt) else 1.0
        return levels, terms, (-lim, lim)

    return memo(dt, "step_levels", compute)
