"""Puts compare mode into the main window: a "Compare" dock (hidden until a model B is
opened), File ▸ Compare with…, View ▸ Compare, and a file dropped with Shift held.

One call, ``install_compare(window)``, so the main window gains one line; its state is the
window's ``compare`` (a ``CompareSession`` on the window's workspace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMenu

from lstmviz.gui.compare_debugger import attach
from lstmviz.gui.compare_panel import ComparePanel
from lstmviz.gui.compare_session import CompareSession
from lstmviz.gui.window_files import DEBUGGER_TAB

if TYPE_CHECKING:
    from lstmviz.gui.main_window import MainWindow

COMPARE_SHORTCUT = "Ctrl+Shift+M"


def install_compare(window: MainWindow) -> CompareSession:
    """Give ``window`` a ``compare`` session, its dock and menu entries."""
    session = CompareSession(window.workspace)
    window.compare = session
    panel = ComparePanel(window.workspace, session)
    window.compare_panel = panel
    dock = QDockWidget("Compare", window)
    dock.setObjectName("Compare")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    # a tab beside Details: stacked under it the two docks' heights grew the window past 900
    window.tabifyDockWidget(window.side_dock, dock)
    dock.hide()
    window.compare_dock = dock
    panel.go_to_requested.connect(lambda *where: go_to(window, *where))
    panel.close_requested.connect(lambda: (session.close(), dock.hide()))

    def on_session(what: str) -> None:
        if what in ("comparison", "busy") and session.active:
            show_compare(window)
            if not hasattr(window, "compare_debugger"):
                # B and Δ in the step view and inspector; hears this event itself from now on
                window.compare_debugger = attach(window.debug_panel, window.workspace, session)
                for companion in window.compare_debugger:
                    companion.shown = panel.debugger_box.isChecked()
                    companion._on_session(what)
        if what == "error":
            window.status_label.setText(session.message)

    def on_debugger_box(shown: bool) -> None:
        for companion in getattr(window, "compare_debugger", ()):
            companion.set_shown(shown)

    panel.debugger_box.toggled.connect(on_debugger_box)

    session.subscribe(on_session)
    _add_menus(window)
    window.compare_drop = CompareDrop(window)
    window.installEventFilter(window.compare_drop)
    return session


class CompareDrop(QObject):
    """A model file dropped with Shift held opens as model B (a plain drop replaces A)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Drop or self.window.model is None:
            return False
        drop = event  # QDropEvent
        if not drop.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            return False
        paths = [u.toLocalFile() for u in drop.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return False
        drop.acceptProposedAction()
        self.window.compare_with(paths[0])
        return True


def show_compare(window: MainWindow) -> None:
    """Show the dock at about 30 % of the window's width."""
    dock = window.compare_dock
    if dock.isVisible():
        return
    # compare mode steps both models: the debugger tab, where the other docks make room
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    dock.show()
    dock.raise_()
    # 0.3: the step view beside it shows three blocks of rows (A, B, Δ) in compare mode
    window.resizeDocks([dock], [int(window.width() * 0.3)], Qt.Orientation.Horizontal)


def go_to(window: MainWindow, layer: int, direction: int, step: int, unit: int) -> None:
    """Show ``step`` of that layer/direction/unit in the debugger (first divergence, a click)."""
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    window.workspace.select(layer=layer, direction=direction, unit=unit)
    window.go_to_step(step)


def ask_compare(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(
        window, "Compare with", window.settings.last_directory(), "All files (*)"
    )
    if path:
        window.compare_with(path)


def _menu(window: MainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    return None


def _add_menus(window: MainWindow) -> None:
    file_menu, view_menu = _menu(window, "File"), _menu(window, "View")
    if file_menu is not None:
        # right after Open recent: the entries the tests know keep their places
        actions = file_menu.actions()
        recent = next((k for k, a in enumerate(actions) if a.menu() is not None), None)
        before = actions[recent + 1] if recent is not None and recent + 1 < len(actions) else None
        action = QAction("Co&mpare with…", window)
        action.setShortcut(QKeySequence(COMPARE_SHORTCUT))
        action.setToolTip("Open a second model and compare it with this one, gate by gate")
        action.triggered.connect(lambda: ask_compare(window))
        file_menu.insertAction(before, action)
        window.compare_action = action
    if view_menu is not None:
        view_menu.addAction(window.compare_dock.toggleViewAction())
