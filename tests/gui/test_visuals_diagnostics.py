"""Diagnostics: an empty saturation strip reads as "nothing saturated", titles fit their plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor

from lstmviz import run
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.gui.diagnostics_view import NO_SATURATION, DiagnosticsView

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def trace_with_scale(scale: float, H: int = 12, D: int = 2, T: int = 40):
    rng = np.random.default_rng(3)
    w = LSTMDirection(
        W_x=scale * rng.normal(size=(4 * H, D)),
        W_h=scale * rng.normal(size=(4 * H, H)),
        b=scale * rng.normal(size=4 * H),
    )
    model = LSTMModel(layers=(LSTMLayer("lstm", (w,)),))
    return run(model, rng.normal(size=(T, D)))


@pytest.fixture
def view(qtbot):
    v = DiagnosticsView()
    qtbot.addWidget(v)
    v.resize(600, 520)
    v.show()
    qtbot.waitExposed(v)
    return v


def strip_pixels(view, rows=(0.5, 1.5, 2.5)) -> list[QColor]:
    """Colours drawn at a few units of each gate row (away from the centred note)."""
    image = view.grab().toImage()
    ratio = image.devicePixelRatio()
    plot = view.sat_plot
    H = view.saturation.shape[1]
    out = []
    for y in rows:
        for x in (0, H - 1):
            scene = plot.vb.mapViewToScene(_pt(x, y))
            p = view.plots.mapFromScene(scene)
            p = view.plots.mapTo(view, p)
            out.append(image.pixelColor(int(p.x() * ratio), int(p.y() * ratio)))
    return out


def _pt(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_no_saturation_is_a_light_strip_with_a_sentence(view, qtbot):
    view.set_trace(trace_with_scale(0.05))
    view.refresh(force=True)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_diagnostics_unsaturated.png"))
    assert view.saturation.max() == 0
    assert view.sat_empty.isVisible() and view.sat_empty.textItem.toPlainText() == NO_SATURATION
    assert all(c.lightness() > 200 for c in strip_pixels(view)), strip_pixels(view)
    assert "none saturated" in view.sat_plot.titleLabel.toolTip()


def test_saturated_units_are_dark_and_the_note_is_gone(view, qtbot):
    view.set_trace(trace_with_scale(6.0))
    view.refresh(force=True)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_diagnostics_saturated.png"))
    assert view.saturation.max() > 0.5
    assert not view.sat_empty.isVisible()
    darkest = min(c.lightness() for c in strip_pixels(view))
    assert darkest < 150


def test_titles_are_elided_to_their_plot(view, qtbot):
    """At 1024 × 700 the centred titles ran past both edges ("turation per unit …")."""
    from PySide6.QtGui import QFontMetricsF

    view.resize(380, 520)
    view.set_trace(trace_with_scale(1.0))
    view.refresh(force=True)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_diagnostics_narrow.png"))
    for plot in (view.sat_plot, view.prod_plot):
        label = plot.titleLabel
        shown = label.item.toPlainText()
        width = QFontMetricsF(label.item.font()).horizontalAdvance(shown.split("\n")[0])
        assert "…" in shown
        assert width <= plot.width(), (shown, width, plot.width())
        assert label.toolTip().startswith(("gate saturation", "forget-gate product"))


def test_the_empty_note_fits_a_narrow_strip(view, qtbot):
    from PySide6.QtGui import QFontMetricsF

    view.resize(360, 520)
    view.set_trace(trace_with_scale(0.05))
    view.refresh(force=True)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_diagnostics_narrow_empty.png"))
    text = view.sat_empty.textItem.toPlainText()
    assert text.startswith("no") and text != NO_SATURATION
    width = QFontMetricsF(view.sat_empty.textItem.font()).horizontalAdvance(text)
    assert width <= view.sat_plot.vb.width()
