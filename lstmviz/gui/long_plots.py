"""Time plots of a bounded trace: min/max envelopes from its overview, exact values zoomed in.

A bounded trace (``core.checkpointed_trace``) of 10⁶ steps cannot hand a plot every value; its
overview keeps each quantity's min and max per block of steps, which is what a plot of 10⁶
steps shows anyway (one envelope per pixel column, like pyqtgraph's "peak" downsampling).
When the visible range shrinks to ``EXACT_STEPS`` steps or fewer, ``Refiner`` swaps every
line and heatmap to the exact recomputed values of that range, and back to the envelope when
zoomed out again.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsItem

from lstmviz.core.trace_windows import MinMax, StepArray

#: Widest visible range (steps) drawn with exact values.
EXACT_STEPS = 4000


def is_bounded(values: Any) -> bool:
    return hasattr(values, "envelope")


def input_of(trace: Any) -> Any:
    """``trace.x``, or for a bounded trace a step array with the input's envelope."""
    if not getattr(trace, "bounded", False):
        return trace.x
    x = trace.x
    return StepArray("x", x.shape[0], x.shape[1], trace.dtype,
                     lambda a, b: np.asarray(x[a:b], dtype=trace.dtype),
                     envelope=lambda: trace.overview.get(("x",)))  # fmt: skip


def refiner_for(plots: Any, trace: Any) -> Refiner | None:
    """A new ``Refiner`` on the time plots' first plot for a bounded trace or a full one of
    more than ``EXACT_STEPS`` steps (the previous one detached), else None. One path for
    both: a full trace's 200,000-point curves, even downsampled by pyqtgraph ("peak"), were
    zigzags of thousands of long strokes that took ~0.7 s to paint when the tab was shown."""
    old = getattr(plots, "_refiner", None)
    if old is not None:
        old.detach()
    long = getattr(trace, "bounded", False) or trace.n_steps > EXACT_STEPS
    if not long or not plots._plots:
        return None
    return Refiner(plots._plots[0], trace.n_steps)


