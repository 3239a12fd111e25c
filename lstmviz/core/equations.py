"""One unit at one step, explained from the cell description: each equation of
``cell.equations`` with this step's numbers filled in, for any cell.

E.g. for a GRU ``n = tanh(0.310 + 0.200 + (-0.150)) = tanh(0.360) = 0.345`` and
``h = (1 − z)·n + z·h_(t-1) = (1 − 0.900)·0.345 + 0.900·(-0.200) = -0.146``; the unit inspector
shows these lines, and a new cell kind's equations appear without touching it.
"""

from __future__ import annotations

from lstmviz.core.cells import Equation
from lstmviz.core.trace import CellTrace


def arg(v: float) -> str:
    """A number as the only argument of a function: no extra parentheses."""
    return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"


def num(v: float) -> str:
    """Three decimals, negatives in parentheses so sums read unambiguously."""
    s = arg(v)
    return f"({s})" if v < 0 or s.startswith("-") else s


def explain(dt: CellTrace, t: int, u: int) -> list[tuple[str | None, str]]:
    """``(gate or None, line)`` for each equation of the cell that applies to this direction,
    with unit ``u``'s numbers at step ``t``."""
    w = dt.weights
    values = dt.unit_values(t, u)
    lines: list[tuple[str | None, str]] = []
    for eq in dt.cell.equations:
        if eq.when is not None and getattr(w, eq.when, None) is None:
            continue
        line = _gate_line(dt, eq, values, t, u) if eq.gate else _line(eq, values)
        if line:
            lines.append((eq.gate, line))
    return lines


def _gate_line(dt: CellTrace, eq: Equation, values: dict, t: int, u: int) -> str:
    """``g = act(term + term + …) = act(pre) = value`` (clipped first when the file clips)."""
    assert eq.gate is not None
    act = dt.weights.gate_activation(eq.gate).name
    terms = dt.gate_terms_at(eq.gate, t, u)
    pre = float(dt.gate_pre(eq.gate)[t, u])
    inner = arg(pre)
    clip = getattr(dt.weights, "gate_clip", None)
    if clip is not None:
        inner = f"clip({arg(pre)}, ±{clip:g})"
    value = values[eq.gate]
    return (
        f"{eq.gate} = {act}({' + '.join(num(v) for v in terms.values())}) = {act}({inner}) "
        f"= {value:.3f}"
    )


def _line(eq: Equation, values: dict) -> str:
    """``symbolic = filled = value`` for an equation with named slots; empty when the trace
    lacks a slot's value (a unit past a projection's width)."""
    if eq.target not in values or any(s not in values for s in eq.slots):
        return ""
    filled = eq.fill({s: values[s] for s in eq.slots}, num)
    symbolic = eq.symbolic
    for name, value in values.items():  # act_cell → the direction's own activation name
        if isinstance(value, str):
            symbolic = symbolic.replace(name, value)
    return f"{symbolic} = {filled} = {values[eq.target]:.3f}"
