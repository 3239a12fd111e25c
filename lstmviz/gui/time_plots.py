"""The whole sequence at once: input, every layer's output, and the selected unit over time.

All plots share the time axis and carry a cursor line at the current step (drag it to move).
Data is set when a run or the selection changes; a step only moves the cursor lines. The
selected unit's lines are its cell's gates and states (``cell_rows``: i, f, g, o and c, act(c),
h for an LSTM; r, z, n and h for a GRU), made again only when the selection moves to a layer
of another cell kind.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer, Signal
from PySide6.QtWidgets import QWidget

from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.core.trace import Trace
from lstmviz.gui import cell_rows, long_plots
from lstmviz.gui import plot_style as ps
from lstmviz.gui.levels import symmetric_limit
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace

#: Plots built ahead while the window idles: input, three layers, gates, states.
SPARE_PLOTS = 6
MAX_LINES = 8  # above this many features, a heatmap reads better than a tangle of lines
_FEATURE_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
)


class _SeriesPlot:
    """A plot of a ``(T, n)`` array: up to MAX_LINES lines keyed in the title, or a heatmap."""

    def __init__(self, plot: pg.PlotItem, title: str) -> None:
        self.plot = plot
        self.title = title
        # a (2000, 1024) output drawn into a few hundred pixels: render at screen resolution
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.image.setLookupTable(ps.lut(ps.SIGNED_CMAP))
        self.lines: list[pg.PlotDataItem] = []

    def set_data(
        self, values: np.ndarray, prefix: str, limit: float | None = None, refiner=None
    ) -> None:
        """``limit``: the colour range when already known (``output_limits``); ``refiner``
        draws a bounded trace's arrays (``long_plots``)."""
        T, n = values.shape
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        if self.image.scene() is not None:
            self.plot.removeItem(self.image)
        title, key = self.title, ""
        if n <= MAX_LINES:
            t = np.arange(T)
            for j in range(n):
                pen = pg.mkPen(_FEATURE_COLORS[j], width=1.5)
                if refiner is not None:
                    line = self.plot.plot(pen=pen)
                    refiner.line(line, values, j)
                else:
                    line = self.plot.plot(t, values[:, j], pen=pen)
                self.lines.append(line)
            if n > 1:  # one line needs no key
                key = ps.color_key([(_FEATURE_COLORS[j], f"{prefix}[{j}]") for j in range(n)])
            self.plot.getAxis("left").setLabel("value", color=ps.FOREGROUND)
            self.plot.enableAutoRange(axis="y")
        else:
            lim = symmetric_limit(values) if limit is None else limit
            if refiner is not None:
                refiner.image(self.image, values)
                self.image.setLevels((-lim, lim))
            else:
                self.image.setImage(values.T, autoLevels=False, levels=(-lim, lim))
                self.image.setRect(QRectF(-0.5, -0.5, T, n))  # feature j centred on y = j
            self.plot.addItem(self.image)
            # the colour range goes into the title: "unit (±0.44)" turned sideways was taller
            # than a 60-pixel plot and ran into the next plot's label at 1024 × 700
            label = "feature" if prefix == "x" else "unit"
            self.plot.getAxis("left").setLabel(label, color=ps.FOREGROUND)
            title += f"  (colour ±{lim:.2g})"
            self.plot.setYRange(-0.5, n - 0.5, padding=0)
        ps.fit_title(self.plot, html.escape(title), size="10pt", key=key)


