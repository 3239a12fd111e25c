"""The step-through debugger: run a sequence once, then move a cursor and watch every gate.

Interface the main window and scripts rely on (kept): ``DebugPanel(workspace)``,
``set_model(model)``, ``set_sequence(array)``, ``go_to_step(t)``, ``current_step``, signals
``step_changed(int)`` and ``weights_link_requested(int layer, int direction, str gate, int unit)``.
Also public: ``export_trace(path)``, ``export_view(path)``, ``debugger``, ``trace``.

State lives in the ``Workspace`` (made here when none is given, e.g. a panel on its own). The
views take the workspace and subscribe to what they show; this panel only places them, wires
the toolbar (``DebugControls``) and the diagnostics view to the workspace, and turns user
actions into workspace calls. A new model reaches the views with the selection already
clamped; the old trace is gone (``None``, "computing…") before any view hears of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core.debugger import Debugger
from lstmviz.core.model import LSTMModel
from lstmviz.core.trace import Trace
from lstmviz.gui.breakpoint_editor import BreakpointEditor
from lstmviz.gui.debug_controls import DebugControls
from lstmviz.gui.diagnostics_page import DiagnosticsPage
from lstmviz.gui.note_bar import BusyLabel, NoteBar
from lstmviz.gui.playback import Playback
from lstmviz.gui.sequence_editor import SequenceEditor, StateMap
from lstmviz.gui.step_view import StepView, run_levels
from lstmviz.gui.text_view import run_is_current
from lstmviz.gui.time_plots import TimePlots, output_limits
from lstmviz.gui.trace_export import ask_export_trace, write_trace
from lstmviz.gui.unit_inspector import UnitInspector, term_limit
from lstmviz.gui.view_export import ask_export_view, save_widget
from lstmviz.gui.workers import QtRunner
from lstmviz.workspace import Change, Event, Job, Workspace
from lstmviz.workspace.workspace import DEFAULT_LENGTH

__all__ = ["DEFAULT_LENGTH", "DebugPanel"]


def prepare_trace(trace: Trace, job: Job) -> None:
    """In the run's worker: the whole-run colour levels every view needs, so showing the run
    (or another layer of it) costs the GUI thread no scan of ``(T, 4H)`` arrays."""
    output_limits(trace)
    for lt in trace.layers:
        for dt in lt.directions:
            job.check()  # a newer request cancelled this run: stop here
            run_levels(dt)
            term_limit(dt)


class DebugPanel(QWidget):
    """Sequence editor and breakpoints (left), step/time/diagnostics views, unit inspector."""

    step_changed = Signal(int)
    weights_link_requested = Signal(int, int, str, int)
    trace_changed = Signal()

    def __init__(
        self,
        workspace: Workspace | None = None,
        parent: QWidget | None = None,
        step_view: StepView | None = None,
    ) -> None:
        """``step_view``: one built beforehand on the same workspace (the main window builds
        the panel in two idle slices: the step view alone costs ~50 ms)."""
        super().__init__(parent)
        if workspace is None:  # a panel on its own runs whatever it is given at once
            workspace = Workspace(QtRunner(self))
            workspace.auto_run = True
        self.workspace = ws = workspace
        ws.prepare = prepare_trace
        self.playback: Playback | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack)
        self.placeholder = QLabel("Open a model to step through a sequence.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.placeholder)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        self.controls = DebugControls()
        layout.addWidget(self.controls)
        notes = QHBoxLayout()
        self.hit_banner = NoteBar()
        self.busy_label = BusyLabel(lambda: ws.cancel())
        notes.addWidget(self.hit_banner, 1)
        notes.addWidget(self.busy_label)
        layout.addLayout(notes)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.sequence_editor = SequenceEditor()
        self.breakpoint_editor = BreakpointEditor(ws)
        lv.addWidget(self.sequence_editor, 3)
        lv.addWidget(self.breakpoint_editor, 2)
        splitter.addWidget(left)
        self.views = QTabWidget()
        self.step_view = step_view if step_view is not None else StepView(ws)
        self.time_plots = TimePlots(ws)
        self.diagnostics_page = DiagnosticsPage(ws)
        self.views.addTab(self.step_view, "This step")
        self.views.addTab(self.time_plots, "Over time")
        self.views.addTab(self.diagnostics_page, "Diagnostics")
        # while a run computes: one clear line in place of empty plots (the views stay built)
        self.center = QStackedWidget()
        self._pending_shown = False  # the views made way for a run computing behind them
        self.center.addWidget(self.views)
        self.computing = QLabel()
        self.computing.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.computing.setWordWrap(True)
        self.center.addWidget(self.computing)
        splitter.addWidget(self.center)
        self.unit_inspector = UnitInspector(ws)
        splitter.addWidget(self.unit_inspector)
        left.setMinimumWidth(200)
        self.unit_inspector.setMinimumWidth(220)
        splitter.setSizes([300, 760, 340])
        splitter.setStretchFactor(1, 1)
        layout.addWidget(splitter, 1)
        self.stack.addWidget(content)

        # Clicking a view gives it focus, so the step keys work wherever the panel is embedded.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for view in (self.step_view, self.time_plots):  # (the diagnostics page does its own)
            view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._connect_widgets()
        self._make_shortcuts()
        ws.subscribe(Change.MODEL, self._update_model)
        ws.subscribe(Change.SEQUENCE, self._update_sequence)
        ws.subscribe(Change.TRACE, self._update_trace)
        ws.subscribe(Change.SELECTION, self._update_selection)
        ws.subscribe(Change.STEP, self._update_step)
        ws.subscribe(Change.HIT, self._update_hit)
        ws.subscribe(Change.BUSY, self._update_busy)
        ws.subscribe(Change.NOTE, self._update_note)
        ws.subscribe(Change.ERROR, self._update_error)
        if ws.model is not None:  # a workspace that already holds a model
            self._update_model(Event(Change.MODEL, ws.model))
            self._update_sequence(Event(Change.SEQUENCE, ws.sequence))
            self._update_trace(Event(Change.TRACE, ws.trace))

    # -- wiring ----------------------------------------------------------------------------------
    def _connect_widgets(self) -> None:
        ws = self.workspace
        c = self.controls
        c.first_button.clicked.connect(lambda: self.go_to_step(0))
        c.back_button.clicked.connect(lambda: self._step_by(-1))
        c.forward_button.clicked.connect(lambda: self._step_by(1))
        c.last_button.clicked.connect(self._go_last)
        c.run_button.clicked.connect(lambda: self.run_to_breakpoint(True))
        c.play_button.clicked.connect(self.toggle_play)
        c.speed.valueChanged.connect(self._on_speed_changed)
        c.slider.valueChanged.connect(self.go_to_step)
        c.step_box.valueChanged.connect(self.go_to_step)
        c.step_box.entered.connect(lambda: self.step_view.setFocus())  # arrows step again
        c.layer.currentIndexChanged.connect(lambda k: ws.select(layer=k))
        c.direction.currentIndexChanged.connect(lambda d: ws.select(direction=d))
        menu = c.export_menu
        menu.addAction("Trace as NPZ…", lambda: ask_export_trace(self, ws, "npz"))
        menu.addAction("Trace as CSV…", lambda: ask_export_trace(self, ws, "csv"))
        menu.addAction("This view as PNG…", lambda: ask_export_view(self, "png"))
        menu.addAction("This view as SVG…", lambda: ask_export_view(self, "svg"))
        self.sequence_editor.sequence_chosen.connect(self._on_editor_sequence_chosen)
        self.sequence_editor.open_file = self._open_sequence_file
        self.sequence_editor.attach(ws)  # long generations run as the window's jobs
        self.sequence_editor.states_chosen.connect(self._on_editor_states_chosen)
        self.breakpoint_editor.run_requested.connect(self.run_to_breakpoint)
        self.step_view.unit_clicked.connect(lambda u: ws.select(unit=u))
        c.reset_zoom_button.clicked.connect(self.step_view.reset_zoom)
        self.time_plots.step_requested.connect(self.go_to_step)
        self.unit_inspector.weights_link_requested.connect(self.weights_link_requested)

    def _make_shortcuts(self) -> None:
        keys = {
            Qt.Key.Key_Right: lambda: self._step_by(1),
            Qt.Key.Key_Left: lambda: self._step_by(-1),
            Qt.Key.Key_Home: lambda: self.go_to_step(0),
            Qt.Key.Key_End: self._go_last,
            Qt.Key.Key_Space: self.toggle_play,
            Qt.Key.Key_F5: lambda: self.run_to_breakpoint(True),
            QKeySequence("Shift+F5"): lambda: self.run_to_breakpoint(False),
            QKeySequence("Ctrl+G"): self._focus_step_box,
        }
        self._shortcuts = []
        for key, slot in keys.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

    def _focus_step_box(self) -> None:
        box = self.controls.step_box
        box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        box.selectAll()

    def _go_last(self) -> None:
        if self.workspace.trace is not None:
            self.workspace.go_to_step(self.workspace.trace.n_steps - 1)

    # -- public API ------------------------------------------------------------------------------
    @property
    def diagnostics_view(self):
        """The Diagnostics tab's view (built on first use)."""
        return self.diagnostics_page.view

    @property
    def current_step(self) -> int:
        return self.workspace.step

    @property
    def debugger(self) -> Debugger | None:
        return self.workspace.debugger

    @property
    def trace(self) -> Trace | None:
        return self.workspace.trace

    @property
    def sequence(self) -> np.ndarray | None:
        return self.workspace.sequence

    def set_model(self, model: LSTMModel | None, sequence: np.ndarray | None = None) -> None:
        """Show a new model on ``sequence``, else on the current one if its width still fits,
        else on a sine wave."""
        if model is None:
            self.stack.setCurrentIndex(0)
            return
        self.workspace.set_model(model)
        if sequence is not None:
            self.set_sequence(sequence)

    def set_sequence(self, x: np.ndarray) -> bool:
        """Run on ``x (T, D)``; a bad one shows a message by the editor and returns False.

        The previous sequence (and its trace) stays, so a typo never loses the user's place.
        """
        if self.workspace.set_sequence(np.asarray(x, dtype=float)):
            return True
        self.sequence_editor.show_error(self.workspace.last_error)
        return False

    def go_to_step(self, t: int) -> None:
        self.workspace.ensure_trace()  # a cancelled run is computed again when stepped
        self.workspace.go_to_step(int(t))

    def _step_by(self, n: int) -> None:
        self.workspace.ensure_trace()
        self.workspace.step_by(n)

    def select(self, layer: int, direction: int = 0) -> None:
        """Show ``layer``/``direction`` (clamped), e.g. when the user picks it in the model tree."""
        self.workspace.select(layer=layer, direction=direction)

    def run_to_breakpoint(self, forward: bool = True) -> None:
        """Continue to the next (previous) hit; with none, say so rather than just jumping."""
        if self.playback is not None:
            self.playback.pause()
        self.workspace.run_to_breakpoint(forward)

    def show_notice(self, text: str) -> None:
        """A neutral line above the views (gone at the next step), e.g. where an export went."""
        self.workspace.say(text)

    def toggle_play(self) -> None:
        if self.playback is not None and self.workspace.trace is not None:
            self.playback.toggle()

    def export_trace(self, path: str | os.PathLike[str]) -> list[Path]:
        """``*.npz``: every recorded array, named; ``*.csv`` one table; else a folder of CSVs."""
        if self.trace is None:
            raise ValueError("nothing to export: no model or sequence yet")
        return write_trace(self.trace, path)  # the menu runs it as a job: trace_export

    def export_view(self, path: str | os.PathLike[str], view: QWidget | None = None) -> Path:
        """Save the current view (or ``view``) as PNG, or as SVG when the path ends in .svg.
        A hover readout belongs to the mouse, not to the picture: it is cleared first."""
        widget = view if view is not None else self.views.currentWidget()
        for v in (self.step_view, widget):
            if hasattr(v, "clear_hover"):
                v.clear_hover()
        return save_widget(widget, path)

    # -- user input ------------------------------------------------------------------------------
    def _on_editor_sequence_chosen(self, x: np.ndarray, source: str) -> None:
        if not self.workspace.set_sequence(x, source):
            self.sequence_editor.show_error(self.workspace.last_error)

    def _open_sequence_file(self, path: str) -> None:
        """The editor's Load file…: read in a worker (progress and cancel in the window's
        job bar); a refusal reaches the editor through the workspace's error event."""
        name = Path(path).name

        def done(ok: bool) -> None:
            if ok and self.workspace.sequence is not None:
                self.sequence_editor.file_opened(name, self.workspace.sequence)

        self.workspace.open_sequence(path, on_done=done)

    def _on_editor_states_chosen(self, states: StateMap) -> None:
        if not self.workspace.set_states(states):
            self.sequence_editor.show_error(self.workspace.last_error)

    def _on_speed_changed(self, value: int) -> None:
        if self.playback is not None:
            self.playback.set_rate(value)

    # -- workspace events ------------------------------------------------------------------------
    def _update_model(self, _event: Event) -> None:
        if self.playback is not None:
            self.playback.pause()
        model = self.workspace.model
        self.sequence_editor.set_model(model)
        mixed = len({layer.cell for layer in model.layers}) > 1  # then each names its kind
        names = [
            f"{k}: {layer.name or layer.cell.name.lower()} "
            f"({f'{layer.cell.name}, ' if mixed else ''}H={layer.hidden_size})"
            for k, layer in enumerate(model.layers)
        ]
        self.controls.set_layers(names)
        self._update_selection(_event)
        self.hit_banner.hide()  # a note about the previous model
        self.stack.setCurrentIndex(1)

    def _update_sequence(self, _event: Event) -> None:
        x = self.workspace.sequence
        if x is None:
            return
        self.sequence_editor.show_sequence(x)
        source = self.workspace.sequence_source
        self.sequence_editor.show_status(
            f"showing {source}; type, load or generate another"
            if source.startswith("a generated")
            else f"sequence: {x.shape[0]} steps × {x.shape[1]}"
        )

    def _update_trace(self, _event: Event) -> None:
        ws = self.workspace
        trace = ws.trace
        if trace is None:
            if self.playback is not None:
                self.playback.pause()
            self.controls.set_steps(1)
            self._show_computing()
            return
        self.center.setCurrentIndex(0)
        self._pending_shown = False  # this run's views are in (the inspector heard of it)
        if self.playback is None:
            self.playback = Playback(ws.debugger, self, stop=lambda: ws.run_to_breakpoint(True))
            self.playback.set_rate(self.controls.speed.value())
            self.playback.playing_changed.connect(self.controls.set_playing)
        self.controls.set_steps(trace.n_steps)
        self._update_selection(_event)
        self._update_step(_event)
        self.trace_changed.emit()

    def _update_selection(self, _event: Event) -> None:
        ws = self.workspace
        s = ws.selection
        c = self.controls
        model = ws.model
        if model is None:
            return
        c.layer.blockSignals(True)
        c.layer.setCurrentIndex(s.layer)
        c.layer.blockSignals(False)
        c.direction.blockSignals(True)
        c.direction.setCurrentIndex(s.direction)
        c.direction.setEnabled(model.layers[s.layer].bidirectional)
        c.direction.blockSignals(False)
        if self._pending_shown:  # the inspector heard first and drew the previous run
            self.unit_inspector.clear_data("computing…")

    def _update_step(self, _event: Event) -> None:
        ws = self.workspace
        if ws.trace is None:
            return
        t = ws.step
        if not ws.hits and self.hit_banner.isVisible():
            self.hit_banner.hide()  # a note belongs to the step it was said at
        self.controls.show_step(t, ws.trace.n_steps)
        self._show_run_pending()
        self.step_changed.emit(t)

    def _update_hit(self, _event: Event) -> None:
        ws = self.workspace
        hits = ws.hits
        if hits:
            text = f"● Breakpoint hit at step {ws.step} — " + "; ".join(h.describe() for h in hits)
            self.hit_banner.show_text(text, hit=True)
        else:
            self.hit_banner.hide()

    def _update_busy(self, _event: Event) -> None:
        ws = self.workspace
        self.busy_label.show_jobs(tuple(ws.jobs.values()))
        if ws.trace is None and ws.model is not None:
            self._show_computing()
        elif ws.trace is not None:
            self.controls.show_step(ws.step, ws.trace.n_steps)
            self._show_run_pending()

    def _show_run_pending(self) -> None:
        """A new run is computing while the workspace keeps the previous one (it comes back if
        the new one fails or is cancelled): the views make way for "Running the model…" and
        the inspector says computing, the step range says so and the slider rests, rather
        than show the previous sequence's numbers (a 200,000-step run's diagnostics and
        "step 123456" beside a new sequence of 25,000 steps) or "step 49 of 0–49"."""
        ws = self.workspace
        pending = "run" in ws.jobs
        self.controls.slider.setEnabled(not pending)
        self.controls.step_box.setEnabled(not pending)
        if pending != self._pending_shown:
            self._pending_shown = pending
            if pending:
                steps = 0 if ws.sequence is None else len(ws.sequence)
                self.computing.setText(
                    f"Running the model on {steps} steps… the views appear when it is done."
                )
                self.center.setCurrentIndex(1)
                self.unit_inspector.clear_data("computing…")
            elif not run_is_current(ws.trace, ws.sequence):  # cancelled: no run of this x
                self.computing.setText(
                    "Not computed (cancelled): the views would show the previous sequence's"
                    " run. Apply the sequence again to run it."
                )
            else:  # failed: the previous run, on its sequence again
                self.center.setCurrentIndex(0)
                self.unit_inspector.show_run()
        if pending:
            steps = "" if ws.sequence is None else f" {len(ws.sequence)} steps"
            self.controls.step_label.setText(f"computing{steps}…")
            self.controls.step_label.setToolTip(
                f"step {ws.step} of the previous run (0–{ws.trace.n_steps - 1}) is shown"
                " until the new run is in"
            )
        else:
            self.controls.step_label.setToolTip("")

    def _show_computing(self) -> None:
        """No run to show yet: say whether one is computing or was cancelled (the next step
        key, or showing the debugger again, computes it)."""
        ws = self.workspace
        computing = "run" in ws.jobs
        self.controls.step_label.setText("computing…" if computing else "not computed")
        self.controls.step_box.setEnabled(False)  # no steps to go to until a run is in
        self.unit_inspector.clear_data("computing…" if computing else "not computed")
        steps = 0 if ws.sequence is None else len(ws.sequence)
        self.computing.setText(
            f"Running the model on {steps} steps… the views appear when it is done."
            if computing
            else "Not computed (cancelled). Step, or change the sequence, to run it."
        )
        self.center.setCurrentIndex(1)

    def _update_error(self, event: Event) -> None:
        kind, message, _error = event.value
        if kind == "export":
            self.hit_banner.show_text(message, hit=True)

    def _update_note(self, _event: Event) -> None:
        self.hit_banner.show_text(self.workspace.note, hit=False)
