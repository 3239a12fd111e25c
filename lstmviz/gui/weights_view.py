"""The central weights view: W_x, W_h, b (peepholes, W_p) of one direction as gate heatmaps.

A toggle switches between the canonical picture (rows in the cell's gate order: i, f, g, o for
an LSTM, ``[4H, in]``; r, z, n for a GRU, ``[3H, in]``) and the file's own layout (stored gate
order, orientation, TF1's stacked kernel), computed from ``Provenance`` by
``core.stored_layout``. Hovering a cell shows its gate, unit, input, stored name and index and
value, and outlines that unit in every gate block of every matrix.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core.cells import DEFAULT_CELL
from lstmviz.core.model import LSTMDirection
from lstmviz.core.stored_layout import Cell, Panel, canonical_panels, stored_panels
from lstmviz.gui.gate_heatmap import NARROW, GateHeatmap

MAX_PANELS = 5  # W_x, W_h, b, peepholes, W_p (stored: kernel(s), bias, peepholes, W_p)
PREBUILT = 3  # heatmaps built ahead, while the window idles: W_x, W_h, b of a plain LSTM
NARROW_PX = 120
QT_MAX = 16777215


class ElidedLabel(QLabel):
    """One line that ends in "…" when too long; the whole text is the tooltip (and ``text()``)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width() - 2, 20)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        super().setText(shown)