class TimePlots(pg.GraphicsLayoutWidget):
    """Stacked plots over time; ``show_step`` moves the cursors and nothing else."""

    step_requested = Signal(int)

    def __init__(self, workspace: Workspace | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ps.style_widget(self)
        self.workspace = workspace
        self._trace: Trace | None = None
        self._structure: tuple = ()
        self._plots: list[pg.PlotItem] = []
        self._cursors: list[pg.InfiniteLine] = []
        self._layer_plots: list[_SeriesPlot] = []
        self._unit_marks: list[pg.InfiniteLine] = []
        self.input_plot: _SeriesPlot | None = None
        self.output_plot: _SeriesPlot | None = None
        self.gate_lines: dict[str, pg.PlotDataItem] = {}
        self.state_lines: dict[str, pg.PlotDataItem] = {}
        self._line_cell: object = None  # the cell kind the lines were made for
        self._step = 0
        self._sel = (0, 0, 0)
        self.breakpoint_marks: pg.ScatterPlotItem | None = None
        self._refiner: long_plots.Refiner | None = None
        self._stale = False
        self._spare: list[pg.PlotItem] = []
        if workspace is not None:
            QTimer.singleShot(0, self, self._prebuild_plot)
            workspace.subscribe(Change.TRACE, self._update_trace)
            workspace.subscribe(Change.SELECTION, self._update_selection)
            workspace.subscribe(Change.STEP, self._update_step)
            workspace.subscribe(Change.BREAKPOINTS, self._update_breakpoints)
            if workspace.trace is not None:  # built after the run (the debugger is lazy)
                self._update_trace(None)

    # -- workspace events ----------------------------------------------------------------------
    def _update_trace(self, _event: Event | None) -> None:
        ws = self.workspace
        if self.isHidden() and ws.trace is not None:
            self._stale = True  # a tab behind another: its plots are built when it is shown
            return
        self._stale = False
        s = ws.selection
        self._sel = (s.layer, s.direction, s.unit)  # before set_trace reads it
        self._step = ws.step
        if ws.trace is None:
            self.clear_data()
            return
        self.set_trace(ws.trace)
        self._update_breakpoints(_event)

    def _update_selection(self, _event: Event) -> None:
        if self._stale:
            return
        s = self.workspace.selection
        self.set_selection(s.layer, s.direction, s.unit)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._update_trace(None)
            # The first paint of the new plots (~60 ms) in the next event-loop turn: with the
            # build (~45 ms) in this one, showing the tab froze the window 0.11 s.
            self.setUpdatesEnabled(False)
            QTimer.singleShot(0, self, lambda: self.setUpdatesEnabled(True))

    def _update_step(self, _event: Event) -> None:
        self.show_step(self.workspace.step)

    def _update_breakpoints(self, _event: Event | None) -> None:
        dbg = self.workspace.debugger
        if dbg is not None:
            self.set_breakpoint_steps(np.flatnonzero(dbg.breakpoint_mask()))

    def clear_data(self) -> None:
        """No run (a new model is computing): the plots go, rather than show the old one."""
        self.clear()
        self._trace = None
        self._structure = ()
        self._plots, self._cursors, self._layer_plots, self._unit_marks = [], [], [], []
        self.input_plot = self.output_plot = None
        self.gate_lines, self.state_lines = {}, {}
        self._line_cell = None
        self.breakpoint_marks = None

    # -- building (once per model structure) ---------------------------------------------------
    def _prebuild_plot(self) -> None:
        """One spare plot per event-loop turn: building six when the tab was first shown
        froze the window ~0.13 s on a 3-layer model (a PlotItem with its axes is ~10 ms)."""
        if len(self._spare) < SPARE_PLOTS and not self._plots:
            self._spare.append(pg.PlotItem(axisItems=ps.integer_axes("bottom")))
            QTimer.singleShot(0, self, self._prebuild_plot)

    def _new_plot(self, title: str, stretch: int) -> pg.PlotItem:
        row = len(self._plots)
        if self._spare:
            plot = self._spare.pop()
        else:
            plot = pg.PlotItem(axisItems=ps.integer_axes("bottom"))
        self.addItem(plot, row=row, col=0)
        plot = ps.style_plot(plot, title)
        # 2,000-step curves drawn point by point took ~40 ms of the tab's first paint: draw
        # the visible part, each pixel column's min and max (a spike stays visible)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        plot.setMouseEnabled(x=True, y=False)
        plot.hideButtons()
        plot.getAxis("left").setWidth(70)
        if self._plots:
            plot.setXLink(self._plots[0])
        cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#d62728", width=2),
                                 hoverPen=pg.mkPen("#ff0000", width=4))  # fmt: skip
        cursor.setZValue(10)
        cursor.sigDragged.connect(self._on_cursor_dragged)
        plot.addItem(cursor)
        self._cursors.append(cursor)
        self._plots.append(plot)
        self.ci.layout.setRowStretchFactor(row, stretch)
        return plot

    def _build(self, trace: Trace) -> None:
        self.clear()
        self._plots, self._cursors, self._layer_plots, self._unit_marks = [], [], [], []
        self.input_plot = _SeriesPlot(self._new_plot("input x_t", 2), "input x_t")
        n_layers = len(trace.layers)
        head = trace.model.head
        after = _layers_after_lstms(trace, skip=frozenset(d.name for d in head))
        kind = trace.layers[-1].layer.cell.name  # "last LSTM", "last GRU"
        if head:
            last = f" (last {kind})"
        else:
            last = f" (last {kind}; {after})" if after else " = network output"
        for k, lt in enumerate(trace.layers):
            name = f"layer {k} output" + (last if k == n_layers - 1 else "")
            if lt.layer.bidirectional and lt.layer.merge_mode in (MergeMode.CONCAT, MergeMode.NONE):
                name += " (forward units, then backward)"
            if lt.layer.output_order is OutputOrder.PROCESSING:
                name += " — rows in reversed time: row t is step T-1-t"
            if not lt.layer.return_sequences and k == n_layers - 1:
                name += " — the framework returns only its last output"
            self._layer_plots.append(_SeriesPlot(self._new_plot(name, 2), name))
            mark = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(ps.SELECT_COLOR, width=1))
            self._layer_plots[-1].plot.addItem(mark)
            self._unit_marks.append(mark)
        self.output_plot = None
        if trace.head_output is not None:
            chain = " → ".join(_short(d) for d in head)
            title = f"network output: layer {n_layers - 1} output → {chain}"
            if after:
                title += f"; {after}"
            self.output_plot = _SeriesPlot(self._new_plot(title, 2), title)
        gates = self._new_plot("gates of the selected unit", 3)
        gates.setYRange(-1.05, 1.05, padding=0)
        self._new_plot("states of the selected unit", 3)
        self.gate_lines, self.state_lines, self._line_cell = {}, {}, None
        self.breakpoint_marks = pg.ScatterPlotItem(
            symbol="t", size=9, brush=pg.mkBrush(ps.HIT_COLOR)
        )
        gates.addItem(self.breakpoint_marks)
        for plot in self._plots[:-1]:
            plot.getAxis("bottom").setStyle(showValues=False)
        self._plots[-1].setLabel("bottom", "time step t", color=ps.FOREGROUND)

    # -- data ----------------------------------------------------------------------------------
    def set_trace(self, trace: Trace) -> None:
        structure = (
            *tuple((lt.output.shape[1] <= MAX_LINES, len(lt.directions)) for lt in trace.layers),
            trace.x.shape[1] <= MAX_LINES,
            None if trace.head_output is None else trace.head_output.shape[1] <= MAX_LINES,
        )
        if structure != self._structure or not self._plots:
            self._build(trace)
            self._structure = structure
        self._trace = trace
        x_lim, layer_lims, head_lim = output_limits(trace)
        ref = self._refiner = long_plots.refiner_for(self, trace)
        self.input_plot.set_data(long_plots.input_of(trace), "x", x_lim, ref)
        for sp, lt, lim in zip(self._layer_plots, trace.layers, layer_lims, strict=True):
            sp.set_data(lt.output, "y", lim, ref)
        if self.output_plot is not None and trace.head_output is not None:
            self.output_plot.set_data(trace.head_output, "y", head_lim, ref)
        for plot in self._plots:
            plot.setLimits(xMin=-0.5, xMax=trace.n_steps - 0.5)
            plot.disableAutoRange(axis="x")
        self._plots[0].setXRange(-0.5, trace.n_steps - 0.5, padding=0)
        self.set_selection(*self._sel)
        self.show_step(min(self._step, trace.n_steps - 1))

    def set_selection(self, layer: int, direction: int, unit: int) -> None:
        self._sel = (layer, direction, unit)
        trace = self._trace
        if trace is None:
            return
        # clamped again here: a view must never index past its own trace whatever it is told
        layer = min(max(layer, 0), len(trace.layers) - 1)
        lt = trace.layers[layer]
        direction = min(max(direction, 0), len(lt.directions) - 1)
        dt = lt.directions[direction]
        unit = min(max(unit, 0), cell_rows.hidden_size(dt) - 1)
        rows = cell_rows.rows(dt, distinct=False)
        gate_rows = [r for r in rows if r.name in dt.cell.gate_names]
        state_rows = [r for r in rows if r.name not in dt.cell.gate_names]
        self._make_lines(dt.cell, gate_rows, state_rows)
        t = np.arange(trace.n_steps)
        for row in rows:
            line = self.gate_lines.get(row.name) or self.state_lines[row.name]
            if self._refiner is not None:  # a bounded trace: envelope, exact when zoomed in
                self._refiner.line(line, cell_rows.values_of(dt, row), unit)
                continue
            line.setData(t, cell_rows.values_of(dt, row)[:, unit])
        side = "backward" if direction else "forward"
        where = f"unit {unit} (layer {layer} {side})"
        gate_key = ps.color_key([(cell_rows.colour(dt.cell, r.name), r.name) for r in gate_rows])
        state_key = ps.color_key(
            [(cell_rows.colour(dt.cell, r.name), _line_name(r)) for r in state_rows],
            dashed=frozenset(cell_rows.colour(dt.cell, r.name) for r in state_rows[:-1]
                             if r.kind == "signed"),
        )  # fmt: skip
        states = " and ".join(dt.cell.states_long[s] for s in reversed(dt.cell.state_names))
        ps.fit_title(self._plots[-2], html.escape(f"gates of {where}"), key=gate_key)
        ps.fit_title(self._plots[-1], html.escape(f"{states} of {where}"), key=state_key)
        for k, mark in enumerate(self._unit_marks):
            concat = lt.layer.merge_mode in (MergeMode.CONCAT, MergeMode.NONE)
            offset = (
                direction * dt.weights.output_size if (lt.layer.bidirectional and concat) else 0
            )
            visible = k == layer and trace.layers[k].output.shape[1] > MAX_LINES
            mark.setVisible(visible)
            mark.setValue(unit + offset)

    def _make_lines(self, cell, gate_rows: list, state_rows: list) -> None:
        """The gate and state lines of ``cell`` (kept while the selection stays on layers of
        the same cell kind; a mixed model swaps them when it moves to another kind)."""
        if cell is self._line_cell or len(self._plots) < 2:
            return
        gates, states = self._plots[-2], self._plots[-1]
        for line in self.gate_lines.values():
            gates.removeItem(line)
        for line in self.state_lines.values():
            states.removeItem(line)
        self.gate_lines = {
            r.name: gates.plot(pen=ps.pen(cell_rows.colour(cell, r.name)), name=r.name)
            for r in gate_rows
        }
        dash = pg.QtCore.Qt.PenStyle.DashLine
        self.state_lines = {}
        for k, r in enumerate(state_rows):
            last = k == len(state_rows) - 1
            style = {"style": dash} if r.kind == "signed" and not last else {}
            pen = ps.pen(cell_rows.colour(cell, r.name), width=2 if last else 1.5, **style)
            self.state_lines[r.name] = states.plot(pen=pen, name=_line_name(r))
        self._line_cell = cell

    def set_breakpoint_steps(self, steps: np.ndarray) -> None:
        """Red marks above the gate plot where an enabled breakpoint fires."""
        if self._plots and self.breakpoint_marks is not None:
            self.breakpoint_marks.setData(x=np.asarray(steps, float), y=np.full(len(steps), 1.0))

    def show_step(self, t: int) -> None:
        self._step = t
        for cursor in self._cursors:
            cursor.setValue(t)

    def _on_cursor_dragged(self, line: pg.InfiniteLine) -> None:
        if self._trace is not None:
            t = round(line.value())
            self.step_requested.emit(min(max(t, 0), self._trace.n_steps - 1))


