"""One unit at one step, explained from the cell description: each equation of
``cell.equations`` with this step's numbers filled in, for any cell — the text the unit
inspector and the compare views show. Qt-free.

The lines are the cell description's equations (``CellDescription.equations``) filled with the
trace's values: each gate as ``act(terms) = act(sum) = value`` with the terms its cell lists
(``clip(sum, ±c)`` when the file clips), every other line as its template with the numbers put
in, an ``act(x)`` the trace also records (the LSTM's ``act_c``) evaluated once more as a middle
step (``o·tanh(c) = o·act_c``), and the result. The right-hand side is recomputed from the
numbers shown, so a clipped state (an LSTM's ``cell_clip``) says "→ clipped to …" instead of
printing an equation that does not add up; ``m`` is named as such under a projection, with the
projected ``h[u]`` after it. E.g. for a GRU ``n = tanh(0.310 + 0.200 + (-0.150)) = tanh(0.360)
= 0.345`` and ``h = (1 − z)·n + z·h_(t-1) = (1 − 0.900)·0.345 + 0.900·(-0.200) = -0.146``; a new
cell kind's equations appear without touching this module or the views.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.cells import CellDescription
from lstmviz.core.trace import CellTrace


def arg(v: float) -> str:
    """A number as the only argument of a function: no extra parentheses."""
    return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"


def num(v: float) -> str:
    """Three decimals, negatives in parentheses so sums read unambiguously."""
    s = arg(v)
    return f"({s})" if v < 0 or s.startswith("-") else s


_ACT_ROLES = ("act_gate", "act_cand", "act_cell")


_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, values: dict) -> str:
    """The template with this unit's numbers: a number that is a function's only argument as
    ``arg`` (``tanh(-0.259)``), every other as ``num`` (``(-0.259)·0.5``), names as they are."""

    def sub(m: re.Match) -> str:
        v = values[m.group(1)]
        if isinstance(v, str):
            return v
        sole = template[m.start() - 1 : m.start()] == "(" and template[m.end() : m.end() + 1] == ")"
        return arg(v) if sole else num(v)

    return _SLOT.sub(sub, template)


def _applies(eq, w) -> bool:
    return eq.when is None or getattr(w, eq.when, None) is not None


def _symbolic(text: str, w) -> str:
    """An equation as printed, with the direction's activation names (``act_cell`` → tanh)."""
    for role in _ACT_ROLES:
        act = getattr(w, role, None)
        if act is not None:
            text = text.replace(role, act.name)
    return text


_ACT_CALL = re.compile(r"\{(act_\w+)\}\(\{(\w+)\}\)")


@functools.lru_cache(maxsize=256)
def _evaluated(template: str) -> str | None:
    """The template with each ``{act_x}({s})`` replaced by a recorded ``{act_s}`` slot, for
    the middle step of ``o·tanh(c) = o·act_c`` (None when the template calls nothing)."""
    if not _ACT_CALL.search(template):
        return None
    return _ACT_CALL.sub(lambda m: "{act_" + m.group(2) + "}", template)


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


@functools.lru_cache(maxsize=256)
def _parsed(template: str) -> tuple[tuple[str, ...], ast.Expression | None]:
    """A template's slot names and its expression tree (parsed once per template)."""
    text = template.replace("·", "*").replace("⊙", "*").replace("−", "-")
    slots = tuple(dict.fromkeys(_SLOT.findall(text)))
    try:
        return slots, ast.parse(_SLOT.sub(r"\1", text), mode="eval")
    except SyntaxError:
        return slots, None


def _evaluate(template: str, values: dict, w) -> float | None:
    """The right-hand side computed from the slot values (products, sums, differences and the
    direction's activations; nothing else is evaluated), or None when it has other symbols
    (``W_p·m``). Shows a clip: the trace's value then differs from the formula's."""
    slots, tree = _parsed(template)
    if tree is None:
        return None
    names: dict[str, object] = {}
    for slot in slots:
        value = values.get(slot)
        if value is None:
            return None
        names[slot] = value

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and isinstance(names.get(node.id), float):
            return names[node.id]  # type: ignore[return-value]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and isinstance(names.get(node.func.id), str)
            and len(node.args) == 1
        ):
            act = getattr(w, node.func.id, None)
            if isinstance(act, Activation):
                return float(act(np.array([ev(node.args[0])]))[0])
        raise ValueError("not evaluable")

    try:
        return ev(tree)
    except (ValueError, TypeError, KeyError):
        return None


