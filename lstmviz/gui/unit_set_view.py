"""Many units at once: one line per unit over time (LSTMVis' parallel-coordinates plot) and
a unit × time heatmap sorted by activity, for h, c or any gate.

A view on the workspace's run, selected layer/direction and step, and on the session's unit
set (units, quantity, span). Items live long: lines are kept and their data swapped, the
heatmap is one ``ImageItem`` with fixed levels ([0, 1] for the sigmoid gates, symmetric for
h, g and c). The shaded region is the selected span: drag it, or its edges, along the time
axis to change the span. A click on a heatmap row selects that unit in the debugger.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from lstmviz.gui import plot_style as ps
from lstmviz.gui.text_layout import levels_for
from lstmviz.gui.text_view import run_is_current
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace
from lstmviz.workspace.explore_session import ExploreSession
from lstmviz.workspace.unit_selection import Field, activity_order, unit_values

MAX_LINES = 64  # more lines than this are a grey mass: the heatmap shows the rest
MAX_POINTS = 4000  # per line: a longer run is thinned (the heatmap keeps every step)
EMPTY_MESSAGE = (
    "No units selected: drag over the text (or set Steps), then press Select units; "
    "or pick units in the list"
)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip


class UnitSetView(pg.GraphicsLayoutWidget):
    """``lines`` (one curve per colour; ``line_data(k)`` is unit ``rows[k]``), ``image``
    (row r from the top = unit ``rows[r]``)."""

    def __init__(
        self, workspace: Workspace, session: ExploreSession, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        ps.style_widget(self)
        self.workspace, self.session = workspace, session
        self.selection = session.selection
        self.rows: list[int] = []  # heatmap row r (from the top) is unit rows[r]
        self.values: np.ndarray | None = None  # (T, n) of the shown units, None while stale
        self._stale = True
        self.line_plot = ps.style_plot(
            self.addPlot(row=0, col=0, axisItems=ps.integer_axes("bottom")), "units over time"
        )
        self.heat_plot = ps.style_plot(
            self.addPlot(row=1, col=0, axisItems=ps.integer_axes("bottom", "left")),
            "unit × time, most active first",
        )
        for plot in (self.line_plot, self.heat_plot):
            plot.setMouseEnabled(x=True, y=False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(44)
        self.heat_plot.setXLink(self.line_plot)
        self.heat_plot.setLabel("bottom", "time step t", color=ps.FOREGROUND)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(ps.lut(ps.SIGNED_CMAP))
        self.heat_plot.addItem(self.image)
        self.lines: list[pg.PlotCurveItem] = []  # one per colour, made on first use
        self._drawn = 0  # units drawn as lines
        self._line_points = 0
        self.cursors = []
        self.regions = []
        for plot in (self.line_plot, self.heat_plot):
            cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d62728", width=2))
            cursor.setZValue(10)
            plot.addItem(cursor)
            self.cursors.append(cursor)
            region = pg.LinearRegionItem(brush=pg.mkBrush(255, 0, 255, 40))
            region.setZValue(5)
            region.sigRegionChangeFinished.connect(self._on_region_changed)
            plot.addItem(region)
            self.regions.append(region)
        self.heat_plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        # with nothing to draw, a message in place of the plots: an empty shaded 0-1 axis
        # looked like data (a new user read it as a unit at 0 over one step)
        self.empty_text = pg.TextItem(anchor=(0.5, 0.5), color=ps.FOREGROUND)
        self.empty_text.setPos(0.5, 0.5)
        self.empty_text.setZValue(20)
        self.line_plot.addItem(self.empty_text, ignoreBounds=True)
        self.empty = False
        self._show_empty(EMPTY_MESSAGE)
        workspace.subscribe((Change.TRACE, Change.SELECTION, Change.SEQUENCE), self._update_data)
        workspace.subscribe(Change.STEP, self._update_step)
        self.selection.subscribe(self._on_selection_field)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._update_data(None)

    # -- events --------------------------------------------------------------------------------
    def _on_selection_field(self, field: Field) -> None:
        if field is Field.SPAN:
            self._update_span()
        else:
            self._update_data(None)

    def _update_step(self, _event: Event | None) -> None:
        for cursor in self.cursors:
            cursor.setValue(self.workspace.step)

    def _update_span(self) -> None:
        span = self.selection.span
        for region in self.regions:
            region.setVisible(span is not None and not self.empty)
            if span is not None:
                region.blockSignals(True)
                region.setRegion((span[0] - 0.5, span[1] - 0.5))
                region.blockSignals(False)

    def _update_data(self, _event: Event | None) -> None:
        """Lines and heatmap of the unit set from the current run (emptied while stale)."""
        if not self.isVisible():  # a hidden dock: drawn when it is shown
            self._stale = True
            return
        self._stale = False
        ws = self.workspace
        trace, units, q = ws.trace, list(self.selection.units), self.selection.quantity
        s = ws.selection
        if not run_is_current(trace, ws.sequence) or not units:
            self.values = None
            self.rows = []
            self.image.clear()
            self._set_lines(np.zeros((0, 0)), [])  # hidden, kept for the next run
            self._show_empty("Computing the run…" if units else EMPTY_MESSAGE)
            return
        if getattr(trace, "bounded", False):  # checkpoints only (core.checkpointed_trace)
            self.values = None
            self.rows = []
            self.image.clear()
            self._set_lines(np.zeros((0, 0)), [])
            self._show_empty(f"Units over time not drawn: a run of {trace.n_steps:,} steps "
                             "keeps only checkpoints")  # fmt: skip
            return
        self._show_plots()
        all_values = unit_values(trace, s.layer, s.direction, q)
        units = [u for u in units if u < all_values.shape[1]]
        self.rows = activity_order(all_values, units)
        self.values = all_values[:, self.rows]
        T = trace.n_steps
        lo, hi = memo(
            trace, f"text_levels/{s.layer}/{s.direction}/{q}", lambda: levels_for(q, all_values)
        )
        self._set_lines(self.values, self.rows)
        self.line_plot.setYRange(lo, hi, padding=0.02)
        # row 0 (the most active unit) at the top: flip so image row r sits at y = n-1-r
        n = len(self.rows)
        self.image.setImage(self.values.T[::-1], autoLevels=False, levels=(lo, hi))
        self.image.setRect(QRectF(-0.5, -0.5, T, n))
        self.heat_plot.setYRange(-0.5, n - 0.5, padding=0)
        # the rows are units, not numbers: every k-th row named, 13 px apart at least
        every = max(1, -(-n * 13 // max(int(self.heat_plot.vb.height()), 60)))
        ticks = [(n - 1 - r, str(u)) for r, u in enumerate(self.rows) if r % every == 0]
        self.heat_plot.getAxis("left").setTicks([ticks])
        self.line_plot.setXRange(-0.5, T - 0.5, padding=0)
        more = f", first {MAX_LINES} drawn" if n > MAX_LINES else ""
        title = f"{q} of {n} unit{'s' if n != 1 else ''} (layer {s.layer}){more}"
        ps.fit_title(self.line_plot, html.escape(title))
        self._update_step(None)
        self._update_span()

    def _show_empty(self, message: str) -> None:
        """``message`` in an empty frame: no axes, no heatmap, no span or step marker."""
        self.empty = True
        self.empty_text.setText(message)
        self._fit_empty_text()
        self.empty_text.show()
        self.line_plot.setTitle("")
        self.line_plot.setXRange(0, 1, padding=0)
        self.line_plot.setYRange(0, 1, padding=0)
        for name in ("left", "bottom"):
            self.line_plot.hideAxis(name)
        for item in (*self.cursors, *self.regions):
            item.hide()
        self.heat_plot.hide()

    def _fit_empty_text(self) -> None:
        """Wrap the message to the widget's width (it was cut off at both ends when the
        dock got narrower than the width it was made at)."""
        self.empty_text.setTextWidth(max(120, self.width() - 60))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "empty", False):  # pyqtgraph resizes during its own __init__
            self._fit_empty_text()

    def _show_plots(self) -> None:
        if not self.empty:
            return
        self.empty = False
        self.empty_text.hide()
        for name in ("left", "bottom"):
            self.line_plot.showAxis(name)
        for item in self.cursors:
            item.show()
        self.heat_plot.show()

    def _set_lines(self, values: np.ndarray, units: list[int]) -> None:
        """One curve per colour, each holding every tenth unit as separate segments
        (``connect`` breaks them): ten items whatever the set's size, made once. A
        ``PlotDataItem`` per unit cost ~2.5 ms each to make (46 units: 0.12 s of the GUI
        thread) and as much to paint. Long runs are thinned to ``MAX_POINTS`` per unit."""
        n = min(len(units), MAX_LINES)
        if not self.lines and n:
            for colour in _PALETTE:
                curve = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1.2))
                self.line_plot.addItem(curve)
                self.lines.append(curve)
        T = values.shape[0]
        stride = max(1, -(-T // MAX_POINTS))
        t = np.arange(0, T, stride, dtype=np.float64)
        self._line_points = len(t)
        for g, curve in enumerate(self.lines):
            cols = list(range(g, n, len(_PALETTE)))
            if not cols:
                curve.setData([], [])
                curve.setVisible(False)
                continue
            y = values[::stride, cols].T.astype(np.float64).ravel()
            connect = np.ones(len(y), dtype=bool)
            connect[len(t) - 1 :: len(t)] = False  # no segment from one unit to the next
            curve.setData(np.tile(t, len(cols)), y, connect=connect)
            curve.setVisible(True)
        self._drawn = n

    def line_data(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(t, values)`` drawn for the ``k``-th unit of ``rows`` (tests read it back)."""
        if not 0 <= k < self._drawn:
            raise IndexError(f"line {k}: {self._drawn} lines are drawn")
        curve, j, n = self.lines[k % len(_PALETTE)], k // len(_PALETTE), self._line_points
        return curve.xData[j * n : (j + 1) * n], curve.yData[j * n : (j + 1) * n]

    # -- user actions --------------------------------------------------------------------------
    def _on_region_changed(self, region: pg.LinearRegionItem) -> None:
        lo, hi = region.getRegion()
        self.selection.set_span(round(lo + 0.5), round(hi + 0.5))

    def _on_scene_clicked(self, event) -> None:
        vb = self.heat_plot.vb
        if not self.rows or not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        y = vb.mapSceneToView(event.scenePos()).y()
        r = len(self.rows) - 1 - round(y)
        if 0 <= r < len(self.rows):
            self.workspace.select(unit=self.rows[r])

    def unit_at_row(self, r: int) -> int:
        """The unit drawn in heatmap row ``r`` from the top (for tests and tooltips)."""
        return self.rows[r]
