"""The step-through debugger: run a sequence once, then move a cursor and watch every gate.

Interface the main window relies on (kept): ``DebugPanel(parent)``, ``set_model(model)``,
``set_sequence(array)``, ``go_to_step(t)``, ``current_step``, signals ``step_changed(int)`` and
``weights_link_requested(int layer, int direction, str gate, int unit)``. Also public:
``export_trace(path)``, ``export_view(path)``, ``debugger``, ``trace``.

Data flows one way: sequence → ``run`` (once) → ``Debugger`` → ``DebuggerBridge`` → views.
A step repaints only the visible views and only swaps data in existing items.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core import compiled
from lstmviz.core.compute import run
from lstmviz.core.debugger import Debugger
from lstmviz.core.export import save_trace_csv, save_trace_npz
from lstmviz.core.model import LSTMModel
from lstmviz.core.sequence import generate_sequence, validate
from lstmviz.core.trace import Trace
from lstmviz.gui.breakpoint_editor import BreakpointEditor
from lstmviz.gui.bridge import DebuggerBridge
from lstmviz.gui.debug_controls import Banner, DebugControls
from lstmviz.gui.diagnostics_view import DiagnosticsView
from lstmviz.gui.playback import Playback
from lstmviz.gui.sequence_editor import SequenceEditor, StateMap, initial_states
from lstmviz.gui.step_view import StepView
from lstmviz.gui.time_plots import TimePlots
from lstmviz.gui.unit_inspector import UnitInspector
from lstmviz.gui.view_export import ask_export_trace, ask_export_view, save_widget

DEFAULT_LENGTH = 50


class DebugPanel(QWidget):
    """Sequence editor and breakpoints (left), step/time/diagnostics views, unit inspector."""

    step_changed = Signal(int)
    weights_link_requested = Signal(int, int, str, int)
    trace_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: LSTMModel | None = None
        self._x: np.ndarray | None = None
        self._states: StateMap = {}
        self._pending_step = 0
        self.debugger: Debugger | None = None
        self.bridge: DebuggerBridge | None = None
        self.playback: Playback | None = None
        self._step_view_dirty = True
        self._dir_key: tuple[int, int] | None = None

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
        self.hit_banner = Banner()
        layout.addWidget(self.hit_banner)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.sequence_editor = SequenceEditor()
        self.breakpoint_editor = BreakpointEditor()
        lv.addWidget(self.sequence_editor, 3)
        lv.addWidget(self.breakpoint_editor, 2)
        splitter.addWidget(left)
        self.views = QTabWidget()
        self.step_view = StepView()
        self.time_plots = TimePlots()
        self.diagnostics_view = DiagnosticsView()
        self.views.addTab(self.step_view, "This step")
        self.views.addTab(self.time_plots, "Over time")
        self.views.addTab(self.diagnostics_view, "Diagnostics")
        splitter.addWidget(self.views)
        self.unit_inspector = UnitInspector()
        splitter.addWidget(self.unit_inspector)
        left.setMinimumWidth(200)
        self.unit_inspector.setMinimumWidth(220)
        splitter.setSizes([300, 760, 340])
        splitter.setStretchFactor(1, 1)
        layout.addWidget(splitter, 1)
        self.stack.addWidget(content)

        # Clicking a view gives it focus, so the step keys work wherever the panel is embedded.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for view in (self.step_view, self.time_plots, self.diagnostics_view.plots):
            view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._connect_widgets()
        self._make_shortcuts()

    # -- wiring ----------------------------------------------------------------------------------
    def _connect_widgets(self) -> None:
        c = self.controls
        c.first_button.clicked.connect(lambda: self._with_debugger(Debugger.first))
        c.back_button.clicked.connect(lambda: self._with_debugger(Debugger.step_back))
        c.forward_button.clicked.connect(lambda: self._with_debugger(Debugger.step_forward))
        c.last_button.clicked.connect(lambda: self._with_debugger(Debugger.last))
        c.run_button.clicked.connect(lambda: self.run_to_breakpoint(True))
        c.play_button.clicked.connect(self.toggle_play)
        c.speed.valueChanged.connect(self._on_speed_changed)
        c.slider.valueChanged.connect(self.go_to_step)
        c.layer.currentIndexChanged.connect(lambda k: self._select(layer=k))
        c.direction.currentIndexChanged.connect(lambda d: self._select(direction=d))
        menu = c.export_menu
        menu.addAction("Trace as NPZ…", lambda: ask_export_trace(self, "npz"))
        menu.addAction("Trace as CSV…", lambda: ask_export_trace(self, "csv"))
        menu.addAction("This view as PNG…", lambda: ask_export_view(self, "png"))
        menu.addAction("This view as SVG…", lambda: ask_export_view(self, "svg"))
        self.sequence_editor.sequence_chosen.connect(self._on_editor_sequence_chosen)
        self.sequence_editor.states_chosen.connect(self._on_editor_states_chosen)
        self.breakpoint_editor.run_requested.connect(self.run_to_breakpoint)
        self.step_view.unit_clicked.connect(lambda u: self._select(unit=u))
        self.diagnostics_view.unit_requested.connect(lambda u: self._select(unit=u))
        self.diagnostics_view.step_requested.connect(self.go_to_step)
        self.time_plots.step_requested.connect(self.go_to_step)
        self.unit_inspector.weights_link_requested.connect(self.weights_link_requested)
        self.views.currentChanged.connect(self._on_views_current_changed)

    def _make_shortcuts(self) -> None:
        keys = {
            Qt.Key.Key_Right: lambda: self._with_debugger(Debugger.step_forward),
            Qt.Key.Key_Left: lambda: self._with_debugger(Debugger.step_back),
            Qt.Key.Key_Home: lambda: self._with_debugger(Debugger.first),
            Qt.Key.Key_End: lambda: self._with_debugger(Debugger.last),
            Qt.Key.Key_Space: self.toggle_play,
            Qt.Key.Key_F5: lambda: self.run_to_breakpoint(True),
            QKeySequence("Shift+F5"): lambda: self.run_to_breakpoint(False),
        }
        self._shortcuts = []
        for key, slot in keys.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

    def _with_debugger(self, method) -> None:
        if self.debugger is not None:
            method(self.debugger)

    # -- public API ------------------------------------------------------------------------------
    @property
    def current_step(self) -> int:
        return self.debugger.step if self.debugger is not None else self._pending_step

    @property
    def trace(self) -> Trace | None:
        return self.debugger.trace if self.debugger is not None else None

    @property
    def sequence(self) -> np.ndarray | None:
        return self._x

    def set_model(self, model: LSTMModel | None, sequence: np.ndarray | None = None) -> None:
        """Show a new model on ``sequence`` (checked by the caller), else keep the current one
        if its width still fits, else a sine wave. Runs the model once."""
        if self.playback is not None:
            self.playback.pause()
        self._model = model
        if model is None:
            self.stack.setCurrentIndex(0)
            return
        self._states = {}
        self.sequence_editor.set_model(model)
        names = [
            f"{k}: {layer.name or 'lstm'} (H={layer.hidden_size})"
            for k, layer in enumerate(model.layers)
        ]
        self.controls.set_layers(names)
        if sequence is not None:
            self._x = validate(sequence, model.input_size)
            self.sequence_editor.show_status(
                f"sequence: {self._x.shape[0]} steps × {self._x.shape[1]}"
            )
        elif self._x is None or self._x.shape[1] != model.input_size:
            self._x = generate_sequence("sine", DEFAULT_LENGTH, model.input_size)
            self.sequence_editor.show_status(
                f"showing a generated sine ({DEFAULT_LENGTH} steps); type, load or generate another"
            )
        self.sequence_editor.show_sequence(self._x)
        self._dir_key = None
        self._recompute()
        self.stack.setCurrentIndex(1)

    def set_sequence(self, x: np.ndarray) -> bool:
        """Run on ``x (T, D)``; a bad one shows a message by the editor and returns False.

        The previous sequence (and its trace) stays, so a typo never loses the user's place.
        """
        if self._model is None:
            self._x = np.asarray(x, dtype=float)
            return True
        try:
            arr = validate(x, self._model.input_size)
        except ValueError as exc:
            self.sequence_editor.show_error(str(exc))
            return False
        previous = self._x
        self._x = arr
        if not self._recompute():
            self._x = previous
            return False
        self.sequence_editor.show_sequence(arr)
        self.sequence_editor.show_status(f"sequence: {arr.shape[0]} steps × {arr.shape[1]}")
        return True

    def go_to_step(self, t: int) -> None:
        if self.debugger is None:
            self._pending_step = int(t)
            return
        self.debugger.go_to(int(t))

    def run_to_breakpoint(self, forward: bool = True) -> None:
        """Continue to the next (previous) hit; with none, say so rather than just jumping."""
        dbg = self.debugger
        if dbg is None:
            return
        if self.playback is not None:
            self.playback.pause()
        start = dbg.step
        if dbg.run_to_breakpoint(forward):
            return
        where = f"after step {start}" if forward else f"before step {start}"
        end = "last" if forward else "first"
        if not any(b.enabled for b in dbg.breakpoints):
            text = f"No breakpoints are set (type one under Breakpoints); went to the {end} step."
        else:
            text = f"No breakpoint fires {where}; went to the {end} step ({dbg.step})."
        self.show_notice(text)

    def show_notice(self, text: str) -> None:
        """A neutral line above the views (gone at the next step), e.g. where an export went."""
        self.hit_banner.show_text(text, hit=False)

    def toggle_play(self) -> None:
        if self.playback is not None:
            self.playback.toggle()

    def export_trace(self, path: str | os.PathLike[str]) -> list[Path]:
        """``*.npz``: every recorded array, named; ``*.csv`` one table; else a folder of CSVs."""
        if self.trace is None:
            raise ValueError("nothing to export: no model or sequence yet")
        if str(path).lower().endswith(".npz"):
            return [save_trace_npz(self.trace, path)]
        return save_trace_csv(self.trace, path)

    def export_view(self, path: str | os.PathLike[str], view: QWidget | None = None) -> Path:
        """Save the current view (or ``view``) as PNG, or as SVG when the path ends in .svg."""
        return save_widget(view if view is not None else self.views.currentWidget(), path)

    # -- running ---------------------------------------------------------------------------------
    def _recompute(self) -> bool:
        h0, c0 = initial_states(self._model, self._states)
        try:
            # the compiled engine only once it is ready: never wait here for its first compile
            engine = "auto" if compiled.ready() else "numpy"
            trace = run(self._model, self._x, h0, c0, engine=engine)
        except ValueError as exc:
            self.sequence_editor.show_error(str(exc))
            return False
        if self.debugger is None:
            self.debugger = Debugger(trace)
            self.bridge = DebuggerBridge(self.debugger, self)
            self.bridge.trace_changed.connect(self._on_trace_changed)
            self.bridge.selection_changed.connect(self._on_selection_changed)
            self.bridge.step_changed.connect(self._on_step_changed)
            self.bridge.hit_changed.connect(self._on_hit_changed)
            self.bridge.breakpoints_changed.connect(self._on_breakpoints_changed)
            self.playback = Playback(self.debugger, self)
            self.playback.set_rate(self.controls.speed.value())
            self.playback.playing_changed.connect(self.controls.set_playing)
            self.breakpoint_editor.set_debugger(self.debugger)
            self._on_trace_changed()
            self._on_selection_changed()
            self.debugger.go_to(self._pending_step)
            self._on_step_changed(self.debugger.step)
        else:
            self.debugger.set_trace(trace)
        return True

    def _on_editor_sequence_chosen(self, x: np.ndarray, _source: str) -> None:
        previous = self._x
        self._x = x
        if not self._recompute():
            self._x = previous

    def _on_editor_states_chosen(self, states: StateMap) -> None:
        previous = self._states
        self._states = states
        if not self._recompute():
            self._states = previous

    def _on_speed_changed(self, value: int) -> None:
        if self.playback is not None:
            self.playback.set_rate(value)

    def select(self, layer: int, direction: int = 0) -> None:
        """Show ``layer``/``direction`` (clamped), e.g. when the user picks it in the model tree."""
        self._select(layer=layer, direction=direction)

    def _select(self, **kwargs: int) -> None:
        if self.debugger is not None:
            self.debugger.select(**kwargs)

    # -- debugger events -------------------------------------------------------------------------
    def _on_trace_changed(self) -> None:
        dbg = self.debugger
        trace = dbg.trace
        self.controls.set_steps(trace.n_steps)
        self.time_plots.set_trace(trace)
        self.diagnostics_view.set_trace(trace)
        self._dir_key = None  # force the step view and inspector to take the new arrays
        self._on_selection_changed()
        self._on_breakpoints_changed()
        self.trace_changed.emit()

    def _on_selection_changed(self) -> None:
        dbg = self.debugger
        s = dbg.selection
        lt = dbg.trace.layers[s.layer]
        dt = lt.directions[s.direction]
        c = self.controls
        c.layer.blockSignals(True)
        c.layer.setCurrentIndex(s.layer)
        c.layer.blockSignals(False)
        c.direction.blockSignals(True)
        c.direction.setCurrentIndex(s.direction)
        c.direction.setEnabled(lt.layer.bidirectional)
        c.direction.blockSignals(False)
        side = "backward" if s.direction else "forward"
        caption = (
            f"layer {s.layer} {lt.layer.name!s} {side}"
            if lt.layer.bidirectional
            else (f"layer {s.layer} {lt.layer.name}" + (" (reads backwards)" if dt.reverse else ""))
        )
        if self._dir_key != (s.layer, s.direction):
            self._dir_key = (s.layer, s.direction)
            self.step_view.set_direction(dt, caption)
            self.unit_inspector.set_direction(dt, s.layer, s.direction, caption)
            self._on_hit_changed()
        self.step_view.set_unit(s.unit)
        self.unit_inspector.set_unit(s.unit)
        self.time_plots.set_selection(s.layer, s.direction, s.unit)
        self.diagnostics_view.set_selection(s.layer, s.direction, s.unit)
        self._show_step(dbg.step)

    def _on_step_changed(self, t: int) -> None:
        if not self.debugger.hits:
            self.hit_banner.hide()  # a "no breakpoint fires" notice belongs to the old step
        self._show_step(t)
        self.step_changed.emit(t)

    def _show_step(self, t: int) -> None:
        """Only the visible views do work; hidden ones catch up when shown."""
        n = self.debugger.n_steps
        self.controls.show_step(t, n)
        if self.views.currentWidget() is self.step_view:
            self.step_view.show_step(t)
            self._step_view_dirty = False
        else:
            self._step_view_dirty = True
        self.time_plots.show_step(t)
        self.diagnostics_view.show_step(t)
        self.unit_inspector.show_step(t)

    def _on_views_current_changed(self, _index: int) -> None:
        if self.debugger is not None and self._step_view_dirty:
            self._show_step(self.debugger.step)

    def _on_hit_changed(self) -> None:
        dbg = self.debugger
        hits = dbg.hits
        s = dbg.selection
        self.step_view.set_hits(hits, s.layer, s.direction)
        if hits:
            text = f"● Breakpoint hit at step {dbg.step} — " + "; ".join(h.describe() for h in hits)
            self.hit_banner.show_text(text, hit=True)
        else:
            self.hit_banner.hide()

    def _on_breakpoints_changed(self) -> None:
        self.breakpoint_editor.refresh()
        self.time_plots.set_breakpoint_steps(np.flatnonzero(self.debugger.breakpoint_mask()))
