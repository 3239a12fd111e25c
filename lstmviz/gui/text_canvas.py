"""Tokens drawn as wrapped text on coloured backgrounds; paints only the lines in view.

One widget, no item per token: ``set_tokens`` lays the sequence out once (``text_layout``),
``set_colours`` swaps one ``(T, 3)`` array, and ``paintEvent`` draws the lines the scroll
area shows, so a 100,000-token sequence scrolls as fast as a short one. Annotation tracks
are thin strips under each token; the current step is framed, the selected span underlined.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from lstmviz.gui.text_layout import TokenLayout, display, wrap

PAD = 2  # pixels each side of a token's text
GAP = 3  # pixels between lines
TRACK = 4  # pixels of each annotation strip
MEASURED = 5000  # distinct tokens measured one by one; past that, by their length
PASS_TOKENS = 20_000  # tokens per C-level pass (each holds the GIL a few ms)
SYNC_TOKENS = 50_000  # tokens laid out on the GUI thread (~10-20 ms); more: in a thread
NO_VALUE = QColor("#e6e6e6")  # no current run: the tokens are shown, their colour is not
SPAN_COLOUR = QColor("#ff00ff")
STEP_COLOUR = QColor("#000000")
#: Categorical colours of annotation labels (Tableau 10): label k of a track gets colour k.
TRACK_COLOURS = tuple(
    QColor(c)
    for c in ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
              "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
)  # fmt: skip


def prepare_tokens(labels: list[str], font: QFont) -> tuple:
    """``(codes, distinct, widths, breaks)``: each token's index into ``distinct`` (the
    distinct tokens as drawn), its width in pixels and whether it ends its line.

    C-speed passes over the tokens (``dict.fromkeys``, ``map``) and NumPy; each distinct
    token is measured once, past ``MEASURED`` distinct ones (the step numbers of a long
    sequence) by its length in the fixed-pitch font. Safe in a thread (its own metrics)."""
    # in slices: one C call over a million tokens holds the GIL (the window's thread) 0.1-1 s
    n, step = len(labels), PASS_TOKENS
    index: dict[str, int] = {}
    for a in range(0, n, step):
        for u in dict.fromkeys(labels[a : a + step]):
            if u not in index:
                index[u] = len(index)
    codes = np.empty(n, np.int32)
    for a in range(0, n, step):
        part = labels[a : a + step]
        codes[a : a + len(part)] = np.fromiter(map(index.__getitem__, part), np.int32, len(part))
    distinct = [display(u) for u in index]
    fm = QFontMetrics(font)
    least = fm.horizontalAdvance("0")
    if len(distinct) <= MEASURED:
        measured = [max(fm.horizontalAdvance(u), least) for u in distinct]
        widths = np.asarray(measured, dtype=np.int32) + 2 * PAD
    else:
        chars = np.asarray([len(u) for u in distinct], dtype=np.int32)
        widths = np.maximum(chars, 1) * least + 2 * PAD
    token_widths = widths.astype(np.int32)[codes] if n else np.zeros(0, np.int32)
    newline = index.get("\n")
    breaks = codes == newline if newline is not None else np.zeros(n, bool)
    return codes, distinct, token_widths, breaks


class TextCanvas(QWidget):
    """``step_clicked(t)`` on a click, ``span_dragged(start, stop)`` after a drag over
    tokens, ``hovered(t)`` (-1 off the tokens)."""

    step_clicked = Signal(int)
    span_dragged = Signal(int, int)
    hovered = Signal(int)
    laid_out = Signal()  # a new layout is shown (a long text's, from its thread)
    _tokens_ready = Signal(int, object)  # from the layout thread: (generation, tokens)
    _wrapped = Signal(int, object)  # from the wrap thread: (generation, (width, layout))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.labels: list[str] = []
        self._codes: npt.NDArray[np.int32] = np.zeros(0, np.int32)  # distinct token of each
        self._distinct: list[str] = []  # each distinct token as drawn
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
        self._generation = 0  # of the text: a thread's late result for an older one is dropped
        self.laying_out = False  # a long text is being measured in its thread
        queued = Qt.ConnectionType.QueuedConnection
        self._tokens_ready.connect(self._take_tokens, queued)
        self._wrapped.connect(self._take_wrap, queued)
        self._dragged = False

    # -- content -------------------------------------------------------------------------------
    def set_tokens(self, labels: list[str]) -> None:
        """New text (a new sequence or vocabulary): measured and laid out once.

        Up to ``SYNC_TOKENS`` tokens here; a longer text (a 1,000,000-token document: ~0.2 s
        of passes over its tokens, seconds for a million distinct step numbers) is measured
        and laid out in a thread and shown when ready (``laying_out`` meanwhile), so the
        window never stalls on it."""
        self.labels = labels
        self.rgb = self.light = None
        self._generation += 1
        if len(labels) <= SYNC_TOKENS:
            self._take_tokens(self._generation, prepare_tokens(labels, self.font()))
            return
        generation, font, width = self._generation, QFont(self.font()), self._wrap_width()
        empty = np.zeros(0, np.int32)
        self._codes, self._distinct, self._widths, self._breaks = empty, [], empty, empty
        self.layout_ = wrap([], [], 1)
        self.laying_out = True

        def work() -> None:
            tokens = prepare_tokens(labels, font)
            self._tokens_ready.emit(generation, (tokens, width, wrap(tokens[2], tokens[3], width)))

        threading.Thread(target=work, name="lstmviz-text-layout", daemon=True).start()

    def _take_tokens(self, generation: int, tokens: object) -> None:
        """The measured tokens (and, from the thread, their layout at ``width``)."""
        if generation != self._generation:
            return  # a newer text arrived meanwhile
        laid: tuple | None = None
        if len(tokens) == 3:  # type: ignore[arg-type]
            tokens, width, layout = tokens  # type: ignore[misc]
            laid = (width, layout)
        self._codes, self._distinct, self._widths, self._breaks = tokens  # type: ignore[misc]
        self.laying_out = False
        self._laid_for = -1
        if laid is not None and laid[0] == self._wrap_width():
            self._show_layout(laid[1], laid[0])
        else:
            self._relayout()

    def shown(self, t: int) -> str:
        """The text drawn for token ``t``."""
        return self._distinct[int(self._codes[t])]

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

    def _wrap_width(self) -> int:
        return max(self.width(), 50) - 4

    def _relayout(self) -> None:
        width = self._wrap_width()
        if width == self._laid_for or self.laying_out:
            return
        self._laid_for = width
        if len(self._widths) <= SYNC_TOKENS:
            self._show_layout(wrap(self._widths, self._breaks, width), width)
            return
        generation, widths, breaks = self._generation, self._widths, self._breaks

        def work() -> None:  # a long text re-wrapped for a new width: off the GUI thread
            laid = (width, wrap(widths, breaks, width))
            # the window may close while this wraps; then there is nobody to tell
            with contextlib.suppress(RuntimeError):
                self._wrapped.emit(generation, laid)

        threading.Thread(target=work, name="lstmviz-text-wrap", daemon=True).start()

    def _take_wrap(self, generation: int, laid: object) -> None:
        width, layout = laid  # type: ignore[misc]
        if generation == self._generation and width == self._laid_for:
            self._show_layout(layout, width)

    def _show_layout(self, layout: TokenLayout, width: int) -> None:
        self._laid_for = width
        self.layout_ = layout
        self.setFixedHeight(max(self.layout_.rows * self.line_height + 4, 20))
        self.update()
        self.laid_out.emit()

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
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, self.shown(t))
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
