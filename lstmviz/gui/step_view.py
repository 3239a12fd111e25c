"""One step of one layer/direction: every unit's gates and states, and what drives each gate.

Top: heat rows of i, f, g, o, c, act(c), h for all units on fixed scales ([0, 1] for gates,
symmetric for g, c, h). Bottom: per gate, the three (or four) terms of its pre-activation,
``W_x·x_t``, ``W_h·h_{t-1}``, ``b`` (and the peephole), next to their sum, so one sees which
term pushes a gate open or shut. Items are created once; a step only swaps image data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QWidget

from lstmviz.core.activations import Activation
from lstmviz.core.breakpoints import Hit
from lstmviz.core.model import GATES
from lstmviz.core.trace import DirectionTrace, Trace
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace

#: Rows of the state plot: (trace attribute, kind of scale).
STATE_ROWS = ("i", "f", "g", "o", "c", "act_c", "h")
_GATE_ROWS = {"i", "f", "o"}
#: The h row shows m = o·act(c), which equals h_t unless a projection W_p maps it to P values.
_ATTR = {"h": "m"}
HOVER_HINT = "click a unit to inspect it; hover to read values"
#: The narrowest unit range a zoom of the step view shows.
MIN_UNITS = 4
_BOUNDED = {"tanh", "softsign", "sigmoid", "hard_sigmoid_k2", "hard_sigmoid_k3", "hard_sigmoid_ab"}


def _signed_limit(values: np.ndarray, act: Activation | None = None) -> float:
    """±1 for a bounded activation, otherwise the largest magnitude in the whole run."""
    if act is not None and act.name in _BOUNDED:
        return 1.0
    return symmetric_limit(values)


def run_levels(dt: DirectionTrace) -> tuple[dict, list, tuple[float, float]]:
    """Fixed colour levels of one direction for the whole run: per state row, per gate's
    term breakdown, and of the projected h. Computed once per run (``view_cache``), in the
    run's worker when ``prepare_trace`` got there first."""

    def compute() -> tuple[dict, list, tuple[float, float]]:
        w = dt.weights
        H = dt.c.shape[1]
        acts = {"g": w.act_cand, "act_c": w.act_cell, "h": w.act_cell}
        levels: dict[str, tuple[float, float]] = {}
        for name in STATE_ROWS:
            if name in _GATE_ROWS:
                levels[name] = (0.0, 1.0)
                continue
            values = getattr(dt, _ATTR.get(name, name))
            lim = _signed_limit(dt.c) if name == "c" else _signed_limit(values, acts[name])
            levels[name] = (-lim, lim)
        terms = []
        for k in range(len(GATES)):
            sl = slice(k * H, (k + 1) * H)
            parts = [dt.z_x[:, sl], dt.z_h[:, sl], dt.b[sl]]
            if dt.peep is not None:
                parts.append(dt.peep[:, sl])
            lim = max(_signed_limit(p) for p in [*parts, dt.pre[:, sl]])
            terms.append((-lim, lim))
        lim = _signed_limit(dt.h) if w.W_p is not None else 1.0
        return levels, terms, (-lim, lim)

    return memo(dt, "step_levels", compute)


def direction_caption(trace: Trace, layer: int, direction: int) -> str:
    """``layer 1 bidi backward``: the words every debugger view uses for one direction."""
    lt = trace.layers[layer]
    if lt.layer.bidirectional:
        return f"layer {layer} {lt.layer.name!s} {'backward' if direction else 'forward'}"
    reverse = lt.directions[direction].reverse
    return f"layer {layer} {lt.layer.name}" + (" (reads backwards)" if reverse else "")


def row_label(name: str, dt: DirectionTrace) -> str:
    """Row names with the model's real activation functions."""
    w = dt.weights
    return {
        "i": f"i = {w.act_gate.name}(·)",
        "f": f"f = {w.act_gate.name}(·)",
        "g": f"g = {w.act_cand.name}(·)",
        "o": f"o = {w.act_gate.name}(·)",
        "c": "c_t",
        "act_c": f"{w.act_cell.name}(c_t)",
        "h": "h_t" if w.W_p is None else "m_t = o·act(c)",
    }[name]


