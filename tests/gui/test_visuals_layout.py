"""The weights view at 1024 × 700 (docks open): the widest matrix gets the width, colour bars
stay slim, every title fits its plot."""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtGui import QFontMetricsF

from lstmviz.resources import default_model_path

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def test_weights_at_1024_by_700_give_w_h_the_room(make_main_window, qtbot):
    window = make_main_window(size=(1024, 700))
    window.open_model(str(default_model_path()), wait=True)
    qtbot.wait(100)
    window.grab().save(str(ARTIFACTS / "visuals_weights_1024x700.png"))
    heatmaps = {h.panel.key: h for h in window.weights_view.active}
    w_x, w_h, b = heatmaps["W_x"], heatmaps["W_h"], heatmaps["b"]
    assert w_x.panel.data.shape[1] == 1 and w_h.panel.data.shape[1] == 24
    # 24 columns against 1: W_h's cells get at least twice the pixels of W_x's one column
    # (they got the same 28 pixels, squeezed between three 57-pixel colour bars)
    assert w_h.plot.vb.width() >= 2 * w_x.plot.vb.width(), (
        w_h.plot.vb.width(),
        w_x.plot.vb.width(),
    )
    assert w_h.plot.vb.width() >= 60
    for h in (w_x, w_h, b):
        assert h.bar.width() <= 45, h.bar.width()
        label = h.plot.titleLabel
        shown = label.item.toPlainText()
        width = QFontMetricsF(label.item.font()).horizontalAdvance(shown)
        assert width <= h.plot.width() + 8, (shown, width, h.plot.width())


def _drawn_width(label) -> float:
    return QFontMetricsF(label.item.font()).horizontalAdvance(label.item.toPlainText())


def test_step_view_at_1024_by_700_keeps_captions_apart_and_titles_inside(make_main_window, qtbot):
    """The colour bars' captions ran into each other and both plot titles past their plots."""
    window = make_main_window(size=(1024, 700))
    window.open_model(str(default_model_path()), wait=True)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=5000)
    view = window.debug_panel.step_view
    qtbot.wait(100)
    window.grab().save(str(ARTIFACTS / "visuals_step_1024x700.png"))
    rects = []
    for bar in (view.gate_bar, view.signed_bar, view.cell_bar):
        caption = bar.getAxis("bottom").label
        assert caption.isVisible() and caption.toPlainText()
        rects.append(caption.sceneBoundingRect())
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    for k, rect in enumerate(rects):
        assert shown.contains(rect), (k, rect, shown)
        for other in rects[k + 1 :]:
            assert not rect.intersects(other), (rect, other)
    for plot in (view.states, view.terms_plot):
        width = _drawn_width(plot.titleLabel)
        assert width <= plot.vb.width() + 8, (plot.titleLabel.item.toPlainText(), width)


def test_time_plots_at_1024_by_700_keep_titles_over_their_plots_and_labels_apart(
    make_main_window, qtbot
):
    """Titles ran past both edges of their plots, and "unit (±0.44)" turned sideways was
    taller than its plot and ran into the next plot's label."""
    from lstmviz.resources import default_sequence_path

    window = make_main_window(size=(1024, 700))
    window.open_model(str(default_model_path()), wait=True)
    window.open_sequence(default_sequence_path())
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=5000)
    tp = window.debug_panel.time_plots
    window.debug_panel.views.setCurrentWidget(tp)
    qtbot.wait(100)
    window.grab().save(str(ARTIFACTS / "visuals_time_plots_1024x700.png"))
    labels = []
    for plot in tp._plots:
        title = plot.titleLabel
        width = _drawn_width(title)
        assert width <= plot.width() + 8, (title.item.toPlainText(), width, plot.width())
        axis = plot.getAxis("left")
        if axis.label.isVisible() and axis.label.toPlainText():
            labels.append(axis.label.sceneBoundingRect())
    assert len(labels) >= 4
    for upper, lower in itertools.pairwise(labels):
        assert not upper.intersects(lower), (upper, lower)
    # the gates' colour key is still drawn beside its (shortened) title
    assert "━━" in tp._plots[-2].titleLabel.item.toPlainText()


def test_docks_leave_the_weights_most_of_a_small_window(make_main_window, qtbot):
    """Docks of 340 + 400 pixels (minimums 230 + 340) took 570 of 1024: they now scale
    with the window and the weights keep more than half of it."""
    window = make_main_window(size=(1024, 700))
    window.open_model(str(default_model_path()), wait=True)
    qtbot.wait(50)
    docks = window.tree_dock.width() + window.side_dock.width()
    assert docks <= 0.42 * 1024, docks
    assert window.tabs.width() >= 0.55 * 1024, window.tabs.width()
    window.resize(1920, 1080)
    qtbot.wait(50)
    # a large window gives the docks room again (the tree shows its shape column)
    assert window.tree_dock.width() >= 280 and window.side_dock.width() >= 400
