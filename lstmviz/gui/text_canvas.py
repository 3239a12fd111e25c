"""Tokens drawn as wrapped text on coloured backgrounds; paints only the lines in view.

One widget, no item per token: ``set_tokens`` lays the sequence out once (``text_layout``),
``set_colours`` swaps one ``(T, 3)`` array, and ``paintEvent`` draws the lines the scroll
area shows, so a 100,000-token sequence scrolls as fast as a short one. Annotation tracks
are thin strips under each token; the current step is framed, the selected span underlined.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from lstmviz.gui.text_layout import TokenLayout, display, wrap

PAD = 2  # pixels each side of a token's text
GAP = 3  # pixels between lines
TRACK = 4  # pixels of each annotation strip
NO_VALUE = QColor("#e6e6e6")  # no current run: the tokens are shown, their colour is not
SPAN_COLOUR = QColor("#ff00ff")
STEP_COLOUR = QColor("#000000")
#: Categorical colours of annotation labels (Tableau 10): label k of a track gets colour k.
TRACK_COLOURS = tuple(
    QColor(c)
    for c in ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
              "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
)  # fmt: skip


class TextCanvas(QWidget):
    """``step_clicked(t)`` on a click, ``span_dragged(start, stop)`` after a drag over
    tokens, ``hovered(t)`` (-1 off the tokens)."""

    step_clicked = Signal(int)
    span_dragged = Signal(int, int)
    hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.labels: list[str] = []
        self._shown: list[str] = []
        self._breaks: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self._widths: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self.layout_: TokenLayout = wrap([], [], 1)
        self._laid_for = -1
        self.rgb: npt.NDArray[np.uint8] | None = None
        self.light: npt.NDArray[np.bool_] | None = None
        self.step = -1
        self.span: tuple[int, int] | None = None
        self.tracks: list[tuple[str, npt.NDArray[np.int64]]] = []
        self._press: int | None = None
        self._dragged = False

    # -- content -------------------------------------------------------------------------------
    def set_tokens(self, labels: list[str]) -> None:
        """New text (a new sequence or vocabulary): measured and laid out once."""
        self.labels = labels
        self._shown = [display(t) for t in labels]
        fm = self.fontMetrics()
        width_of: dict[str, int] = {}
        for s in set(self._shown):
            width_of[s] = max(fm.horizontalAdvance(s), fm.horizontalAdvance("0")) + 2 * PAD
        self._widths = np.array([width_of[s] for s in self._shown], dtype=np.int32)
        self._breaks = np.array([t == "\n" for t in labels], dtype=bool)
        self.rgb = self.light = None
        self._laid_for = -1
        self._relayout()

    def set_colours(self, rgb: npt.NDArray[np.uint8] | None, light: npt.NDArray | None) -> None:
        """Backgrounds ``(T, 3)`` and light-text flags, or None (no current values: grey)."""
        if rgb is not None and len(rgb) != len(self.labels):
            rgb = light = None  # never colour tokens by another sequence's values
        self.rgb, self.light = rgb, light
        self.update()

    def set_step(self, t: int) -> None:
        if t != self.step:
            old, self.step = self.step, t
            for k in (old, t):
                rect = self.token_rect(k)
                if rect is not None:
                    self.update(rect.adjusted(-3, -3, 3, 3))

    def set_span(self, span: tuple[int, int] | None) -> None:
        if span != self.span:
            self.span = span
            self.update()

    def set_tracks(self, tracks: list[tuple[str, npt.NDArray[np.int64]]]) -> None:
        """Annotation tracks: ``(name, label index per token, -1 for none)``."""
        tracks = [(n, c) for n, c in tracks if len(c) == len(self.labels)]
        if len(tracks) != len(self.tracks):
            self.tracks = tracks
            self._laid_for = -1
            self._relayout()
        self.tracks = tracks
        self.update()

    # -- geometry ------------------------------------------------------------------------------
    @property
    def line_height(self) -> int:
        return self.fontMetrics().height() + 2 + len(self.tracks) * TRACK + GAP

    def _relayout(self) -> None:
        width = max(self.width(), 50)
        if width == self._laid_for:
            return
        self._laid_for = width
        self.layout_ = wrap(self._widths, self._breaks, width - 4)
        self.setFixedHeight(max(self.layout_.rows * self.line_height + 4, 20))
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    def token_rect(self, t: int) -> QRect | None:
        """The box of token ``t`` (its text; the tracks are below it)."""
        lay = self.layout_
        if not 0 <= t < len(lay.x):
            return None
        top = 2 + int(lay.row[t]) * self.line_height
        return QRect(2 + int(lay.x[t]), top, int(lay.width[t]), self.fontMetrics().height() + 2)

    def token_at(self, pos: QPoint) -> int | None:
        row = (pos.y() - 2) // self.line_height
        k = self.layout_.token_at(int(row), pos.x() - 2)
        return k

    # -- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        lay = self.layout_
        if not lay.rows:
            return
        p = QPainter(self)
        lh, fh = self.line_height, self.fontMetrics().height() + 2
        rect = event.rect()
        r0 = max((rect.top() - 2) // lh, 0)
        r1 = min((rect.bottom() - 2) // lh + 1, lay.rows)
        t0, t1 = int(lay.row_start[r0]), int(lay.row_start[r1])
        dark, white = QColor("#111111"), QColor("#ffffff")
        rgb, light = self.rgb, self.light
        for t in range(t0, t1):
            x = 2 + int(lay.x[t])
            y = 2 + int(lay.row[t]) * lh
            w = int(lay.width[t])
            box = QRect(x, y, w - 1, fh)
            if rgb is None:
                p.fillRect(box, NO_VALUE)
                p.setPen(dark)
            else:
                r, g, b = rgb[t]
                p.fillRect(box, QColor(int(r), int(g), int(b)))
                p.setPen(white if light[t] else dark)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, self._shown[t])
            for k, (_name, codes) in enumerate(self.tracks):
                code = int(codes[t])
                if code >= 0:
                    colour = TRACK_COLOURS[code % len(TRACK_COLOURS)]
                    p.fillRect(QRect(x, y + fh + k * TRACK, w - 1, TRACK - 1), colour)
        if self.span is not None:
            self._paint_span(p, max(self.span[0], t0), min(self.span[1], t1), fh)
        step = self.token_rect(self.step)
        if step is not None and step.intersects(rect.adjusted(-3, -3, 3, 3)):
            p.setPen(QPen(STEP_COLOUR, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(step.adjusted(-1, -1, 0, 0))
        p.end()

    def _paint_span(self, p: QPainter, start: int, stop: int, fh: int) -> None:
        """A thick line under the selected range, line by line."""
        lay, lh = self.layout_, self.line_height
        p.setPen(QPen(SPAN_COLOUR, 3))
        t = start
        while t < stop:
            row = int(lay.row[t])
            end = min(stop, int(lay.row_start[row + 1]))
            y = 2 + row * lh + fh + 1
            p.drawLine(2 + int(lay.x[t]), y, 2 + int(lay.x[end - 1] + lay.width[end - 1]) - 1, y)
            t = end

    # -- mouse ---------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = self.token_at(event.position().toPoint())
            self._dragged = False
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        t = self.token_at(event.position().toPoint())
        self.hovered.emit(-1 if t is None else t)
        if self._press is not None and t is not None and t != self._press:
            self._dragged = True
            lo, hi = sorted((self._press, t))
            self.set_span((lo, hi + 1))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        press, self._press = self._press, None
        if event.button() == Qt.MouseButton.LeftButton and press is not None:
            if self._dragged and self.span is not None:
                self.span_dragged.emit(*self.span)
            else:
                self.step_clicked.emit(press)
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        self.hovered.emit(-1)
        super().leaveEvent(event)
