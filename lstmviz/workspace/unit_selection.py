"""A set of units looked at together, the value they are shown by, and a time span: Qt-free.

LSTMVis' workflow starts from a hypothesis ("these units are on inside brackets") and ends at
a set of units. The set is one small model the views share: the unit-set plots draw it, the
select-and-match panel edits it, the text view marks its span; each subscribes and redraws
on the fields that changed (napari's ``Dims`` ↔ ``QtDims``). Nothing here knows of Qt.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from lstmviz.core.breakpoints import ConditionBreakpoint, Kind, parse_breakpoint
from lstmviz.core.cells import CellDescription, registered
from lstmviz.core.trace import Trace


def quantities(cell: CellDescription | None = None) -> tuple[str, ...]:
    """What a unit can be shown by: the cell's states, then its gates (LSTM ``h c i f g o``,
    GRU ``h r z n``; ``h`` is ``m`` before a projection, with one it has P columns and the
    rest H). Without a cell, the names of every registered cell (what a selection may hold)."""
    cells = registered() if cell is None else (cell,)
    return tuple(dict.fromkeys(q for c in cells for q in (*c.state_names, *c.gate_names)))


def quantity_name(cell: CellDescription, quantity: str) -> str:
    """``f (forget gate)``, ``g (candidate)``, ``c (cell state)``: a quantity as a list shows it."""
    long = cell.long_names.get(quantity, "")
    if quantity in cell.gate_names and cell.gate(quantity).role == "gate":
        long += " gate"
    return f"{quantity} ({long})" if long else quantity


class Field(enum.Enum):
    """Which field of a ``UnitSelection`` changed (one event per field, only on change)."""

    UNITS = "units"
    QUANTITY = "quantity"
    SPAN = "span"


Listener = Callable[[Field], None]


#: Widest range of steps ``by_expression`` tests on a bounded trace (recomputed for it).
MAX_BOUNDED_SPAN = 100_000


def unit_values(trace: Trace, layer: int, direction: int, quantity: str) -> npt.NDArray:
    """``(T, H)`` of one quantity of one layer/direction (clamped: a view never indexes past
    its own trace whatever it is told)."""
    lt = trace.layers[min(max(layer, 0), len(trace.layers) - 1)]
    dt = lt.directions[min(max(direction, 0), len(lt.directions) - 1)]
    known = quantities(dt.cell)
    if quantity not in known:
        raise ValueError(
            f"quantity must be one of {', '.join(known)} ({dt.cell.name}), got {quantity!r}"
        )
    return getattr(dt, quantity)


def activity_order(values: npt.NDArray, units: Iterable[int]) -> list[int]:
    """``units`` sorted by their mean value over time, most active first (the heatmap's
    rows, so the units that fire together sit together)."""
    units = [int(u) for u in units if 0 <= int(u) < values.shape[1]]
    if not units:
        return []
    means = np.nanmean(values[:, units], axis=0)
    return [units[k] for k in np.argsort(-means, kind="stable")]


class UnitSelection:
    """Units (sorted, distinct), the quantity they are shown by, a time span ``[start, stop)``.

    ``anchor`` is the unit a shift-click extends from, as in a file list.
    """

    def __init__(self) -> None:
        self._units: tuple[int, ...] = ()
        self._quantity = "h"
        self._span: tuple[int, int] | None = None
        self.anchor: int | None = None
        self._listeners: list[Listener] = []

    # -- events --------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(field)`` on every real change; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, field: Field) -> None:
        for listener in tuple(self._listeners):
            listener(field)

    # -- fields --------------------------------------------------------------------------------
    @property
    def units(self) -> tuple[int, ...]:
        return self._units

    @property
    def quantity(self) -> str:
        return self._quantity

    @property
    def span(self) -> tuple[int, int] | None:
        """``(start, stop)`` steps, stop exclusive; None when no range is selected."""
        return self._span

    def set_units(self, units: Iterable[int]) -> None:
        new = tuple(sorted({int(u) for u in units if int(u) >= 0}))
        if new != self._units:
            self._units = new
            self._emit(Field.UNITS)

    def set_quantity(self, quantity: str) -> None:
        known = quantities()
        if quantity not in known:
            raise ValueError(f"quantity must be one of {', '.join(known)}, got {quantity!r}")
        if quantity != self._quantity:
            self._quantity = quantity
            self._emit(Field.QUANTITY)

    def fit(self, cell: CellDescription) -> tuple[str, ...]:
        """The quantities ``cell`` records; a quantity it lacks (``c`` once a GRU layer is
        selected) becomes ``h``, which every cell has. Views call it on a model or layer
        change before they read values."""
        known = quantities(cell)
        if self._quantity not in known:
            self.set_quantity("h")
        return known

    def set_span(self, start: int | None, stop: int | None = None) -> None:
        """``set_span(a, b)`` selects steps a..b-1 (either order); ``set_span(None)`` clears."""
        if start is None or stop is None:
            new = None
        else:
            lo, hi = sorted((int(start), int(stop)))
            new = (max(lo, 0), max(hi, lo + 1, 1))
        if new != self._span:
            self._span = new
            self._emit(Field.SPAN)

    # -- editing like a list -------------------------------------------------------------------
    def click(self, unit: int) -> None:
        """A plain click: that unit alone."""
        self.anchor = int(unit)
        self.set_units([unit])

    def toggle(self, unit: int) -> None:
        """Ctrl-click: add or remove one unit."""
        self.anchor = int(unit)
        units = set(self._units)
        units.symmetric_difference_update({int(unit)})
        self.set_units(units)

    def extend(self, unit: int) -> None:
        """Shift-click: every unit from the anchor to ``unit`` joins the set."""
        anchor = self.anchor if self.anchor is not None else int(unit)
        lo, hi = sorted((anchor, int(unit)))
        self.set_units(set(self._units) | set(range(lo, hi + 1)))

    def clamp(self, n_units: int) -> None:
        """Drop units a new model or layer lacks."""
        self.set_units(u for u in self._units if u < n_units)

    # -- selecting by a rule -------------------------------------------------------------------
    def by_threshold(
        self, values: npt.NDArray, threshold: float, start: int, stop: int | None = None
    ) -> tuple[int, ...]:
        """Units whose value is ≥ ``threshold`` at every step of ``[start, stop)`` (one step
        when ``stop`` is None) in ``values (T, H)``; they become the set."""
        stop = start + 1 if stop is None else stop
        start, stop = max(min(start, stop), 0), min(max(start, stop), values.shape[0])
        if stop <= start:
            self.set_units(())
            return ()
        with np.errstate(invalid="ignore"):
            on = np.all(values[start:stop] >= threshold, axis=0)
        self.set_units(np.flatnonzero(on))
        return self._units

    def by_expression(
        self, trace: Trace, layer: int, direction: int, text: str, steps: Iterable[int]
    ) -> tuple[int, ...]:
        """Units for which a breakpoint condition (``h > 0.5``, ``|c| > 2 in units 0-9``,
        ``f saturated``...) holds at every step of ``steps`` in that layer/direction.

        The condition's own ``in layer``/``backward`` scope wins over the given one; a
        reduction over units (``mean h > 0.5``) or a step breakpoint names no units, so it
        raises ValueError saying what would work."""
        bp = parse_breakpoint(text)
        if not isinstance(bp, ConditionBreakpoint) or bp.kind is Kind.NONFINITE:
            raise ValueError(
                f"{text!r} names no units; use a condition on values, e.g. 'h > 0.5' or "
                "'f < 0.1 in units 0-31'"
            )
        if bp.kind is Kind.VALUE and bp.reduce in ("mean", "max", "min"):
            raise ValueError(f"{text!r} reduces over units; drop '{bp.reduce}' to pick units")
        steps = [int(t) for t in steps if 0 <= int(t) < trace.n_steps]
        if not steps:
            raise ValueError("no step to test the condition at")
        if getattr(trace, "bounded", False):  # recompute just the steps tested
            a, b = min(steps), max(steps) + 1
            if b - a > MAX_BOUNDED_SPAN:
                raise ValueError(
                    f"select at most {MAX_BOUNDED_SPAN:,} steps of a run this long "
                    f"({trace.n_steps:,} steps, kept as checkpoints)"
                )
            trace, steps = trace.window(a, b), [t - a for t in steps]  # type: ignore[attr-defined]
        if bp.layers is not None:
            layer = bp.layers[0]
        if bp.directions is not None:
            direction = bp.directions[0]
        chosen: set[int] | None = None
        for t in steps:
            here: set[int] = set()
            for hit in bp.hits(trace, t):
                if (hit.layer, hit.direction or 0) == (layer, direction):
                    here.update(hit.units)
            chosen = here if chosen is None else chosen & here
            if not chosen:
                break
        self.set_units(chosen or ())
        return self._units