class _UnitValues(dict):
    """One unit's numbers at one step by slot name, read from the trace only when a line
    asks (the whole ``unit_values`` took ~1 ms a step at H = 1024): any per-unit ``(T, H)``
    array of the trace (gates, states, extras, ``*_prev``, a per-unit term such as the GRU's
    ``cand_h``), ``pre_<gate>``, and the direction's activation names."""

    def __init__(self, dt: CellTrace, t: int, u: int) -> None:
        super().__init__()
        self._dt, self._t, self._u = dt, t, u
        self._H = dt.weights.hidden_size
        for role in _ACT_ROLES:
            act = getattr(dt.weights, role, None)
            if act is not None:
                self[role] = act.name

    def _fetch(self, name: str) -> float | None:
        dt = self._dt
        if name.startswith("pre_") and name[4:] in dt.cell.gate_names:
            arr = dt.gate_pre(name[4:])
        else:
            arr = getattr(dt, name, None) if not name.startswith("_") else None
        # a full trace's ndarray or a bounded trace's lazy StepArray (recomputed on demand):
        # both index [t, u]; an ndarray-only test named every line a "projection"
        shape = getattr(arr, "shape", None)
        if getattr(arr, "ndim", 0) == 2 and shape is not None and shape[1] == self._H:
            return float(arr[self._t, self._u])
        return None

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None

    def __missing__(self, name: str) -> float:
        value = self._fetch(name)
        if value is None:
            raise KeyError(name)
        self[name] = value
        return value

    def get(self, name, default=None):  # type: ignore[override]
        try:
            return self[name]
        except (KeyError, TypeError):
            return default


def explain(dt: CellTrace, t: int, u: int) -> list[tuple[str | None, str]]:
    """``(gate or None, line)`` pairs: the step's equations for unit ``u`` with its numbers,
    in the order of the cell description's equations."""
    w = dt.weights
    cell: CellDescription = dt.cell
    values = _UnitValues(dt, t, u)
    equations = [eq for eq in cell.equations if _applies(eq, w)]
    targets = [eq.target for eq in equations]
    gate_clip = getattr(w, "gate_clip", None)
    lines: list[tuple[str | None, str]] = []
    for k, eq in enumerate(equations):
        if eq.gate is not None:
            gate = eq.gate
            act = w.gate_activation(gate).name
            terms = dt.gate_terms_at(gate, t, u)
            z = float(dt.gate_pre(gate)[t, u])
            inner = arg(z) if gate_clip is None else f"clip({arg(z)}, ±{gate_clip:g})"
            value = float(dt.gate(gate)[t, u])
            text = " + ".join(num(v) for v in terms.values())
            lines.append((gate, f"{gate} = {act}({text}) = {act}({inner}) = {value:.3f}"))
            continue
        symbolic = _symbolic(eq.symbolic, w)
        lhs, _, rhs = symbolic.partition(" = ")
        if lhs != eq.target and lhs in targets[k + 1 :]:
            lhs = eq.target  # h = o·tanh(c) is m while a projection follows (h = W_p·m)
        if not eq.slots or eq.target not in values:  # W_p·m: not one number per unit
            lines.append((None, _projection_line(dt, lhs, rhs, t, u)))
            continue
        if not all(s in values for s in eq.slots):
            lines.append((None, f"{lhs} = {rhs}"))
            continue
        value = values[eq.target]
        parts = [f"{lhs} = {rhs}", _fill(eq.template, values)]
        middle = _evaluated(eq.template)
        if middle is not None and all(s in values for s in _SLOT.findall(middle)):
            parts.append(_fill(middle, values))
        raw = _evaluate(eq.template, values, w)
        clipped = (
            raw is not None
            and math.isfinite(raw)
            and not math.isclose(raw, value, rel_tol=1e-4, abs_tol=1e-5)
        )
        end = f"{raw:.3f}  → clipped to {value:.3f}" if clipped else f"{value:.3f}"
        if parts[-1].strip("()") == end:  # h = n = -0.164, not h = n = (-0.164) = -0.164
            parts[-1] = end
        else:
            parts.append(end)
        lines.append((None, " = ".join(parts)))
    return lines


def _projection_line(dt, lhs: str, rhs: str, t: int, u: int) -> str:
    """``h = W_p·m (projection to P values); h[u] = …``: a line with no per-unit numbers
    (its target has a width of its own)."""
    target = dt.value(lhs) if lhs in dt.cell.quantities else dt.h
    width = target.shape[1]
    shown = f"{lhs}[{u}] = {target[t, u]:.3f}" if u < width else f"(unit {u} ≥ P = {width})"
    return f"{lhs} = {rhs} (projection to {width} values); {shown}"
