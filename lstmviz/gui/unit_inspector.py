"""One unit at one step, explained: its equations with this step's numbers filled in.

E.g. ``f = sigmoid(0.310 + (-1.200) + 1.000) = sigmoid(0.110) = 0.527`` using the model's real
activation names (``hard_sigmoid_k2`` …), then the state updates. The lines are the cell
description's equations (``CellDescription.equations``: the LSTM's c and h, the GRU's
``h = (1 − z)·n + z·h_(t-1)``) filled with the trace's numbers; the bars show each gate's
terms as the description lists them, and each gate links to its weights in the weights view.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from lstmviz.core.cells import DEFAULT_CELL, CellDescription
from lstmviz.core.equations import arg, explain, num
from lstmviz.core.trace import DirectionTrace
from lstmviz.gui import cell_rows
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.step_view import direction_caption
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace

__all__ = ["UnitInspector", "arg", "explain", "num", "term_limit", "term_values"]


def term_layout(cell: CellDescription) -> tuple[tuple[str, ...], int]:
    """The bar chart's term keys (one colour each) and the slots per gate (its widest sum of
    terms plus a gap)."""
    keys = cell_rows.term_keys(cell)
    width = max(len(g.terms) for g in cell.gates) + 1
    return keys, width


def term_values(dt: DirectionTrace, t: int, u: int) -> np.ndarray:
    """``(gates, keys)``: each term of unit ``u``'s pre-activations at step ``t`` (0 where a
    gate has no such term), columns in ``term_layout`` order."""
    keys, _ = term_layout(dt.cell)
    out = np.zeros((dt.cell.n_gates, len(keys)))
    for k, gate in enumerate(dt.cell.gate_names):
        for key, v in dt.gate_terms_at(gate, t, u).items():
            out[k, keys.index(key)] = v
    return out


def _bar_geometry(dt_or_cell, present: set[str] | None = None):
    """``(x, colours, key per bar, centres)`` of the bar chart for a cell: a gate's bars side by
    side in its own term order, ``width`` slots per gate."""
    cell = dt_or_cell
    keys, width = term_layout(cell)
    xs, colours, cols = [], [], []
    for k, g in enumerate(cell.gates):
        j = 0
        for term in g.terms:
            if present is not None and term.key not in present:
                continue
            xs.append(k * width + j)
            colours.append(cell_rows.term_colour(cell, term.key))
            cols.append((k, keys.index(term.key)))
            j += 1
    centres = np.array([k * width + (len(g.terms) - 1) / 2 for k, g in enumerate(cell.gates)])
    return np.array(xs, float), colours, cols, centres


def term_limit(dt: DirectionTrace) -> float:
    """The bar chart's fixed y range for the whole run (once per run, see ``view_cache``)."""

    def compute() -> float:
        arrays = [v for g in dt.cell.gate_names for _, v in dt.terms(g)]
        return symmetric_limit(*arrays, dt.pre)

    return memo(dt, "term_limit", compute)


