"""One weight matrix as a heatmap cut into labelled gate blocks.

All graphics items (plot, image, colour bar, block separators, band lines, unit highlights) are
made once; ``show_panel`` only swaps data, ticks and line positions, so switching layers or the
stored-order toggle on a 4096 × 1024 matrix never rebuilds the scene.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from lstmviz.core.stored_layout import Cell, Panel
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.pooled_image import PooledImage

SEPARATOR_RGB = (20, 20, 20)  # colours are tuples; pens are made per item (Qt objects mutate)
BAND_RGB = (60, 60, 60)
HIGHLIGHT_RGB = (255, 200, 0)
#: Behind the image: pyqtgraph leaves NaN cells transparent, and on white they would read as 0.
NAN_RGB = (64, 64, 64)
AXIS_HEIGHT = 42
AXIS_WIDTH = 96
NARROW = 4  # a matrix this thin (bias, D = 1 kernels) gets a fixed small plot


class IndexAxis(pg.AxisItem):
    """Cell indices at cell centres (cell i spans [i, i+1]), spaced by pyqtgraph for the zoom."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        # Unit numbers are a second tick level; pyqtgraph hides a whole level once 40% of the
        # axis is text. Spacing and the overlap check below keep them apart instead.
        self.setStyle(textFillLimits=[(0, 0.9)])

    #: Pixels kept free between two numbers along a horizontal axis.
    MIN_GAP = 6

    def _fits(self, spacing: float, maxVal: float, size: float, span: float) -> bool:
        """Whether numbers ``spacing`` apart leave ``MIN_GAP`` between them horizontally:
        128 columns in 300 px printed '100110120' as one run (the overlap check passes
        numbers that touch); vertical axes stack numbers and are left to that check."""
        if self.orientation not in ("top", "bottom") or span <= 0:
            return True
        font = self.style.get("tickFont") or self.font()
        widest = QFontMetricsF(font).horizontalAdvance(str(max(int(maxVal), 0)))
        return spacing * size / span >= widest + self.MIN_GAP

    def tickValues(self, minVal, maxVal, size):
        levels = []
        for spacing, values in super().tickValues(minVal - 0.5, maxVal - 0.5, size):
            if spacing >= 1 and (not levels or self._fits(spacing, maxVal, size, maxVal - minVal)):
                ints = [v + 0.5 for v in values if float(v).is_integer() and v >= 0]
                levels.append((spacing, ints))
        if any(values for _, values in levels):
            return levels
        # zoomed to a few cells, pyqtgraph spaces ticks < 1 apart: number every cell instead
        first, last = math.ceil(minVal - 0.5), math.floor(maxVal - 0.5)
        return [(1, [k + 0.5 for k in range(max(first, 0), last + 1)])]

    def tickStrings(self, values, scale, spacing):
        return [str(round(v - 0.5)) for v in values]

    def generateDrawSpecs(self, p):
        """Labels that would overlap one drawn before them (gate names come first) are left
        out, so a unit number never prints over a gate name."""
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis_spec, tick_specs, text_specs = specs
        return axis_spec, tick_specs, ps.drop_overlapping(text_specs)


#: Pixels between two unit numbers along a gate axis (vertical, horizontal).
UNIT_LABEL_GAP = (24, 30)


def gate_axis_ticks(
    hidden: int, labels: tuple[str, ...], lo: float, hi: float, pixels: float, vertical: bool
) -> list[list[tuple[float, str]]]:
    """``setTicks`` levels for an axis along ``len(labels)`` gate blocks of ``hidden`` cells
    each, for the visible range ``[lo, hi]`` drawn in ``pixels``.

    Level 0: each gate's name at the middle of the part of its block that is visible, so a
    zoom into one block still says which gate it is. Level 1: unit numbers (the index inside
    the block, at cell centres), as dense as ``UNIT_LABEL_GAP`` allows."""
    end = hidden * len(labels)
    lo, hi = max(lo, 0.0), min(hi, float(end))
    names = []
    for k, label in enumerate(labels):
        a, b = max(k * hidden, lo), min((k + 1) * hidden, hi)
        if b - a >= 0.5 or (b > a and b - a == hi - lo):
            names.append(((a + b) / 2, label))
    per_cell = pixels / max(hi - lo, 1e-9)
    gap = UNIT_LABEL_GAP[0 if vertical else 1]
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**9)
                if s * per_cell >= gap or s >= hidden)  # fmt: skip
    units = [
        (k * hidden + u + 0.5, str(u))
        for k in range(len(labels))
        for u in range(0, hidden, step)
        if lo <= k * hidden + u + 0.5 <= hi
        # the next block's 0 follows: a number closer to it than the gap would read as "50"
        and (u == 0 or (hidden - u) * per_cell >= gap)
    ]
    return [names, units]


