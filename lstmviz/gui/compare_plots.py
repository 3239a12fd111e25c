"""The compare view's two plots: max |Δ| per step and the Δ heatmap (unit × step).

Both share the step axis and carry a cursor at the debugger's step and a marker at the first
divergence. Stepping moves two lines and nothing else (the curve and the image are set when
the pair or the quantity changes), so it stays far below the 16 ms frame budget at H = 1024.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal

from lstmviz.comparison import DirectionDelta, Divergence
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit

DIVERGENCE_COLOR = ps.HIT_COLOR
CURSOR_COLOR = "#444444"


class ComparePlots(pg.GraphicsLayoutWidget):
    """``show_delta(dd, quantity, divergence, tol)``, then ``set_step(t)`` / ``set_unit(u)``."""

    step_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        ps.style_widget(self)
        self.curve_plot = ps.style_plot(
            self.addPlot(row=0, col=0, axisItems=ps.integer_axes("bottom")), "max |Δ| per step"
        )
        self.curve_plot.setMouseEnabled(x=True, y=False)
        self.curve = self.curve_plot.plot(pen=pg.mkPen(ps.COLORS["c"], width=1.5))
        self.tol_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#999999", width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
        )
        self.curve_plot.addItem(self.tol_line, ignoreBounds=True)
        self.heat_plot = ps.style_plot(
            self.addPlot(row=1, col=0, axisItems=ps.integer_axes("bottom", "left")),
            "Δ = B − A, unit × step",
        )
        self.heat_plot.setLabel("bottom", "step", color=ps.FOREGROUND)
        self.heat_plot.setLabel("left", "unit", color=ps.FOREGROUND)
        self.heat_plot.invertY(True)
        self.heat_plot.setXLink(self.curve_plot)
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.image.setLookupTable(ps.lut(ps.SIGNED_CMAP))
        self.heat_plot.addItem(self.image)
        self.bar = pg.ColorBarItem(
            values=(-1, 1), colorMap=ps.colormap(ps.SIGNED_CMAP), interactive=False, width=12
        )
        self.bar.setImageItem(self.image)
        # in a column of its own, so both plots keep one width and their linked steps align
        self.addItem(self.bar, row=1, col=1)
        self.setMinimumHeight(160)
        self.cursors = []
        self.marks = []
        for plot in (self.curve_plot, self.heat_plot):
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(CURSOR_COLOR, width=1.5))
            mark = pg.InfiniteLine(
                angle=90,
                pen=pg.mkPen(DIVERGENCE_COLOR, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
            )
            mark.setVisible(False)
            plot.addItem(cursor, ignoreBounds=True)
            plot.addItem(mark, ignoreBounds=True)
            self.cursors.append(cursor)
            self.marks.append(mark)
        self.unit_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(ps.SELECT_COLOR, width=1))
        self.heat_plot.addItem(self.unit_line, ignoreBounds=True)
        self.div_point = pg.ScatterPlotItem(
            symbol="o", size=11, pen=pg.mkPen(DIVERGENCE_COLOR, width=2), brush=None
        )
        self.heat_plot.addItem(self.div_point)
        self.heat_plot.scene().sigMouseClicked.connect(self._on_clicked)
        self.shown: tuple[int, int, int, str] | None = None

    def show_delta(
        self,
        dd: DirectionDelta | None,
        quantity: str | None,
        divergence: Divergence | None,
        tol: float,
    ) -> None:
        """Curve and image of one paired direction; ``quantity`` None: every quantity's max
        in the curve, the hidden state h in the heatmap."""
        if dd is None:
            self.curve.setData([], [])
            self.image.clear()
            self.div_point.setData([], [])
            for m in self.marks:
                m.setVisible(False)
            self.shown = None
            return
        key = (id(dd), dd.direction, 0 if divergence is None else divergence.step, quantity or "")
        if key == self.shown:
            return
        self.shown = key
        per_step = dd.max_per_step(quantity)
        self.curve.setData(np.arange(per_step.size), per_step)
        self.tol_line.setPos(tol)
        self.curve_plot.setTitle(
            f"max |Δ| per step ({quantity or ', '.join(dd.quantities)})",  # the cell's own
            color=ps.FOREGROUND,
            size="10pt",
        )
        heat_q = quantity or "h"
        delta = dd.delta(heat_q).T.astype(np.float32)  # (units, T)
        limit = symmetric_limit(delta) or 1.0
        self.image.setImage(delta, levels=(-limit, limit), autoLevels=False)
        self.image.setRect(QRectF(-0.5, -0.5, delta.shape[1], delta.shape[0]))
        self.bar.setLevels((-limit, limit))
        self.heat_plot.setTitle(
            f"Δ {heat_q} = B − A, unit × step", color=ps.FOREGROUND, size="10pt"
        )
        hit = divergence is not None and divergence.layer == dd.layer_a
        hit = hit and divergence.direction == dd.direction
        for m in self.marks:
            m.setVisible(hit)
            if hit:
                m.setPos(divergence.step)
        if hit and divergence.unit < delta.shape[0]:
            self.div_point.setData([divergence.step], [divergence.unit])
        else:
            self.div_point.setData([], [])
        self.curve_plot.enableAutoRange()
        self.heat_plot.enableAutoRange()

    def set_step(self, t: int) -> None:
        for c in self.cursors:
            c.setPos(t)

    def set_unit(self, u: int) -> None:
        self.unit_line.setPos(u)

    def _on_clicked(self, event) -> None:
        pos = event.scenePos()
        for plot in (self.heat_plot, self.curve_plot):
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                self.step_clicked.emit(round(x))
                return
