"""Row labels of the step view stay readable for every activation and at 1024 × 700."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QFontMetricsF, QImage, QPainter

from lstmviz import run
from lstmviz.core.activations import Activation
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.gui import plot_style as ps
from lstmviz.gui.step_view import StepView

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def drawn_labels(axis) -> list[tuple[float, str]]:
    """(y centre, text) of every tick label the axis would paint now."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect.center().y(), text) for rect, _flags, text in specs[2]]


def direction(act: str, H: int = 5, D: int = 2, seed: int = 0) -> LSTMDirection:
    rng = np.random.default_rng(seed)
    return LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, H)),
        b=rng.normal(size=4 * H),
        act_gate=Activation(act),
    )


@pytest.fixture
def step_view(qtbot):
    def make(act: str, size=(700, 560)):
        model = LSTMModel(layers=(LSTMLayer("lstm", (direction(act),)),))
        trace = run(model, np.random.default_rng(1).normal(size=(6, 2)))
        view = StepView()
        qtbot.addWidget(view)
        view.resize(*size)
        view.show()
        qtbot.waitExposed(view)
        view.set_direction(trace.layers[0].directions[0], "layer 0 lstm")
        qtbot.wait(50)
        return view

    return make


@pytest.mark.parametrize("act", ["sigmoid", "hard_sigmoid_k2", "hard_sigmoid_k3"])
def test_every_gate_row_keeps_its_label(step_view, act):
    """Keras-2 hard_sigmoid: "i = hard_sigmoid_k2(·)" is wider than the axis; it was dropped."""
    view = step_view(act)
    view.grab().save(str(ARTIFACTS / f"visuals_step_labels_{act}.png"))
    labels = [text for _y, text in drawn_labels(view.states.getAxis("left"))]
    for gate in "ifgo":
        assert any(text.startswith(f"{gate} = ") for text in labels), (gate, labels)
    assert any("(·)" in text and text.startswith("i = h") for text in labels) or act == "sigmoid"


def test_close_rows_get_a_smaller_font_not_a_pile(step_view):
    """1024 × 700: seven state rows ~11 pixels apart in a 9-point font ran into each other."""
    view = step_view("sigmoid", size=(560, 500))
    axis = view.states.getAxis("left")
    labels = drawn_labels(axis)
    view.grab().save(str(ARTIFACTS / "visuals_step_labels_close.png"))
    assert len(labels) == 7, labels  # every row still named
    ys = sorted(y for y, _ in labels)
    line = QFontMetricsF(axis.style["tickFont"]).height()
    assert min(np.diff(ys)) >= 0.8 * line or axis.style["tickFont"].pointSizeF() == 7.0


def test_crowded_rows_show_fewer_labels_never_overlapping(step_view):
    """A short window: 16 term rows in ~150 pixels drew on top of each other."""
    view = step_view("sigmoid", size=(560, 330))
    view.grab().save(str(ARTIFACTS / "visuals_step_labels_short.png"))
    axis = view.terms_plot.getAxis("left")
    labels = drawn_labels(axis)
    assert labels, "no term label at all"
    ys = sorted(y for y, _ in labels)
    font = axis.style["tickFont"]  # shrunk from 8 pt towards 7 pt for the crowded rows
    assert ps.FittingAxis.MIN_POINTS <= font.pointSizeF() < 8
    line = QFontMetricsF(font).height()
    assert (np.diff(ys) >= 0.55 * line).all(), labels  # glyphs apart, line spacing aside


def test_drop_overlapping_keeps_the_first_of_each_crowded_pair():
    from PySide6.QtCore import QRectF

    specs = [(QRectF(0, y, 50, 10), 0, f"r{y}") for y in (0, 5, 10, 30)]
    assert [t for _r, _f, t in ps.drop_overlapping(specs)] == ["r0", "r10", "r30"]


def test_numbers_on_a_short_plot_do_not_pile_up(qtbot):
    """A 20-pixel plot (gates over time at 1024 × 700) drew -1, 0, 1 on top of each other."""
    import pyqtgraph as pg

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = ps.style_plot(widget.addPlot())
    plot.plot([0, 1, 2], [-1.0, 0.2, 1.0])
    widget.resize(300, 60)  # a view box 20 pixels high
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.wait(50)
    labels = drawn_labels(plot.getAxis("left"))
    assert labels
    ys = sorted(y for y, _ in labels)
    line = QFontMetricsF(plot.getAxis("left").font()).height()
    assert (np.diff(ys) >= 0.6 * line).all(), labels  # -1, 0, 1 were 0.56 lines apart


def test_colour_bar_ticks_of_a_short_heatmap_do_not_overlap(qtbot):
    """As stored in file, a Keras bias is one row: its 45-pixel colour bar printed
    1.0, 0.5, 0, -0.5, -1.0 on top of each other."""
    from model_factories import keras_like

    from lstmviz.gui.weights_view import WeightsView

    model, _ = keras_like(D=3, H=2)
    view = WeightsView()
    qtbot.addWidget(view)
    view.resize(460, 360)  # the three colour bars are 20-40 pixels high
    view.show()
    qtbot.waitExposed(view)
    view.set_direction(model.layers[0].directions[0], 0, "keras")
    view.set_stored_order(True)
    qtbot.wait(50)
    view.grab().save(str(ARTIFACTS / "visuals_stored_colour_bars.png"))
    bias = view.active[-1]
    assert bias.panel.data.shape[0] == 1
    for heatmap in view.active:
        labels = drawn_labels(heatmap.bar.axis)
        assert labels, heatmap.panel.key
        ys = sorted(y for y, _ in labels)
        line = QFontMetricsF(heatmap.bar.axis.style["tickFont"] or heatmap.bar.axis.font()).height()
        assert (np.diff(ys) >= 0.7 * line).all(), (heatmap.panel.key, labels)
