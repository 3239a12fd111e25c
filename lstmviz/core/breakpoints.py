"""Breakpoints: stop on a step number, or when recorded values meet a condition typed as text.

Conditions read like what a user would say about the gates::

    any f < 0.05                  # some unit's forget gate nearly closed
    |c| > 5 in unit 12            # absolute value; unit scope
    o saturated > 90%             # share of units with o < 0.05 or o > 0.95
    mean h > 0.5 in layer 1 backward
    NaN anywhere                  # any NaN/Inf in any recorded array

Scope clauses (``in layer K``, ``forward``/``backward``, ``in unit(s) 3,5,10-12``) may come in
any order after the expression. Every condition is evaluated for all steps at once with NumPy
(``mask``), so run-to-next-breakpoint over thousands of steps is a single vectorised pass.
"""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import registered
from lstmviz.core.trace import CellTrace, Trace

BoolArray = npt.NDArray[np.bool_]

SATURATION_LOW, SATURATION_HIGH = 0.05, 0.95


def quantities() -> dict[str, str]:
    """Per-step quantities a condition can name, mapped to the trace's name for it: every
    registered cell's ``quantities`` (LSTM ``i f g o c h m act_c c_prev h_prev pre_i``…, GRU
    ``r z n pre_z``…) plus its aliases (``tanh(c)``). A quantity a layer's cell does not
    record is not looked for in that layer. Read at parse time, so a cell registered later
    (``cells.register``) is known without a change here."""
    cells = registered()
    return {
        **{q: q for cell in cells for q in cell.quantities},
        **{a: q for cell in cells for a, q in cell.aliases.items()},
    }


def gate_quantities() -> frozenset[str]:
    """Gates that open and close (sigmoid-like role) of every registered cell: what
    "<gate> saturated" may name."""
    return frozenset(g.name for cell in registered() for g in cell.gates if g.role == "gate")


def trace_name(quantity: str) -> str:
    """The trace's name for a quantity a condition names (an alias's target, else itself)."""
    for cell in registered():
        if quantity in cell.aliases:
            return cell.aliases[quantity]
    return quantity


_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "=": operator.eq, "!=": operator.ne,
}  # fmt: skip

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
_OP = r"<=|>=|==|!=|<|>|="
_QTY = r"[a-z_]+(?:\(c\))?"
_VALUE_RE = re.compile(
    rf"^(?:(?P<reduce>any|all|mean|max|min)\s+)?"
    rf"(?:\|\s*(?P<absq>{_QTY})\s*\||(?P<q>{_QTY}))\s*(?P<op>{_OP})\s*(?P<num>{_NUM})$"
)
_SAT_RE = re.compile(
    rf"^(?P<q>[a-z])\s+saturated(?:\s*(?P<op>{_OP})\s*(?P<num>{_NUM})\s*(?P<pct>%?))?$"
)
_NONFINITE_RE = re.compile(r"^(?:any\s+)?(?:nan|inf|nan\s*/\s*inf|nan\s+or\s+inf|non-?finite)$")
_STEP_RE = re.compile(r"^(?:step|t)\s*(?:=|==)?\s*(\d+)$")
_UNITS_RE = re.compile(r"\b(?:in\s+)?units?\s+(\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*)")
_LAYER_RE = re.compile(r"\b(?:in\s+)?layers?\s+(\d+(?:\s*,\s*\d+)*)")
_DIR_RE = re.compile(r"\b(?:in\s+)?(forward|backward|fw|bw|reverse|direction\s+[01])\b")
_ANYWHERE_RE = re.compile(r"\banywhere\b")


class Kind(enum.Enum):
    VALUE = "value"
    SATURATED = "saturated"
    NONFINITE = "nonfinite"


@dataclass(frozen=True)
class Hit:
    """Why a breakpoint stopped: which layer/direction and which units met the condition."""

    breakpoint: Breakpoint
    step: int
    layer: int | None = None
    direction: int | None = None
    units: tuple[int, ...] = ()
    value: float | None = None

    def describe(self) -> str:
        where = []
        if self.layer is not None:
            where.append(f"layer {self.layer} {'backward' if self.direction else 'forward'}")
        if self.units:
            shown = ", ".join(str(u) for u in self.units[:8])
            more = f" (+{len(self.units) - 8} more)" if len(self.units) > 8 else ""
            where.append(f"unit{'s' if len(self.units) > 1 else ''} {shown}{more}")
        if self.value is not None:
            where.append(f"value {self.value:.4g}")
        detail = f" — {', '.join(where)}" if where else ""
        return f"step {self.step}: {self.breakpoint.text}{detail}"


