"""One unit at one step, explained: its equations with this step's numbers filled in.

E.g. ``f = sigmoid(0.310 + (-1.200) + 1.000) = sigmoid(0.110) = 0.527`` using the model's real
activation names (``hard_sigmoid_k2`` …), then the cell update and the output. A bar chart
shows the same terms per gate, and each gate links to its weights in the weights view.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from lstmviz.core.model import GATE_NAMES, GATES
from lstmviz.core.trace import DirectionTrace
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.step_view import direction_caption
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace

TERM_NAMES = ("W_x·x_t", "W_h·h_(t-1)", "b", "peephole")
TERM_COLORS = ("#4c72b0", "#dd8452", "#8c8c8c", "#55a868")
_GATE_ORDER = ("i", "f", "g", "o")  # computation order of the explanation


def arg(v: float) -> str:
    """A number as the only argument of a function: no extra parentheses."""
    return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"


def num(v: float) -> str:
    """Three decimals, negatives in parentheses so sums read unambiguously."""
    s = f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return f"({s})" if v < 0 or s.startswith("-") else s


def explain(dt: DirectionTrace, t: int, u: int) -> list[tuple[str | None, str]]:
    """``(gate or None, line)`` pairs: the step's equations for unit ``u`` with its numbers."""
    w = dt.weights
    H = w.hidden_size
    lines: list[tuple[str | None, str]] = []
    peeps = {"i": w.p_i, "f": w.p_f, "o": w.p_o}
    for gate in _GATE_ORDER:
        k = GATES.index(gate)
        col = k * H + u
        act = (w.act_cand if gate == "g" else w.act_gate).name
        terms = [dt.z_x[t, col], dt.z_h[t, col], dt.b[col]]
        if gate != "g" and peeps[gate] is not None and dt.peep is not None:
            terms.append(dt.peep[t, col])
        z = dt.pre[t, col]
        inner = arg(z)
        if w.gate_clip is not None:
            inner = f"clip({arg(z)}, ±{w.gate_clip:g})"
        value = getattr(dt, gate)[t, u]
        lines.append(
            (
                gate,
                f"{gate} = {act}({' + '.join(num(v) for v in terms)}) = {act}({inner}) "
                f"= {value:.3f}",
            )
        )
        if gate == "g":
            c_prev, f, i, g, c = dt.c_prev[t, u], dt.f[t, u], dt.i[t, u], dt.g[t, u], dt.c[t, u]
            raw = f * c_prev + i * g
            clip = (
                f"  → clipped to ±{w.cell_clip:g}" if w.cell_clip is not None and raw != c else ""
            )
            lines.append(
                (
                    None,
                    f"c = f·c_(t-1) + i·g = {num(f)}·{num(c_prev)} + {num(i)}·{num(g)} "
                    f"= {raw:.3f}{clip}",
                )
            )
    o, c, ac, m = dt.o[t, u], dt.c[t, u], dt.act_c[t, u], dt.m[t, u]
    cell = w.act_cell.name
    name = "h" if w.W_p is None else "m"
    lines.append(
        (None, f"{name} = o·{cell}(c) = {num(o)}·{cell}({arg(c)}) = {num(o)}·{num(ac)} = {m:.3f}")
    )
    if w.W_p is not None:
        P = w.output_size
        shown = f"h[{u}] = {dt.h[t, u]:.3f}" if u < P else f"(unit {u} ≥ P = {P})"
        lines.append((None, f"h = W_p·m (projection to {P} values); {shown}"))
    return lines


def term_values(dt: DirectionTrace, t: int, u: int) -> np.ndarray:
    """``(4 gates, 4 terms)``: W_x·x, W_h·h, b, peephole of unit ``u`` at step ``t``."""
    H = dt.weights.hidden_size
    out = np.zeros((4, 4))
    for k in range(4):
        col = k * H + u
        out[k, :3] = dt.z_x[t, col], dt.z_h[t, col], dt.b[col]
        if dt.peep is not None:
            out[k, 3] = dt.peep[t, col]
    return out


