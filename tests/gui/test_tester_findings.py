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