def full_steps(values: Any, name: str = "values", columns: int | None = None) -> StepArray:
    """A full trace's ``(T, n)`` array as a step array whose envelope (min and max per block
    of steps, at most ``columns`` blocks, ``MAX_COLUMNS`` by default) is computed on first
    use, like a bounded trace's overview."""
    arr = np.asarray(values)
    T, n = arr.shape
    block = max(1, -(-T // (columns or MAX_COLUMNS)))
    kept: list[MinMax] = []

    def envelope() -> MinMax:
        if not kept:
            idx = np.arange(0, T, block)
            lo = np.minimum.reduceat(arr, idx, axis=0)  # NaN propagates: a NaN block shows
            hi = np.maximum.reduceat(arr, idx, axis=0)
            kept.append(MinMax(block, lo, hi))
        return kept[0]

    return StepArray(name, T, n, arr.dtype, lambda a, b: arr[a:b], envelope=envelope)


#: Blocks of a full trace's line envelope (merged to ``MAX_COLUMNS`` for the whole run).
LINE_BLOCKS = 64 * 600

#: Most envelope columns drawn: a zigzag of long strokes per column is costly to paint
#: (~60 ms per line at 2,000 columns), and a plot is a few hundred pixels wide.
MAX_COLUMNS = 600


def envelope_columns(mm: MinMax, n_steps: int, col: int, span: tuple[int, int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``(starts, stops, lo, hi)`` of the envelope columns of column ``col``: blocks merged
    (min of mins, max of maxes) to at most ``MAX_COLUMNS`` columns. ``span`` ``(a, b)``: only
    the blocks covering steps a to b, so a zoomed-in view gets its own columns (the whole
    run's 600 columns stretched over 12,000 steps were seven plot-tall sawteeth)."""
    a, b = span if span is not None else (0, n_steps)
    first = a // mm.block
    n = min(mm.lo.shape[0], -(-b // mm.block)) - first
    group = -(-n // MAX_COLUMNS)
    idx = np.arange(0, n, group)
    lo = np.minimum.reduceat(mm.lo[first : first + n, col], idx)
    hi = np.maximum.reduceat(mm.hi[first : first + n, col], idx)
    starts = (idx + first) * mm.block
    stops = np.minimum(starts + group * mm.block, min((first + n) * mm.block, n_steps))
    return starts, stops, lo, hi


def envelope_xy(mm: MinMax, n_steps: int, col: int,
                span: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The envelope as a band: a vertical stroke from min to max at each column's middle,
    joined along the top and the bottom in turn (lo, hi, then hi, lo). A diagonal from each
    column's min at its start to its max at its end drew a sawtooth of block-wide teeth over
    a 314-step sine when zoomed in to a few thousand steps."""
    starts, stops, lo, hi = envelope_columns(mm, n_steps, col, span)
    mid = (starts + stops - 1) / 2.0
    x = np.repeat(mid, 2)
    y = np.empty(2 * len(mid))
    y[0::2], y[1::2] = lo, hi
    odd = np.arange(1, len(mid), 2)
    y[2 * odd], y[2 * odd + 1] = hi[odd], lo[odd]
    return x, y


def envelope_pen(pen: QPen) -> QPen:
    """The line's colour, solid and one pixel wide: an envelope is a zigzag of strokes as
    tall as the plot, and Qt strokes those ~10× slower at 1.5 or 2 px and ~100× slower
    dashed (seven envelope lines, the states' dashed ones among them, took 0.27 s to paint
    when the *Over time* tab was shown; 2 ms solid at 1 px, measured offscreen)."""
    thin = QPen(pen)
    thin.setStyle(Qt.PenStyle.SolidLine)
    thin.setWidth(1)
    return thin


def peak_image(mm: MinMax) -> np.ndarray:
    """``(width, n_blocks)``: per block the min or the max, whichever is larger in size (a
    spike stays visible, as in the lines)."""
    lo, hi = mm.lo, mm.hi
    return np.where(np.abs(lo) > np.abs(hi), lo, hi).T


class Refiner(QObject):
    """Keeps the lines and images of a bounded trace's time plots: envelopes when zoomed
    out, exact values of the visible steps when zoomed in to ``EXACT_STEPS`` or fewer."""

    def __init__(self, plot: pg.PlotItem, n_steps: int) -> None:
        super().__init__()
        self.n_steps = n_steps
        self._plot = plot
        self._lines: dict[int, tuple[pg.PlotDataItem, StepArray, int]] = {}
        self._images: dict[int, tuple[pg.ImageItem, StepArray]] = {}
        self._exact: tuple[int, int] | None = None
        self._around: tuple[int, int] | None = None  # steps the envelope lines cover
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self.refresh)
        plot.sigXRangeChanged.connect(self._changed)

    def _changed(self, *_args: Any) -> None:
        self._timer.start()

    def detach(self) -> None:
        """Stop following the plot (another run replaces this one)."""
        with contextlib.suppress(RuntimeError, TypeError):
            self._plot.sigXRangeChanged.disconnect(self._changed)
        self._lines.clear()
        self._images.clear()
        self._timer.stop()

    def line(self, item: pg.PlotDataItem, values: Any, col: int) -> None:
        if not is_bounded(values):  # a full trace's array: only this column's envelope
            # one column: fine blocks cost little, and a zoomed-in envelope keeps its detail
            column = np.asarray(values)[:, col : col + 1]
            values, col = full_steps(column, columns=LINE_BLOCKS), 0
        self._lines[id(item)] = (item, values, col)
        self._draw_line(item, values, col, self._exact)

    def image(self, item: pg.ImageItem, values: Any) -> None:
        if not is_bounded(values):
            values = full_steps(values)
        self._images[id(item)] = (item, values)
        self._draw_image(item, values, self._exact)

    def forget(self, item: Any) -> None:
        self._lines.pop(id(item), None)
        self._images.pop(id(item), None)

    def _range(self) -> tuple[int, int]:
        lo, hi = self._plot.viewRange()[0]
        return max(0, int(np.floor(lo))), min(self.n_steps, int(np.ceil(hi)) + 1)

    def _visible(self) -> tuple[int, int] | None:
        a, b = self._range()
        return (a, b) if 0 < b - a <= EXACT_STEPS else None

    def _around_view(self) -> tuple[int, int] | None:
        """The steps the envelope lines should cover: None (the whole run) when zoomed out,
        else the visible range and as much again on each side (a pan redraws only when it
        leaves them), kept while they still hold the view and are not 4× wider than it."""
        a, b = self._range()
        w = max(b - a, 1)
        old = self._around
        if old is not None and old[0] <= a and b <= old[1] and old[1] - old[0] <= 4 * w:
            return old
        if old is None and 3 * w >= self.n_steps:
            return None
        around = (max(0, a - w), min(self.n_steps, b + w))
        return None if around == (0, self.n_steps) else around

    def refresh(self) -> None:
        span = self._visible()
        around = self._around_view() if span is None else self._around
        if span == self._exact and around == self._around:
            return
        lines_only = span == self._exact  # only the envelope's range changed
        self._exact, self._around = span, around
        for item, values, col in self._lines.values():
            self._draw_line(item, values, col, span)
        if lines_only:  # images keep every overview block: their envelope needs no redraw
            return
        for item, values in self._images.values():
            self._draw_image(item, values, span)

    def _draw_line(self, item: Any, values: StepArray, col: int,
                   span: tuple[int, int] | None) -> None:  # fmt: skip
        mm = values.envelope()
        pen = getattr(item, "own_pen", None)
        if pen is None:  # the line's own pen, kept on the item the first time it is drawn here
            pen = item.own_pen = pg.mkPen(item.opts["pen"])
        if span is None and mm is not None:
            # painted once into a pixmap and blitted after: a step moves only the cursor, but
            # the repaint it caused stroked every envelope again (~12 ms a line, ~0.1 s a step
            # with 8 lines). Only here: on exact values, partly redrawn after a zoom, Qt's
            # device cache kept stale pixels at the plot's edge.
            item.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            item.setPen(envelope_pen(pen))
            item.setData(*envelope_xy(mm, self.n_steps, col, self._around))
            return
        item.curve.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        item.setPen(pen)
        a, b = span if span is not None else (0, min(self.n_steps, EXACT_STEPS))
        item.setData(np.arange(a, b, dtype=float), np.asarray(values[a:b])[:, col])

    def _draw_image(self, item: Any, values: StepArray, span: tuple[int, int] | None) -> None:
        n = values.shape[1]
        mm = values.envelope()
        if span is None and mm is not None:
            item.setImage(peak_image(mm), autoLevels=False)
            item.setRect(QRectF(-0.5, -0.5, mm.lo.shape[0] * mm.block, n))
            return
        a, b = span if span is not None else (0, min(self.n_steps, EXACT_STEPS))
        item.setImage(np.asarray(values[a:b]).T, autoLevels=False)
        item.setRect(QRectF(a - 0.5, -0.5, b - a, n))
