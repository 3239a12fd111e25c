"""Many units at once: one line per unit over time (LSTMVis' parallel-coordinates plot) and
a unit × time heatmap sorted by activity, for h, c or any gate.

A view on the workspace's run, selected layer/direction and step, and on the session's unit
set (units, quantity, span). Items live long: lines are kept and their data swapped, the
heatmap is one ``ImageItem`` with fixed levels ([0, 1] for the sigmoid gates, symmetric for
h, g and c). The shaded region is the selected span: drag it, or its edges, along the time
axis to change the span. A click on a heatmap row selects that unit in the debugger.

A bounded run (checkpoints only, ``core.checkpointed_trace``) is drawn from its overview when
zoomed out (min/max envelopes, one heatmap column per overview block) and with exact values
recomputed in the worker once the view rests zoomed in to a few thousand steps
(``unit_set_lazy``); the titles say which, and "computing" while the values are on their way.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtWidgets import QGraphicsItem, QWidget

from lstmviz.gui import plot_style as ps
from lstmviz.gui import unit_set_lazy as lazy
from lstmviz.gui.long_plots import peak_image
from lstmviz.gui.text_layout import levels_for
from lstmviz.gui.text_view import WANT_DELAY_MS, run_is_current
from lstmviz.gui.unit_set_lazy import EXACT_STEPS
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
HEAT_TITLE = "unit × time, most active first"


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
        #: steps of ``values``' rows: (0, T) on a full run, the exact window on a bounded one
        self.steps: tuple[int, int] | None = None
        self._stale = True
        self._run: int | None = None  # id of the run drawn: its zoom is kept for it
        self._current: tuple[int, int, bool] = (0, 0, False)  # run, sequence, matching
        # a bounded run: overview of the shown units, exact values of a window (worker)
        self._exact = lazy.ExactValues(workspace, self._on_exact_done)
        self._mm = None  # MinMax (blocks, n) of ``rows`` from the run's overview, or None
        self._drawn_span: tuple[int, int] | None = None  # steps the envelope lines cover
        self._image_mode = ""  # what the heatmap holds: "envelope", "exact" or ""
        self._title = ""
        self.levels = (0.0, 1.0)
        self.line_plot = ps.style_plot(
            self.addPlot(row=0, col=0, axisItems=ps.integer_axes("bottom")), "units over time"
        )
        self.heat_plot = ps.style_plot(
            self.addPlot(row=1, col=0, axisItems=ps.integer_axes("bottom", "left")),
            HEAT_TITLE,
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
        # a bounded run follows the visible steps: envelopes redrawn 30 ms after a zoom or
        # pan (cheap), exact values asked for once the view rests (``WANT_DELAY_MS``)
        self._range_timer = QTimer(self, singleShot=True, interval=30, timeout=self._draw_bounded)
        self._want_timer = QTimer(self, singleShot=True, interval=WANT_DELAY_MS,
                                  timeout=self._want_now)  # fmt: skip
        self.line_plot.sigXRangeChanged.connect(self._on_x_range_changed)
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
            self._exact.clear()  # no values computed for nobody (nor drawn late)
            return
        self._stale = False
        ws = self.workspace
        trace, units, q = ws.trace, list(self.selection.units), self.selection.quantity
        s = ws.selection
        current = (id(trace), id(ws.sequence))  # compared once: 10⁶ steps took ~4 ms
        if self._current[:2] != current:
            self._current = (*current, run_is_current(trace, ws.sequence))
        if not self._current[2] or not units:
            self._exact.clear()
            self._forget()
            self._show_empty("Computing the run…" if units else EMPTY_MESSAGE)
            if units and trace is None:
                ws.ensure_trace()  # as the text view does: "computing" must be true
            return
        all_values = unit_values(trace, s.layer, s.direction, q)
        units = [u for u in units if u < all_values.shape[1]]
        T = trace.n_steps
        self.levels = lo, hi = memo(  # a bounded trace's from its overview (exact)
            trace, f"text_levels/{s.layer}/{s.direction}/{q}", lambda: levels_for(q, all_values)
        )
        new_run = id(trace) != self._run
        self._run = id(trace)
        self._show_plots()
        if getattr(trace, "bounded", False):  # checkpoints only (core.checkpointed_trace)
            where = f"{s.layer}/{s.direction}/{q}"
            self.rows, self._mm = lazy.ordered_overview(trace, all_values, units, where)
            key = (id(trace), s.layer, s.direction, q, tuple(self.rows))
            self._exact.reset(key, all_values, self.rows, T)
            self.values, self.steps = None, None
            self._drawn_span, self._image_mode = None, ""
        else:
            self._exact.clear()
            self._mm = None
            self.rows = activity_order(all_values, units)
            self.values, self.steps = all_values[:, self.rows], (0, T)
            self._set_lines(self.values, self.rows)
            self.image.setImage(self.values.T[::-1], autoLevels=False, levels=(lo, hi))
            self.image.setRect(QRectF(-0.5, -0.5, T, len(self.rows)))
        n = len(self.rows)
        self.line_plot.setYRange(lo, hi, padding=0.02)
        self._set_row_axis()
        if new_run:
            self.line_plot.vb.setLimits(xMin=-0.5, xMax=T - 0.5, minXRange=min(2, T))
            self.line_plot.setXRange(-0.5, T - 0.5, padding=0)
        more = f", first {MAX_LINES} drawn" if n > MAX_LINES else ""
        self._title = f"{q} of {n} unit{'s' if n != 1 else ''} (layer {s.layer}){more}"
        if self._exact.key is not None:
            self._draw_bounded()
        else:
            ps.fit_title(self.line_plot, html.escape(self._title))
            ps.fit_title(self.heat_plot, HEAT_TITLE)
        self._update_step(None)
        self._update_span()

    def _forget(self) -> None:
        """Nothing of the previous run or set stays drawn (hidden, kept for the next)."""
        self.values, self.steps, self.rows, self._mm = None, None, [], None
        self._drawn_span, self._image_mode = None, ""
        self.image.clear()
        self._set_lines(np.zeros((0, 0)), [])

    def _set_row_axis(self) -> None:
        """Row r from the top is unit rows[r]; every k-th row named, 13 px apart at least."""
        n = len(self.rows)
        self.image.setLevels(self.levels)
        self.heat_plot.setYRange(-0.5, n - 0.5, padding=0)
        every = max(1, -(-n * 13 // max(int(self.heat_plot.vb.height()), 60)))
        ticks = [(n - 1 - r, str(u)) for r, u in enumerate(self.rows) if r % every == 0]
        self.heat_plot.getAxis("left").setTicks([ticks])

    # -- a bounded run ---------------------------------------------------------------------------
    def _visible(self) -> tuple[int, int]:
        lo, hi = self.line_plot.viewRange()[0]
        T = self.workspace.trace.n_steps if self.workspace.trace is not None else 0
        return max(0, int(np.floor(lo + 0.5))), min(T, int(np.ceil(hi + 0.5)))

    def _on_x_range_changed(self, *_args: object) -> None:
        if self._exact.key is not None and not self.empty:
            self._range_timer.start()

    def _draw_bounded(self) -> None:
        """Exact values when they cover the visible steps, else the overview's envelopes
        (asking for exact values once the view rests zoomed in); the titles say which."""
        ex = self._exact
        if ex.key is None or self.empty:
            return
        T = self.workspace.trace.n_steps
        a, b = self._visible()
        n = len(self.rows)
        shown = self.steps is not None and self.steps[0] <= a and b <= self.steps[1]
        if b - a <= EXACT_STEPS and (shown or ex.covers(a, b)):
            if not shown:
                (wa, wb), self.values = ex.window_around(a, b)
                self.steps = (wa, wb)
                self._set_lines(self.values, self.rows, np.arange(wa, wb))
                self.image.setImage(self.values.T[::-1], autoLevels=False, levels=self.levels)
                self.image.setRect(QRectF(wa - 0.5, -0.5, wb - wa, n))
                self._drawn_span, self._image_mode = None, "exact"
            note = f"exact, steps {self.steps[0]:,}–{self.steps[1] - 1:,}"
            self._want_timer.start()  # the margins, if not known yet
        else:
            self.values, self.steps = None, None
            self._draw_envelope(a, b, T)
            if b - a > EXACT_STEPS:
                per = "" if self._mm is None else f"min/max per {self._mm.block:,} steps; "
                note = f"{per}exact at ≤ {EXACT_STEPS:,}"
            elif ex.error:
                note = f"exact values not computed: {ex.error}"
            else:
                note = f"computing steps {a:,}–{b - 1:,}…"
                self._want_timer.start()
        ps.fit_title(self.line_plot, f"{html.escape(self._title)}<br>{html.escape(note)}")
        ps.fit_title(self.heat_plot, f"{HEAT_TITLE}<br>{html.escape(lazy.ORDER_NOTE)}")

    def _draw_envelope(self, a: int, b: int, T: int) -> None:
        """Each unit's min/max band over the visible steps and as much again on each side
        (redrawn when the view leaves them or is much narrower), the heatmap's overview
        blocks once; nothing but a title without an overview of this quantity."""
        mm = self._mm
        if mm is None:
            if self._image_mode:
                self.image.clear()
                self._set_lines(np.zeros((0, 0)), [])
                self._image_mode = ""
            return
        old, w = self._drawn_span, max(1, b - a)
        if old is None or not (old[0] <= a and b <= old[1] and old[1] - old[0] <= 4 * w):
            span = (max(0, a - w), min(T, b + w))
            x, Y = lazy.envelope_lines(mm, T, span)
            self._set_lines(Y, self.rows, x, envelope=True)
            self._drawn_span = span
        if self._image_mode != "envelope":
            self.image.setImage(peak_image(mm)[::-1], autoLevels=False, levels=self.levels)
            self.image.setRect(QRectF(-0.5, -0.5, mm.lo.shape[0] * mm.block, len(self.rows)))
            self._image_mode = "envelope"

    def _want_now(self) -> None:
        if self._exact.key is None or self.empty or not self.isVisible():
            return
        a, b = self._visible()
        if 0 < b - a <= EXACT_STEPS:
            self._exact.want(a, b)

    def _on_exact_done(self) -> None:
        self._draw_bounded()  # the view may have moved on: asks again after a rest

    @property
    def computing(self) -> bool:
        """Exact values of a bounded run on their way."""
        return self._exact.computing

    def _show_empty(self, message: str) -> None:
        """``message`` in an empty frame: no axes, no heatmap, no span or step marker."""
        self.empty, self._run = True, None  # the next run drawn is shown whole
        self.line_plot.vb.setLimits(xMin=None, xMax=None, minXRange=None)
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

    def _set_lines(self, values: np.ndarray, units: list[int], t: np.ndarray | None = None,
                   envelope: bool = False) -> None:  # fmt: skip
        """One curve per colour, each holding every tenth unit as separate segments
        (``connect`` breaks them): ten items whatever the set's size, made once. A
        ``PlotDataItem`` per unit cost ~2.5 ms each to make (46 units: 0.12 s of the GUI
        thread) and as much to paint. Long runs are thinned to ``MAX_POINTS`` per unit.
        Pens are 1 px: 64 units × 2,400 steps painted in 58 ms at 1.2 px, 7 ms at 1 px.
        ``t``: the steps of ``values``' rows (0, 1, … by default); ``envelope``: the rows
        are min/max bands, painted once into a pixmap (as ``long_plots`` does: a step
        repaints the cursor, not 64 bands of tall strokes)."""
        n = min(len(units), MAX_LINES)
        if not self.lines and n:
            for colour in _PALETTE:
                curve = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1))
                self.line_plot.addItem(curve)
                self.lines.append(curve)
        T = values.shape[0]
        stride = 1 if envelope else max(1, -(-T // MAX_POINTS))
        t = np.arange(T) if t is None else t
        t = np.asarray(t[::stride], dtype=np.float64)
        self._line_points = len(t)
        for g, curve in enumerate(self.lines):
            cols = list(range(g, n, len(_PALETTE)))
            if not cols:
                curve.setData([], [])
                curve.setVisible(False)
                continue
            cache = QGraphicsItem.CacheMode
            curve.setCacheMode(cache.DeviceCoordinateCache if envelope else cache.NoCache)
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