def output_limits(trace: Trace) -> tuple[float, list[float], float]:
    """Colour ranges of the input, each layer's output and the head's output, once per run
    (``view_cache``; the run's worker computes them first, see ``prepare_trace``)."""

    def compute() -> tuple[float, list[float], float]:
        head = trace.head_output
        return (
            symmetric_limit(trace.x),
            [symmetric_limit(lt.output) for lt in trace.layers],
            symmetric_limit(head) if head is not None else 1.0,
        )

    return memo(trace, "output_limits", compute)


def _wired(model: object) -> bool:
    """Whether the file records which layer feeds which (Keras configs, ONNX graphs, TF
    checkpoints' object graph) rather than bare names (PyTorch state dicts, safetensors,
    NumPy arrays), so "after the last LSTM" means something."""
    fmt = getattr(model, "source_format", "")
    framework = getattr(model, "framework", "")
    if "NumPy arrays" in framework or "(layout:" in fmt:
        return False
    return fmt.startswith(("Keras", "ONNX", "TensorFlow")) or framework.startswith(
        ("Keras", "tf.keras", "ONNX", "TensorFlow")
    )


def _runs_embedding(info: object, model: object) -> bool:
    """The file's embedding that lstmviz looks token ids up in (it is run, not skipped)."""
    table = getattr(model, "embedding", None)
    weights = getattr(info, "weights", ())
    return (
        table is not None
        and getattr(info, "kind", "") == "Embedding"
        and len(weights) == 1
        and tuple(weights[0][1]) == tuple(table.shape)
    )