@dataclass(frozen=True)
class Breakpoint:
    """Base: ``mask(trace)`` says at which steps it fires; ``hits(trace, t)`` explains one."""

    text: str
    enabled: bool = field(default=True, compare=False)

    def mask(self, trace: Trace) -> BoolArray:
        raise NotImplementedError

    def hits(self, trace: Trace, t: int) -> tuple[Hit, ...]:
        raise NotImplementedError

    def unreachable(self, trace: Trace) -> str | None:
        """Why this can never fire on ``trace``, else None: breakpoints stay when another
        model or sequence is opened, and one naming a unit, layer or step it lacks would
        otherwise just show "0 steps"."""
        return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class StepBreakpoint(Breakpoint):
    """Stop when the cursor reaches step ``step``."""

    step: int = 0

    def mask(self, trace: Trace) -> BoolArray:
        m = np.zeros(trace.n_steps, dtype=bool)
        if 0 <= self.step < trace.n_steps:
            m[self.step] = True
        return m

    def hits(self, trace: Trace, t: int) -> tuple[Hit, ...]:
        return (Hit(self, t),) if t == self.step else ()

    def unreachable(self, trace: Trace) -> str | None:
        if 0 <= self.step < trace.n_steps:
            return None
        return f"the sequence has steps 0–{trace.n_steps - 1}"


@dataclass(frozen=True)
class ConditionBreakpoint(Breakpoint):
    """A condition on recorded values, scoped to layers, directions and units (None = all)."""

    kind: Kind = Kind.VALUE
    quantity: str = ""
    op: str = ">"
    threshold: float = 0.0
    reduce: str = "any"
    absolute: bool = False
    layers: tuple[int, ...] | None = None
    directions: tuple[int, ...] | None = None
    units: tuple[int, ...] | None = None

    def _scopes(self, trace: Trace) -> list[tuple[int, int, CellTrace]]:
        """Layers and directions in scope whose cell records the quantity (a GRU gate ``z``
        is not looked for in an LSTM layer)."""
        out = []
        for k, lt in enumerate(trace.layers):
            if self.layers is not None and k not in self.layers:
                continue
            for d, dt in enumerate(lt.directions):
                if (self.directions is None or d in self.directions) and self._records(dt):
                    out.append((k, d, dt))
        return out

    def _records(self, dt: CellTrace) -> bool:
        return self.kind is Kind.NONFINITE or trace_name(self.quantity) in dt.cell.quantities

    def _missing(self, trace: Trace) -> str:
        """Why no layer in scope records the quantity."""
        cells = {dt.cell.name: dt.cell for lt in trace.layers for dt in lt.directions}
        have = "; ".join(f"{name} records {', '.join(c.quantities)}" for name, c in cells.items())
        return f"no layer in its scope records {self.quantity!r} ({have})"

    def unreachable(self, trace: Trace) -> str | None:
        scopes = self._scopes(trace)
        n = len(trace.layers)
        if not scopes and self.layers is not None and all(k >= n for k in self.layers):
            return f"the model has {_plural(n, 'layer')} (0–{n - 1})"
        if not scopes and any(
            self.directions is None or d in self.directions
            for k, lt in enumerate(trace.layers)
            if self.layers is None or k in self.layers
            for d in range(len(lt.directions))
        ):
            return self._missing(trace)
        if not scopes:
            return "no layer in its scope has that direction"
        if self.units is None or self.kind is Kind.NONFINITE:
            return None
        widths = [self._width(dt) for _, _, dt in scopes]
        if any(u < w for u in self.units for w in widths):
            return None
        return f"the layers in its scope have {_plural(max(widths), 'unit')} (0–{max(widths) - 1})"

    def _width(self, dt: CellTrace) -> int:
        """Units of the named quantity: h is P wide with a projection, the rest H."""
        return dt.h.shape[1] if self.quantity in ("h", "h_prev") else dt.weights.hidden_size

    def _values(self, dt: CellTrace) -> np.ndarray:
        arr = dt.value(trace_name(self.quantity))
        if self.units is not None:
            arr = arr[:, [u for u in self.units if u < arr.shape[1]]]
        return np.abs(arr) if self.absolute else arr

    def _unit_index(self, dt: CellTrace, cols: np.ndarray) -> tuple[int, ...]:
        if self.units is None:
            return tuple(int(c) for c in cols)
        valid = [u for u in self.units if u < self._width(dt)]
        return tuple(valid[int(c)] for c in cols)

    def _evaluate(self, dt: CellTrace) -> tuple[BoolArray, BoolArray | None, np.ndarray | None]:
        """Per step: fired ``(T,)``, the units responsible ``(T, n)``, a reduced value ``(T,)``."""
        if self.kind is Kind.NONFINITE:
            arrays = [getattr(dt, name) for name in dt.recorded if name not in ("peep", "m")]
            H = dt.weights.hidden_size
            per_unit = np.zeros((dt.n_steps, H), dtype=bool)
            for a in arrays:
                if a is None:
                    continue
                bad = ~np.isfinite(a)
                if a.shape[1] == H:
                    per_unit |= bad
                elif a.shape[1] % H == 0:  # gate blocks (4H, 3H)
                    per_unit |= bad.reshape(a.shape[0], -1, H).any(axis=1)
                else:
                    per_unit[:, 0] |= bad.any(axis=1)
            return per_unit.any(axis=1), per_unit, None
        vals = self._values(dt)
        cmp = _OPS[self.op]
        if vals.shape[1] == 0:
            return np.zeros(vals.shape[0], dtype=bool), None, None
        if self.kind is Kind.SATURATED:
            sat = (vals < SATURATION_LOW) | (vals > SATURATION_HIGH)
            frac = sat.mean(axis=1)
            return cmp(frac, self.threshold), sat, frac
        if self.reduce in ("any", "all"):
            per_unit = cmp(vals, self.threshold)
            fired = per_unit.any(axis=1) if self.reduce == "any" else per_unit.all(axis=1)
            return fired, per_unit, None
        reduced = {"mean": np.mean, "max": np.max, "min": np.min}[self.reduce](vals, axis=1)
        return cmp(reduced, self.threshold), None, reduced

    def mask(self, trace: Trace) -> BoolArray:
        m = np.zeros(trace.n_steps, dtype=bool)
        for _, _, dt in self._scopes(trace):
            with np.errstate(invalid="ignore"):
                m |= self._evaluate(dt)[0]
        return m

    def hits(self, trace: Trace, t: int) -> tuple[Hit, ...]:
        out = []
        for k, d, dt in self._scopes(trace):
            with np.errstate(invalid="ignore"):
                fired, per_unit, value = self._evaluate(dt)
            if not fired[t]:
                continue
            cols = np.flatnonzero(per_unit[t]) if per_unit is not None else np.array([], int)
            units = (
                self._unit_index(dt, cols)
                if self.kind is not Kind.NONFINITE
                else tuple(int(c) for c in cols)
            )
            out.append(Hit(self, t, k, d, units, None if value is None else float(value[t])))
        return tuple(out)


