"""The step view's heatmaps zoom on the unit axis (wheel or drag over it); Reset restores."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from test_debug_panel import make_model
from test_visuals_zoom import drawn_labels

H = 64


def wheel_over_unit_axis(view, clicks: int) -> None:
    """Real wheel events over the middle of the bottom (unit) axis of the state heatmap."""
    axis = view.states.getAxis("bottom")
    scene = axis.mapToScene(axis.boundingRect().center())
    pos = QPointF(view.mapFromScene(scene))
    for _ in range(clicks):
        event = QWheelEvent(
            pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), QPoint(),
            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        QApplication.sendEvent(view.viewport(), event)
        QApplication.processEvents()


def test_unit_axis_zooms_both_heatmaps_and_reset_restores(make_main_window, qtbot):
    window = make_main_window()
    window.resize(1280, 800)
    window.set_model(make_model(H=H))
    window.set_sequence(np.random.default_rng(2).normal(size=(9, 3)))
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=5000)
    panel = window.debug_panel
    view = panel.step_view
    qtbot.wait(50)
    assert view.unit_range() == (0, H - 1)
    wheel_over_unit_axis(view, 6)
    first, last = view.unit_range()
    assert first >= 0 and last <= H - 1 and last - first < H / 2, (first, last)
    # the term breakdown shares the unit axis, and the ticks number the visible units
    assert view.terms_plot.vb.viewRange()[0] == view.states.vb.viewRange()[0]
    labels = [int(t) for t in drawn_labels(view.states.getAxis("bottom")) if t.isdigit()]
    assert labels and all(first - 1 <= u <= last + 1 for u in labels), labels
    # a cell under the mouse is still the unit it shows
    u = (first + last) // 2
    scene = view.states.vb.mapViewToScene(QPointF(u, 2.5))
    assert view._unit_at(scene) == (u, "g")
    # a programmatic range, a step and a unit click keep the zoom
    view.zoom_units(10, 19)
    window.workspace.go_to_step(4)
    window.workspace.select(unit=12)
    assert view.unit_range() == (10, 19)
    panel.controls.reset_zoom_button.click()
    assert view.unit_range() == (0, H - 1)
    # no zoom past a few units
    view.zoom_units(5, 5)
    lo, hi = view.states.vb.viewRange()[0]
    assert hi - lo >= 4 - 1e-6