class StepView(pg.GraphicsLayoutWidget):
    """Heat rows for one step; ``show_step(t)`` only calls ``setImage`` on existing items."""

    unit_clicked = Signal(int)

    def __init__(self, workspace: Workspace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ps.style_widget(self)
        self.workspace = workspace
        self._dirty = False
        self._caption = ""
        self._dt: DirectionTrace | None = None
        self._levels: dict[str, tuple[float, float]] = {}
        self._term_levels: list[tuple[float, float]] = []
        self._terms: tuple[str, ...] = ()
        self._step = 0

        self.title = self.addLabel("", row=0, col=0, colspan=2, color=ps.FOREGROUND, size="10pt")
        ps.let_shrink(self.title)
        self.states = ps.style_plot(
            self.addPlot(row=1, col=0, colspan=2, axisItems=ps.integer_axes("bottom"))
        )
        # elided to the plot's width: at 1024 × 700 both titles ran past their plots
        ps.fit_title(self.states, "gates and states at this step (one column per unit)", size="9pt")
        self.terms_plot = ps.style_plot(
            self.addPlot(row=2, col=0, colspan=2, axisItems=ps.integer_axes("bottom"))
        )
        self.terms_plot.setXLink(self.states)
        for plot in (self.states, self.terms_plot):
            plot.invertY(True)
            plot.setMouseEnabled(x=True, y=False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(130)
            plot.setLabel("bottom", "unit", color=ps.FOREGROUND)
        # 16+ rows of term labels: a smaller font keeps them apart on a 800-pixel screen
        self.terms_plot.getAxis("left").setStyle(tickFont=ps.small_font(8))
        self.ci.layout.setRowStretchFactor(1, 7)
        self.ci.layout.setRowStretchFactor(2, 10)

        gate_lut, signed_lut = ps.lut(ps.GATE_CMAP), ps.lut(ps.SIGNED_CMAP)
        self.images: dict[str, pg.ImageItem] = {}
        for name in STATE_ROWS:
            img = pg.ImageItem(axisOrder="row-major")
            img.setLookupTable(gate_lut if name in _GATE_ROWS else signed_lut)
            self.states.addItem(img)
            self.images[name] = img
        self.term_images: list[pg.ImageItem] = []
        for _ in GATES:
            img = pg.ImageItem(axisOrder="row-major")
            img.setLookupTable(signed_lut)
            self.terms_plot.addItem(img)
            self.term_images.append(img)

        self.unit_lines = [
            pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(ps.SELECT_COLOR, width=2))
            for _ in range(2)
        ]
        self.states.addItem(self.unit_lines[0])
        self.terms_plot.addItem(self.unit_lines[1])
        self.hit_markers = pg.ScatterPlotItem(
            symbol="t", size=11, brush=pg.mkBrush(ps.HIT_COLOR), pen=pg.mkPen("k")
        )
        self.states.addItem(self.hit_markers)
        # With a projection h_t = W_p·m_t has P values, not one per unit: its own row below.
        self.proj_image = pg.ImageItem(axisOrder="row-major")
        self.proj_image.setLookupTable(signed_lut)
        self.states.addItem(self.proj_image)
        self._proj_levels = (-1.0, 1.0)

        # Short captions: three bars share the width, and at 1024 × 700 the long ones ran into
        # each other ("… 1 open)g, act(c), h"); what the gate scale means is its tooltip.
        bars = self.addLayout(row=3, col=0, colspan=2)
        self.gate_bar = pg.ColorBarItem(
            values=(0, 1), colorMap=ps.colormap(ps.GATE_CMAP), interactive=False,
            orientation="horizontal", label="gates i, f, o",
        )  # fmt: skip
        self.signed_bar = pg.ColorBarItem(
            values=(-1, 1), colorMap=ps.colormap(ps.SIGNED_CMAP), interactive=False,
            orientation="horizontal", label="g, act(c), h",
        )  # fmt: skip
        self.cell_bar = pg.ColorBarItem(
            values=(-1, 1), colorMap=ps.colormap(ps.SIGNED_CMAP), interactive=False,
            orientation="horizontal", label="cell c_t",
        )  # fmt: skip
        for k, bar in enumerate((self.gate_bar, self.signed_bar, self.cell_bar)):
            bar.getAxis("bottom").setTextPen(ps.FOREGROUND)
            bar.getAxis("bottom").setPen(ps.FOREGROUND)
            bar.getAxis("bottom").enableAutoSIPrefix(False)  # "-500 (x0.001)" reads badly
            bars.addItem(bar, row=0, col=k)
        # Gates always span [0, 1]: at 1024 × 700 the automatic 0.2 steps printed
        # "0.20.40.60.8" as one run of digits. Three numbers read at any width (0 and 1 would
        # stick out of the bar, and pyqtgraph hides labels that do).
        major = [(v, f"{v:g}") for v in (0.2, 0.5, 0.8)]
        minor = [(k / 10, "") for k in range(11) if k not in (2, 5, 8)]
        self.gate_bar.getAxis("bottom").setTicks([major, minor])
        self.gate_bar.setToolTip("gates i, f, o: 0 closed, 1 open")
        self.hover = self.addLabel(HOVER_HINT, row=4, col=0, colspan=2, color="#444444", size="9pt")
        ps.let_shrink(self.hover)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.scene().sigMouseMoved.connect(self._on_scene_moved)
        if workspace is not None:
            workspace.subscribe(Change.TRACE, self._update_trace)
            workspace.subscribe(Change.SELECTION, self._update_selection)
            workspace.subscribe(Change.STEP, self._update_step)
            workspace.subscribe(Change.HIT, self._update_hit)

    # -- workspace events --------------------------------------------------------------------
    def _update_trace(self, event: Event) -> None:
        self._dt = None  # a new run (or none yet): take the arrays again
        self._update_selection(event)

    def _update_selection(self, _event: Event) -> None:
        ws = self.workspace
        self.clear_hover()
        trace, s = ws.trace, ws.selection
        if trace is None:
            self.clear_data("computing…" if ws.model is not None else "")
            return
        dt = trace.layers[s.layer].directions[s.direction]
        self._step = ws.step
        if dt is not self._dt:
            self.set_direction(dt, direction_caption(trace, s.layer, s.direction))
        self.set_unit(s.unit)
        self.set_hits(ws.hits, s.layer, s.direction)

    def _update_step(self, _event: Event) -> None:
        self.clear_hover()
        if not self.isHidden():  # the current tab (even in a window not shown yet)
            self.show_step(self.workspace.step)
        else:
            self._dirty = True  # a tab behind another catches up when shown

    def _update_hit(self, _event: Event) -> None:
        s = self.workspace.selection
        self.set_hits(self.workspace.hits, s.layer, s.direction)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty and self.workspace is not None and self._dt is not None:
            self._dirty = False
            self.show_step(self.workspace.step)

    def clear_hover(self) -> None:
        """Back to the hint: a readout belongs to the step and unit it was read at (and must
        never end up in an export)."""
        self.hover.setText(HOVER_HINT)

    def clear_data(self, note: str = "") -> None:
        """No run to show (a new model is computing): nothing from the previous one stays."""
        self._dt = None
        for img in (*self.images.values(), *self.term_images, self.proj_image):
            img.clear()
        self.hit_markers.setData(x=[], y=[])
        self.title.setText(note)

    # -- model / direction -------------------------------------------------------------------
    def set_direction(self, dt: DirectionTrace, caption: str) -> None:
        """Show another layer/direction (or a new run): fix levels for the whole sequence."""
        self.clear_hover()
        self._dt = dt
        w = dt.weights
        H = dt.c.shape[1]
        self._caption = caption
        levels, term_levels, proj_levels = run_levels(dt)
        self._levels = dict(levels)
        self.cell_bar.setLevels(self._levels["c"])
        self.signed_bar.setLevels(self._levels["g"])
        ticks = [(r + 0.5, row_label(n, dt)) for r, n in enumerate(STATE_ROWS)]
        projected = w.W_p is not None
        if projected:
            self._proj_levels = proj_levels
            ticks.append((len(STATE_ROWS) + 0.5, "h_t = W_p·m_t"))
        self.proj_image.setVisible(projected)
        self.states.getAxis("left").setTicks([ticks])
        self.states.setYRange(-0.7, len(STATE_ROWS) + projected, padding=0)

        self._terms = ("W_x·x_t", "W_h·h_(t-1)", "b", *(("peephole",) if w.has_peepholes else ()))
        ps.fit_title(
            self.terms_plot,
            f"what drives each gate: pre-activation = {' + '.join(self._terms)}",
            size="9pt",
        )
        n = len(self._terms) + 1  # + the sum
        ticks = []
        self._term_levels = list(term_levels)
        for k, gate in enumerate(GATES):
            top = k * (n + 0.5)
            lim = term_levels[k][1]
            labels = [*self._terms, f"= pre_{gate}  (±{lim:.3g})"]
            ticks += [(top + r + 0.5, f"{gate}: {lab}") for r, lab in enumerate(labels)]
        self.terms_plot.getAxis("left").setTicks([ticks])
        self.terms_plot.setYRange(0, 4 * (n + 0.5) - 0.5, padding=0)
        # a zoom on the unit axis (wheel, drag; both heatmaps share it) ends at whole units
        self.states.setLimits(xMin=-0.5, xMax=H - 0.5, minXRange=min(MIN_UNITS, H))
        self.states.setXRange(-0.5, H - 0.5, padding=0)
        # Images first, then their rectangles: setRect scales by the current image size.
        self.show_step(min(self._step, dt.n_steps - 1))
        for row, name in enumerate(STATE_ROWS):
            self.images[name].setRect(QRectF(-0.5, row, H, 1))  # unit u centred on x = u
        if projected:
            self.proj_image.setRect(QRectF(-0.5, len(STATE_ROWS), dt.h.shape[1], 1))
        for k in range(4):
            self.term_images[k].setRect(QRectF(-0.5, k * (n + 0.5), H, n))

    # -- unit-range zoom -----------------------------------------------------------------------
    def unit_range(self) -> tuple[int, int]:
        """First and last unit (at least half) visible in the heatmaps."""
        (lo, hi), _ = self.states.vb.viewRange()
        return int(np.ceil(lo)), int(np.floor(hi))

    def zoom_units(self, first: int, last: int) -> None:
        """Show units ``first..last``: 1,024 columns in 700 pixels are sub-pixel wide, and a
        zoom keeps hover, clicks and the unit ticks in step with the cells."""
        self.states.setXRange(first - 0.5, last + 0.5, padding=0)

    def reset_zoom(self) -> None:
        """Every unit again (the Reset zoom button)."""
        if self._dt is not None:
            self.states.setXRange(-0.5, self._dt.c.shape[1] - 0.5, padding=0)

    # -- per step ------------------------------------------------------------------------------
    def show_step(self, t: int) -> None:
        """Swap the data of the existing images; nothing is created here."""
        dt = self._dt
        if dt is None:
            return
        self._step = t
        for name in STATE_ROWS:
            row = getattr(dt, _ATTR.get(name, name))[t : t + 1]
            self.images[name].setImage(row, autoLevels=False, levels=self._levels[name])
        if dt.weights.W_p is not None:
            self.proj_image.setImage(dt.h[t : t + 1], autoLevels=False, levels=self._proj_levels)
        H = dt.c.shape[1]
        for k in range(4):
            sl = slice(k * H, (k + 1) * H)
            rows = [dt.z_x[t, sl], dt.z_h[t, sl], dt.b[sl]]
            if dt.peep is not None:
                rows.append(dt.peep[t, sl])
            rows.append(dt.pre[t, sl])
            self.term_images[k].setImage(
                np.stack(rows), autoLevels=False, levels=self._term_levels[k]
            )
        # Short on purpose: a pyqtgraph label's text sets the minimum width of the whole view.
        self.title.setText(
            f"<b>{self._caption}</b> — step {t} of 0–{dt.n_steps - 1}"
            + (f" (reads x backwards: its step {dt.processing_step(t)})" if dt.reverse else "")
        )

    def term_rows(self, gate: str) -> np.ndarray:
        """The displayed breakdown image of one gate (rows: terms, then their sum)."""
        return self.term_images[GATES.index(gate)].image

    def set_unit(self, unit: int) -> None:
        for line in self.unit_lines:
            line.setValue(unit)

    def set_hits(self, hits: tuple[Hit, ...], layer: int, direction: int) -> None:
        """Red triangles above the units that met a breakpoint condition here."""
        units = sorted(
            {u for h in hits if (h.layer, h.direction) == (layer, direction) for u in h.units}
        )
        self.hit_markers.setData(x=np.asarray(units, float), y=np.full(len(units), -0.35))

    # -- mouse ---------------------------------------------------------------------------------
    def _unit_at(self, pos: QPointF) -> tuple[int, str | None] | None:
        if self._dt is None:
            return None
        for plot in (self.states, self.terms_plot):
            if plot.vb.sceneBoundingRect().contains(pos):
                p = plot.vb.mapSceneToView(pos)
                u = int(np.floor(p.x() + 0.5))
                row = int(np.floor(p.y()))
                if plot is self.states and row == len(STATE_ROWS) and self.proj_image.isVisible():
                    return (u, "h_t") if 0 <= u < self._dt.h.shape[1] else None
                if 0 <= u < self._dt.c.shape[1]:
                    in_rows = plot is self.states and 0 <= row < len(STATE_ROWS)
                    return u, STATE_ROWS[row] if in_rows else None
        return None

    def _on_scene_clicked(self, event) -> None:
        found = self._unit_at(event.scenePos())
        if found is not None:
            self.unit_clicked.emit(found[0])

    def _on_scene_moved(self, pos: QPointF) -> None:
        found = self._unit_at(pos)
        if found is None or self._dt is None:
            self.hover.setText(HOVER_HINT)
            return
        u, name = found
        if name is None:
            self.hover.setText(f"unit {u}")
            return
        if name == "h_t":  # the projected state: component u of P, not a unit
            self.hover.setText(f"h_t[{u}] = {self._dt.h[self._step, u]:.4g} (W_p·m_t)")
            return
        value = getattr(self._dt, _ATTR.get(name, name))[self._step, u]
        self.hover.setText(f"unit {u}: {name} = {value:.4g}")