class UnitInspector(QWidget):
    """Equations of the selected unit; links ask the main window to show that gate's weights."""

    weights_link_requested = Signal(int, int, str, int)

    def __init__(self, workspace: Workspace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._dt: DirectionTrace | None = None
        self._layer = self._direction = self._unit = self._step = 0
        self._caption = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = QLabel("Click a unit in the step view to inspect it.")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        layout.addWidget(self.browser, 3)

        self.plot_widget = pg.PlotWidget(background=ps.BACKGROUND)
        self.plot = ps.style_plot(
            self.plot_widget.getPlotItem(), "pre-activation terms of this unit"
        )
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.addLine(y=0, pen=pg.mkPen("#999999"))
        self._cell: CellDescription | None = None
        #: Per direction and palette, what a step only reads: line colours by name, the
        #: state and activation words (computed once, not at every step of a play).
        self._words: dict = {}
        #: Compare mode's ``companion(layer, direction, step, unit)``: model B's lines for the
        #: unit (``compare_debugger.Other``) or None outside compare mode.
        self.companion = None
        self._bar_cols: list[tuple[int, int]] = []
        self._centres = np.zeros(0)
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.85)
        self.plot.addItem(self.bars)
        self.sums = pg.ScatterPlotItem(symbol="d", size=10, brush=pg.mkBrush("k"))
        self.plot.addItem(self.sums)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self._set_cell(DEFAULT_CELL, {"z_x", "z_h", "b"})
        layout.addWidget(self.legend)
        layout.addWidget(self.plot_widget, 2)
        if workspace is not None:
            workspace.subscribe(Change.TRACE, self._update_trace)
            workspace.subscribe(Change.SELECTION, self._update_selection)
            workspace.subscribe(Change.STEP, self._update_step)
            if workspace.trace is not None:  # built after the run (the debugger is lazy)
                self._update_trace(Event(Change.TRACE, workspace.trace))
            elif workspace.model is not None:  # built while the run computes
                self.clear_data("computing…")

    # -- workspace events ------------------------------------------------------------------------
    def _update_trace(self, event: Event) -> None:
        self._dt = None
        self._update_selection(event)

    def _update_selection(self, _event: Event) -> None:
        ws = self.workspace
        trace, s = ws.trace, ws.selection
        if trace is None:
            self.clear_data("computing…" if ws.model is not None else "")
            return
        dt = trace.layers[s.layer].directions[s.direction]
        self._step = ws.step
        self._unit = s.unit
        if dt is not self._dt:
            caption = direction_caption(trace, s.layer, s.direction)
            self.set_direction(dt, s.layer, s.direction, caption)
        else:
            self.set_unit(s.unit)

    def _update_step(self, _event: Event) -> None:
        if self._dt is not None:
            self.show_step(self.workspace.step)

    def show_run(self) -> None:
        """The workspace's run again (a newer one computing behind it was cancelled)."""
        self._dt = None
        self._update_selection(None)

    def clear_data(self, note: str = "") -> None:
        """No run to explain (a new model is computing): nothing of the previous one stays."""
        self._dt = None
        self.header.setText(note)
        self.browser.clear()
        self.bars.setOpts(height=np.zeros(len(self._bar_cols)))
        self.sums.setData(x=[], y=[])  # no diamonds at 0: they read as this unit's sums
        self.plot.setTitle("pre-activation terms of this unit", color=ps.FOREGROUND, size="10pt")

    def _set_cell(self, cell: CellDescription, present: set[str]) -> None:
        """Bars, gate ticks and colour key for ``cell``'s gates and the terms this direction
        has (``present``: no peephole colour for a model without peepholes)."""
        xs, colours, cols, centres = _bar_geometry(cell, present)
        self._cell, self._bar_cols, self._centres = cell, cols, centres
        self.bars.setOpts(x=xs, height=np.zeros(len(xs)), brushes=colours)
        self.sums.setData(x=[], y=[])  # until a step's values are in
        # Gate letters only under the bars: the full names ran into each other at 340 px.
        axis = self.plot.getAxis("bottom")
        axis.setTicks([[(x, g) for x, g in zip(centres, cell.gate_names, strict=True)]])
        axis.setToolTip(", ".join(f"{g.name} = {g.long_name}" for g in cell.gates))
        width = term_layout(cell)[1]
        self.plot.setXRange(-1, cell.n_gates * width - 1, padding=0)
        keys = [k for k in cell_rows.term_keys(cell) if k in present]
        key = " ".join(
            f'<span style="color:{cell_rows.term_colour(cell, k)}">■</span> '
            f"{html.escape(cell_rows.term_labels(cell, k))}"
            for k in keys
        )
        self.legend.setText(f"{key} ◆ sum = pre-activation")

    def set_direction(self, dt: DirectionTrace, layer: int, direction: int, caption: str) -> None:
        self._dt, self._layer, self._direction, self._caption = dt, layer, direction, caption
        present = {t.key for g in dt.cell.gate_names for t, _ in dt.terms(g)}
        self._set_cell(dt.cell, present)
        self._unit = min(self._unit, cell_rows.hidden_size(dt) - 1)
        self._step = min(self._step, dt.n_steps - 1)
        # Fixed y range for the whole run, so bars of different steps compare at a glance.
        lim = term_limit(dt)
        self.plot.setYRange(-lim, lim)
        self.refresh()

    def set_unit(self, unit: int) -> None:
        self._unit = unit
        self.refresh()

    def show_step(self, t: int) -> None:
        self._step = t
        self.refresh()

    @property
    def unit(self) -> int:
        return self._unit

    def lines(self) -> list[str]:
        dt = self._dt
        if dt is None:
            return []
        return [line for _, line in explain(dt, self._step, self._unit)]

    def refresh(self) -> None:
        dt = self._dt
        if dt is None:
            return
        t, u = self._step, self._unit
        # the title follows the unit shown, whatever set it (a clamp on a new model too)
        self.plot.setTitle(f"pre-activation terms of unit {u}", color=ps.FOREGROUND, size="10pt")
        side = "backward" if self._direction else "forward"
        self.header.setText(
            f"<b>{html.escape(self._caption)} · unit {u} · step {t}</b><br>"
            f"x_t = input at step {t}; {cell_rows.state_text(dt.cell)} = state before this step"
            + (" (the step after it in time: this direction runs backwards)" if dt.reverse else "")
        )
        # Qt colours links from the palette at parse time, a dark blue that vanished on a dark
        # theme: the colour is chosen against this browser's own background.
        base = self.browser.palette().color(QPalette.ColorRole.Base)
        link_colour = ps.readable(base, "#0b57d0", "#8ab4f8").name()
        text = self.browser.palette().color(QPalette.ColorRole.Text)
        words = self._words_for(dt, base, text)
        rows = []
        companion = self.companion
        other = None if companion is None else companion(self._layer, self._direction, t, u)
        if other is not None:
            rows.append(other.header_html())
        for gate, line in explain(dt, t, u):
            # state lines carry no gate: their colour is the one the plots give that state
            key = gate or line.split(" ", 1)[0]
            color = words["colours"].get(key) or words["colours"]["h"]
            link = (
                f' &nbsp;<a href="weights:{gate}" style="color:{link_colour}">'
                f"show W_{gate} row {u}</a>"
                if gate
                else ""
            )
            rows.append(
                f'<p style="margin:3px 0"><span style="font-family:monospace;color:{color}">'
                f"{html.escape(line)}</span>{link}</p>"
            )
            if other is not None:
                rows.append(other.line_html(key))
        self.browser.setHtml(
            f"<div>{''.join(rows)}</div><p style='color:#777'>layer {self._layer} {side}; "
            f"{words['activations']}</p>"
        )
        values = term_values(dt, t, u)
        self.bars.setOpts(height=np.array([values[k, c] for k, c in self._bar_cols]))
        self.sums.setData(x=self._centres, y=values.sum(axis=1))

    def _words_for(self, dt: DirectionTrace, base, text) -> dict:
        """Line colours (legible on this palette) and the activation words of ``dt``."""
        key = (id(dt.weights), base.rgba(), text.rgba())
        if self._words.get("key") != key:
            cell = dt.cell
            names = (*cell.gate_names, *cell.quantities)
            colours = {
                n: ps.legible(cell_rows.colour(cell, "h" if n == "m" else n), base, text).name()
                for n in names
            }
            colours.setdefault("h", ps.legible(cell_rows.colour(cell, "h"), base, text).name())
            activations = cell_rows.activation_text(dt.weights)
            self._words = {"key": key, "colours": colours, "activations": activations}
        return self._words

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # light ↔ dark theme: links recoloured
            self.refresh()

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        kind, _, gate = url.toString().partition(":")
        if kind == "weights" and self._dt is not None and gate in self._dt.cell.gate_names:
            self.weights_link_requested.emit(self._layer, self._direction, gate, self._unit)
