"""What a new user runs into first: keys after clicking a tab, honest labels, feedback when
nothing happens, small models, small screens and dark themes. Each test drives the window
with clicks, keys and signals and checks what is shown against the model or the trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_factories import keras_like
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.resources import default_model_path, default_sequence_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def bundled(make_main_window, size=(1400, 900)):
    window = make_main_window(size)
    assert window.open_model(default_model_path(), wait=True) is not None, window.last_error
    assert window.open_sequence(default_sequence_path())
    return window


def click_main_tab(window, index: int) -> None:
    bar = window.tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())


def test_step_keys_work_right_after_clicking_the_debugger_tab(make_main_window, qtbot):
    window = bundled(make_main_window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # shortcuts only reach the active window
    click_main_tab(window, 1)  # the click leaves Qt's focus on the tab bar
    panel = window.debug_panel
    trace = panel.trace
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Right)
    assert panel.current_step == 1
    np.testing.assert_array_equal(
        panel.step_view.images["f"].image[0], trace.layers[0].directions[0].f[1]
    )
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_End)
    assert panel.current_step == trace.n_steps - 1
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Home)
    assert panel.current_step == 0


def test_run_to_breakpoint_says_when_nothing_fires_and_names_the_hit_step(make_main_window, qtbot):
    window = bundled(make_main_window)
    window.tabs.setCurrentIndex(1)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    panel = window.debug_panel
    panel.run_to_breakpoint(True)
    assert panel.hit_banner.isVisible() and "No breakpoints are set" in panel.hit_banner.text()
    panel.go_to_step(0)
    assert not panel.hit_banner.isVisible()  # the notice belonged to the previous move
    # "any f" looks at every layer and direction
    f = np.concatenate([d.f for layer in panel.trace.layers for d in layer.directions], axis=1)
    threshold = round(float(np.median(f.min(axis=1))), 3)  # fires on about half the steps
    first = int(np.flatnonzero((f[1:] < threshold).any(axis=1))[0]) + 1
    panel.breakpoint_editor.entry.setText(f"any f < {threshold}")
    assert panel.breakpoint_editor.add_from_entry()
    QTest.keyClick(panel, Qt.Key.Key_F5)
    assert panel.current_step == first
    assert f"Breakpoint hit at step {first}" in panel.hit_banner.text()
    panel.go_to_step(panel.trace.n_steps - 1)
    never = panel.trace.n_steps - 1
    panel.run_to_breakpoint(True)
    assert f"No breakpoint fires after step {never}" in panel.hit_banner.text()


def test_the_network_output_is_the_dense_head_not_the_last_lstm(make_main_window):
    window = bundled(make_main_window)
    window.tabs.setCurrentIndex(1)
    tp = window.debug_panel.time_plots
    window.debug_panel.views.setCurrentWidget(tp)  # its plots are built when it is shown
    plots = tp._layer_plots
    last = plots[-1].plot._fit_title[0]  # the whole title (the drawn one is elided to fit)
    assert "network output" not in last and "(last LSTM)" in last
    head = tp.output_plot.plot._fit_title[0]
    assert "network output" in head and "head (Dense, linear)" in head  # the example's head
    trace = window.debug_panel.trace
    y = tp.output_plot.lines[0].yData
    np.testing.assert_allclose(y, trace.head_output[:, 0])
    tree = "\n".join(window.tree.texts())
    assert "head: run" in tree
    # every line series is keyed in its title, so no legend box covers the data
    assert all(p.plot.legend is None for p in [*plots, tp.output_plot])


def test_tf1_bidirectional_cells_are_one_layer_not_a_greyed_missing_lstm(make_main_window):
    window = make_main_window()
    model = window.open_model(FIXTURES / "tf1" / "bidi", wait=True)
    assert model is not None, window.last_error
    texts = window.tree.texts()
    assert not any("not loaded" in t for t in texts), texts
    assert any(t.strip().startswith("forward") for t in texts)
    assert any(t.strip().startswith("backward") for t in texts)


def tiny_model(H: int = 3, D: int = 2) -> LSTMModel:
    rng = np.random.default_rng(7)
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )
    return LSTMModel((LSTMLayer("tiny", (w,)),))


def test_unit_axes_of_a_three_unit_layer_tick_whole_units_only(make_main_window):
    window = make_main_window()
    window.set_model(tiny_model())
    window.tabs.setCurrentIndex(1)
    panel = window.debug_panel
    panel.views.setCurrentIndex(2)  # diagnostics: saturation per unit
    for plot in (panel.step_view.states, panel.diagnostics_view.sat_plot):
        axis = plot.getAxis("bottom")
        lo, hi = plot.vb.viewRange()[0]
        ticks = [v for _, values in axis.tickValues(lo, hi, axis.width()) for v in values]
        assert ticks and all(float(v).is_integer() for v in ticks), ticks
        assert set(ticks) <= {0.0, 1.0, 2.0}


def test_step_view_fits_a_1280_by_800_screen(make_main_window):
    window = bundled(make_main_window, size=(1280, 800))
    window.tabs.setCurrentIndex(1)
    view = window.debug_panel.step_view
    QApplication.processEvents()  # let the splitter give the views their width
    # the scene must not be wider than the widget, or its right side is cut off
    assert view.ci.minimumWidth() <= view.viewport().width()
    assert view.ci.geometry().width() <= view.viewport().width() + 1


def test_hovered_weight_readout_stays_readable_in_a_dark_theme(make_main_window):
    dark = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#2b2b2b"),
        (QPalette.ColorRole.Base, "#1e1e1e"),
        (QPalette.ColorRole.AlternateBase, "#303030"),
        (QPalette.ColorRole.Text, "#e8e8e8"),
        (QPalette.ColorRole.WindowText, "#e8e8e8"),
    ):
        dark.setColor(role, QColor(colour))
    app = QApplication.instance()
    light = app.palette()
    app.setPalette(dark)  # how a desktop's dark theme arrives: before the window exists
    try:
        window = make_main_window()
        window.set_model(keras_like()[0])
        image = window.details.cell_label.grab().toImage()
    finally:
        app.setPalette(light)
    background = QColor(image.pixel(2, 2))
    assert background.lightness() < 100  # light text needs a dark field, not a fixed #f4f4f4


def test_a_bad_sequence_file_on_the_debugger_tab_is_explained_next_to_the_editor(
    make_main_window, tmp_path
):
    window = bundled(make_main_window)
    window.tabs.setCurrentIndex(1)
    panel = window.debug_panel
    before = panel.trace
    wide = tmp_path / "wide.csv"
    np.savetxt(wide, np.ones((4, 3)), delimiter=",")
    assert not window.open_sequence(wide)
    assert window.error_box is None  # no modal box over the debugger
    assert "wide.csv" in panel.sequence_editor.message.text()
    assert "previous sequence is kept" in panel.sequence_editor.message.text()
    assert panel.trace is before and "wide.csv" in window.status_label.text()


def test_token_tab_is_offered_for_embedding_models_and_left_for_others(make_main_window):
    window = make_main_window()
    window.open_model(FIXTURES / "keras" / "embedding_weights.h5", wait=True)
    window.tabs.setCurrentIndex(1)
    editor = window.debug_panel.sequence_editor
    assert editor.tabs.currentIndex() == editor.tokens_index
    window.set_model(keras_like()[0])
    assert editor.tabs.currentIndex() == 0  # "Type", not the h0/c0 page next to Tokens


def test_long_weights_caption_is_elided_with_the_whole_text_as_tooltip(make_main_window):
    window = make_main_window(size=(1000, 700))
    window.set_model(keras_like()[0])
    caption = window.weights_view.caption
    full = caption.text()
    assert "stored as i,f,c,o" in full and caption.toolTip() == full
    shown = super(type(caption), caption).text()  # what QLabel paints
    assert caption.fontMetrics().horizontalAdvance(shown) <= caption.width()
    assert shown.endswith("…") or shown == full


def test_command_line_layer_and_step_out_of_range_are_said_not_silently_clamped(
    make_main_window, capsys
):
    import argparse

    from lstmviz.gui.app import open_from_args

    window = make_main_window()
    args = argparse.Namespace(path=None, sequence=None, layer=5, step=999)
    assert open_from_args(window, args, {})
    err = capsys.readouterr().err
    assert "--layer 5: the model has 2 LSTM layers (0–1)" in err
    last = window.debug_panel.trace.n_steps - 1
    assert f"--step 999: the sequence has steps 0–{last}; showing step {last}" in err
    assert window.selection == (1, 0) and window.debug_panel.current_step == last


def _anchor_colours(browser) -> list[QColor]:
    """Colours the unit inspector's links are drawn in (every anchor fragment)."""
    colours = []
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor():
                colours.append(fragment.charFormat().foreground().color())
            it += 1
        block = block.next()
    return colours


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_inspector_links_and_breakpoint_field_read_in_both_themes(
    make_main_window, app_theme, theme
):
    """Dark blue links on a dark inspector, and a near-black placeholder in a dark field."""
    from lstmviz.gui.plot_style import contrast

    app_theme(theme)
    window = bundled(make_main_window)
    window.tabs.setCurrentIndex(1)
    panel = window.debug_panel
    browser = panel.unit_inspector.browser
    base = browser.palette().color(QPalette.ColorRole.Base)
    links = _anchor_colours(browser)
    assert len(links) == 4  # show W_i, W_f, W_g, W_o
    assert all(contrast(c, base) >= 4.5 for c in links), [c.name() for c in links]
    entry = panel.breakpoint_editor.entry
    field = entry.palette().color(QPalette.ColorRole.Base)
    placeholder = entry.palette().color(QPalette.ColorRole.PlaceholderText)
    assert contrast(placeholder, field) >= 3.0, (placeholder.name(), field.name())
    assert contrast(entry.palette().color(QPalette.ColorRole.Text), field) >= 4.5
    window.grab().save(str(ARTIFACTS / f"user_paths_debugger_{theme}.png"))
