"""An SVG export draws every item where the PNG (the screen) draws it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from lstmviz import run
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.gui.diagnostics_view import DiagnosticsView
from lstmviz.gui.step_view import StepView
from lstmviz.gui.view_export import save_widget
from lstmviz.gui.weights_view import WeightsView

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def direction(H: int = 6, D: int = 3) -> LSTMDirection:
    rng = np.random.default_rng(0)
    return LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )


def gray(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    stride = image.bytesPerLine()
    raw = np.frombuffer(ptr, np.uint8, count=stride * image.height())
    return raw.reshape(image.height(), stride)[:, : image.width()].astype(float)


def rasterized_svg(path: Path, width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    QSvgRenderer(str(path)).render(painter)
    painter.end()
    return image


def column_profile(a: np.ndarray) -> np.ndarray:
    """Darkness per column: where axes, ticks and cell edges are, seen from above."""
    return (255 - a).mean(axis=0)


@pytest.mark.parametrize("kind", ["step", "weights", "diagnostics"])
def test_svg_matches_the_png(qtbot, tmp_path, kind):
    w = direction()
    view = {"step": StepView, "weights": WeightsView, "diagnostics": DiagnosticsView}[kind]()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    trace = run(LSTMModel((LSTMLayer("l", (w,)),)), np.ones((12, 3)))
    if kind == "step":
        view.set_direction(trace.layers[0].directions[0], "x")
    elif kind == "weights":
        view.set_direction(w, 0, "x")
    else:  # a plain widget around the plots: render(painter) alone raised TypeError here
        view.set_trace(trace)
        view.refresh(force=True)
    qtbot.wait(50)
    png, svg = tmp_path / f"{kind}.png", tmp_path / f"{kind}.svg"
    save_widget(view, png)
    save_widget(view, svg)
    screen = QImage(str(png)).scaled(view.width(), view.height())
    drawn = rasterized_svg(svg, view.width(), view.height())
    drawn.save(str(ARTIFACTS / f"visuals_export_{kind}_svg.png"))
    a, b = gray(screen), gray(drawn)
    # Antialiasing differs between the raster and the SVG painters, geometry must not. The
    # unit axis under a heatmap (ticks and numbers) must sit at the same columns: at 72 dpi
    # pyqtgraph's axes were replayed at 3/4 of their length while the cells were not.
    if kind == "step":
        scene_view, axis = view, view.states.getAxis("bottom")
    elif kind == "weights":
        scene_view, axis = view.graphics, view.active[1].plot.getAxis("bottom")  # W_h
    else:
        scene_view, axis = view.plots, view.prod_plot.getAxis("bottom")
    band = scene_view.mapFromScene(axis.sceneBoundingRect()).boundingRect()
    band.translate(scene_view.mapTo(view, band.topLeft()) - band.topLeft())
    rows = slice(band.top(), band.bottom())
    cols = slice(max(band.left() - 20, 0), band.right() + 20)
    pa, pb = column_profile(a[rows, cols]), column_profile(b[rows, cols])
    assert np.corrcoef(pa, pb)[0, 1] > 0.9, np.corrcoef(pa, pb)[0, 1]
    assert float((np.abs(a - b) > 80).mean()) < 0.02