class GateHeatmap:
    """A PlotItem showing one ``Panel``; the owner places ``plot`` in a GraphicsLayout."""

    def __init__(self) -> None:
        self.plot = pg.PlotItem(
            axisItems={"left": IndexAxis("left"), "bottom": IndexAxis("bottom")}
        )
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showAxis("top", False)
        ps.let_shrink(self.plot.titleLabel)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(90, 90, 90))
            axis.setTextPen(pg.mkPen(20, 20, 20))
        self.image = PooledImage()  # big matrices keep their contrast when shrunk
        self.plot.addItem(self.image)
        self.plot.vb.setBackgroundColor(NAN_RGB)
        self.bar = pg.ColorBarItem(
            colorMap=pg.colormap.get("CET-D1"), interactive=False, width=8, values=(-1, 1)
        )
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.bar.axis.setTextPen(pg.mkPen(20, 20, 20))
        ps.thin_labels(self.bar.axis)
        # Three bars beside three heatmaps took 171 of 446 pixels at 1024 × 700: small numbers
        # close to a narrow bar leave the width to the cells.
        self.bar.axis.setStyle(tickFont=ps.small_font(7), tickTextOffset=2, tickLength=-4)
        #: Lines between gate blocks and outlines of a unit in each block: as many as the
        #: cell shown has blocks (grown when a cell with more blocks is shown, then reused).
        self.separators: list[pg.InfiniteLine] = []
        self.highlights: list[QGraphicsRectItem] = []
        self._blocks(4)
        self.bands = [
            pg.InfiniteLine(
                angle=90,
                pen=pg.mkPen(BAND_RGB, width=2, style=Qt.PenStyle.DashLine),
                movable=False,
            )
            for _ in range(3)
        ]
        for line in self.bands:
            self.plot.addItem(line, ignoreBounds=True)
        # the one cell under the mouse: the tooltip's cell, found at a glance when zoomed out
        self.cursor_cell = QGraphicsRectItem()
        cursor_pen = QPen(QColor(0, 0, 0), 2)
        cursor_pen.setCosmetic(True)
        self.cursor_cell.setPen(cursor_pen)
        self.cursor_cell.setZValue(21)
        self.cursor_cell.setVisible(False)
        self.plot.addItem(self.cursor_cell, ignoreBounds=True)
        self.panel: Panel | None = None
        self.limit = 1.0
        self._gate_labels_shown = True
        # Gate names and unit numbers follow the visible range (wheel zoom, drag, Reset zoom).
        self.plot.vb.sigRangeChanged.connect(self._on_range_changed)
        self.plot.vb.sigResized.connect(self._on_range_changed)

    def _blocks(self, n: int) -> None:
        """Enough separators (``n - 1``) and unit outlines (``n``) for ``n`` gate blocks."""
        while len(self.separators) < n - 1:
            line = pg.InfiniteLine(angle=0, pen=pg.mkPen(SEPARATOR_RGB, width=2), movable=False)
            self.plot.addItem(line, ignoreBounds=True)
            self.separators.append(line)
        while len(self.highlights) < n:
            rect = QGraphicsRectItem()
            pen = QPen(QColor(*HIGHLIGHT_RGB), 2)
            pen.setCosmetic(True)
            rect.setPen(pen)
            rect.setZValue(20)
            rect.setVisible(False)
            self.plot.addItem(rect, ignoreBounds=True)
            self.highlights.append(rect)

    # ------------------------------------------------------------------ data
    def show_panel(self, panel: Panel, show_gate_labels: bool = True) -> None:
        """Swap in a new matrix; levels are symmetric and fixed (no auto-levels)."""
        self.panel = panel
        data = np.asarray(panel.data, dtype=np.float32)
        self.limit = symmetric_limit(data)
        self.image.setImage(data, autoLevels=False, levels=(-self.limit, self.limit))
        self.bar.setLevels((-self.limit, self.limit))
        self._fit_bar_axis()
        rows, cols = data.shape
        title, elide, short = panel.title, Qt.TextElideMode.ElideLeft, ""
        if panel.gate_axis != 1 and cols <= 3 * NARROW:  # side by side and thin: short title
            name = panel.title.split("  ")[0]
            key = panel.key
            name = name if len(name) <= 14 else key if len(key) <= 14 else f"{key[:6]}…{key[-7:]}"
            title, elide, short = f"{name} {rows}×{cols}", Qt.TextElideMode.ElideRight, name
        # A full title is cut at the left: stored names that share a long scope differ at
        # their end, and the shape ends the title (ONNX '…/rnn/Unsqueeze_6_output_0' and
        # '…_7_output_0' were both drawn 'If_0_else_branch__Inline_0__/…'); the tooltip has
        # the whole title.
        ps.fit_title(self.plot, title, size="9pt", color="#202020", elide=elide, short=short)
        self._place_separators(panel)
        self._place_ticks(panel, show_gate_labels)
        self.clear_highlight()
        self.mark_cell(None)
        # A thin matrix (bias, a D = 1 kernel) asks for little more than its axes, so at
        # 1024 × 700 the free width goes to W_h by its stretch instead of being shared equally.
        if panel.gate_axis == 0 and cols <= NARROW:
            fixed = self.plot.getAxis("left").minimumWidth() + self.bar.axis.minimumWidth()
            axes = fixed + 8 + 5 + 12  # + the bar, its gap, margins
            self.plot.setMinimumWidth(axes + 10)
            self.plot.setPreferredWidth(axes + min(cols * 14, 40))
        else:
            self.plot.setMinimumWidth(-1)
            self.plot.setPreferredWidth(-1)
        self.plot.vb.setLimits(xMin=-0.5 * cols, xMax=1.5 * cols, yMin=-0.5 * rows, yMax=1.5 * rows)
        self.plot.vb.setRange(QRectF(0, 0, cols, rows), padding=0)

    def _fit_bar_axis(self) -> None:
        """The colour bar's axis as wide as its widest number (pyqtgraph fixes 45 pixels):
        "-0.25" at 7 pt needs ~30, and a number that does not fit would not be drawn."""
        metrics = QFontMetricsF(self.bar.axis.style["tickFont"])
        digits = len(str(int(self.limit))) if np.isfinite(self.limit) else 1
        widest = metrics.horizontalAdvance("-" + "8" * digits + ".88")
        self.bar.axis.setWidth(int(widest + self.bar.axis.style["tickTextOffset"][0] + 6))

    def _place_separators(self, panel: Panel) -> None:
        angle = 0 if panel.gate_axis == 0 else 90
        n_blocks = len(panel.block_labels)
        self._blocks(n_blocks)
        for k, line in enumerate(self.separators, start=1):
            line.setAngle(angle)
            line.setValue(k * panel.hidden)
            line.setVisible(panel.gate_axis is not None and k < n_blocks)
        for line, band in zip(self.bands, (*panel.bands[1:], None, None, None), strict=False):
            line.setVisible(band is not None)
            if band is not None:
                line.setAngle(0 if panel.gate_axis == 1 else 90)
                line.setValue(band[0])

    def _place_ticks(self, panel: Panel, show_gate_labels: bool) -> None:
        left, bottom = self.plot.getAxis("left"), self.plot.getAxis("bottom")
        rows, cols = panel.data.shape
        left.setTicks(None)
        bottom.setTicks(None)
        self._gate_labels_shown = show_gate_labels
        self._update_gate_ticks()
        # Equal axis sizes keep row j of every matrix in a row (or column) at the same pixels.
        bottom.setHeight(AXIS_HEIGHT)
        left.setWidth(AXIS_WIDTH if show_gate_labels or panel.gate_axis != 0 else 14)
        if panel.bands:
            edges = [b[0] for b in panel.bands] + [rows if panel.gate_axis == 1 else cols]
            band_ticks = [
                ((a + b) / 2, f"{label.split(' ')[0]} rows" if panel.gate_axis == 1 else label)
                for (a, _), b, (_, label) in zip(panel.bands, edges[1:], panel.bands, strict=False)
            ]
            (left if panel.gate_axis == 1 else bottom).setTicks([band_ticks, []])
        row_label, col_label = panel.axis_labels
        self.plot.setLabel("left", row_label if (show_gate_labels or panel.gate_axis != 0) else "")
        self.plot.setLabel("bottom", col_label)

    def _update_gate_ticks(self) -> None:
        """Gate names and unit numbers for the range now visible (see ``gate_axis_ticks``)."""
        panel = self.panel
        if panel is None or panel.gate_axis not in (0, 1):
            return
        vertical = panel.gate_axis == 0
        axis = self.plot.getAxis("left" if vertical else "bottom")
        (x_lo, x_hi), (y_lo, y_hi) = self.plot.vb.viewRange()
        lo, hi = (y_lo, y_hi) if vertical else (x_lo, x_hi)
        rect = self.plot.vb.boundingRect()
        pixels = rect.height() if vertical else rect.width()
        levels = gate_axis_ticks(
            panel.hidden, tuple(panel.block_labels), lo, hi, max(pixels, 1.0), vertical
        )
        if not self._gate_labels_shown:  # a neighbour's rows: its first panel names them
            levels = [[(v, "") for v, _ in level] for level in levels]
        if levels != axis._tickLevels:
            axis.setTicks(levels)

    def _on_range_changed(self, *_args) -> None:
        self._update_gate_ticks()

    # ------------------------------------------------------------------ hover
    def contains(self, scene_pos: QPointF) -> bool:
        return self.panel is not None and self.plot.vb.sceneBoundingRect().contains(scene_pos)

    def index_at(self, scene_pos: QPointF) -> tuple[int, int]:
        p = self.plot.vb.mapSceneToView(scene_pos)
        return math.floor(p.y()), math.floor(p.x())

    def cell_at(self, scene_pos: QPointF) -> Cell | None:
        if not self.contains(scene_pos):
            return None
        assert self.panel is not None
        return self.panel.cell(*self.index_at(scene_pos))

    def highlight_unit(self, unit: int | None) -> None:
        """Outline unit ``unit`` in each gate block (its row, or column)."""
        panel = self.panel
        if panel is None or panel.gate_axis is None or unit is None or not 0 <= unit < panel.hidden:
            self.clear_highlight()
            return
        rows, cols = panel.data.shape
        n_blocks = len(panel.block_labels)
        for k, rect in enumerate(self.highlights):
            if k >= n_blocks:
                rect.setVisible(False)
                continue
            pos = k * panel.hidden + unit
            r = QRectF(0, pos, cols, 1) if panel.gate_axis == 0 else QRectF(pos, 0, 1, rows)
            rect.setRect(r)
            rect.setVisible(True)

    def mark_cell(self, row: int | None, col: int | None = None) -> None:
        """Outline displayed cell ``(row, col)``; None hides the outline."""
        self.cursor_cell.setVisible(row is not None and col is not None)
        if row is not None and col is not None:
            self.cursor_cell.setRect(QRectF(col, row, 1, 1))

    def highlighted_rects(self) -> list[QRectF]:
        return [r.rect() for r in self.highlights if r.isVisible()]

    def clear_highlight(self) -> None:
        for rect in self.highlights:
            rect.setVisible(False)
