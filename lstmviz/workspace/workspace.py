"""The one source of truth of a window; views subscribe to its events, nothing pushes state.

Every setter changes all dependent fields first and only then emits, so a listener never sees
a half-updated workspace: a new model resets the layer/direction and clamps the unit *before*
any view hears ``MODEL``; the trace is None (computing) rather than the previous model's.
Heavy work goes through ``submit`` as a ``Job`` on the ``Runner`` given at construction; a
newer job of a kind cancels the older one, and a result that is no longer current is dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core import compiled
from lstmviz.core.bounded_run import run_bounded
from lstmviz.core.breakpoints import Breakpoint, Hit, parse_breakpoint
from lstmviz.core.cells import registered
from lstmviz.core.checkpointed_trace import wants_bounded
from lstmviz.core.compute import run
from lstmviz.core.debugger import Change as DebuggerChange
from lstmviz.core.debugger import Debugger, Selection
from lstmviz.core.model import LSTMModel
from lstmviz.core.sequence import generate_sequence, validate
from lstmviz.core.trace import Trace
from lstmviz.workspace.events import Change, Emitter, Event, Listener
from lstmviz.workspace.files import FileRequests
from lstmviz.workspace.host import JobHost
from lstmviz.workspace.jobs import InlineRunner, Job, Runner
from lstmviz.workspace.states import StateMap, initial_states, run_cost

logger = logging.getLogger(__name__)

DEFAULT_LENGTH = 50


@dataclasses.dataclass(frozen=True)
class Options:
    """View options shared by the views (one place, so an export sees what the screen shows)."""

    stored_order: bool = False  # weights as the file stores them
    product_per_unit: bool = False  # forget-gate product of the selected unit, not the mean


class Workspace(FileRequests, JobHost):
    """Model, sequence, states, trace, debugger, selection, breakpoints, options, jobs."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner if runner is not None else InlineRunner()
        self._events = Emitter()
        self.model: LSTMModel | None = None
        self.model_path: str | None = None
        self.sequence: npt.NDArray[np.float64] | None = None
        self.sequence_source = ""
        self.states: StateMap = {}
        self._trace: Trace | None = None
        self._debugger: Debugger | None = None
        self._detach_debugger: Callable[[], None] | None = None
        self._selection = Selection()
        self._step = 0
        self._pending_breakpoints: list[Breakpoint] = []
        self.options = Options()
        self.jobs: dict[str, Job] = {}
        self.last_error = ""
        self.note = ""
        self.auto_run = False  # run as soon as a model/sequence arrives (else on ensure_trace)
        #: Called with each new run in its worker, before it is shown: the front end computes
        #: what its views need from the whole run there (colour levels), off the GUI thread.
        self.prepare: Callable[[Trace, Job], None] | None = None

    # -- events ----------------------------------------------------------------------------------
    def subscribe(
        self, changes: Change | tuple[Change, ...], listener: Listener
    ) -> Callable[[], None]:
        """``listener(event)`` on every real change of those kinds; returns the unsubscriber."""
        return self._events.subscribe(changes, listener)

    def _emit(self, change: Change, value: object = None, old: object = None) -> None:
        self._events.emit(Event(change, value, old))

    # -- read-only state -------------------------------------------------------------------------
    @property
    def trace(self) -> Trace | None:
        """The run of the current model on the current sequence, or None while computing."""
        return self._trace

    @property
    def debugger(self) -> Debugger | None:
        """The cursor over ``trace``; None while no current trace exists."""
        return self._debugger if self._trace is not None else None

    @property
    def selection(self) -> Selection:
        return self._selection

    @property
    def step(self) -> int:
        return self._debugger.step if self.debugger is not None else self._step

    @property
    def breakpoints(self) -> tuple[Breakpoint, ...]:
        if self._debugger is not None:
            return self._debugger.breakpoints
        return tuple(self._pending_breakpoints)

    @property
    def hits(self) -> tuple[Hit, ...]:
        return self.debugger.hits if self.debugger is not None else ()

    def fail(self, message: str, error: BaseException | None = None, kind: str = "") -> None:
        """Say a request failed; nothing else changes (the previous model or sequence stays).
        The event's value is ``(kind, message, error)``; kind is "load", "sequence", "run"
        or "export"."""
        self.last_error = message
        self._emit(Change.ERROR, (kind, message, error))

    def say(self, text: str) -> None:
        """A one-line note for the user (an export's path, why F5 found no breakpoint)."""
        self.note = text
        self._emit(Change.NOTE, text)

    # -- model -----------------------------------------------------------------------------------
    def set_model(self, model: LSTMModel, path: str | None = None) -> None:
        """Show ``model``: every field that depends on it is reset or clamped, then events.
        It supersedes the requests still running for the previous one (a pending open too)."""
        for kind in ("load", "run", "diagnostics", "sequence"):  # an export finishes anyway
            self.cancel(kind)
        old = self.model
        self.model, self.model_path = model, path or model.source_path
        self.last_error = ""
        old_sel = self._selection
        self._selection = self._clamped(Selection(0, 0, old_sel.unit, old_sel.gate))
        x = self.sequence
        if x is None or x.shape[1] != model.input_size:
            self.sequence = generate_sequence("sine", DEFAULT_LENGTH, model.input_size)
            self.sequence_source = f"a generated sine ({DEFAULT_LENGTH} steps)"
        self.states = {}
        self._step = self.step  # kept (clamped) for the new model's run
        self._trace = None
        self._emit(Change.MODEL, model, old)
        if self._selection != old_sel:
            self._emit(Change.SELECTION, self._selection, old_sel)
        self._emit(Change.SEQUENCE, self.sequence)
        self._emit(Change.STATES, {})
        self._emit(Change.TRACE, None)
        if self.auto_run:
            self.ensure_trace()

    # -- sequence and states ---------------------------------------------------------------------
    def set_sequence(self, x: npt.ArrayLike, source: str = "") -> bool:
        """Use ``x (T, D)``; a bad one emits ``ERROR`` and the previous sequence stays."""
        if self.model is None:
            self.fail("Open a model before a sequence", kind="sequence")
            return False
        try:
            arr = validate(x, self.model.input_size)
        except ValueError as exc:
            self.fail(str(exc), exc, "sequence")
            return False
        previous = (self.sequence, self.sequence_source)
        self.sequence, self.sequence_source = arr, source or f"{arr.shape[0]} steps"
        self._emit(Change.SEQUENCE, arr, previous[0])
        if self._trace is None and not self.auto_run and "run" not in self.jobs:
            return True  # nobody looks at a run yet: computed on ensure_trace
        return self._rerun(lambda: self._restore_sequence(*previous))

    def _restore_sequence(self, x: np.ndarray | None, source: str) -> None:
        self.sequence, self.sequence_source = x, source
        self._emit(Change.SEQUENCE, x)

    def set_states(self, states: StateMap) -> bool:
        previous = self.states
        self.states = dict(states)
        self._emit(Change.STATES, self.states, previous)

        def restore() -> None:
            self.states = previous
            self._emit(Change.STATES, previous)

        return self._rerun(restore)

    # -- running ---------------------------------------------------------------------------------
    def ensure_trace(self, wait: bool = False) -> None:
        """Compute the trace if there is none and nothing is computing it (``wait``: here,
        now, e.g. for a headless screenshot)."""
        if self._trace is None and self.model is not None and ("run" not in self.jobs or wait):
            self._rerun(None, wait)

    def _rerun(self, restore: Callable[[], None] | None, wait: bool = False) -> bool:
        """Run the model on the sequence in a job; False if an inline run already failed."""
        model, x, states = self.model, self.sequence, dict(self.states)
        if model is None or x is None:
            return False
        failed: list[bool] = []

        def work(job: Job) -> Trace:
            h0, c0 = initial_states(model, states)
            # the compiled engine only once it is ready: never wait here for its first compile
            engine = "auto" if compiled.ready() else "numpy"
            if wants_bounded(model, x):  # too large to record whole: checkpoints, with progress
                report = lambda f: job.report(0.9 * f)  # noqa: E731
                trace = run_bounded(model, x, h0, c0, engine=engine, progress=report)
            else:
                trace = run(model, x, h0, c0, engine=engine, trace="full")
            job.report(0.9)
            if self.prepare is not None:
                self.prepare(trace, job)
            return trace

        def done(trace: Trace | None, error: BaseException | None) -> None:
            if error is not None or trace is None:
                failed.append(True)
                if restore is not None:
                    restore()
                self.fail(str(error), error, "run")
                return
            self._take_trace(trace)

        cost = run_cost(model, x.shape[0])
        label = f"computing {x.shape[0]} steps"
        started = time.perf_counter()

        def timed_done(trace: Trace | None, error: BaseException | None) -> None:
            if error is None and cost > 1e8:  # learn this machine's speed from real runs
                self._run_speed = cost / max(time.perf_counter() - started, 1e-3)
            done(trace, error)

        expected = cost / self._run_speed if self._run_speed else None
        self.submit("run", label, work, timed_done, cost, wait, expected)
        return not failed

    def _take_trace(self, trace: Trace) -> None:
        old = self._trace
        if self._debugger is None:
            self._debugger = Debugger(trace)
            for bp in self._pending_breakpoints:
                self._debugger.add_breakpoint(bp)
            self._pending_breakpoints.clear()
            self._detach_debugger = self._debugger.subscribe(self._on_debugger_change)
        self._trace = trace
        self._muted = True  # the events below say it all, in order
        try:
            if self._debugger.trace is not trace:
                self._debugger.set_trace(trace)
            self._debugger.select(**self._selection_kwargs())
            if old is None:  # a step asked for while the run computed (or kept from before)
                self._debugger.go_to(self._step)
        finally:
            self._muted = False
        self._emit(Change.TRACE, trace, old)
        self._emit(Change.STEP, self._debugger.step)
        self._emit(Change.HIT, ())
        self._emit(Change.BREAKPOINTS, self._debugger.breakpoints)

    _muted = False
    _run_speed = 0.0  # flops per second of the last large run

    def _selection_kwargs(self) -> dict[str, Any]:
        s = self._selection
        return {"layer": s.layer, "direction": s.direction, "unit": s.unit, "gate": s.gate}

    def _on_debugger_change(self, change: DebuggerChange) -> None:
        """Forward the cursor's own events; selection and trace are the workspace's.
        Breakpoints outlive runs and models: their changes are forwarded even while the
        next run computes; a step or hit of a run no longer shown is not."""
        if self._muted or self._debugger is None:
            return
        if DebuggerChange.BREAKPOINTS in change:
            self._emit(Change.BREAKPOINTS, self._debugger.breakpoints)
        if self._debugger.trace is not self._trace:
            return
        if DebuggerChange.SELECTION in change:  # a script called debugger.select(...)
            s = self._debugger.selection
            self.select(layer=s.layer, direction=s.direction, unit=s.unit, gate=s.gate)
        if DebuggerChange.STEP in change:
            self._emit(Change.STEP, self._debugger.step)
        if DebuggerChange.HIT in change:
            self._emit(Change.HIT, self._debugger.hits)

    # -- cursor ----------------------------------------------------------------------------------
    def go_to_step(self, t: int) -> None:
        """Move the cursor (kept and applied to the trace when it arrives)."""
        if self.debugger is not None:
            self.debugger.go_to(int(t))
        elif int(t) != self._step:
            self._step = max(int(t), 0)
            self._emit(Change.STEP, self._step)

    def step_by(self, n: int) -> None:
        self.go_to_step(self.step + n)

    def run_to_breakpoint(self, forward: bool = True) -> tuple[Hit, ...]:
        """Continue to the next (previous) hit and show where it fired: a hit in another
        layer or direction selects it (a code debugger opens the file that stopped)."""
        dbg = self.debugger
        if dbg is None:
            return ()
        start = dbg.step
        if getattr(dbg.trace, "bounded", False):  # steps recomputed: scanned in a worker
            self._scan_to_breakpoint(forward)
            return dbg.hits
        # select first, so the views that hear HIT already show the hit's layer
        mask = dbg.breakpoint_mask()
        hits = dbg.run_to_breakpoint(forward)
        if hits:
            self._follow(hits)
            return hits
        where = f"after step {start}" if forward else f"before step {start}"
        end = "last" if forward else "first"
        if not any(b.enabled for b in dbg.breakpoints):
            self.say(
                f"No breakpoints are set (type one under Breakpoints); went to the {end} step."
            )
        elif not mask.any():
            self.say(f"No breakpoint fires on this run; went to the {end} step ({dbg.step}).")
        else:
            self.say(f"No breakpoint fires {where}; went to the {end} step ({dbg.step}).")
        return hits

    def _scan_to_breakpoint(self, forward: bool) -> None:
        """``run_to_breakpoint`` on a bounded trace: a job scanning window by window from
        the cursor (``trace_scan``), cancelled like any job (a newer scan, *Cancel*)."""
        from lstmviz.core.trace_scan import next_hit

        dbg = self.debugger
        assert dbg is not None
        trace, bps, start = dbg.trace, dbg.breakpoints, dbg.step

        def work(job: Job) -> Any:
            return next_hit(trace, bps, start, forward,  # type: ignore[arg-type]
                            cancel=lambda: job.cancelled, progress=job.report)  # fmt: skip

        def done(found: Any, error: BaseException | None) -> None:
            if error is not None:
                self.fail(f"breakpoint scan failed: {error}", error, "scan")
                return
            if dbg.trace is not trace:
                return  # another run meanwhile
            hits = dbg.apply_hit(found, forward)
            if hits:
                self._follow(hits)
            elif not any(b.enabled for b in bps):
                self.say("No breakpoints are set (type one under Breakpoints).")
            else:
                where = f"after step {start}" if forward else f"before step {start}"
                end = "last" if forward else "first"
                self.say(f"No breakpoint fires {where}; went to the {end} step ({dbg.step}).")

        label = f"scanning {trace.n_steps:,} steps for a breakpoint"
        self.submit("scan", label, work, done, cost=run_cost(trace.model, trace.n_steps))

    def _follow(self, hits: tuple[Hit, ...]) -> None:
        s = self._selection
        located = [h for h in hits if h.layer is not None]
        here = (s.layer, s.direction)
        if not located or any((h.layer, h.direction or 0) == here for h in located):
            return
        h = located[0]
        unit = h.units[0] if h.units else None
        self.select(layer=h.layer, direction=h.direction or 0, unit=unit)

    # -- selection -------------------------------------------------------------------------------
    def select(
        self,
        layer: int | None = None,
        direction: int | None = None,
        unit: int | None = None,
        gate: str | None = None,
    ) -> None:
        """Focus a layer/direction/unit/gate (clamped to the model); one event if it changed.
        A new layer keeps the direction and unit where they fit (clamped otherwise)."""
        s = self._selection
        new = Selection(
            s.layer if layer is None else int(layer),
            s.direction if direction is None else int(direction),
            s.unit if unit is None else int(unit),
            s.gate if gate is None else gate,
        )
        gates = self.gate_names()
        if new.gate not in gates:
            raise ValueError(f"gate must be one of {', '.join(gates)}, got {new.gate!r}")
        new = self._clamped(new)
        if new == s:
            return
        self._selection = new
        if self._debugger is not None and self._trace is not None:
            self._muted = True
            try:
                self._debugger.select(**self._selection_kwargs())
            finally:
                self._muted = False
        self._emit(Change.SELECTION, new, s)

    def gate_names(self) -> tuple[str, ...]:
        """Gates a selection may name: those of the model's cells (every known cell's before a
        model is open), in the cells' order."""
        cells = [layer.cell for layer in self.model.layers] if self.model else registered()
        return tuple(dict.fromkeys(g for cell in cells for g in cell.gate_names))

    def _clamped(self, s: Selection) -> Selection:
        """In range, and a gate of the selected layer's cell: one it lacks (``f`` on a GRU
        layer) becomes that cell's retention gate (z), else its first (as the debugger does)."""
        if self.model is None:
            return Selection(0, 0, 0, s.gate)
        layers = self.model.layers
        k = min(max(s.layer, 0), len(layers) - 1)
        d = min(max(s.direction, 0), len(layers[k].directions) - 1)
        w = layers[k].directions[d]
        gate = s.gate
        if gate not in w.cell.gate_names:
            gate = w.cell.retention_gate or w.cell.gate_names[0]
        return Selection(k, d, min(max(s.unit, 0), w.hidden_size - 1), gate)

    # -- breakpoints -----------------------------------------------------------------------------
    def add_breakpoint(self, bp: Breakpoint | str) -> Breakpoint:
        """Add a breakpoint (or its text; ValueError explains a bad one)."""
        if isinstance(bp, str):
            bp = parse_breakpoint(bp)
        if self._debugger is not None:
            return self._debugger.add_breakpoint(bp)
        if bp not in self._pending_breakpoints:
            self._pending_breakpoints.append(bp)
            self._emit(Change.BREAKPOINTS, self.breakpoints)
        return bp

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        if self._debugger is not None:
            self._debugger.remove_breakpoint(bp)
        elif bp in self._pending_breakpoints:
            self._pending_breakpoints.remove(bp)
            self._emit(Change.BREAKPOINTS, self.breakpoints)

    def set_breakpoint_enabled(self, bp: Breakpoint, enabled: bool) -> None:
        if self._debugger is not None:
            self._debugger.set_enabled(bp, enabled)

    def clear_breakpoints(self) -> None:
        if self._debugger is not None:
            self._debugger.clear_breakpoints()
        elif self._pending_breakpoints:
            self._pending_breakpoints.clear()
            self._emit(Change.BREAKPOINTS, ())

    # -- options ---------------------------------------------------------------------------------
    def set_options(self, **changes: Any) -> None:
        new = dataclasses.replace(self.options, **changes)
        if new != self.options:
            old, self.options = self.options, new
            self._emit(Change.OPTIONS, new, old)
