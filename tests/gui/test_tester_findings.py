"""Findings of a new-user test in a real window (Xvfb, fresh clone): each test failed before
its fix. Views built late (the debugger is lazy; the Text dock builds at start) must render
the workspace's current model, trace, step and selection in their constructors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz.gui.window_files import DEBUGGER_TAB

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GRU = FIXTURES / "gru" / "torch" / "gru_bidir2.pt"
MIXED = FIXTURES / "gru" / "tf" / "keras2" / "mixed.h5"
LSTM = Path(__file__).resolve().parents[2] / "resources" / "examples"


def _text_dock_first(make_main_window, qtbot, path):
    """The Text dock open at start (as restored from QSettings), then ``path`` opened; the
    text view runs the model before the debugger panel exists."""
    window = make_main_window()
    window.text_dock.show()
    qtbot.waitUntil(lambda: window._text_view is not None)
    assert window.open_model(str(path), wait=True) is not None
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=10000)
    return window


def test_debugger_built_after_the_text_dock_shows_the_gru_run(make_main_window, qtbot):
    window = _text_dock_first(make_main_window, qtbot, GRU)
    assert window._debug_panel is None or window._debug_panel.trace is not None
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    panel = window.debug_panel
    trace = window.workspace.trace
    dt = trace.layers[0].directions[0]
    view = panel.step_view
    assert view._dt is dt  # the run, not the empty LSTM defaults
    assert "n" in view.images and view.images["n"].image is not None
    np.testing.assert_array_equal(view.images["n"].image[0], dt.n[window.workspace.step])
    bars = view.gate_bar.getAxis("bottom").labelText
    assert "i, f" not in bars  # the LSTM's gate names on a GRU model
    assert panel.unit_inspector._dt is dt
    assert not panel.time_plots.isHidden() or panel.time_plots._stale or panel.time_plots._trace


def test_lstm_then_gru_with_the_text_dock(make_main_window, qtbot):
    window = _text_dock_first(make_main_window, qtbot, LSTM / "sine_lstm.keras")
    window.open_model(str(GRU), wait=True)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.workspace.trace.layers[0].layer.cell.name == "GRU")
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    view = window.debug_panel.step_view
    assert view._dt is window.workspace.trace.layers[0].directions[0]
    assert "r" in view.row_names and "i" not in view.row_names


def test_breakpoint_hint_follows_the_selected_layers_cell(make_main_window, qtbot):
    window = make_main_window()
    model = window.open_model(str(MIXED), wait=True)
    kinds = [layer.cell.name for layer in model.layers]
    gru = kinds.index("GRU")
    lstm = kinds.index("LSTM")
    editor = window.debug_panel.breakpoint_editor
    window.select_direction(gru, 0)
    assert "any f <" not in editor.examples.text()
    assert "any f <" not in editor.entry.placeholderText()
    window.select_direction(lstm, 0)
    assert "f" in editor.examples.text()


def test_compare_mode_with_the_text_dock_shows_model_as_rows(make_main_window, qtbot, tmp_path):
    """``lstmviz a.keras b.keras`` with the Text dock open: A's rows were empty (B's fine)."""
    window = _text_dock_first(make_main_window, qtbot, LSTM / "sine_lstm.keras")
    b = tmp_path / "b.keras"
    b.write_bytes((LSTM / "sine_lstm.keras").read_bytes())
    assert window.compare_with(b, wait=True)
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=10000)
    rows, _ = window.compare_debugger
    view = window.debug_panel.step_view
    dt = window.workspace.trace.layers[0].directions[0]
    assert view._dt is dt
    t = window.workspace.step
    np.testing.assert_array_equal(view.images["f"].image[0], dt.f[t])
    assert rows.active and rows.b_row("f") is not None


def _shown_title(plot) -> str:
    return getattr(plot, "_fit_title_shown", "")


def test_compare_title_and_rows_readable_beside_the_text_dock(make_main_window, qtbot, tmp_path):
    window = _text_dock_first(make_main_window, qtbot, LSTM / "sine_lstm.keras")
    b = tmp_path / "b.keras"
    b.write_bytes((LSTM / "sine_lstm.keras").read_bytes())
    assert window.compare_with(b, wait=True)
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    qtbot.waitUntil(lambda: window.compare_debugger[0].active, timeout=10000)
    view = window.debug_panel.step_view
    qtbot.wait(50)
    title = _shown_title(view.states)
    assert "B − A" in title and "…" not in title  # "rows A, B …" was cut before Δ
    # 21 rows of A, B, Δ get at least a 9-pixel line each (7 px beside the Text dock before)
    pitch = view.states.vb.height() / 21
    assert pitch >= 9, pitch


def test_gru_term_labels_whole(make_main_window, qtbot):
    from PySide6.QtGui import QFontMetricsF

    from lstmviz.gui import plot_style as ps

    window = make_main_window()
    window.open_model(str(GRU), wait=True)
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    qtbot.waitUntil(lambda: window.debug_panel.step_view._dt is not None, timeout=10000)
    axis = window.debug_panel.step_view.terms_plot.getAxis("left")
    metrics = QFontMetricsF(ps.small_font(8))
    labels = [str(t) for level in axis._tickLevels for _, t in level]
    assert any("r⊙(W_h·h_(t-1) + b_h)" in t for t in labels)
    for text in labels:  # "n: r⊙(W_h…1) + b_h)" at a fixed 130 px
        assert metrics.horizontalAdvance(text) + 10 <= axis.width(), text
    states = window.debug_panel.step_view.states.getAxis("left")
    assert states.width() == axis.width()  # the unit columns of both heatmaps line up


def test_long_run_step_text_has_room(make_main_window):
    window = make_main_window()
    controls = window.debug_panel.controls
    controls.set_steps(200_000)
    controls.show_step(199_999, 200_000)
    label = controls.step_label
    text_width = label.fontMetrics().horizontalAdvance(label.text())
    assert label.minimumWidth() >= text_width  # it ran into "layer"


def test_thin_bias_title_is_not_a_cut_number(make_main_window, qtbot, tmp_path):
    import torch

    path = tmp_path / "wide.pt"
    torch.save(torch.nn.LSTM(8, 1024).state_dict(), path)
    window = make_main_window()
    window.open_model(str(path), wait=True)
    qtbot.wait(50)
    titles = [_shown_title(h.plot) for h in window.weights_view.active]
    bias = [t for t in titles if t.startswith("b")]
    assert bias and bias[0] in ("b", "b 4096×1"), titles  # was "b 409…"


def test_model_tree_keeps_name_ends_and_tooltips_names(make_main_window):
    from PySide6.QtCore import Qt

    window = make_main_window()
    window.open_model(str(MIXED), wait=True)
    tree = window.tree
    assert tree.textElideMode() == Qt.TextElideMode.ElideLeft  # "…/vars/0" tells them apart
    for k in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(k)
        name = item.text(0).split(": ", 1)[-1]
        assert name in item.toolTip(0), (item.text(0), item.toolTip(0))


def test_text_dock_restored_from_settings_then_gru_debugger(make_main_window, qtbot, tmp_path):
    """The tester's path: View ▸ Text, quit (the dock state is saved), start on a GRU file
    (the layout restored before the model opens, as ``app.launch`` does), Debugger tab."""
    from lstmviz.gui.settings import AppSettings

    settings = AppSettings.at(tmp_path / "saved.ini")
    first = make_main_window(settings=settings)
    first.text_dock.show()
    first.close()  # saves geometry and dock state
    window = make_main_window(settings=AppSettings.at(tmp_path / "saved.ini"))
    geometry, state = window.settings.window_state()
    window.restore_layout(geometry, state)
    assert window.text_dock.isVisible()
    window.open_model(str(GRU), wait=True)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=10000)
    window.tabs.setCurrentIndex(DEBUGGER_TAB)
    view = window.debug_panel.step_view
    dt = window.workspace.trace.layers[0].directions[0]
    assert view._dt is dt and "z" in view.row_names
    assert window.debug_panel.unit_inspector._dt is dt