def term_limit(dt: DirectionTrace) -> float:
    """The bar chart's fixed y range for the whole run (once per run, see ``view_cache``)."""
    return memo(dt, "term_limit", lambda: symmetric_limit(dt.z_x, dt.z_h, dt.b, dt.pre))


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
        x = np.array([k * 5 + j for k in range(4) for j in range(4)], float)
        self.bars = pg.BarGraphItem(
            x=x,
            height=np.zeros(16),
            width=0.85,
            brushes=[TERM_COLORS[j] for _ in range(4) for j in range(4)],
        )
        self.plot.addItem(self.bars)
        self.sums = pg.ScatterPlotItem(x=np.arange(4) * 5 + 1.5, y=np.zeros(4), symbol="d", size=10,
                                       brush=pg.mkBrush("k"))  # fmt: skip
        self.plot.addItem(self.sums)
        # Gate letters only under the bars: the full names ran into each other at 340 px.
        self.plot.getAxis("bottom").setTicks([[(k * 5 + 1.5, f"{g}") for k, g in enumerate(GATES)]])
        self.plot.getAxis("bottom").setToolTip(", ".join(f"{g} = {GATE_NAMES[g]}" for g in GATES))
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self._set_legend(peepholes=False)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot_widget, 2)
        if workspace is not None:
            workspace.subscribe(Change.TRACE, self._update_trace)
            workspace.subscribe(Change.SELECTION, self._update_selection)
            workspace.subscribe(Change.STEP, self._update_step)

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

    def clear_data(self, note: str = "") -> None:
        """No run to explain (a new model is computing): nothing of the previous one stays."""
        self._dt = None
        self.header.setText(note)
        self.browser.clear()
        self.bars.setOpts(height=np.zeros(16))
        self.sums.setData(x=np.arange(4) * 5 + 1.5, y=np.zeros(4))

    def _set_legend(self, peepholes: bool) -> None:
        """The colour key of the bars; the peephole colour only when this model has them."""
        terms = TERM_NAMES if peepholes else TERM_NAMES[:3]
        key = " ".join(
            f'<span style="color:{c}">■</span> {html.escape(n)}'
            for n, c in zip(terms, TERM_COLORS, strict=False)
        )
        self.legend.setText(f"{key} ◆ sum = pre-activation")

    def set_direction(self, dt: DirectionTrace, layer: int, direction: int, caption: str) -> None:
        self._dt, self._layer, self._direction, self._caption = dt, layer, direction, caption
        self._set_legend(dt.weights.has_peepholes)
        self._unit = min(self._unit, dt.c.shape[1] - 1)
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
            f"x_t = input at step {t}; h_(t-1), c_(t-1) = state before this step"
            + (" (the step after it in time: this direction runs backwards)" if dt.reverse else "")
        )
        # Qt colours links from the palette at parse time, a dark blue that vanished on a dark
        # theme: the colour is chosen against this browser's own background.
        base = self.browser.palette().color(QPalette.ColorRole.Base)
        link_colour = ps.readable(base, "#0b57d0", "#8ab4f8").name()
        text = self.browser.palette().color(QPalette.ColorRole.Text)
        rows = []
        for gate, line in explain(dt, t, u):
            # c, h (and m) lines carry no gate: their colour is the one the plots give them
            key = gate or ("c" if line.startswith("c ") else "h")
            color = ps.legible(ps.COLORS[key], base, text).name()
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
        self.browser.setHtml(
            f"<div>{''.join(rows)}</div><p style='color:#777'>layer {self._layer} {side}; "
            f"gates {dt.weights.act_gate} · candidate {dt.weights.act_cand} · cell "
            f"{dt.weights.act_cell}</p>"
        )
        values = term_values(dt, t, u)
        self.bars.setOpts(height=values.ravel())
        self.sums.setData(x=np.arange(4) * 5 + 1.5, y=values.sum(axis=1))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # light ↔ dark theme: links recoloured
            self.refresh()

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        kind, _, gate = url.toString().partition(":")
        if kind == "weights" and gate in GATES:
            self.weights_link_requested.emit(self._layer, self._direction, gate, self._unit)
