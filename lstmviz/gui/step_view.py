"""One step of one layer/direction: every unit's gates and states, and what drives each gate.

Top: heat rows of the cell's gates and states for all units on fixed scales ([0, 1] for gates,
symmetric for the candidate and the states): i, f, g, o, c, act(c), h for an LSTM, r, z, n, h
for a GRU. Bottom: per gate, the terms of its pre-activation as the cell description lists
them (``W_x·x_t``, ``W_h·h_{t-1}``, ``b``, the LSTM's peephole, the GRU candidate's
``r⊙(W_h·h + b_h)``), next to their sum, so one sees which term pushes a gate open or shut.
Rows come from ``cell_rows`` (the cell description), never from a list of LSTM names. Items
are created once per kind of cell shown; a step only swaps image data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QWidget

from lstmviz.core.breakpoints import Hit
from lstmviz.core.cells import DEFAULT_CELL
from lstmviz.core.trace import DirectionTrace, Trace
from lstmviz.gui import cell_rows
from lstmviz.gui import plot_style as ps
from lstmviz.gui.cell_rows import run_levels
from lstmviz.workspace import Change, Event, Workspace

__all__ = ["STATE_ROWS", "StepView", "direction_caption", "row_label", "run_levels"]

#: The LSTM's rows (kept for scripts and tests; any cell's come from ``cell_rows.rows``).
STATE_ROWS = cell_rows.row_names(DEFAULT_CELL)
HOVER_HINT = "click a unit to inspect it; hover to read values"
#: The narrowest unit range a zoom of the step view shows.
MIN_UNITS = 4


def direction_caption(trace: Trace, layer: int, direction: int) -> str:
    """``layer 1 bidi backward``: the words every debugger view uses for one direction; the
    cell kind is named when the model mixes kinds (``layer 1 enc (GRU)``)."""
    lt = trace.layers[layer]
    kinds = {t.layer.cell.name for t in trace.layers}
    kind = f" ({lt.layer.cell.name})" if len(kinds) > 1 else ""
    if lt.layer.bidirectional:
        side = "backward" if direction else "forward"
        return f"layer {layer} {lt.layer.name!s}{kind} {side}"
    reverse = lt.directions[direction].reverse
    return f"layer {layer} {lt.layer.name}{kind}" + (" (reads backwards)" if reverse else "")


def row_label(name: str, dt: DirectionTrace) -> str:
    """Row names with the model's real activation functions."""
    return next(r.label for r in cell_rows.rows(dt, distinct=False) if r.name == name)


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
        self._term_levels: dict[str, tuple[float, float]] = {}
        self._terms: tuple[str, ...] = ()
        self._rows: tuple[cell_rows.Row, ...] = ()
        self._row_arrays: list[tuple[str, np.ndarray]] = []
        self._term_arrays: list[tuple[list[np.ndarray], np.ndarray, str]] = []
        self._projected = False
        self._gates: tuple[str, ...] = ()
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

        self._luts = {"gate": ps.lut(ps.GATE_CMAP), "signed": ps.lut(ps.SIGNED_CMAP)}
        signed_lut = self._luts["signed"]
        #: One image per row name, made the first time a cell with that row is shown (the
        #: LSTM's now) and hidden while another cell is shown.
        self.images: dict[str, pg.ImageItem] = {}
        #: One breakdown image per gate of the cell shown, in its order (a pool: grown once).
        self.term_images: list[pg.ImageItem] = []
        self._ensure_images(
            [
                (n, "gate" if n in cell_rows.gate_rows(DEFAULT_CELL) else "signed")
                for n in STATE_ROWS
            ],
            DEFAULT_CELL.n_gates,
        )

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
            orientation="horizontal", label="gates",
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
        self._bar_labels(DEFAULT_CELL)
        self.hover = self.addLabel(HOVER_HINT, row=4, col=0, colspan=2, color="#444444", size="9pt")
        ps.let_shrink(self.hover)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.scene().sigMouseMoved.connect(self._on_scene_moved)
        if workspace is not None:
            workspace.subscribe(Change.TRACE, self._update_trace)
            workspace.subscribe(Change.SELECTION, self._update_selection)
            workspace.subscribe(Change.STEP, self._update_step)
            workspace.subscribe(Change.HIT, self._update_hit)
            if workspace.trace is not None:  # built after the run (the debugger is lazy)
                self._update_trace(Event(Change.TRACE, workspace.trace))

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

    def fit_label_width(self) -> None:
        """Both heatmaps' row-name axes as wide as their longest name needs (130 to 240 px,
        the same for both so the unit columns line up): a GRU's "n: r⊙(W_h·h_(t-1) + b_h)"
        and compare mode's "Δ act_c ±1e-05" were cut in the middle at a fixed 130."""
        widths = [130.0]
        for plot, font in ((self.states, QFont()), (self.terms_plot, ps.small_font(8))):
            metrics = QFontMetricsF(font)
            ticks = plot.getAxis("left")._tickLevels or []
            widths += [metrics.horizontalAdvance(str(t)) + 16 for level in ticks for _, t in level]
        width = min(max(widths), 240.0)
        for plot in (self.states, self.terms_plot):
            if plot.getAxis("left").width() != width:
                plot.getAxis("left").setWidth(width)

    def _ensure_images(self, names: list[tuple[str, str]], n_gates: int) -> None:
        """Image items for rows ``(name, scale kind)`` and ``n_gates`` breakdowns; the ones a
        cell shown before made are reused (their lookup table follows the row's scale)."""
        for name, kind in names:
            img = self.images.get(name)
            if img is None:
                img = pg.ImageItem(axisOrder="row-major")
                self.states.addItem(img)
                self.images[name] = img
            lut = self._luts["gate" if kind == "gate" else "signed"]
            if getattr(img, "_lut_kind", None) != kind:
                img.setLookupTable(lut)
                img._lut_kind = kind
        while len(self.term_images) < n_gates:
            img = pg.ImageItem(axisOrder="row-major")
            img.setLookupTable(self._luts["signed"])
            self.terms_plot.addItem(img)
            self.term_images.append(img)

    def _bar_labels(self, cell) -> None:
        """Colour bar captions by the cell's names: gates (role gate), the signed rows, the
        first state other than h (the LSTM's c) or else h."""
        gates = cell_rows.gate_rows(cell)
        self.gate_bar.getAxis("bottom").setLabel(f"gates {', '.join(gates)}" if gates else "gates")
        self.gate_bar.setToolTip(f"gates {', '.join(gates)}: 0 closed, 1 open")
        self.gate_bar.setVisible(bool(gates))

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
        """Show another layer/direction (or a new run): fix levels for the whole sequence.
        The rows, their labels and the term breakdown are the cell description's."""
        self.clear_hover()
        self._dt = dt
        cell = dt.cell
        H = cell_rows.hidden_size(dt)
        self._caption = caption
        self._rows = cell_rows.rows(dt)
        # what a step reads, looked up once per direction: each row's array, each gate's
        # term arrays and pre-activation block (a step then only indexes them)
        self._row_arrays = [(r.name, cell_rows.values_of(dt, r)) for r in self._rows]
        self._term_arrays = [
            ([v for _, v in dt.terms(g)], dt.gate_pre(g), g) for g in dt.cell.gate_names
        ]
        self._projected = cell_rows.projected(dt)
        self._gates = cell.gate_names
        self._ensure_images([(r.name, r.kind) for r in self._rows], len(self._gates))
        shown = {r.name for r in self._rows}
        for name, img in self.images.items():
            img.setVisible(name in shown)
            if name not in shown:
                img.clear()
        for k, img in enumerate(self.term_images):
            img.setVisible(k < len(self._gates))
            if k >= len(self._gates):
                img.clear()
        levels, term_levels, proj_levels = run_levels(dt)
        self._levels = dict(levels)
        self._bar_labels(cell)
        signed = [r for r in self._rows if r.kind == "signed"]
        states = [r for r in self._rows if r.kind == "state" and r.name != "h"] or [
            r for r in self._rows if r.kind == "state"
        ]
        if signed:
            rest = [r for r in self._rows if r.kind == "state" and r not in states[:1]]
            self.signed_bar.setLevels(self._levels[signed[0].name])
            self.signed_bar.getAxis("bottom").setLabel(
                ", ".join(_short(r) for r in [*signed, *rest])
            )
        self.signed_bar.setVisible(bool(signed))
        if states:
            state = states[0].name
            word = cell.states_long.get(state, state).split(" ")[0]
            self.cell_bar.setLevels(self._levels[state])
            self.cell_bar.getAxis("bottom").setLabel(f"{word} {state}_t")
        self.cell_bar.setVisible(bool(states))
        ticks = [(r + 0.5, row.label) for r, row in enumerate(self._rows)]
        n_rows = len(self._rows)
        projected = cell_rows.projected(dt)
        if projected:
            self._proj_levels = proj_levels
            ticks.append((n_rows + 0.5, cell_rows.projection_label(dt)))
        self.proj_image.setVisible(projected)
        self.states.getAxis("left").setTicks([ticks])
        self.states.setYRange(-0.7, n_rows + projected, padding=0)

        present = {t.key for g in self._gates for t, _ in dt.terms(g)}
        self._terms = tuple(t.label for t, _ in dt.terms(self._gates[0]))
        ps.fit_title(
            self.terms_plot,
            f"what drives each gate: pre-activation = "
            f"{cell_rows.pre_activation_sum(cell, present)}",
            size="9pt",
        )
        ticks = []
        self._term_levels = dict(term_levels)
        self._term_tops: list[tuple[float, int]] = []
        top = 0.0
        for gate in self._gates:
            lim = term_levels[gate][1]
            labels = [t.label for t, _ in dt.terms(gate)] + [f"= pre_{gate}  (±{lim:.3g})"]
            ticks += [(top + r + 0.5, f"{gate}: {lab}") for r, lab in enumerate(labels)]
            self._term_tops.append((top, len(labels)))
            top += len(labels) + 0.5
        self.terms_plot.getAxis("left").setTicks([ticks])
        self.terms_plot.setYRange(0, top - 0.5, padding=0)
        self.fit_label_width()
        # a zoom on the unit axis (wheel, drag; both heatmaps share it) ends at whole units
        self.states.setLimits(xMin=-0.5, xMax=H - 0.5, minXRange=min(MIN_UNITS, H))
        self.states.setXRange(-0.5, H - 0.5, padding=0)
        # Images first, then their rectangles: setRect scales by the current image size.
        self.show_step(min(self._step, dt.n_steps - 1))
        for r, row in enumerate(self._rows):
            self.images[row.name].setRect(QRectF(-0.5, r, H, 1))  # unit u centred on x = u
        if projected:
            self.proj_image.setRect(QRectF(-0.5, n_rows, dt.h.shape[1], 1))
        for k, (top, n) in enumerate(self._term_tops):
            self.term_images[k].setRect(QRectF(-0.5, top, H, n))

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
            self.states.setXRange(-0.5, cell_rows.hidden_size(self._dt) - 0.5, padding=0)

    # -- per step ------------------------------------------------------------------------------
    def show_step(self, t: int) -> None:
        """Swap the data of the existing images; nothing is created here."""
        dt = self._dt
        if dt is None:
            return
        self._step = t
        for name, values in self._row_arrays:
            self.images[name].setImage(
                values[t : t + 1], autoLevels=False, levels=self._levels[name]
            )
        if self._projected:
            self.proj_image.setImage(dt.h[t : t + 1], autoLevels=False, levels=self._proj_levels)
        for k, (terms, pre, gate) in enumerate(self._term_arrays):
            rows = [v if v.ndim == 1 else v[t] for v in terms]
            rows.append(pre[t])
            self.term_images[k].setImage(
                np.stack(rows), autoLevels=False, levels=self._term_levels[gate]
            )
        # Short on purpose: a pyqtgraph label's text sets the minimum width of the whole view.
        self.title.setText(
            f"<b>{self._caption}</b> — step {t} of 0–{dt.n_steps - 1}"
            + (f" (reads x backwards: its step {dt.processing_step(t)})" if dt.reverse else "")
        )

    def term_rows(self, gate: str) -> np.ndarray:
        """The displayed breakdown image of one gate (rows: terms, then their sum)."""
        return self.term_images[self._gates.index(gate)].image

    @property
    def row_names(self) -> tuple[str, ...]:
        """Names of the rows shown now, top to bottom (the cell's gates, then its states)."""
        return tuple(r.name for r in self._rows)

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
                n_rows = len(self._rows)
                if plot is self.states and row == n_rows and self.proj_image.isVisible():
                    return (u, "h_t") if 0 <= u < self._dt.h.shape[1] else None
                if 0 <= u < cell_rows.hidden_size(self._dt):
                    in_rows = plot is self.states and 0 <= row < n_rows
                    return u, self._rows[row].name if in_rows else None
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
            rhs = cell_rows.projection_label(self._dt).partition(" = ")[2]
            self.hover.setText(f"h_t[{u}] = {self._dt.h[self._step, u]:.4g} ({rhs})")
            return
        row = next(r for r in self._rows if r.name == name)
        value = cell_rows.values_of(self._dt, row)[self._step, u]
        self.hover.setText(f"unit {u}: {name} = {value:.4g}")


def _short(row: cell_rows.Row) -> str:
    """A signed row in a colour bar caption: its name (``act_c`` as ``act(c)``)."""
    state = row.name.removeprefix("act_")
    return f"act({state})" if state != row.name else row.name
