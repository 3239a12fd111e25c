"""Whole-run diagnostics for the selected layer/direction, plus a summary of all of them.

Saturation per unit (share of steps with a gate below 0.05 or above 0.95), dead units, the
product of the cell's retention gate (``CellDescription.retention_gate``: the LSTM's forget
gate, how much of ``c_s`` survives to ``c_t``; the GRU's update gate z, how much of ``h_s``
survives to ``h_t``; none for a plain RNN) and the first NaN/Inf. The gates and words come from
the cell description. Work is done only when the view is visible and something changed
(``refresh`` is cheap otherwise).
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from lstmviz.core import diagnostics as diag
from lstmviz.core.cells import DEFAULT_CELL, CellDescription
from lstmviz.core.trace import Trace
from lstmviz.gui import cell_rows
from lstmviz.gui import plot_style as ps

#: 0 (never saturated) is the plot's own near-white, rising through orange to dark red, so an
#: all-zero strip looks empty rather than black (CET-L3 starts at black).
SATURATION_CMAP = pg.ColorMap([0.0, 0.5, 1.0], [(246, 246, 246), (245, 140, 60), (120, 0, 0)])


def no_saturation_text(gates: tuple[str, ...]) -> str:
    """The note of an all-clear saturation strip, naming the cell's gates."""
    return f"no gate saturated: {', '.join(gates)} stayed within 0.05–0.95 at every step"


def retention_words(cell: CellDescription) -> tuple[str, str, str] | None:
    """``(gate, its long name, the state it keeps)`` of a cell's retention gate (``f``,
    ``forget``, ``c``; the GRU's ``z``, ``update``, ``h``), or None (a plain RNN)."""
    gate = cell.retention_gate
    if gate is None:
        return None
    kept = next((s for s in cell.state_names if s != "h"), "h")
    return gate, cell.gate(gate).long_name, kept


NO_SATURATION = no_saturation_text(cell_rows.gate_rows(DEFAULT_CELL))
#: Shorter forms of the note for a narrow strip, longest first.
NO_SATURATION_SHORT = ("no gate saturated (all within 0.05–0.95)", "none saturated", "none")


