"""One line above the debugger views for notes and breakpoint hits, and the busy indicator.

It keeps its height whether or not a note is shown, so a note never moves the controls below
it (the old banner wrapped to three lines and pushed *Run to next* and the bar chart's axis out
of view). A long note is elided; the whole text is in the tooltip; × dismisses it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from lstmviz.workspace import Job

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


class BusyLabel(QWidget):
    """``computing 2000 steps… 40 %`` (reported by the job, or estimated from the last run's
    speed, else the seconds so far) and a Cancel button while the workspace has jobs; the
    same width, empty, otherwise."""

    def __init__(self, cancel: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setMinimumWidth(
            self.fontMetrics().horizontalAdvance("computing diagnostics… 100 %")
        )
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # (the palette's own text colour: readable on light and dark themes)
        row.addWidget(self.label)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop this computation (the previous result stays)")
        self.cancel_button.clicked.connect(cancel)
        policy = self.cancel_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.cancel_button.setSizePolicy(policy)
        self.cancel_button.hide()
        row.addWidget(self.cancel_button)
        self._jobs: tuple[Job, ...] = ()
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._show)

    def text(self) -> str:
        return self.label.text()

    def show_jobs(self, jobs: tuple[Job, ...]) -> None:
        if jobs and not self._jobs:
            self._clock.start()
            self._timer.start()
        elif not jobs:
            self._timer.stop()
        self._jobs = jobs
        self.cancel_button.setVisible(bool(jobs))
        self._show()

    def _show(self) -> None:
        if not self._jobs:
            self.label.setText("")
            return
        job = self._jobs[-1]
        seconds = self._clock.elapsed() / 1000
        if job.progress > 0:
            done = f" {job.progress * 100:.0f} %"
        elif job.expected:  # estimated from the last run's speed: never claims 100 %
            done = f" ≈ {min(99.0, 100 * seconds / job.expected):.0f} %"
        else:
            done = f" {seconds:.0f} s" if seconds >= 1 else ""
        self.label.setText(f"{job.label}…{done}")
