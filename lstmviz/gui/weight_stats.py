"""Per-gate statistics table and histograms of the selected direction's weights."""

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

from lstmviz.core.gate_stats import NEAR_ZERO, GateStats, gate_stats, matrices
from lstmviz.core.model import GATE_NAMES, GATES, LSTMDirection

GATE_COLOURS = MappingProxyType(
    {"i": (31, 119, 180), "f": (44, 160, 44), "g": (255, 127, 14), "o": (148, 103, 189)}
)
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
        self.curves = {
            g: self.histogram.plot(
                [0, 1],
                [0],
                stepMode="center",
                name=f"{g} {GATE_NAMES[g]}",
                pen=pg.mkPen(GATE_COLOURS[g], width=2),
            )
            for g in GATES
        }
        choose = QHBoxLayout()
        choose.addWidget(QLabel("Histogram of"))
        choose.addWidget(self.matrix_choice)
        choose.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.table.setMinimumHeight(
            22 * 12 + 30
        )  # 12 rows (3 matrices × 4 gates) without scrolling
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
                    item.setForeground(QBrush(QColor(*GATE_COLOURS[s.gate])))
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
