"""Per-gate statistics table and histograms of the selected direction's weights.

One row per matrix and gate of the direction's cell (i, f, g, o; the GRU's r, z, n with its
two biases b_x, b_h), the gates and matrices read from the cell description and
``core.gate_stats.matrices``; histogram curves are made again only for another cell kind.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core.cells import DEFAULT_CELL, CellDescription
from lstmviz.core.gate_stats import NEAR_ZERO, GateStats, gate_stats, matrices
from lstmviz.core.model import LSTMDirection

#: The LSTM's gate colours of this table since its first version; other gates take a
#: palette colour by their position in the cell.
GATE_COLOURS = MappingProxyType(
    {"i": (31, 119, 180), "f": (44, 160, 44), "g": (255, 127, 14), "o": (148, 103, 189)}
)
_PALETTE = ((31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75))


def gate_colour(cell: CellDescription, gate: str) -> tuple[int, int, int]:
    if gate in GATE_COLOURS:
        return GATE_COLOURS[gate]
    return _PALETTE[cell.gate_names.index(gate) % len(_PALETTE)]


COLUMNS = ("gate", "mean", "std", "min", "max", "L2", "≈0", "NaN/Inf")
BAD_RGB = (220, 40, 40)


def _fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3g}"


class WeightStatsPanel(QWidget):
    """A table (one row per matrix and gate) and a histogram of one matrix per gate."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._weights: LSTMDirection | None = None
        self._stats: list[GateStats] | None = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeaderItem(6).setToolTip(
            f"fraction of weights with |w| < {NEAR_ZERO:g} × the matrix's largest |w|"
        )
        self.matrix_choice = QComboBox()
        self.matrix_choice.addItems(["W_x", "W_h", "b"])
        self._cell: CellDescription | None = None
        self.matrix_choice.currentTextChanged.connect(self._on_matrix_choice_changed)
        self.histogram = pg.PlotWidget(background="w")
        self.histogram.setMinimumHeight(170)
        for name, label in (("bottom", "weight value"), ("left", "count")):
            axis = self.histogram.getAxis(name)
            axis.enableAutoSIPrefix(False)
            axis.setTextPen(pg.mkPen(20, 20, 20))
            axis.setPen(pg.mkPen(90, 90, 90))
            self.histogram.setLabel(name, label)
        self.histogram.addLegend(
            offset=(-5, 5),
            labelTextSize="8pt",
            labelTextColor=(20, 20, 20),
            brush=pg.mkBrush(255, 255, 255, 210),
        )
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._set_cell(DEFAULT_CELL)
        choose = QHBoxLayout()
        choose.addWidget(QLabel("Histogram of"))
        choose.addWidget(self.matrix_choice)
        choose.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.table.setMinimumHeight(
            22 * 12 + 30
        )  # 12 rows (3 matrices × 4 LSTM gates; a GRU's 4 × 3) without scrolling
        note = QLabel(
            f"≈0: |w| < {NEAR_ZERO:g} × the matrix's max |w|.  NaN/Inf counts turn red; "
            "NaN weights are dark grey in the heatmaps."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #888; font-size: 8pt;")  # grey on light and dark
        layout.addWidget(self.table, 3)
        layout.addWidget(note)
        layout.addLayout(choose)
        layout.addWidget(self.histogram, 2)

    def _set_cell(self, cell: CellDescription) -> None:
        """Histogram curves and matrix names for ``cell`` (kept while the cell stays)."""
        if cell is self._cell:
            return
        for curve in self.curves.values():
            self.histogram.removeItem(curve)
        self.curves = {
            g.name: self.histogram.plot(
                [0, 1],
                [0],
                stepMode="center",
                name=f"{g.name} {g.long_name}",
                pen=pg.mkPen(gate_colour(cell, g.name), width=2),
            )
            for g in cell.gates
        }
        self._cell = cell

    def _set_matrices(self, names: list[str]) -> None:
        """The histogram's matrix choices (W_x, W_h, b; a GRU's b_x and b_h), keeping the
        chosen one when the new direction has it."""
        if [self.matrix_choice.itemText(k) for k in range(self.matrix_choice.count())] == names:
            return
        current = self.matrix_choice.currentText()
        self.matrix_choice.blockSignals(True)
        self.matrix_choice.clear()
        self.matrix_choice.addItems(names)
        if current in names:
            self.matrix_choice.setCurrentText(current)
        self.matrix_choice.blockSignals(False)

    def set_direction(self, w: LSTMDirection | None) -> None:
        """Show ``w``'s statistics: computed now when this tab is on screen, else when it is
        shown or ``stats`` is read (a 4096 × 1024 kernel takes ~0.4 s: not for a hidden tab)."""
        self._weights = w
        self._stats = None
        if not self.isHidden():
            self._fill()

    @property
    def stats(self) -> list[GateStats]:
        if self._stats is None:
            self._fill()
        return self._stats

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stats is None:
            self._fill()

    def _fill(self) -> None:
        w = self._weights
        if w is not None:
            self._set_cell(w.cell)
            self._set_matrices(list(matrices(w)))
        self._stats = stats = gate_stats(w) if w is not None else []
        self.table.setRowCount(len(stats))
        for r, s in enumerate(stats):
            bad = s.n_nan + s.n_inf
            values = (
                f"{s.matrix} · {s.gate}",
                _fmt(s.mean),
                _fmt(s.std),
                _fmt(s.min),
                _fmt(s.max),
                _fmt(s.l2),
                f"{100 * s.near_zero:.0f}%" if np.isfinite(s.near_zero) else "—",
                f"{s.n_nan}/{s.n_inf}",
            )
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c >= 1:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if c == 0:
                    item.setForeground(QBrush(QColor(*gate_colour(w.cell, s.gate))))
                if bad and c == len(values) - 1:
                    item.setBackground(QBrush(QColor(*BAD_RGB)))
                    item.setForeground(QBrush(QColor("white")))
                    item.setToolTip(
                        f"{s.n_nan} NaN and {s.n_inf} Inf values in {s.matrix} gate {s.gate}"
                    )
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self._update_histogram()

    def bad_rows(self) -> list[int]:
        return [r for r, s in enumerate(self.stats) if s.has_bad]

    def _update_histogram(self) -> None:
        w = self._weights
        if w is None:
            for curve in self.curves.values():
                curve.setData([0, 1], [0], stepMode="center")
            return
        a = matrices(w)[self.matrix_choice.currentText()]
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = int(np.clip(np.sqrt(finite.size / 4) * 2, 8, 40))  # ~sqrt rule per gate
        edges = np.linspace(lo, hi, bins + 1)
        for g, curve in self.curves.items():
            block = w.gate(a, g)
            counts, _ = np.histogram(block[np.isfinite(block)], bins=edges)
            curve.setData(edges, counts, stepMode="center")

    def _on_matrix_choice_changed(self, _text: str) -> None:
        self._update_histogram()
