"""Defects a fresh user met in a real X window (Xvfb + xdotool QA session), each checked the
way the window met it: through the saved settings, the keys and the clicks a user gives."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtTest import QTest

from lstmviz.gui.settings import AppSettings
from lstmviz.resources import default_model_path


def _on_debugger_then_quit(make_main_window, settings: AppSettings) -> None:
    window = make_main_window(settings=settings)
    assert window.open_model(default_model_path(), wait=True) is not None, window.last_error
    bar = window.tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert not window.tree_dock.isVisible()  # the debugger takes the full width
    window.close()  # what Ctrl+Q does: the layout is saved


def test_quitting_on_the_debugger_tab_does_not_hide_the_docks_at_the_next_start(
    make_main_window, tmp_path
):
    """The docks hide while the Debugger tab shows; quitting there saved them hidden, and the
    next start (on the Weights tab) had no Model tree and no Inspector, with their View menu
    entries greyed out (the docks are not closable), so nothing brought them back."""
    settings = AppSettings.at(tmp_path / "qa.ini")
    _on_debugger_then_quit(make_main_window, settings)
    _geometry, state = settings.window_state()
    assert state is not None
    again = make_main_window(settings=settings)
    again.restoreState(state)  # what ``app.launch`` did with the saved state
    assert again.tabs.currentIndex() == 0
    assert again.tree_dock.isVisible() and again.side_dock.isVisible()


def test_a_layout_saved_with_hidden_docks_is_restored_to_match_the_tab(make_main_window, tmp_path):
    """Settings written by an earlier version (docks saved hidden) must not hide them either."""
    window = make_main_window()
    window.tabs.setCurrentIndex(1)
    hidden_state = window.saveState()  # the docks are hidden here
    again = make_main_window(settings=AppSettings.at(tmp_path / "old.ini"))
    again.restore_layout(window.saveGeometry(), hidden_state)
    assert again.tree_dock.isVisible() and again.side_dock.isVisible()
    again.tabs.setCurrentIndex(1)
    assert not again.tree_dock.isVisible()


def _text_rects(axis):
    from PySide6.QtGui import QImage, QPainter

    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return sorted((rect for rect, _flags, _text in specs[2]), key=lambda r: r.left())


def test_colour_bar_numbers_stay_apart_on_a_1024_by_700_screen(make_main_window, qtbot):
    """The gate scale under the step view printed "0.20.40.60.8" as one run of digits."""
    from lstmviz.resources import default_sequence_path

    window = make_main_window((1024, 700))
    assert window.open_model(default_model_path(), wait=True) is not None, window.last_error
    assert window.open_sequence(default_sequence_path())
    window.tabs.setCurrentIndex(1)
    view = window.debug_panel.step_view
    qtbot.waitUntil(lambda: view.isVisible() and view.width() > 100)
    qtbot.wait(50)
    for bar in (view.gate_bar, view.signed_bar, view.cell_bar):
        rects = _text_rects(bar.getAxis("bottom"))
        assert len(rects) >= 2, "a scale needs at least two numbers"
        gaps = [b.left() - a.right() for a, b in itertools.pairwise(rects)]
        axis = bar.getAxis("bottom")
        font = axis.style["tickFont"] or axis.font()
        space = QFontMetricsF(font).horizontalAdvance("0")  # a digit's width between numbers
        assert min(gaps) >= space, (axis.labelText, gaps)


def test_long_stored_names_that_share_a_prefix_keep_the_part_that_tells_them_apart(
    make_main_window, qtbot
):
    """silero-vad's ONNX LSTM stores W and R as
    'If_0_else_branch__Inline_0__/decoder/rnn/Unsqueeze_6_output_0' and '…_7_output_0': the
    titles were cut at the right end, so both plots read 'If_0_else_branch__Inline_0__/…'."""
    import dataclasses

    from model_factories import onnx_like

    from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel

    model, _stored = onnx_like(D=16, H=16)
    w = model.layers[0].directions[0]
    prefix = "If_0_else_branch__Inline_0__/decoder/rnn/Unsqueeze_"
    stored = tuple(
        dataclasses.replace(t, name=f"{prefix}{k + 6}_output_0")
        for k, t in enumerate(w.provenance.stored)
    )
    w = dataclasses.replace(w, provenance=dataclasses.replace(w.provenance, stored=stored))
    model = dataclasses.replace(model, layers=(LSTMLayer("lstm", (w,)),))
    assert isinstance(w, LSTMDirection) and isinstance(model, LSTMModel)
    window = make_main_window((1024, 700))
    window.set_model(model)
    window.weights_view.set_stored_order(True)
    qtbot.wait(50)
    shown = {}
    for panel in window.weights_view.panels():
        plot = window.weights_view.heatmap(panel.key).plot
        shown[panel.key] = plot._fit_title_shown
    names = [t.name for t in stored]
    assert len(set(shown.values())) == len(shown), shown
    for key, title in shown.items():
        if key == "bias":  # a thin column titled by its short key, not a stored name
            continue
        assert any(f"{name[len(prefix) :]}" in title for name in names), (key, title)


def test_model_tree_names_end_inside_the_dock_on_a_1024_by_700_screen(make_main_window):
    """At 1024 × 700 the tree's name column (at least 190 px) was wider than the 175 px dock,
    so 'layers/lstm/cell/vars/0', '…/1' and '…/2' were all drawn 'layers/lst…ell/vars/' with
    the digit past the dock's edge; the middle of a name gives way instead."""
    from PySide6.QtWidgets import QTreeWidgetItemIterator

    window = make_main_window((1024, 700))
    assert window.open_model(default_model_path(), wait=True) is not None, window.last_error
    tree = window.tree
    visible = tree.viewport().width()
    assert tree.header().sectionViewportPosition(0) + tree.columnWidth(0) <= visible
    it = QTreeWidgetItemIterator(tree)
    shown = []
    while it.value():
        item = it.value()
        rect = tree.visualItemRect(item)
        text = item.text(0)
        room = tree.columnWidth(0) - (rect.left() - tree.header().sectionViewportPosition(0))
        shown.append(tree.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, room - 8))
        it += 1
    stored = [s for s in shown if "vars" in s]
    assert len(stored) >= 3 and stored[0][-1] != stored[1][-1], stored


