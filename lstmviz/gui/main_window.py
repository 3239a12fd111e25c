"""The main window: model tree, weights view, debugger tab, inspector docks, menus, status bar.

Loading: ``open_model(path, **options)`` loads in a worker thread (busy bar in the status bar,
UI stays responsive) and ends with ``model_loaded(model)`` or ``load_failed(message)``; tests
wait on those signals. Scripts can call ``open_model(path, wait=True)``, which loads in the
calling thread and returns the model (or None after showing the error). A bad file never
replaces the model already shown. ``ChoiceRequired`` asks the user and reloads with the choice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QWidget,
)

from lstmviz.core.compute import check_sequence
from lstmviz.core.model import LSTMModel
from lstmviz.core.sequence import load_sequence
from lstmviz.gui import workers
from lstmviz.gui.choice_dialog import ask_choice
from lstmviz.gui.debug_panel import DebugPanel
from lstmviz.gui.details_panel import DetailsPanel
from lstmviz.gui.menus import build_menus, fill_recent_menu
from lstmviz.gui.model_tree import ModelTree
from lstmviz.gui.settings import AppSettings
from lstmviz.gui.shapes_panel import ShapesPanel
from lstmviz.gui.weight_stats import WeightStatsPanel
from lstmviz.gui.weights_view import WeightsView
from lstmviz.io.errors import ChoiceRequired, LoadError

logger = logging.getLogger(__name__)

DEBUGGER_TAB = 1
SEQUENCE_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
#: Dropped files that hold either weights or a sequence (``_holds_a_sequence`` decides).
ARRAY_SUFFIXES = frozenset({".npy", ".npz"})


class MainWindow(QMainWindow):
    model_loaded = Signal(object)  # LSTMModel
    load_failed = Signal(str)  # the error message shown to the user

    def __init__(self, settings: AppSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else AppSettings()
        self.model: LSTMModel | None = None
        self.model_path: str | None = None
        self.last_error = ""
        self.selection = (0, 0)
        self.error_box: QMessageBox | None = None
        #: False for --screenshot / --export-trace: nobody can answer a dialog, so an ambiguous
        #: file fails with its message (and the option to pass) instead of waiting forever.
        self.interactive = True
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._generation = 0
        self._pending: set[workers.LoadWorker] = set()
        self._debugger_has_model = False
        self._debug_panel: DebugPanel | None = None  # built on first use: the costliest view
        self._pending_sequence: np.ndarray | None = None

        self.setWindowTitle("lstmviz")
        self.setAcceptDrops(True)
        self.tree = ModelTree()
        self.tree.setMinimumWidth(230)
        self.weights_view = WeightsView()
        self.details = DetailsPanel()
        self.stats_panel = WeightStatsPanel()
        self.shapes_panel = ShapesPanel()

        self.tabs = QTabWidget()
        self.tabs.addTab(self.weights_view, "Weights")
        self._debug_scroll = QScrollArea()  # the debugger's minimum size must not widen the window
        self._debug_scroll.setWidgetResizable(True)
        self._debug_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.tabs.addTab(self._debug_scroll, "Debugger")
        self.setCentralWidget(self.tabs)
        self.tree_dock = self._dock("Model", self.tree, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.side_tabs = QTabWidget()
        self.side_tabs.setMinimumWidth(340)
        self.side_tabs.addTab(self.details, "Inspector")
        self.side_tabs.addTab(self.stats_panel, "Statistics")
        self.side_tabs.addTab(self.shapes_panel, "Shapes explained")
        self.side_dock = self._dock(
            "Details", self.side_tabs, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.resizeDocks([self.tree_dock, self.side_dock], [340, 400], Qt.Orientation.Horizontal)

        self.status_label = QLabel(
            "Open a model: File ▸ Open, or drop a file or checkpoint folder here"
        )
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(140)
        self.busy.setVisible(False)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.busy)
        self.recent_menu, self.stored_action = build_menus(self)
        self._update_recent_menu()

        self.tree.direction_selected.connect(self._on_tree_direction_selected)
        self.weights_view.cell_hovered.connect(self._on_weights_cell_hovered)
        self.weights_view.stored_order_toggled.connect(self._on_weights_stored_order_toggled)
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.weights_view.set_direction(None)
        self.details.show_selection(None)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    # ------------------------------------------------------------------ loading
    def open_model(
        self, path: str | Path, *, wait: bool = False, **options: Any
    ) -> LSTMModel | None:
        """Load ``path``; see the module docstring for the async and ``wait=True`` paths."""
        path = str(path)
        self._generation += 1
        generation = self._generation
        self.status_label.setText(f"Loading {Path(path).name}…")
        if wait:
            try:
                model, error = workers.load(path, options), None
            except Exception as exc:
                model, error = None, exc
            return self._on_load_finished(generation, path, options, wait, model, error)
        worker = workers.LoadWorker(path, options)
        self._pending.add(worker)
        worker.signals.finished.connect(
            lambda m, e, w=worker: self._on_worker_finished(w, generation, path, options, m, e)
        )
        self.busy.setVisible(True)
        worker.setAutoDelete(False)
        self._pool.start(worker)
        return None

    def _on_worker_finished(self, worker, generation, path, options, model, error) -> None:
        self._pending.discard(worker)
        self.busy.setVisible(bool(self._pending))
        self._on_load_finished(generation, path, options, False, model, error)

    def _on_load_finished(
        self,
        generation: int,
        path: str,
        options: dict[str, Any],
        wait: bool,
        model: LSTMModel | None,
        error: BaseException | None,
    ) -> LSTMModel | None:
        """Show the result; returns the model now shown for this request (None otherwise)."""
        if generation != self._generation:
            return None  # a newer open_model call superseded this one
        if isinstance(error, ChoiceRequired):
            choice = ask_choice(error, self) if self.interactive else None
            if choice is not None:
                return self.open_model(path, wait=wait, **{**options, error.option: choice})
            if not self.interactive:
                example = error.choices[0] if error.choices else "…"
                self._show_error(
                    f"{error} (one of: {', '.join(error.choices)}; e.g. "
                    f"--option {error.option}={example})"
                )
                return None
        if error is not None or model is None:
            self._show_error(str(error) or type(error).__name__)
            return None
        self.set_model(model, path)
        return model

    def _show_error(self, message: str) -> None:
        self.last_error = message
        shown = Path(self.model_path).name if self.model_path else "no model"
        self.status_label.setText(f"Error: {message}  (still showing {shown})")
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Cannot open file",
            message,
            QMessageBox.StandardButton.Ok,
            self,
        )
        self.error_box.open()  # window-modal, never blocks the event loop (or a test)
        self.load_failed.emit(message)

    def set_model(self, model: LSTMModel, path: str | None = None) -> None:
        """Show ``model`` (already loaded): tree, first direction, debugger, recent files."""
        self.model, self.model_path = model, path or model.source_path
        self.last_error = ""
        self.tree.set_model(model)
        self._debugger_has_model = False
        self._pending_sequence = None
        if self.model_path and Path(self.model_path).exists():
            self.settings.add_recent_file(self.model_path)
            self._update_recent_menu()
        self.setWindowTitle(
            f"lstmviz — {Path(self.model_path).name}" if self.model_path else "lstmviz"
        )
        self.status_label.setText(self.describe_model())
        if self.tabs.currentIndex() == DEBUGGER_TAB:
            self._sync_debugger()
        self.selection = (-1, -1)
        self.select_direction(0, 0)
        self.model_loaded.emit(model)

    def describe_model(self) -> str:
        """Status line: file, format, framework and the convention found."""
        m = self.model
        if m is None:
            return ""
        prov = m.layers[0].directions[0].provenance
        transposed = " transposed" if any(t.transposed for t in prov.stored) else ""
        parts = [
            Path(self.model_path or m.source_path).name,
            m.source_format,
            m.framework or prov.framework,
        ]
        layout = f"stored {','.join(prov.gate_order)}{transposed}; shown i,f,g,o"
        return " · ".join(p for p in parts if p) + f" — {layout}"

    # ------------------------------------------------------------------ navigation
    def select_direction(self, layer: int, direction: int = 0) -> None:
        """Show one layer/direction in the weights view, statistics and shapes panel."""
        if self.model is None:
            return
        layer = min(max(layer, 0), len(self.model.layers) - 1)
        lstm = self.model.layers[layer]
        direction = min(max(direction, 0), len(lstm.directions) - 1)
        if (layer, direction) == self.selection:
            return
        self.selection = (layer, direction)
        w = lstm.directions[direction]
        name = lstm.direction_label(direction)
        sizes = f"D = {w.input_size}, H = {w.hidden_size}"
        title = f"Layer {layer} “{lstm.name}” ({lstm.kind}) · {name} · {sizes}"
        self.weights_view.set_direction(w, direction, f"{title} — {w.provenance.describe()}")
        self.stats_panel.set_direction(w)
        self.shapes_panel.set_direction(w, lstm, title, direction)
        self.details.show_selection(self.model, layer, direction)
        self.tree.select_direction(layer, direction)
        if self._debugger_has_model:
            self.debug_panel.select(layer, direction)

    def select_layer(self, layer: int) -> None:
        self.select_direction(layer, 0)

    def show_unit(self, layer: int, direction: int, gate: str, unit: int) -> None:
        """Weights view for that layer/direction with ``unit`` outlined in all four gate blocks."""
        self.tabs.setCurrentWidget(self.weights_view)
        self.select_direction(layer, direction)
        self.weights_view.highlight_unit(unit, gate)

    @property
    def debug_panel(self) -> DebugPanel:
        """The step-through debugger, built the first time it is needed (keeps start-up fast)."""
        if self._debug_panel is None:
            self._debug_panel = DebugPanel(self)
            self._debug_panel.weights_link_requested.connect(self._on_debug_weights_link_requested)
            self._debug_scroll.setWidget(self._debug_panel)
        return self._debug_panel

    def _sync_debugger(self) -> bool:
        """Give the debugger the current model, once: it runs the whole trace, so this waits
        until the debugger is shown or used (a 4096-row model opens on the weights at once).
        A sequence set meanwhile, and the layer chosen in the tree, are applied then."""
        if self._debugger_has_model or self.model is None:
            return self.model is not None
        self._debugger_has_model = True
        try:
            self.debug_panel.set_model(self.model, sequence=self._pending_sequence)
            self.debug_panel.select(*self.selection)
        except Exception as exc:  # the weights stay inspectable whatever the debugger does
            logger.exception("debugger panel could not take %s", self.model_path)
            self.status_label.setText(f"{self.describe_model()} · debugger unavailable: {exc}")
            return False
        finally:
            self._pending_sequence = None
        return True

    def set_sequence(self, x: np.ndarray) -> bool:
        """Hand ``x (T, D)`` to the debugger; False if it refused it (it says why).

        Until the debugger is shown or stepped, the sequence is only checked and kept."""
        if self._debugger_has_model:
            if self.debug_panel.set_sequence(np.asarray(x, dtype=float)):
                return True
            self._sequence_refused(self.debug_panel.sequence_editor.last_error)
            return False
        if self.model is None:
            self._show_error("Open a model before a sequence")
            return False
        try:
            self._pending_sequence = check_sequence(x, self.model.input_size)
        except ValueError as exc:
            self._sequence_refused(str(exc))
            return False
        return True

    def _sequence_refused(self, message: str) -> None:
        """A bad sequence: said next to the sequence editor when it is on screen (the run
        shown stays), else in the error box; the status bar says it either way."""
        self.last_error = message
        if self.tabs.currentIndex() == DEBUGGER_TAB and self._debugger_has_model:
            self.debug_panel.sequence_editor.show_error(message)
            self.status_label.setText(f"Sequence not used: {message}")
        else:
            self._show_error(message)

    def open_sequence(self, path: str | Path) -> bool:
        """Read a sequence file for the loaded model and hand it to the debugger."""
        if self.model is None:
            self._show_error("Open a model before a sequence")
            return False
        try:
            x = load_sequence(path, self.model.input_size, self.model.embedding)
        except (OSError, ValueError) as exc:  # the message already names the file
            self._sequence_refused(str(exc))
            return False
        return self._use_sequence(path, x)

    def _use_sequence(self, path: str | Path, x: np.ndarray) -> bool:
        """Hand a sequence read from ``path`` to the debugger and say so in the status bar."""
        if not self.set_sequence(x):
            return False
        self.status_label.setText(
            f"{self.describe_model()} · sequence {Path(path).name} ({len(x)} steps)"
        )
        return True

    def go_to_step(self, t: int) -> None:
        self._sync_debugger()
        self.debug_panel.go_to_step(t)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path = paths[0]
        suffix = Path(path).suffix.lower()
        if self.model is not None and suffix in SEQUENCE_SUFFIXES:
            if self.open_sequence(path):
                self.tabs.setCurrentIndex(DEBUGGER_TAB)  # a sequence is dropped to be stepped
        elif self.model is not None and suffix in ARRAY_SUFFIXES:
            self._open_dropped_array(path)
        else:
            self.open_model(path)

    def _open_dropped_array(self, path: str) -> None:
        """An ``.npy``/``.npz`` holds weights or a sequence; it is read once, here (NumPy
        reads such files whole anyway). Weights become the model (a layout choice is asked
        as for any file); no LSTM in it but a fit for the open model (``x (T, D)``, token
        ids): the sequence; neither: the reader's message, the model kept."""
        assert self.model is not None
        self._generation += 1
        generation = self._generation
        try:
            model, error = workers.load(path, {}), None
        except ChoiceRequired as exc:
            model, error = None, exc
        except LoadError as exc:
            try:
                x = load_sequence(path, self.model.input_size, self.model.embedding)
            except (OSError, ValueError):
                x = None
            if x is not None:
                if self._use_sequence(path, x):
                    self.tabs.setCurrentIndex(DEBUGGER_TAB)
                return
            model, error = None, exc
        except Exception as exc:  # as open_model: a bug in a reader is shown, not raised here
            model, error = None, exc
        self._on_load_finished(generation, path, {}, True, model, error)

    # ------------------------------------------------------------------ slots
    def clear_recent_files(self) -> None:
        self.settings.clear_recent_files()
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        fill_recent_menu(self, self.recent_menu, self.settings.recent_files())

    def _on_tabs_current_changed(self, index: int) -> None:
        """The docks explain weights; the debugger gets the full width instead."""
        on_weights = self.tabs.widget(index) is self.weights_view
        self.side_dock.setVisible(on_weights)
        self.tree_dock.setVisible(on_weights)  # the debugger has its own layer picker
        if index == DEBUGGER_TAB and self._sync_debugger():
            # Step keys act on the panel and its children; a click on the tab leaves the focus
            # on the tab bar, where Right/End would do nothing.
            self.debug_panel.setFocus(Qt.FocusReason.TabFocusReason)

    def _on_tree_direction_selected(self, layer: int, direction: int) -> None:
        self.select_direction(layer, direction)

    def _on_weights_cell_hovered(self, cell) -> None:
        self.details.show_cell(cell)

    def _on_weights_stored_order_toggled(self, stored: bool) -> None:
        self.stored_action.setChecked(stored)

    def _on_debug_weights_link_requested(
        self, layer: int, direction: int, gate: str, unit: int
    ) -> None:
        self.show_unit(layer, direction, gate, unit)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.save_window_state(self.saveGeometry(), self.saveState())
        self._pool.waitForDone(5000)
        super().closeEvent(event)
