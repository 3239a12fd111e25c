"""A Qt-free cursor over a finished Trace, with breakpoints and a shared selection.

Everything was computed once by ``run``; stepping only moves an integer, so going back is as
cheap as going forward. Listeners get a ``Change`` flag, and only when something really
changed (napari's one-event-per-field habit), so views never repaint for nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from lstmviz.core.breakpoints import Breakpoint, Hit, parse_breakpoint
from lstmviz.core.trace import Trace

logger = logging.getLogger(__name__)


class Change(enum.Flag):
    """What changed; views handle each kind in one place."""

    STEP = enum.auto()
    BREAKPOINTS = enum.auto()
    HIT = enum.auto()
    SELECTION = enum.auto()
    TRACE = enum.auto()


Listener = Callable[[Change], None]


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which layer, direction, unit and gate the views focus on."""

    layer: int = 0
    direction: int = 0
    unit: int = 0
    gate: str = "f"


class Debugger:
    """Cursor over a finished Trace: stepping never recomputes, so going back is free."""

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._step = 0
        self._selection = self._clamped(Selection())
        self._breakpoints: list[Breakpoint] = []
        self._hits: tuple[Hit, ...] = ()
        self._mask_cache: dict[Breakpoint, npt.NDArray[np.bool_]] = {}
        self._listeners: list[Listener] = []

    # -- state ---------------------------------------------------------------------------------
    @property
    def trace(self) -> Trace:
        return self._trace

    @property
    def step(self) -> int:
        return self._step

    @property
    def n_steps(self) -> int:
        return self._trace.n_steps

    @property
    def selection(self) -> Selection:
        return self._selection

    @property
    def breakpoints(self) -> tuple[Breakpoint, ...]:
        return tuple(self._breakpoints)

    @property
    def hits(self) -> tuple[Hit, ...]:
        """Why the last run-to-breakpoint stopped (empty after any other move)."""
        return self._hits

    # -- listeners -----------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(change)`` on every real change; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, change: Change) -> None:
        for listener in tuple(self._listeners):
            listener(change)

    # -- trace ---------------------------------------------------------------------------------
    def set_trace(self, trace: Trace) -> None:
        """Swap in a new run (new sequence or states); keeps step and selection when they fit."""
        self._trace = trace
        self._mask_cache.clear()
        self._step = min(self._step, trace.n_steps - 1)
        self._hits = ()
        self._selection = self._clamped(self._selection)
        self._emit(Change.TRACE | Change.STEP | Change.SELECTION | Change.HIT)

    # -- moving --------------------------------------------------------------------------------
    def go_to(self, t: int) -> None:
        self._move(int(t), ())

    def _move(self, t: int, hits: tuple[Hit, ...]) -> None:
        t = min(max(t, 0), self._trace.n_steps - 1)
        change = Change(0)
        if t != self._step:
            self._step = t
            change |= Change.STEP
        if hits != self._hits:
            self._hits = hits
            change |= Change.HIT
        if change:
            self._emit(change)

    def step_forward(self) -> bool:
        """Advance one step; False (and no event) at the last step."""
        before = self._step
        self.go_to(before + 1)
        return self._step != before

    def step_back(self) -> bool:
        before = self._step
        self.go_to(before - 1)
        return self._step != before

    def first(self) -> None:
        self.go_to(0)

    def last(self) -> None:
        self.go_to(self._trace.n_steps - 1)

    @property
    def at_end(self) -> bool:
        return self._step >= self._trace.n_steps - 1

    # -- breakpoints ---------------------------------------------------------------------------
    def add_breakpoint(self, bp: Breakpoint | str) -> Breakpoint:
        """Add a breakpoint (or its text, parsed; ValueError explains a bad one)."""
        if isinstance(bp, str):
            bp = parse_breakpoint(bp)
        if bp not in self._breakpoints:
            self._breakpoints.append(bp)
            self._emit(Change.BREAKPOINTS)
        return bp

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        if bp in self._breakpoints:
            self._breakpoints.remove(bp)
            self._mask_cache.pop(bp, None)
            self._emit(Change.BREAKPOINTS)

    def set_enabled(self, bp: Breakpoint, enabled: bool) -> Breakpoint:
        idx = self._breakpoints.index(bp)
        old = self._breakpoints[idx]
        if old.enabled == enabled:
            return old
        new = dataclasses.replace(old, enabled=enabled)
        self._breakpoints[idx] = new
        self._emit(Change.BREAKPOINTS)
        return new

    def clear_breakpoints(self) -> None:
        if self._breakpoints:
            self._breakpoints.clear()
            self._mask_cache.clear()
            self._emit(Change.BREAKPOINTS)

    def toggle_step_breakpoint(self, t: int) -> None:
        """Add ``step t`` or remove it if present (a click in the gutter of a code debugger)."""
        existing = [b for b in self._breakpoints if getattr(b, "step", None) == t]
        if existing:
            for b in existing:
                self.remove_breakpoint(b)
        else:
            self.add_breakpoint(f"step {t}")

    def breakpoint_mask(self, bps: Iterable[Breakpoint] | None = None) -> npt.NDArray[np.bool_]:
        """``(T,)``: steps where any enabled breakpoint fires (for slider ticks and searching).
        On a bounded trace only step breakpoints and the hits found so far are marked: a
        condition there is evaluated by streaming scans (``run_to_breakpoint``)."""
        m = np.zeros(self._trace.n_steps, dtype=bool)
        if getattr(self._trace, "bounded", False):
            for h in self._hits:
                m[h.step] = True
            bps = [b for b in (self._breakpoints if bps is None else bps) if hasattr(b, "step")]
        for bp in self._breakpoints if bps is None else bps:
            if bp.enabled:
                if bp not in self._mask_cache:
                    self._mask_cache[bp] = bp.mask(self._trace)
                m |= self._mask_cache[bp]
        return m

    def run_to_breakpoint(self, forward: bool = True) -> tuple[Hit, ...]:
        """Move to the next (or previous) step where an enabled breakpoint fires.

        Like a code debugger's *continue*: with no further hit the cursor goes to the end
        (or the start) and the returned hits are empty.
        """
        if getattr(self._trace, "bounded", False):  # no mask of all steps: stream windows
            return self._run_to_breakpoint_streaming(forward)
        mask = self.breakpoint_mask()
        steps = np.flatnonzero(mask)
        if forward:
            later = steps[steps > self._step]
            target = int(later[0]) if later.size else self._trace.n_steps - 1
        else:
            earlier = steps[steps < self._step]
            target = int(earlier[-1]) if earlier.size else 0
        hits: tuple[Hit, ...] = ()
        if mask[target] and target != self._step:
            hits = tuple(
                h for bp in self._breakpoints if bp.enabled for h in bp.hits(self._trace, target)
            )
        self._move(target, hits)
        return hits

    def _run_to_breakpoint_streaming(
        self, forward: bool, cancel: Callable[[], bool] | None = None
    ) -> tuple[Hit, ...]:
        """``run_to_breakpoint`` on a bounded trace: windows scanned from the cursor on
        (``trace_scan``); ``Cancelled`` propagates when ``cancel()`` says stop."""
        from lstmviz.core.trace_scan import next_hit

        found = next_hit(self._trace, self._breakpoints, self._step, forward, cancel=cancel)  # type: ignore[arg-type]
        return self.apply_hit(found, forward)

    def apply_hit(
        self, found: tuple[int, tuple[Hit, ...]] | None, forward: bool
    ) -> tuple[Hit, ...]:
        """Move as ``run_to_breakpoint`` does to a hit found by a scan (``trace_scan.next_hit``,
        e.g. run in a worker): to its step, else to the end (start) with no hits."""
        if found is None:
            self._move(self._trace.n_steps - 1 if forward else 0, ())
            return ()
        target, hits = found
        self._move(target, hits)
        return hits

    # -- selection -----------------------------------------------------------------------------
    def select(
        self,
        layer: int | None = None,
        direction: int | None = None,
        unit: int | None = None,
        gate: str | None = None,
    ) -> None:
        """Focus a layer/direction/unit/gate; out-of-range values are clamped."""
        s = self._selection
        new = Selection(
            s.layer if layer is None else layer,
            s.direction if direction is None else direction,
            s.unit if unit is None else unit,
            s.gate if gate is None else gate,
        )
        gates = self.gate_names()
        if new.gate not in gates:
            raise ValueError(f"gate must be one of {', '.join(gates)}, got {new.gate!r}")
        new = self._clamped(new)
        if new != s:
            self._selection = new
            self._emit(Change.SELECTION)

    def gate_names(self) -> tuple[str, ...]:
        """Every gate a layer of this model has, in the order the cells name them (i, f, g, o
        for an LSTM model; r, z, n added for a GRU layer)."""
        names: dict[str, None] = {}
        for lt in self._trace.layers:
            names.update(dict.fromkeys(lt.layer.cell.gate_names))
        return tuple(names)

    def _clamped(self, s: Selection) -> Selection:
        """In range, and a gate of the selected layer's cell: one it lacks (``f`` when a GRU
        layer is selected) becomes that cell's retention gate (z), else its first gate."""
        layers = self._trace.layers
        k = min(max(s.layer, 0), len(layers) - 1)
        d = min(max(s.direction, 0), len(layers[k].directions) - 1)
        w = layers[k].directions[d].weights
        gate = s.gate
        if gate not in w.cell.gate_names:
            gate = w.cell.retention_gate or w.cell.gate_names[0]
        return Selection(k, d, min(max(s.unit, 0), w.hidden_size - 1), gate)
