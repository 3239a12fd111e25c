"""One line above the debugger views for notes and breakpoint hits, and the busy indicator.

It keeps its height whether or not a note is shown, so a note never moves the controls below
it (the old banner wrapped to three lines and pushed *Run to next* and the bar chart's axis out
of view). A long note is elided; the whole text is in the tooltip; × dismisses it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

#: (background, text, border) of a breakpoint hit and of a notice.
HIT_COLOURS = ("#ffe5e5", "#8b0000", "#e8000b")
NOTICE_COLOURS = ("#eef3fb", "#1a3d6d", "#7d9cc8")


class NoteBar(QWidget):
    """``show_text(text, hit)`` / ``hide()``; ``text()`` is the whole note, not the elided one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        row.addWidget(self.label, 1)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setToolTip("Dismiss this note")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        row.addWidget(self.close_button)
        self.setFixedHeight(self.fontMetrics().height() + 12)
        policy = self.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # hidden or shown, the views below stay put
        self.setSizePolicy(policy)
        self.hide()

    def show_text(self, text: str, hit: bool) -> None:
        background, colour, border = HIT_COLOURS if hit else NOTICE_COLOURS
        self.setStyleSheet(
            f"QLabel {{ background: {background}; color: {colour}; border: 1px solid {border};"
            " padding: 1px 3px; }"
        )
        self._text = text
        self.label.setToolTip(text)
        self._elide()
        self.show()

    def text(self) -> str:
        return self._text if self.isVisible() else ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.label.width() - 8, 40)
        metrics = self.label.fontMetrics()
        self.label.setText(metrics.elidedText(self._text, Qt.TextElideMode.ElideRight, width))


class BusyLabel(QLabel):
    """``computing… 40 %`` while the workspace has jobs; empty (same width) otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("computing diagnostics… 100 %"))
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setStyleSheet("color: #1a3d6d;")

    def show_jobs(self, jobs: tuple[tuple[str, float], ...]) -> None:
        if not jobs:
            self.setText("")
            return
        label, progress = jobs[-1]
        percent = f" {progress:.0%}".replace("%", " %") if progress > 0 else ""
        self.setText(f"{label}…{percent}")
