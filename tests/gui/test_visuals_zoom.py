"""A zoomed weight heatmap keeps its gate names and gains unit numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication

from lstmviz.core.model import LSTMDirection
from lstmviz.gui.gate_heatmap import gate_axis_ticks
from lstmviz.gui.weights_view import WeightsView

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)
H = 24


def drawn_labels(axis) -> list[str]:
    """Text of every tick label the axis would paint now."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]]


@pytest.fixture
def view(qtbot):
    rng = np.random.default_rng(0)
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, 3)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )
    v = WeightsView()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    v.set_direction(w, 0, "test")
    qtbot.wait(50)
    return v


def wheel(view, key: str, row: float, clicks: int) -> None:
    """Real wheel events over row ``row`` of panel ``key`` (positive clicks zoom in)."""
    heatmap = view.heatmap(key)
    scene = heatmap.plot.vb.mapViewToScene(QPointF(1.5, row))
    pos = QPointF(view.graphics.mapFromScene(scene))
    for _ in range(clicks):
        event = QWheelEvent(
            pos, QPointF(view.graphics.viewport().mapToGlobal(pos.toPoint())), QPoint(),
            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        QApplication.sendEvent(view.graphics.viewport(), event)
        QApplication.processEvents()


def test_full_view_names_every_gate(view):
    labels = drawn_labels(view.heatmap("W_x").plot.getAxis("left"))
    assert {"i input", "f forget", "g candidate", "o output"} <= set(labels)


def test_wheel_zoom_keeps_the_gate_name_and_shows_unit_numbers(view, qtbot):
    """Zoomed between the centres of two blocks, the fixed ticks left no label at all."""
    w_x = view.heatmap("W_x")
    wheel(view, "W_x", 26.0, 12)
    lo, hi = w_x.plot.vb.viewRange()[1]
    assert hi - lo < 30, (lo, hi)  # the wheel really zoomed
    w_x.plot.vb.setYRange(25, 34, padding=0)  # and a drag to rows 25-34 (block f, units 1-9)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_zoomed_weights.png"))
    labels = drawn_labels(w_x.plot.getAxis("left"))
    assert "f forget" in labels, labels
    units = [t for t in labels if t.isdigit()]
    assert len(units) >= 3 and set(units) <= {str(u) for u in range(1, 10)}, labels
    # the W_h beside it shares the rows and keeps its unit ticks along its own columns
    bottom = drawn_labels(view.heatmap("W_h").plot.getAxis("bottom"))
    assert sum(t.isdigit() for t in bottom) >= 3, bottom
    view.reset_zoom()
    qtbot.wait(50)
    assert {"i input", "o output"} <= set(drawn_labels(w_x.plot.getAxis("left")))


def test_gate_ticks_for_a_range():
    names, units = gate_axis_ticks(4, ("i", "f", "g", "o"), 5.0, 7.0, 200.0, vertical=True)
    assert names == [(6.0, "f")]
    assert units == [(5.5, "1"), (6.5, "2")]
    names, units = gate_axis_ticks(100, ("i", "f", "g", "o"), 0.0, 400.0, 400.0, vertical=True)
    assert [n for _, n in names] == ["i", "f", "g", "o"]
    assert [u for _, u in units][:3] == ["0", "50", "0"]  # 1 px per unit: every 50th
    _names, units = gate_axis_ticks(6, ("i", "j", "f", "o"), 0.0, 24.0, 240.0, vertical=False)
    assert [u for _, u in units] == ["0", "0", "0", "0"]  # no "5" beside the next block's "0"


def test_a_deep_zoom_still_numbers_the_columns(view, qtbot):
    """Three columns of W_x zoomed to about two: pyqtgraph's tick spacing fell below one cell
    and the index axis showed no number at all."""
    w_x = view.heatmap("W_x")
    w_x.plot.vb.setXRange(0.6, 2.4, padding=0)
    qtbot.wait(50)
    labels = drawn_labels(w_x.plot.getAxis("bottom"))
    assert set(labels) == {"1"}, labels
