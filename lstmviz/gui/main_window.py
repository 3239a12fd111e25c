"""The main window: model tree, weights view, debugger tab, inspector docks, menus, status bar.

State lives in ``self.workspace`` (a Qt-free ``Workspace``): the views subscribe to it, and
this window only places them and turns menu, drop and tree actions into workspace calls.
Loading: ``open_model(path, **options)`` loads in a worker thread (progress in the status bar,
the window stays responsive) and ends with ``model_loaded(model)`` or ``load_failed(message)``;
tests wait on those signals. ``open_model(path, wait=True)`` loads in the calling thread and
returns the model (or None after showing the error). A bad file never replaces the model
already shown. ``ChoiceRequired`` asks the user and reloads with the choice.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
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

from lstmviz.core.model import LSTMModel
from lstmviz.gui import gc_pauses
from lstmviz.gui.compare_dock import install_compare
from lstmviz.gui.debug_panel import DebugPanel
from lstmviz.gui.details_panel import DetailsPanel
from lstmviz.gui.explore_dock import (
    ExplorePanel,
    TextView,
    build_explore_panel,
    build_text_view,
    install_explore,
)
from lstmviz.gui.menus import build_menus, fill_recent_menu
from lstmviz.gui.model_tree import ModelTree
from lstmviz.gui.settings import AppSettings
from lstmviz.gui.shapes_panel import ShapesPanel
from lstmviz.gui.step_view import StepView
from lstmviz.gui.weight_stats import WeightStatsPanel
from lstmviz.gui.weights_view import WeightsView
from lstmviz.gui.window_files import DEBUGGER_TAB, FileActions
from lstmviz.gui.workers import QtRunner
from lstmviz.workspace import Change, Event, Workspace

logger = logging.getLogger(__name__)


#: After a model opens, the debugger is built once the weights have painted.
PREBUILD_DELAY_MS = 150


class MainWindow(FileActions, QMainWindow):
    model_loaded = Signal(object)  # LSTMModel
    load_failed = Signal(str)  # the error message shown to the user

    def __init__(self, settings: AppSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else AppSettings()
        self.runner = QtRunner(self)
        self._pool = self.runner.pool
        #: The one source of truth of this window (scripts and tests drive it like a user).
        self.workspace = Workspace(self.runner)
        self.last_error = ""
        self.error_box: QMessageBox | None = None
        #: False for --screenshot / --export-trace: nobody can answer a dialog, so an ambiguous
        #: file fails with its message (and the option to pass) instead of waiting forever.
        self.interactive = True
        self._shown: tuple[object, int, int] | None = None  # (model, layer, direction) shown
        self._debug_panel: DebugPanel | None = None  # built on first use: the costliest view
        self._prebuilt_step_view: StepView | None = None

        self.setWindowTitle("lstmviz")
        self.setAcceptDrops(True)
        self.tree = ModelTree()
        self.tree.setMinimumWidth(170)  # names elide (whole in tooltips); the weights need width
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
        self.side_tabs.setMinimumWidth(220)  # the tab bar scrolls; the weights need the width
        self.side_tabs.addTab(self.details, "Inspector")
        self.side_tabs.addTab(self.stats_panel, "Statistics")
        self.side_tabs.addTab(self.shapes_panel, "Shapes explained")
        self.side_dock = self._dock(
            "Details", self.side_tabs, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._docks_fitted_for = 0  # the window width the dock widths were last set for

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
        ws = self.workspace
        ws.subscribe(Change.MODEL, self._update_model)
        ws.subscribe(Change.SELECTION, self._update_selection)
        ws.subscribe(Change.BUSY, self._update_busy)
        ws.subscribe(Change.ERROR, self._update_error)
        ws.subscribe(Change.OPTIONS, self._update_options)
        ws.subscribe(Change.SEQUENCE, self._update_sequence_status)
        # once every view has taken the run (the next turn of the event loop)
        ws.subscribe(Change.TRACE, lambda _event: QTimer.singleShot(0, gc_pauses.settle))
        install_explore(self)  # text view, Select & Match docks and their menu entries
        install_compare(self)  # the Compare dock (model B), File ▸ Compare with…
        gc_pauses.settle()

    @property
    def model(self) -> LSTMModel | None:
        return self.workspace.model

    @property
    def model_path(self) -> str | None:
        return self.workspace.model_path

    @property
    def selection(self) -> tuple[int, int]:
        """``(layer, direction)`` shown in the weights view (the workspace's selection)."""
        s = self.workspace.selection
        return (s.layer, s.direction)

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

    def set_model(self, model: LSTMModel, path: str | None = None) -> None:
        """Show ``model`` (already loaded): tree, first direction, debugger, recent files."""
        self.workspace.set_model(model, path)

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
        layout = f"stored {','.join(prov.gate_order)}{transposed}; shown {','.join(prov.shown_as)}"
        kinds = [layer.cell.name for layer in m.layers]
        if len(set(kinds)) > 1:  # a model mixing cells: the layout above is layer 0's
            layout = f"layers {', '.join(kinds)}; layer 0 {layout}"
        return " · ".join(p for p in parts if p) + f" — {layout}"

    # ------------------------------------------------------------------ workspace events
    def _update_sequence_status(self, _event: Event) -> None:
        """A status line naming a sequence names the one in use (it kept "sequence
        x200k.npy (200000 steps)" after a generated sequence of 25,000 steps replaced it)."""
        x, head = self.workspace.sequence, f"{self.describe_model()} · sequence "
        if x is not None and self.status_label.text().startswith(head):
            source = self.workspace.sequence_source or "typed"
            self.status_label.setText(f"{head}{source} ({len(x)} steps)")

    def _update_model(self, _event: Event) -> None:
        model, path = self.workspace.model, self.model_path
        self.last_error = ""
        self.tree.set_model(model)
        if path and Path(path).exists():
            self.settings.add_recent_file(path)
            self._update_recent_menu()
        self.setWindowTitle(f"lstmviz — {Path(path).name}" if path else "lstmviz")
        self.status_label.setText(self.describe_model())
        self._shown = None
        self._update_selection(_event)
        if self.tabs.currentIndex() == DEBUGGER_TAB:
            self._sync_debugger()
        elif self._debug_panel is None and model is not None and self.interactive:
            QTimer.singleShot(PREBUILD_DELAY_MS, self, self._prebuild_debugger)
        self.model_loaded.emit(model)

    def _update_selection(self, _event: Event) -> None:
        """The weights, statistics, shapes and inspector follow the selected direction."""
        model = self.workspace.model
        if model is None:
            return
        layer, direction = self.selection
        self.tree.select_direction(layer, direction)
        if self.tabs.currentWidget() is not self.weights_view:
            return  # the weights tab and its docks are hidden: they catch up when shown
        shown = self._shown
        if shown is not None and shown[0] is model and shown[1:] == (layer, direction):
            return  # only the unit changed: the weights view shows whole matrices
        self._shown = (model, layer, direction)
        lstm = model.layers[layer]
        w = lstm.directions[direction]
        name = lstm.direction_label(direction)
        sizes = f"D = {w.input_size}, H = {w.hidden_size}"
        title = f"Layer {layer} “{lstm.name}” ({lstm.kind}) · {name} · {sizes}"
        self.weights_view.set_direction(w, direction, f"{title} — {w.provenance.describe()}")
        self.stats_panel.set_direction(w)
        self.shapes_panel.set_direction(w, lstm, title, direction)
        self.details.show_selection(model, layer, direction)

    def _update_options(self, _event: Event) -> None:
        stored = self.workspace.options.stored_order
        self.weights_view.set_stored_order(stored)
        self.stored_action.setChecked(stored)

    def _update_busy(self, _event: Event) -> None:
        jobs = self.workspace.busy
        self.busy.setVisible(bool(jobs))
        if jobs:
            label, progress = jobs[-1]
            self.busy.setToolTip(label)
            if progress > 0:
                self.busy.setRange(0, 100)
                self.busy.setValue(int(progress * 100))
            else:
                self.busy.setRange(0, 0)

    def _update_error(self, event: Event) -> None:
        kind, message, _error = event.value
        if kind == "load":
            self._show_error(message)
        elif kind == "export":
            self.status_label.setText(message)  # the debugger's note bar says it too
        else:
            self._sequence_refused(message)

    # ------------------------------------------------------------------ navigation
    def select_direction(self, layer: int, direction: int = 0) -> None:
        """Show one layer/direction in the weights view, statistics, shapes and debugger."""
        self.workspace.select(layer=layer, direction=direction)

    def select_layer(self, layer: int) -> None:
        self.select_direction(layer, 0)

    def show_unit(self, layer: int, direction: int, gate: str, unit: int) -> None:
        """Weights view for that layer/direction with ``unit`` outlined in all four gate blocks."""
        self.tabs.setCurrentWidget(self.weights_view)
        self.workspace.select(layer=layer, direction=direction, unit=unit)
        self.weights_view.highlight_unit(unit, gate)

    @property
    def debug_panel(self) -> DebugPanel:
        """The step-through debugger, built the first time it is needed (keeps start-up fast)."""
        if self._debug_panel is None:
            step_view, self._prebuilt_step_view = self._prebuilt_step_view, None
            self._debug_panel = DebugPanel(self.workspace, step_view=step_view)
            self._debug_panel.weights_link_requested.connect(self._on_debug_weights_link_requested)
            self._debug_scroll.setWidget(self._debug_panel)
        return self._debug_panel

    @property
    def text_view(self) -> TextView:
        """The explore text view (View ▸ Text), built on first use."""
        return build_text_view(self)

    @property
    def explore_panel(self) -> ExplorePanel:
        """The Select and match panel, built on first use."""
        return build_explore_panel(self)

    def _prebuild_debugger(self) -> None:
        """Build the debugger while the user looks at the weights, in two event-loop turns
        (the step view, then the rest, ~50 ms each): built on the click, it froze the window
        ~0.17 s on a 3 × 1024-unit model. Nothing runs until the Debugger tab is shown."""
        if self._debug_panel is not None or self.model is None:
            return
        if self._prebuilt_step_view is None:
            self._prebuilt_step_view = StepView(self.workspace)
            QTimer.singleShot(PREBUILD_DELAY_MS // 3, self, self._prebuild_debugger)
        else:
            self.debug_panel  # noqa: B018 - built here, shown on the click

    def _sync_debugger(self) -> bool:
        """Build the debugger and have the workspace run the model, once: the run waits until
        the debugger is shown or used (a 4096-row model opens on the weights at once)."""
        if self.model is None:
            return False
        self.debug_panel  # noqa: B018 - built on first use
        # a headless run (--screenshot) has no later paint to wait for: compute it here
        self.workspace.ensure_trace(wait=not self.interactive)
        return True

    def compare_with(self, path: str | Path, wait: bool = False, **options) -> bool:
        """Open ``path`` as model B beside the open model and show the Compare dock; loads
        and runs both in a worker (``wait``: here, returning whether it worked)."""
        return self.compare.open(path, wait=wait, **options)

    def set_sequence(self, x: np.ndarray) -> bool:
        """Hand ``x (T, D)`` to the debugger; False if it refused it (it says why).

        Until the debugger is shown or stepped, the sequence is only checked and kept."""
        return self.workspace.set_sequence(np.asarray(x, dtype=float))

    def go_to_step(self, t: int) -> None:
        self._sync_debugger()
        self.workspace.go_to_step(t)

    # ------------------------------------------------------------------ slots
    def clear_recent_files(self) -> None:
        self.settings.clear_recent_files()
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        fill_recent_menu(self, self.recent_menu, self.settings.recent_files())

    def _on_tabs_current_changed(self, index: int) -> None:
        """The docks explain weights; the debugger gets the full width instead."""
        on_weights = self.tabs.widget(index) is self.weights_view
        if on_weights:
            self._update_selection(None)  # what was selected meanwhile in the debugger
        self.side_dock.setVisible(on_weights)
        self.tree_dock.setVisible(on_weights)  # the debugger has its own layer picker
        if index == DEBUGGER_TAB and self._sync_debugger():
            # Step keys act on the panel and its children; a click on the tab leaves the focus
            # on the tab bar, where Right/End would do nothing.
            self.debug_panel.setFocus(Qt.FocusReason.TabFocusReason)

    def _on_tree_direction_selected(self, layer: int, direction: int) -> None:
        self.workspace.select(layer=layer, direction=direction)

    def _on_weights_cell_hovered(self, cell) -> None:
        self.details.show_cell(cell)

    def _on_weights_stored_order_toggled(self, stored: bool) -> None:
        self.workspace.set_options(stored_order=stored)

    def _on_debug_weights_link_requested(
        self, layer: int, direction: int, gate: str, unit: int
    ) -> None:
        self.show_unit(layer, direction, gate, unit)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_docks()

    def _fit_docks(self) -> None:
        """Dock widths that grow with the window (~40 % of 1024, ~43 % of 1280): fixed 340 + 400
        pixels left the weights 450 of 1024. Refitted only when the window width changes by
        more than a tenth, so widths the user dragged survive small resizes."""
        width = self.width()
        if abs(width - self._docks_fitted_for) <= 0.1 * max(self._docks_fitted_for, 1):
            return
        self._docks_fitted_for = width
        tree = int(min(max(0.3 * width - 130, 170), 340))  # 177 at 1024, 254 at 1280
        side = int(min(max(0.23 * width, 230), 420))
        self.resizeDocks([self.tree_dock, self.side_dock], [tree, side], Qt.Orientation.Horizontal)
        self.layout().activate()  # now: views laid out later would move under a hover

    def restore_layout(self, geometry, state) -> None:
        """Restore a saved geometry and dock layout, then show the docks the current tab wants:
        a state saved on the Debugger tab (by an earlier version) holds them hidden, and as they
        are not closable their View menu entries are greyed, so nothing would bring them back."""
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        on_weights = self.tabs.currentWidget() is self.weights_view
        self.side_dock.setVisible(on_weights)
        self.tree_dock.setVisible(on_weights)

    def closeEvent(self, event: QCloseEvent) -> None:
        # The docks hide only while the Debugger tab shows; the layout is saved as the Weights
        # tab has it, which is the tab the next start opens on.
        self.side_dock.setVisible(True)
        self.tree_dock.setVisible(True)
        self.settings.save_window_state(self.saveGeometry(), self.saveState())
        self.workspace.cancel()  # results that arrive now are dropped
        self._pool.waitForDone(5000)
        super().closeEvent(event)