def _equation_colours(browser) -> dict[str, object]:
    """The colour of each equation line of the unit inspector, keyed by its first word."""
    colours = {}
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            text = fragment.text()
            head = text.split(" = ", 1)[0]
            if " = " in text and head in ("i", "f", "g", "o", "c", "h") and head not in colours:
                colours[head] = fragment.charFormat().foreground().color()
            it += 1
        block = block.next()
    return colours


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_unit_equations_read_on_their_background_and_h_has_its_own_colour(
    make_main_window, app_theme, theme
):
    """The equations took the plot colours as they are: the h line was drawn in c's red (the
    plots draw h cyan, which is 2.2 : 1 on white), orange o and cyan read 2.3 : 1 on white,
    blue i and red c 3.5 : 1 on a dark theme's field."""
    from PySide6.QtGui import QPalette

    from lstmviz.gui.plot_style import contrast
    from lstmviz.resources import default_sequence_path

    app_theme(theme)
    window = make_main_window()
    assert window.open_model(default_model_path(), wait=True) is not None
    assert window.open_sequence(default_sequence_path())
    window.tabs.setCurrentIndex(1)
    browser = window.debug_panel.unit_inspector.browser
    base = browser.palette().color(QPalette.ColorRole.Base)
    colours = _equation_colours(browser)
    assert set(colours) == set("ifgoch"), colours
    low = {k: round(contrast(c, base), 2) for k, c in colours.items() if contrast(c, base) < 4.5}
    assert not low, low
    assert colours["h"] != colours["c"]


def test_choice_dialog_does_not_end_its_detail_with_a_dangling_command_line_option(qtbot):
    """silero-vad asked 'holds 2 LSTMs (…); pick one with prefix=' with nothing after the '=':
    the readers end the line for the command line, which appends the choices; the dialog
    lists them and says the option on its own line."""
    from pathlib import Path

    import lstmviz
    from lstmviz.gui.choice_dialog import ChoiceDialog
    from lstmviz.io.errors import ChoiceRequired

    path = Path(__file__).resolve().parents[1] / "fixtures" / "onnx" / "if_branches.onnx"
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path)
    assert str(info.value).rstrip().endswith("prefix=")  # what the reader says
    dialog = ChoiceDialog(info.value)
    qtbot.addWidget(dialog)
    text = dialog.detail.text()
    assert "2 separate LSTM stacks" in text and not text.rstrip().endswith("="), text
    assert "pick one with" not in text


def test_unit_numbers_along_a_matrix_keep_a_gap_between_them(qtbot):
    """silero-vad's W_h (128 columns in ~215 px at 1920 × 1080) printed '90100' with the two
    numbers 2 px apart; numbers closer than a few pixels are left out instead."""
    import pyqtgraph as pg

    from lstmviz.gui.gate_heatmap import IndexAxis

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = widget.addPlot(axisItems={"bottom": IndexAxis("bottom")})
    plot.setXRange(0, 128, padding=0)
    plot.setYRange(0, 10, padding=0)
    widget.show()
    qtbot.waitExposed(widget)
    for width in range(240, 460, 10):  # 128 columns in 200 to 410 px
        widget.resize(width, 200)
        qtbot.wait(10)
        rects = _text_rects(plot.getAxis("bottom"))
        assert len(rects) >= 2, (width, len(rects))
        gaps = [b.left() - a.right() for a, b in itertools.pairwise(rects)]
        assert min(gaps) >= 4, (width, gaps)