class DiagnosticsView(QWidget):
    """Saturation image, forget-product heatmap and a text report; clicking a step jumps there."""

    step_requested = Signal(int)
    unit_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._trace: Trace | None = None
        self._sel = (0, 0, 0)
        self._dirty = True
        self.saturation = np.zeros((3, 0))
        self._no_saturation = NO_SATURATION
        self.product = np.zeros((0, 0))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        self.product_label = QLabel("Forget-gate product:")
        row.addWidget(self.product_label)
        self.product_mode = QComboBox()
        self.product_mode.addItems(["mean over units", "selected unit"])
        self.product_mode.currentIndexChanged.connect(self._on_product_mode_changed)
        row.addWidget(self.product_mode)
        row.addStretch(1)
        layout.addLayout(row)

        self.plots = pg.GraphicsLayoutWidget()
        ps.style_widget(self.plots)
        self.sat_plot = ps.style_plot(
            self.plots.addPlot(row=0, col=0, axisItems=ps.integer_axes("bottom")),
            "gate saturation per unit",
        )
        self.sat_plot.invertY(True)
        self.sat_plot.setMouseEnabled(x=True, y=False)
        self.sat_plot.setLabel("bottom", "unit", color=ps.FOREGROUND)
        first = cell_rows.gate_rows(DEFAULT_CELL)
        self.sat_plot.getAxis("left").setTicks([[(k + 0.5, g) for k, g in enumerate(first)]])
        self.sat_image = pg.ImageItem(axisOrder="row-major")
        self.sat_plot.addItem(self.sat_image)
        self.sat_bar = pg.ColorBarItem(
            values=(0, 1),
            colorMap=SATURATION_CMAP,
            interactive=False,
            label="saturated",  # short: the strip is only a few rows high
        )
        self.sat_bar.setImageItem(self.sat_image, insert_in=self.sat_plot)
        ps.thin_labels(self.sat_bar.axis)  # the strip is short: 0.2-steps would overlap
        # Nothing saturated must read as good news, not as a broken black strip.
        self.sat_empty = pg.TextItem(NO_SATURATION, color="#2e6b30", anchor=(0.5, 0.5))
        self.sat_empty.setZValue(5)
        self.sat_empty.setVisible(False)
        self.sat_plot.addItem(self.sat_empty, ignoreBounds=True)
        self.sat_plot.vb.sigResized.connect(self._fit_empty_note)
        self.dead_marks = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen("k", width=2))
        self.sat_plot.addItem(self.dead_marks)

        self.prod_plot = ps.style_plot(
            self.plots.addPlot(row=1, col=0, axisItems=ps.integer_axes("bottom", "left")),
            "forget-gate product",
        )
        self.prod_plot.setLabel("bottom", "to step t", color=ps.FOREGROUND)
        self.prod_plot.setLabel("left", "from step s", color=ps.FOREGROUND)
        self.prod_plot.invertY(True)
        self.prod_plot.setAspectLocked(False)
        self.prod_image = pg.ImageItem(axisOrder="row-major")
        self.prod_plot.addItem(self.prod_image)
        self.prod_bar = pg.ColorBarItem(
            values=(0, 1),
            colorMap=ps.colormap(ps.GATE_CMAP),
            interactive=False,
            label="share of c_s left in c_t",
        )
        self.prod_bar.setImageItem(self.prod_image, insert_in=self.prod_plot)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d62728", width=2))
        self.prod_plot.addItem(self.cursor)
        self.plots.ci.layout.setRowStretchFactor(0, 1)
        self.plots.ci.layout.setRowStretchFactor(1, 3)
        self.plots.scene().sigMouseClicked.connect(self._on_scene_clicked)
        layout.addWidget(self.plots, 3)

        self.report = QTextBrowser()
        self.report.setMaximumHeight(150)
        layout.addWidget(self.report, 1)

    # -- inputs ----------------------------------------------------------------------------------
    def set_trace(self, trace: Trace) -> None:
        self._trace = trace
        self._dirty = True
        self.refresh()

    def set_selection(self, layer: int, direction: int, unit: int) -> None:
        new = (layer, direction, unit)
        if new == self._sel:
            return
        unit_only = new[:2] == self._sel[:2]
        self._sel = new
        if unit_only and self.product_mode.currentIndex() == 0:
            return  # the mean product and the saturation do not depend on the unit
        self._dirty = True
        self.refresh()

    def show_step(self, t: int) -> None:
        self.cursor.setValue(t)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def _on_product_mode_changed(self, _index: int) -> None:
        self._dirty = True
        self.refresh()

    # -- work ------------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Recompute when dirty and visible (or forced, e.g. for an export or a test)."""
        if self._trace is None or not self._dirty or not (self.isVisible() or force):
            return
        self._dirty = False
        trace = self._trace
        layer, direction, unit = self._sel
        lt = trace.layers[min(layer, len(trace.layers) - 1)]
        dt = lt.directions[min(direction, len(lt.directions) - 1)]
        H, T = cell_rows.hidden_size(dt), trace.n_steps
        side = "backward" if direction else "forward"
        gates = cell_rows.gate_rows(dt.cell)
        kept = retention_words(dt.cell)
        per_unit = self.product_mode.currentIndex() == 1
        with np.errstate(invalid="ignore"):
            sat = diag.saturation_table(dt)
            dead = diag.dead_units(dt)
            product = (
                diag.forget_product(dt, unit if per_unit else None)
                if kept is not None
                else np.full((1, 1), np.nan)
            )
        self.saturation = sat
        self.product = product
        n = max(len(gates), 1)
        self.sat_plot.getAxis("left").setTicks([[(k + 0.5, g) for k, g in enumerate(gates)]])
        self.sat_image.setImage(
            sat if len(gates) else np.zeros((1, H)), autoLevels=False, levels=(0, 1)
        )
        self.sat_image.setRect(QRectF(-0.5, 0, H, n))  # unit u centred on x = u
        none = not np.any(sat > 0)  # all 0 (or NaN): nothing to see but this sentence
        self._no_saturation = (
            no_saturation_text(gates) if gates else f"no gates in this cell ({dt.cell.name})"
        )
        self._fit_empty_note()
        self.sat_empty.setVisible(none)
        self.sat_empty.setPos((H - 1) / 2, n / 2)
        self._fit_empty_note()
        ps.fit_title(
            self.sat_plot,
            f"gate saturation per unit — layer {layer} {side}"
            + (" (none saturated)" if none else "")
            + (" (× = dead unit)" if len(dead) else ""),
        )
        self.dead_marks.setData(x=np.asarray(dead, float), y=np.full(len(dead), n / 2))
        # NaN (t read before s: no c_s yet) stays blank, unlike 0 = all of c_s forgotten
        self.prod_image.setImage(product, autoLevels=False, levels=(0, 1))
        self.prod_image.setRect(QRectF(-0.5, -0.5, T, T))  # step s, t centred on s, t
        what = f"unit {unit}" if per_unit else "mean over units"
        arrow = (
            "this direction runs backwards: memory flows from later to earlier steps"
            if dt.reverse
            else ""
        )
        if kept is None:
            title = (
                f"no retention product: this cell ({dt.cell.name}) has no gate keeping its state"
            )
            self.product_label.setText("Retention product (none for this cell):")
        else:
            g, long_name, state = kept
            title = f"{long_name}-gate product P[s,t] = ∏ {g}(s+1…t): {what}, layer {layer} {side}"
            self.product_label.setText(f"{long_name.capitalize()}-gate product:")
            self.prod_bar.getAxis("left").setLabel(f"share of {state}_s left in {state}_t")
        self.product_mode.setEnabled(kept is not None)
        ps.fit_title(self.prod_plot, f"{title}<br>{arrow}" if arrow else title)
        self.prod_plot.setRange(xRange=(-0.5, T - 0.5), yRange=(-0.5, T - 0.5), padding=0)
        self.sat_plot.setRange(xRange=(-0.5, H - 0.5), yRange=(0, n), padding=0)
        self._write_report(trace)

    def _fit_empty_note(self, *_args) -> None:
        """The longest form of the no-saturation note that fits the strip's width."""
        metrics = QFontMetricsF(self.sat_empty.textItem.font())
        room = self.sat_plot.vb.width() - 8
        forms = (self._no_saturation, *NO_SATURATION_SHORT)
        text = next((t for t in forms if metrics.horizontalAdvance(t) <= room), forms[-1])
        if text != self.sat_empty.textItem.toPlainText():
            self.sat_empty.setText(text)

    def _write_report(self, trace: Trace) -> None:
        lines = []
        with np.errstate(invalid="ignore"):
            bad = diag.first_nonfinite(trace)
            reports = diag.report(trace)
        if bad is None:
            lines.append("<b>No NaN or Inf</b> anywhere in this run.")
        else:
            lines.append(f"<b style='color:{ps.HIT_COLOR}'>{html.escape(bad.describe())}</b>")
        for r in reports:
            dead = ", ".join(str(u) for u in r.dead[:12]) + (" …" if len(r.dead) > 12 else "")
            lines.append(html.escape(r.summary()) + (f" — dead: {dead}" if len(r.dead) else ""))
        self.report_lines = lines
        self.report.setHtml("<br>".join(lines))

    def _on_scene_clicked(self, event) -> None:
        pos = event.scenePos()
        if self._trace is None:
            return
        if self.prod_plot.vb.sceneBoundingRect().contains(pos):
            t = round(self.prod_plot.vb.mapSceneToView(pos).x())
            if 0 <= t < self._trace.n_steps:
                self.step_requested.emit(t)
        elif self.sat_plot.vb.sceneBoundingRect().contains(pos):
            u = round(self.sat_plot.vb.mapSceneToView(pos).x())
            if 0 <= u < self.saturation.shape[1]:
                self.unit_requested.emit(u)
