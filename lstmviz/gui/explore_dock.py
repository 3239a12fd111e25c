"""Puts the explore views into the main window: the text view and the Select and match panel
as docks (hidden until asked for), their View entries, and File entries for vocabularies,
corpora and annotations.

One call, ``install_explore(window)``, so the main window module gains one line; the state
is the window's ``explore`` (a Qt-free ``ExploreSession`` on its workspace).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QInputDialog, QMenu, QScrollArea

from lstmviz.gui.explore_panel import ExplorePanel
from lstmviz.gui.text_view import TextView
from lstmviz.workspace import Change
from lstmviz.workspace.explore_session import ExploreSession, Topic

if TYPE_CHECKING:
    from lstmviz.gui.main_window import MainWindow

VOCABULARY_FILTERS = "Vocabularies (*.txt *.json *.vocab);;All files (*)"
CORPUS_FILTERS = "Corpora (*.txt *.npz *.npy *.csv *.tsv);;All files (*)"
ANNOTATION_FILTERS = "Annotations (*.txt *.tsv *.csv *.json);;All files (*)"
TEXT_SUFFIXES = (".txt", ".text", "")  # the session reads these as text when it can
DOCUMENT_CHOICES = (
    ("lines", "One document per line"),
    ("stream", "The whole file as one stream"),
)


def install_explore(window: MainWindow) -> ExploreSession:
    """Give ``window`` an ``explore`` session, the two docks and their menu entries.

    The views are built the first time their dock shows (``build_text_view``,
    ``build_explore_panel``, or the window's ``text_view`` / ``explore_panel`` properties):
    built here they added 65 ms to every start-up, for docks that open hidden."""
    session = ExploreSession(window.workspace)
    window.explore = session
    window._text_view = None
    window._explore_panel = None
    window.text_dock = _dock(window, "Text", Qt.DockWidgetArea.BottomDockWidgetArea)
    window.explore_dock = _dock(window, "Select and match", Qt.DockWidgetArea.RightDockWidgetArea)
    window.text_dock.visibilityChanged.connect(
        lambda shown: build_text_view(window) if shown else None
    )
    window.explore_dock.visibilityChanged.connect(
        lambda shown: build_explore_panel(window) if shown else None
    )
    _add_menus(window, session)
    # a new corpus or vocabulary is something to look at: show the text
    session.subscribe((Topic.CORPUS, Topic.VOCABULARY), lambda _t: show_text(window))
    session.subscribe(Topic.ERROR, lambda _t: window.status_label.setText(session.message))
    window.workspace.subscribe(Change.SEQUENCE, lambda _e: describe_document(window))
    return session


def describe_document(window: MainWindow) -> None:
    """A corpus document opened as the sequence (a match double-clicked) is named in the
    status line: it still named the sequence file read before, with its step count."""
    session, x = window.explore, window.workspace.sequence
    if session.document is None or session.corpus is None or x is None:
        return
    name = session.corpus_name or "corpus"
    what = f"corpus {name} doc {session.document} ({len(x)} steps)"
    model = window.describe_model()
    window.status_label.setText(f"{model} · {what}" if model else what)


def build_text_view(window: MainWindow) -> TextView:
    """The text view, made once (on its dock's first show)."""
    if window._text_view is None:
        window._text_view = TextView(window.workspace, window.explore)
        window.text_dock.setWidget(window._text_view)
    return window._text_view


def build_explore_panel(window: MainWindow) -> ExplorePanel:
    """The Select and match panel, made once, in a scroll area: its minimum height must
    not make the window taller."""
    if window._explore_panel is None:
        window._explore_panel = ExplorePanel(window.workspace, window.explore)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # never a horizontal scroll bar: the dock is kept as wide as the panel's minimum
        # (docked beside Details at 1400 × 900 its buttons were cut off, "Sele", "Match in corp")
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(window._explore_panel)
        bar = scroll.verticalScrollBar().sizeHint().width()
        window.explore_dock.setMinimumWidth(window._explore_panel.minimumSizeHint().width() + bar)
        window.explore_dock.setWidget(scroll)
        place_explore_dock(window)
    return window._explore_panel


def place_explore_dock(window: MainWindow) -> None:
    """A sensible place on its first show: tabbed with the Details dock when that shows on
    the right (stacked under it, only the panel's top rows showed), a third of the window wide."""
    dock, details = window.explore_dock, getattr(window, "side_dock", None)
    right = Qt.DockWidgetArea.RightDockWidgetArea
    if (
        details is not None
        and details.isVisible()
        and not details.isFloating()
        and window.dockWidgetArea(details) == right
        and window.dockWidgetArea(dock) == right
        and not dock.isFloating()
    ):
        window.tabifyDockWidget(details, dock)
        dock.raise_()
    width = max(dock.minimumWidth(), window.width() // 3)
    window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)


def show_text(window: MainWindow) -> None:
    build_text_view(window)
    window.text_dock.show()


def show_explore(window: MainWindow) -> None:
    """Show both docks (``--example brackets``, a screenshot)."""
    show_text(window)
    build_explore_panel(window)
    window.explore_dock.show()
    # the text gets a few lines' height, the panel a third of the width
    window.resizeDocks([window.text_dock], [120], Qt.Orientation.Vertical)
    window.resizeDocks([window.explore_dock], [window.width() // 3], Qt.Orientation.Horizontal)


def open_example_extras(window: MainWindow, name: str | None) -> None:
    """``--example NAME`` of a text example: its vocabulary, corpus and annotations too,
    read here and now (a headless screenshot has no later turn), and both docks shown."""
    from lstmviz.resources import examples

    ex = examples().get(name or "")
    if ex is None or ex.corpus is None:
        return
    session = window.explore
    if ex.vocabulary is not None:
        session.load_vocabulary(ex.vocabulary, wait=True)
    session.open_corpus(ex.corpus, wait=True)
    if ex.annotations is not None and session.corpus is not None:
        session.load_annotations(ex.annotations, wait=True)
    show_explore(window)


def _dock(window: MainWindow, title: str, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title)
    window.addDockWidget(area, dock)
    dock.hide()  # the window opens as before; View ▸ Text or a corpus shows it
    return dock


def _menu(window: MainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    return None


def _add_menus(window: MainWindow, session: ExploreSession) -> None:
    file_menu, view_menu = _menu(window, "File"), _menu(window, "View")
    if file_menu is not None:
        # after Open recent, before the screenshot: the file entries the tests know stay first
        actions = file_menu.actions()
        recent = next((k for k, a in enumerate(actions) if a.menu() is not None), None)
        before = actions[recent + 1] if recent is not None and recent + 1 < len(actions) else None
        file_menu.insertSeparator(before)
        entries = (
            ("Load &vocabulary…", lambda: ask_vocabulary(window)),
            ("Characters as tokens", session.use_characters),
            ("Open &corpus…", lambda: ask_corpus(window)),
            ("Load &annotations…", lambda: ask_annotations(window)),
        )
        for text, slot in entries:
            action = QAction(text, window)
            action.triggered.connect(slot)
            file_menu.insertAction(before, action)
    if view_menu is not None:
        view_menu.addAction(window.text_dock.toggleViewAction())
        view_menu.addAction(window.explore_dock.toggleViewAction())


def _ask(window: MainWindow, title: str, filters: str) -> str:
    path, _ = QFileDialog.getOpenFileName(window, title, window.settings.last_directory(), filters)
    return path


def ask_vocabulary(window: MainWindow) -> None:
    if path := _ask(window, "Load vocabulary", VOCABULARY_FILTERS):
        window.explore.load_vocabulary(path)


def is_text(path: str) -> bool:
    """Whether ``path`` is read as text (its documents are lines or one stream)."""
    return Path(path).suffix.lower() in TEXT_SUFFIXES


def ask_documents(window: MainWindow) -> str | None:
    """ "lines" or "stream" for a text corpus (None: cancelled)."""
    labels = [label for _mode, label in DOCUMENT_CHOICES]
    label, ok = QInputDialog.getItem(
        window, "Open corpus", "The text file's documents:", labels, 0, False
    )
    if not ok:
        return None
    return next(mode for mode, text in DOCUMENT_CHOICES if text == label)


def ask_corpus(window: MainWindow) -> None:
    """A file, then for a text file how it splits into documents: one per line (sentences)
    or the whole file as one stream (a char-RNN's book, newlines being tokens)."""
    if path := _ask(window, "Open corpus", CORPUS_FILTERS):
        documents = ask_documents(window) if is_text(path) else "lines"
        if documents is None:
            return
        window.explore.open_corpus(path, documents=documents)
        build_explore_panel(window)
        window.explore_dock.show()


def ask_annotations(window: MainWindow) -> None:
    if path := _ask(window, "Load annotations", ANNOTATION_FILTERS):
        window.explore.load_annotations(path)