def _int_list(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return tuple(out)


def parse_breakpoint(text: str) -> Breakpoint:
    """Parse one breakpoint; ValueError with a message showing what would work."""
    original = " ".join(text.split())
    s = original.lower()
    if not s:
        raise ValueError("empty breakpoint; try 'step 12', 'any f < 0.05' or 'NaN anywhere'")
    step = _STEP_RE.match(s)
    if step:
        return StepBreakpoint(original, step=int(step.group(1)))
    if s.isdigit():
        return StepBreakpoint(f"step {s}", step=int(s))
    units = layers = directions = None
    if m := _UNITS_RE.search(s):
        units = _int_list(m.group(1))
        s = s[: m.start()] + s[m.end() :]
    if m := _LAYER_RE.search(s):
        layers = _int_list(m.group(1))
        s = s[: m.start()] + s[m.end() :]
    if m := _DIR_RE.search(s):
        word = m.group(1)
        directions = (1,) if word in ("backward", "bw", "reverse") or word.endswith("1") else (0,)
        s = s[: m.start()] + s[m.end() :]
    s = " ".join(_ANYWHERE_RE.sub(" ", s).split())
    scope = {"layers": layers, "directions": directions, "units": units}
    if _NONFINITE_RE.match(s):
        return ConditionBreakpoint(original, kind=Kind.NONFINITE, **scope)
    if m := _SAT_RE.match(s):
        gate_names = gate_quantities()
        if m.group("q") not in gate_names:
            gates = ", ".join(sorted(gate_names))
            raise ValueError(f"{original!r}: only gates saturate ({gates}), not {m.group('q')!r}")
        num = float(m.group("num")) if m.group("num") else 0.0
        if m.group("pct"):
            num /= 100.0
        elif num > 1:
            raise ValueError(f"{original!r}: a saturation share is 0..1 or a percentage like 90%")
        op = m.group("op") or ">"
        return ConditionBreakpoint(
            original, kind=Kind.SATURATED, quantity=m.group("q"), op=op, threshold=num, **scope
        )
    if m := _VALUE_RE.match(s):
        q = m.group("absq") or m.group("q")
        known = quantities()
        if q not in known:
            raise ValueError(
                f"{original!r}: unknown value {q!r}; use one of {', '.join(sorted(known))}"
            )
        return ConditionBreakpoint(
            original,
            kind=Kind.VALUE,
            quantity=q,
            op=m.group("op"),
            threshold=float(m.group("num")),
            reduce=m.group("reduce") or "any",
            absolute=m.group("absq") is not None,
            **scope,
        )
    raise ValueError(
        f"cannot read breakpoint {original!r}; examples: 'step 12', 'any f < 0.05', "
        "'|c| > 5 in unit 12', 'o saturated > 90%', 'mean h > 0.5 in layer 1 backward', "
        "'NaN anywhere'"
    )
