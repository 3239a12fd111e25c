"""The Diagnostics tab: the diagnostics view, fed by a worker, with "computing… n %" meanwhile.

``DiagnosticsView`` computes in its ``refresh``; the costly parts (retention-gate product, first
NaN, per-direction report) are memoised on the run (``core.diagnostics._memo``), so a job
computes them off the GUI thread first and the view's own call then finds them ready. Until
the job for the current run and selection is done, the tab shows a progress page instead of
the previous model's numbers; a newer run or selection cancels the older job.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

from lstmviz.core import diagnostics as diag
from lstmviz.core.trace import Trace
from lstmviz.gui.diagnostics_view import DiagnosticsView
from lstmviz.workspace import Change, Event, Job, Workspace


def _same(a: tuple | None, b: tuple | None) -> bool:
    """Keys ``(trace, layer, direction, unit)``: the run by identity (``Trace.__eq__`` would
    compare arrays, and fail on two lengths)."""
    if a is None or b is None:
        return a is b
    return a[0] is b[0] and a[1:] == b[1:]


class DiagnosticsPage(QStackedWidget):
    """Page 0: "computing…"; page 1: the view (``self.view``), current for ``self.shown``."""

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.progress = QLabel("")
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.addWidget(self.progress)
        self._view: DiagnosticsView | None = None  # built when first needed (~0.2 s)
        #: (trace, layer, direction, unit, per-unit) the view shows, once its numbers are ready
        self.shown: tuple | None = None
        self._wanted: tuple | None = None
        workspace.subscribe((Change.TRACE, Change.SELECTION), self._update_request)
        workspace.subscribe(Change.STEP, self._update_step)
        workspace.subscribe(Change.BUSY, self._update_busy)
        workspace.subscribe(Change.OPTIONS, self._update_options)
        if workspace.trace is not None:  # built after the run (the debugger is lazy)
            self._update_request(Event(Change.TRACE, workspace.trace))

    @property
    def view(self) -> DiagnosticsView:
        """The diagnostics view, built on first use; its clicks go to the workspace."""
        if self._view is None:
            ws = self.workspace
            view = DiagnosticsView()
            view.product_mode.setCurrentIndex(int(ws.options.product_per_unit))
            view.product_mode.currentIndexChanged.connect(self._on_product_mode_changed)
            view.unit_requested.connect(lambda u: ws.select(unit=u))
            view.step_requested.connect(ws.go_to_step)
            view.plots.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            self.addWidget(view)
            self._view = view
        return self._view

    # -- workspace events ------------------------------------------------------------------------
    def _key(self) -> tuple | None:
        ws = self.workspace
        if ws.trace is None:
            return None
        s = ws.selection
        per_unit = ws.options.product_per_unit
        return (ws.trace, s.layer, s.direction, s.unit if per_unit else None)

    def _update_request(self, _event: Event | None) -> None:
        key = self._key()
        if key is None:
            self.workspace.cancel("diagnostics")
            self._wanted = self.shown = None
            if self._view is not None:
                self._view._trace = None  # its refresh() does nothing without a trace
            self.progress.setText("computing…" if self.workspace.model is not None else "")
            self.setCurrentIndex(0)
            return
        if _same(key, self.shown):
            s = self.workspace.selection  # the unit only, with the mean product: no work
            self.view.set_selection(s.layer, s.direction, s.unit)
            return
        if self.isHidden():
            self._wanted = key  # a tab behind another: computed when it is opened,
            self.setCurrentIndex(0)  # and meanwhile it holds no other run's numbers
            return
        self._compute(key)

    def _on_product_mode_changed(self, index: int) -> None:
        self.workspace.set_options(product_per_unit=index == 1)

    def _update_options(self, _event: Event) -> None:
        index = int(self.workspace.options.product_per_unit)
        if self._view is not None and self._view.product_mode.currentIndex() != index:
            self._view.product_mode.setCurrentIndex(index)  # the view and the request follow
        else:
            self._update_request(None)

    def _update_step(self, _event: Event) -> None:
        if self.shown is not None:
            self.view.show_step(self.workspace.step)

    def _update_busy(self, _event: Event) -> None:
        job = self.workspace.jobs.get("diagnostics")
        if job is not None:
            percent = f" {job.progress * 100:.0f} %" if job.progress > 0 else ""
            self.progress.setText(f"computing diagnostics…{percent}")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        key = self._key()
        if (
            key is not None
            and not _same(key, self.shown)
            and "diagnostics" not in self.workspace.jobs
        ):
            self._compute(key)

    # -- work ------------------------------------------------------------------------------------
    def _compute(self, key: tuple) -> None:
        trace, layer, direction, unit = key
        self._wanted = key
        self.progress.setText("computing diagnostics…")
        self.setCurrentIndex(0)
        dt = trace.layers[layer].directions[direction]
        cost = float(len(diag.product_steps(trace.n_steps))) ** 2 * dt.weights.hidden_size
        cost += 12.0 * sum(d.h.size for lt in trace.layers for d in lt.directions)

        def work(job: Job) -> None:
            if getattr(trace, "bounded", False):  # streamed passes, cancellable, with progress
                from lstmviz.core import trace_stream

                trace_stream.prepare(trace, dt, unit, lambda: job.cancelled, job.report)
            with np.errstate(invalid="ignore"):
                if dt.cell.retention_gate is not None:  # a plain RNN has no product
                    diag.forget_product(dt, unit)
                job.report(0.6)
                diag.first_nonfinite(trace)
                job.report(0.8)
                diag.report(trace)

        self.workspace.submit(
            "diagnostics", "computing diagnostics", work, lambda _r, e: self._done(key, e), cost
        )

    def _done(self, key: tuple, error: BaseException | None) -> None:
        if not _same(key, self._key()):
            return  # the run or the selection moved on meanwhile
        if error is not None:
            self.progress.setText(f"diagnostics failed: {error}")
            return
        self._show(key)

    def _show(self, key: tuple) -> None:
        trace: Trace = key[0]
        s = self.workspace.selection
        view = self.view
        if view._trace is not trace:
            view._sel = (s.layer, s.direction, s.unit)  # set_trace reads it
            view.set_trace(trace)  # refresh() finds the numbers memoised: no work here
        else:
            view.set_selection(s.layer, s.direction, s.unit)
        self.setCurrentIndex(1)
        view.refresh(force=True)
        view.show_step(self.workspace.step)
        self.shown = key
