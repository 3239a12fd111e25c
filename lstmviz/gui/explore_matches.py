"""The list of matches: score, where, and the text around each with the matched range
highlighted; a per-label hit rate above it when annotations are loaded. Double-click jumps.

A view on the ``ExploreSession`` (its ``matches``, the corpus they index, its annotations);
a double-click opens the match's document as the debugger's sequence at the match's start.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lstmviz.gui.text_layout import display
from lstmviz.workspace.explore_session import ExploreSession, Topic

CONTEXT = 12  # tokens shown each side of a match
HIGHLIGHT = "background:#ffd24d; font-weight:bold;"


def context_html(session: ExploreSession, match: Any) -> str:
    """The match's tokens in context, the matched range highlighted (HTML)."""
    corpus = session.matched_in
    doc = corpus.documents[match.document]
    lo = max(0, match.doc_start - CONTEXT)
    hi = min(len(doc), match.doc_stop + CONTEXT)
    tokens = corpus.tokens(corpus.position(match.document, lo), corpus.position(match.document, hi))
    vocab = corpus.vocab if corpus.vocab is not None else session.vocabulary
    sep = "" if vocab is not None and getattr(vocab, "char_level", False) else " "

    def part(a: int, b: int) -> str:
        return html.escape(sep.join(display(t) for t in tokens[a - lo : b - lo]))

    left = ("…" if lo > 0 else "") + part(lo, match.doc_start)
    right = part(match.doc_stop, hi) + ("…" if hi < len(doc) else "")
    middle = part(match.doc_start, match.doc_stop)
    return f'{left}<span style="{HIGHLIGHT}">{middle}</span>{right}'


class MatchList(QWidget):
    """``tree`` (one row per match, best first) under ``hit_rates`` (a label)."""

    def __init__(self, session: ExploreSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.hit_rates = QLabel()
        self.hit_rates.setWordWrap(True)
        layout.addWidget(self.hit_rates)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["score", "where", "text (match highlighted)"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 52)
        self.tree.setColumnWidth(1, 112)
        self.tree.itemDoubleClicked.connect(self._on_tree_item_double_clicked)
        layout.addWidget(self.tree, 1)
        session.subscribe((Topic.MATCHES, Topic.ANNOTATIONS), self._update_matches)
        self._update_matches(None)

    def _update_matches(self, _topic: Topic | None) -> None:
        s = self.session
        self.tree.clear()
        for k, m in enumerate(s.matches):
            doc = m.document
            where = f"doc {doc} · {m.doc_start}–{m.doc_stop - 1}"
            item = QTreeWidgetItem([f"{m.score:.3f}", where, ""])
            item.setData(0, Qt.ItemDataRole.UserRole, k)
            item.setToolTip(1, f"document {doc}, steps {m.doc_start}–{m.doc_stop - 1}")
            self.tree.addTopLevelItem(item)
            label = QLabel(context_html(s, m))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self.tree.setItemWidget(item, 2, label)
        self.hit_rates.setText(self._hit_rate_text())
        self.hit_rates.setVisible(bool(self.hit_rates.text()))

    def _hit_rate_text(self) -> str:
        """``depth>0: 95% · outside: 5%`` of the matches, per annotation label."""
        s = self.session
        if s.annotations is None or not s.matches or s.matched_in is not s.corpus:
            return ""
        rates = s.annotations.hit_rates(s.matches)
        parts = [f"{html.escape(str(k))}: {v:.0%}" for k, v in list(rates.items())[:8]]
        source = s.annotations_name or "label"
        return f"hit rate by {source} — " + " · ".join(parts) if parts else ""

    def row_text(self, row: int) -> str:
        """The plain text of a row's context (tests read it)."""
        label = self.tree.itemWidget(self.tree.topLevelItem(row), 2)
        return label.text() if label is not None else ""

    def _on_tree_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        self.open_match(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def open_match(self, k: int) -> None:
        """Show match ``k``: its document as the sequence, the step at its start, its span."""
        self.session.open_match(self.session.matches[k])