class WeightsView(QWidget):
    """Shows one direction at a time; ``set_direction`` swaps data into long-lived items."""

    cell_hovered = Signal(object)  # Cell, or None when leaving the matrices
    stored_order_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._weights: LSTMDirection | None = None
        self._direction = 0
        self._stored = False
        self._hovered_unit: int | None = None
        self.last_tooltip = ""

        self._pinned_unit: int | None = None
        self.link_label = QLabel("")
        self.link_label.setStyleSheet("color: #b07800; font-weight: bold;")
        self.caption = ElidedLabel("No model loaded")
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bold = self.caption.font()
        bold.setBold(True)
        self.caption.setFont(bold)
        self.canonical_button = QRadioButton("Canonical i,f,g,o [4H, in]")
        self.stored_button = QRadioButton("As stored in file")
        self.canonical_button.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.canonical_button)
        group.addButton(self.stored_button)
        self.stored_button.toggled.connect(self._on_stored_button_toggled)
        reset = QPushButton("Reset zoom")
        reset.clicked.connect(self.reset_zoom)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Layout:"))
        bar.addWidget(self.canonical_button)
        bar.addWidget(self.stored_button)
        bar.addStretch(1)
        bar.addWidget(self.link_label)
        bar.addWidget(reset)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumSize(200, 200)
        self.graphics.ci.setSpacing(6)
        self.heatmaps: list[GateHeatmap] = []  # a pool: grown when a model needs more, reused
        self._active: list[GateHeatmap] = []
        self.graphics.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        QTimer.singleShot(0, self, self._prebuild_heatmap)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addLayout(bar)
        layout.addWidget(self.graphics, 1)

    # ------------------------------------------------------------------ public API
    @property
    def stored_order(self) -> bool:
        return self._stored

    @property
    def active(self) -> list[GateHeatmap]:
        """The heatmaps currently shown, in layout order."""
        return list(self._active)

    def panels(self) -> list[Panel]:
        return [h.panel for h in self._active if h.panel is not None]

    def heatmap(self, key: str) -> GateHeatmap:
        return next(h for h in self._active if h.panel is not None and h.panel.key == key)

    def set_stored_order(self, stored: bool) -> None:
        if stored != self.stored_button.isChecked():  # exclusive radios: check the other one
            (self.stored_button if stored else self.canonical_button).setChecked(True)

    def set_direction(self, w: LSTMDirection | None, direction: int = 0, caption: str = "") -> None:
        """Show a direction's matrices (None clears the view)."""
        self._weights, self._direction = w, direction
        cell = (w.cell if w is not None else DEFAULT_CELL).gate_names
        n = len(cell)
        self.canonical_button.setText(f"Canonical {','.join(cell)} [{n if n > 1 else ''}H, in]")
        self._pinned_unit = None
        self.link_label.setText("")
        self.caption.setText(caption or ("No model loaded" if w is None else ""))
        self._rebuild()

    def highlight_unit(self, unit: int | None, gate: str | None = None) -> None:
        """Outline unit ``unit`` in every gate block of every shown matrix."""
        self._hovered_unit = unit
        for h in self._active:
            h.highlight_unit(unit)
        if gate is not None:  # a link from the debugger: keep it through layout changes
            self._pinned_unit = unit
            self.link_label.setText(f"▸ unit {unit} (from the debugger, gate {gate})")

    def tooltip_at(self, key: str, row: int, col: int) -> str:
        """Tooltip text of displayed cell ``(row, col)`` of panel ``key`` ('' outside)."""
        cell = self.heatmap(key).panel.cell(row, col)
        return cell.text() if cell is not None else ""

    def hover_scene_pos(self, scene_pos: QPointF) -> Cell | None:
        """What a mouse move to ``scene_pos`` does (used by the scene signal and tests)."""
        cell = None
        for h in self._active:
            found = h.cell_at(scene_pos)
            h.mark_cell(*(h.index_at(scene_pos) if found is not None else (None, None)))
            cell = cell or found
        if cell is None:
            self.last_tooltip = ""
            QToolTip.hideText()
        else:
            self.last_tooltip = cell.text()
            QToolTip.showText(QCursor.pos(), self.last_tooltip, self.graphics)
            if cell.unit != self._hovered_unit and cell.gate is not None:
                self.highlight_unit(cell.unit)
        self.cell_hovered.emit(cell)
        return cell

    def reset_zoom(self) -> None:
        for h in self._active:
            if h.panel is not None:
                rows, cols = h.panel.data.shape
                h.plot.vb.setRange(xRange=(0, cols), yRange=(0, rows), padding=0)

    # ------------------------------------------------------------------ layout
    def _prebuild_heatmap(self) -> None:
        """Build the pool's heatmaps one per event-loop turn once the window runs: one costs
        ~40 ms (a PlotItem, axes, a colour bar), and building three when the first model
        opened, beside its first paint, froze the window ~0.2 s."""
        if len(self.heatmaps) < PREBUILT:
            self.heatmaps.append(GateHeatmap())
            QTimer.singleShot(0, self, self._prebuild_heatmap)

    def _rebuild(self) -> None:
        w = self._weights
        panels: list[Panel] = []
        if w is not None:
            panels = (
                stored_panels(w, self._direction)
                if self._stored
                else canonical_panels(w, self._direction)
            )
        panels = panels[:MAX_PANELS]
        self._place(panels)
        self._hovered_unit = None
        if self._pinned_unit is not None:
            self.highlight_unit(self._pinned_unit)

    def _place(self, panels: list[Panel]) -> None:
        ci = self.graphics.ci
        ci.clear()
        for h in self.heatmaps:
            h.plot.setXLink(None)
            h.plot.setYLink(None)
            h.plot.setMaximumWidth(QT_MAX)
            h.plot.setMaximumHeight(QT_MAX)
        while len(self.heatmaps) < len(panels):
            self.heatmaps.append(GateHeatmap())
        self._active = self.heatmaps[: len(panels)]
        vertical = bool(panels) and panels[0].gate_axis == 1
        qlayout = ci.layout
        for i in range(MAX_PANELS + 1):  # unused rows/columns must not take space
            qlayout.setColumnStretchFactor(i, 0)
            qlayout.setRowStretchFactor(i, 0)
        qlayout.setColumnStretchFactor(0, 1)  # all 0 would cap the layout at its preferred size
        qlayout.setRowStretchFactor(0, 1)
        row_items: list[GateHeatmap] = []
        other_row = 0
        for h, panel in zip(self._active, panels, strict=True):
            rows, cols = panel.data.shape
            if vertical or panel.gate_axis != 0:
                r = len(row_items) + other_row if vertical else 1
                c = 0 if vertical else other_row
                # a lone projection under the row spans it, so it cannot widen one column
                span = 1 if vertical or other_row else max(1, len(row_items))
                ci.addItem(h.plot, row=r, col=c, colspan=span)
                if vertical:
                    row_items.append(h)
                    qlayout.setRowStretchFactor(r, _stretch(rows))
                    if rows <= NARROW:
                        h.plot.setMaximumHeight(NARROW_PX)
                else:
                    other_row += 1
                    qlayout.setRowStretchFactor(0, 3)
                    qlayout.setRowStretchFactor(1, 2)
                h.show_panel(panel, show_gate_labels=True)
            else:
                col = len(row_items)
                ci.addItem(h.plot, row=0, col=col)
                first = not row_items
                row_items.append(h)
                qlayout.setColumnStretchFactor(col, _stretch(cols))
                if cols <= NARROW:
                    h.plot.setMaximumWidth(NARROW_PX + (90 if first else 0))
                h.show_panel(panel, show_gate_labels=first)
        # Fit the layout to the view now: while items were swapped the layout's maximum size
        # may have shrunk the central item, and GraphicsView only re-fits it on resize.
        qlayout.activate()
        ci.setGeometry(self.graphics.range)
        linked = [h for h in row_items if h.panel is not None and h.panel.gate_axis in (0, 1)]
        for h in linked[1:]:
            if vertical:
                h.plot.setXLink(linked[0].plot)
            else:
                h.plot.setYLink(linked[0].plot)

    # ------------------------------------------------------------------ slots
    def _on_stored_button_toggled(self, checked: bool) -> None:
        self._stored = checked
        self._rebuild()
        self.stored_order_toggled.emit(checked)

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        self.hover_scene_pos(scene_pos)


def _stretch(n: int) -> int:
    """Share of the free space for a matrix n cells wide: grows, but slower than n."""
    return max(1, round(n**0.5))