def _layers_after_lstms(trace: Trace, skip: frozenset[str] = frozenset()) -> str:
    """The file's layers with weights that lstmviz does not run, worded for a title:
    ``then a (Dense), b (Dense), not run`` after the last LSTM when the file records the wiring
    (``skip``: the model's dense head, which it does run), else ``not run: a (Linear), ...``
    for every other module (a state dict does not record order; the embedding used for token
    ids and optimizer state are left out)."""
    model = trace.model
    infos = model.all_layers
    lstm_at = [k for k, info in enumerate(infos) if info.is_lstm]
    if not lstm_at:
        return ""
    if _wired(model):
        rest = infos[lstm_at[-1] + 1 :]
        names = [f"{i.name} ({i.kind})" for i in rest if i.weights and i.name not in skip]
        return f"then {', '.join(names)}, not run" if names else ""
    names = [
        f"{i.name} ({i.kind})"
        for i in infos
        if not i.is_lstm
        and i.weights
        and i.name not in skip
        and i.note != "optimizer state"
        and not _runs_embedding(i, model)
    ]
    return f"not run: {', '.join(names)}" if names else ""


def _short(t: object) -> str:
    """``head (Dense, linear)``: a per-step layer's name, class and activation if it has one."""
    act = getattr(t, "activation", None)
    return f"{t.name} ({t.kind}{f', {act}' if act is not None else ''})"


def _line_name(row: cell_rows.Row) -> str:
    """A state line's name in the title's key: ``c_t``, ``tanh(c_t)``, ``h_t`` (``m_t`` for
    the per-unit h of a projected LSTM)."""
    return row.label.split(" = ")[0]
