"""The current sequence as text, each token coloured by one unit's h, c or gate value.

A view on the ``Workspace`` (model, sequence, run, selected unit, step) and the
``ExploreSession`` (the tokens' text, annotation tracks, the unit set's quantity and span).
Hover names token, step and value; a click moves the debugger to that step; a drag selects
the span the Select panel picks units in. Colours come only from the run of the sequence
shown: while a new run computes, the tokens are grey and the header says so. A bounded run
(too long to record whole) colours the tokens on screen as the worker recomputes them
(``text_lazy``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from lstmviz.core.cells import DEFAULT_CELL, CellDescription
from lstmviz.core.trace import Trace
from lstmviz.gui import plot_style as ps
from lstmviz.gui.text_canvas import TextCanvas
from lstmviz.gui.text_layout import colours, levels_for
from lstmviz.gui.text_lazy import LazyColours
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Change, Event, Workspace
from lstmviz.workspace.explore_session import ExploreSession, Topic
from lstmviz.workspace.unit_selection import Field, quantities, quantity_name, unit_values

#: How long the view rests before a bounded run's tokens on screen are computed.
WANT_DELAY_MS = 150


def shown_cell(workspace: Workspace) -> CellDescription:
    """The cell of the selected layer and direction (``DEFAULT_CELL`` before a model opens)."""
    model = workspace.model
    if model is None:
        return DEFAULT_CELL
    s = workspace.selection
    return model.layers[s.layer].directions[s.direction].cell


def fill_quantity_box(box: QComboBox, workspace: Workspace, current: str) -> None:
    """``box`` lists what the selected layer's cell records (``shown_cell``; rebuilt only when
    that changes, without signals) and shows ``current``."""
    cell = shown_cell(workspace)
    names = quantities(cell)
    box.blockSignals(True)
    if tuple(box.itemData(k) for k in range(box.count())) != names:
        box.clear()
        for q in names:
            box.addItem(quantity_name(cell, q), q)
    k = box.findData(current)
    if k >= 0 and box.currentIndex() != k:
        box.setCurrentIndex(k)
    box.blockSignals(False)


def run_is_current(trace: Trace | None, x: np.ndarray | None) -> bool:
    """Whether ``trace`` is the run of ``x`` (a new sequence keeps the old run until the
    new one arrives; its colours must not be shown on the new tokens)."""
    if trace is None or x is None or trace.x.shape != x.shape:
        return False
    # the run keeps x in its own precision (float32 for a float32 model)
    return trace.x is x or bool(np.array_equal(trace.x, x.astype(trace.x.dtype, copy=False)))


class TextView(QWidget):
    """Header (what colours the text, its range, hover readout) over the scrolling text."""

    def __init__(
        self, workspace: Workspace, session: ExploreSession, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.workspace, self.session = workspace, session
        self.selection = session.selection
        self.values: np.ndarray | None = None  # (T,) the colouring values, None while stale
        self.levels = (0.0, 1.0)
        self.hover_text = ""
        self._current: tuple[int, int, bool] = (0, 0, False)  # (id(trace), id(x), current)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        header = QHBoxLayout()
        header.addWidget(QLabel("Colour by"))
        self.quantity_box = QComboBox()
        fill_quantity_box(self.quantity_box, workspace, self.selection.quantity)
        self.quantity_box.currentIndexChanged.connect(self._on_quantity_box_changed)
        header.addWidget(self.quantity_box)
        self.title = QLabel()
        header.addWidget(self.title)
        self.status = QLabel()
        self.status.setStyleSheet("color: #8b0000;")
        header.addWidget(self.status)
        header.addStretch(1)
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        header.addWidget(self.readout)
        layout.addLayout(header)
        self.canvas = TextCanvas()
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.canvas)
        layout.addWidget(self.scroll, 1)

        #: a bounded trace's colours, computed for the tokens on screen (``text_lazy``)
        self._lazy = LazyColours(workspace, self._on_lazy_filled)
        # asked for once the view rests (a step or scroll restarts it): a jump, then the next
        # one, must not wait for a core the previous position's colouring took
        self._want_timer = QTimer(self)
        self._want_timer.setSingleShot(True)
        self._want_timer.setInterval(WANT_DELAY_MS)
        self._want_timer.timeout.connect(self._want_now)
        self.scroll.verticalScrollBar().valueChanged.connect(self._want_visible)
        self.canvas.laid_out.connect(self._want_visible)
        self.canvas.step_clicked.connect(self._on_canvas_step_clicked)
        self.canvas.span_dragged.connect(self._on_canvas_span_dragged)
        self.canvas.hovered.connect(self._on_canvas_hovered)
        workspace.subscribe((Change.MODEL, Change.TRACE, Change.SELECTION), self._update_colours)
        workspace.subscribe(Change.SEQUENCE, self._update_sequence)
        workspace.subscribe(Change.STEP, self._update_step)
        session.subscribe(Topic.LABELS, self._update_labels)
        session.subscribe((Topic.ANNOTATIONS, Topic.CORPUS), self._update_tracks)
        self.selection.subscribe(self._on_selection_field)
        self._update_labels(None)

    # -- events --------------------------------------------------------------------------------
    def _update_sequence(self, _event: Event) -> None:
        if self.session.labels is None:  # step numbers: the session emits no LABELS for them
            self._update_labels(None)
        else:
            self._update_colours(None)

    def _update_labels(self, _topic: Topic | None) -> None:
        labels = self.session.labels
        x = self.workspace.sequence
        if labels is None:
            labels = [str(t) for t in range(0 if x is None else len(x))]
        self.canvas.set_tokens(labels)
        self._update_tracks(None)
        self._update_colours(None)
        self._update_step(None)

    def _update_tracks(self, _topic: Topic | None) -> None:
        self.canvas.set_tracks(self.session.tracks())

    def _on_selection_field(self, field: Field) -> None:
        if field is Field.QUANTITY:
            fill_quantity_box(self.quantity_box, self.workspace, self.selection.quantity)
            self._update_colours(None)
        elif field is Field.SPAN:
            self.canvas.set_span(self.selection.span)

    def _update_step(self, _event: Event | None) -> None:
        t = self.workspace.step
        self.canvas.set_step(t)
        rect = self.canvas.token_rect(t)
        if rect is not None and self.isVisible():
            self.scroll.ensureVisible(rect.center().x(), rect.center().y(), 20, 20)

    def _update_colours(self, _event: Event | None) -> None:
        """Recolour from the current run, or grey with a note while it computes."""
        ws = self.workspace
        trace, x = ws.trace, ws.sequence
        key = (id(trace), id(x))
        if self._current[:2] != key:
            self._current = (*key, run_is_current(trace, x))
        fill_quantity_box(self.quantity_box, ws, self.selection.quantity)
        s, q = ws.selection, self.selection.quantity
        if ws.model is None or x is None:
            self.title.setText("Open a model to see its sequence as text")
        else:  # the unit and colour scale once coloured; meanwhile what is shown
            self.title.setText(f"{len(x):,} steps")
        if trace is None or not self._current[2]:
            self._lazy.clear()
            self.values = None
            self.canvas.set_colours(None, None)
            if ws.model is not None:
                self.status.setText("computing the run…")
                if self.isVisible():
                    ws.ensure_trace()
            return
        self.status.setText("")
        values = unit_values(trace, s.layer, s.direction, q)
        unit = min(s.unit, values.shape[1] - 1)
        lut = memo(trace, "text_lut", lambda: ps.lut(ps.SIGNED_CMAP))
        self.levels = memo(  # a bounded trace's from its overview
            trace, f"text_levels/{s.layer}/{s.direction}/{q}", lambda: levels_for(q, values)
        )
        if getattr(trace, "bounded", False):  # checkpoints only: the tokens on screen
            column = values.column_view(slice(unit, unit + 1))
            key = (id(trace), s.layer, s.direction, q, unit)
            self._lazy.reset(key, column, trace.n_steps, self.levels, lut)
            self.values = self._lazy.values
            self.canvas.set_colours(self._lazy.rgb, self._lazy.light)
            self._want_visible()
        else:
            self._lazy.clear()
            self.values = values[:, unit]
            rgb, light = colours(self.values, self.levels, lut)
            self.canvas.set_colours(rgb, light)
        lo, hi = self.levels
        side = " backward" if s.direction else ""
        self.title.setText(
            f"unit {unit} of layer {s.layer}{side}, colour {lo:.2g} … {hi:.2g} (blue → white → red)"
        )

    def visible_steps(self) -> tuple[int, int]:
        """Steps of the tokens in the scroll area's viewport (whole lines)."""
        lay = self.canvas.layout_
        if not lay.rows:
            return 0, 0
        lh = self.canvas.line_height
        top = self.scroll.verticalScrollBar().value()
        r0 = min(max((top - 2) // lh, 0), lay.rows)
        r1 = min((top + self.scroll.viewport().height() - 2) // lh + 1, lay.rows)
        return int(lay.row_start[r0]), int(lay.row_start[max(r0, r1)])

    def _want_visible(self, *_args: object) -> None:
        if self._lazy.key is not None and self.isVisible():
            self._want_timer.start()

    def _want_now(self) -> None:
        if self._lazy.key is None or not self.isVisible():
            return
        self._lazy.want(*self.visible_steps())
        self._say_lazy()

    def _on_lazy_filled(self) -> None:
        self.canvas.update()
        self._want_now()  # the view may have moved on meanwhile
        self._say_lazy()

    def _say_lazy(self) -> None:
        if self._lazy.error:
            self.status.setText(f"not coloured: {self._lazy.error}")
        elif self._lazy.computing:
            self.status.setText("colouring the tokens on screen…")
        else:
            self.status.setText("")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._want_visible()  # a taller view shows more tokens

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._update_colours(None)
        self._update_step(None)

    # -- user actions --------------------------------------------------------------------------
    def _on_quantity_box_changed(self, index: int) -> None:
        self.selection.set_quantity(self.quantity_box.itemData(index))

    def _on_canvas_step_clicked(self, t: int) -> None:
        self.workspace.go_to_step(t)

    def _on_canvas_span_dragged(self, start: int, stop: int) -> None:
        self.selection.set_span(start, stop)

    def _on_canvas_hovered(self, t: int) -> None:
        self.hover_text = self.describe(t) if t >= 0 else ""
        self.readout.setText(self.hover_text)
        self.canvas.setToolTip(self.hover_text)

    def describe(self, t: int) -> str:
        """``'(' · step 12 · h[3] = 0.532 · depth 2``: what hovering token ``t`` shows."""
        labels = self.canvas.labels
        if not 0 <= t < len(labels):
            return ""
        parts = [repr(labels[t]), f"step {t}"]
        s = self.workspace.selection
        if self._lazy.key is not None and not self._lazy.is_known(t):
            parts.append(f"{self.selection.quantity}[{s.unit}] being computed")
        elif self.values is not None:
            parts.append(f"{self.selection.quantity}[{s.unit}] = {self.values[t]:.4g}")
        for name, codes in self.canvas.tracks:
            names = self.session.track_labels(name)
            code = int(codes[t])
            parts.append(f"{name} {names[code] if 0 <= code < len(names) else '–'}")
        return " · ".join(parts)
