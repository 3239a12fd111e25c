"""A typed jump to any step of a long run: the step box beside the slider (Ctrl+G), found
missing when a user opened 10⁶ steps in a real window (a slider pixel was ~1,000 steps, a
key one step, and ``--step`` only worked from the command line)."""

from __future__ import annotations

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtCore import Qt

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core.checkpointed_trace import BoundedTrace

T, D, H = 6000, 3, 8


@pytest.fixture
def bounded_window(make_main_window, monkeypatch, qtbot):
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")  # this run is ~1.5 MB in full
    rng = np.random.default_rng(11)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    x = rng.normal(size=(T, D)).astype(np.float32)
    window, panel = debugger_window(make_main_window, qtbot, model, x)
    assert isinstance(panel.trace, BoundedTrace)
    return window, panel, run(model, x, engine=panel.trace.engine, trace="full")


def _type_step(qtbot, box, text: str) -> None:
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)


def test_a_typed_step_jumps_there_and_shows_its_values(bounded_window, qtbot) -> None:
    _window, panel, full = bounded_window
    box = panel.controls.step_box
    assert box.maximum() == T - 1 and box.value() == 0
    panel.activateWindow()
    qtbot.keyClick(panel.step_view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    _type_step(qtbot, box, "4321")
    assert panel.current_step == 4321
    assert panel.controls.step_label.text() == f"step 4321 of 0–{T - 1}"
    assert panel.controls.slider.value() == 4321
    h = panel.step_view.images["h"].image[0]
    np.testing.assert_array_equal(h, full.layers[0].directions[0].h[4321])
    # after Enter the arrow keys step again (they moved the text cursor in the box)
    assert not box.hasFocus()
    qtbot.keyClick(panel.focusWidget(), Qt.Key.Key_Right)
    assert panel.current_step == 4322 and box.value() == 4322


def test_the_box_follows_every_other_way_of_stepping(bounded_window, qtbot) -> None:
    window, panel, _full = bounded_window
    box = panel.controls.step_box
    window.go_to_step(5000)
    assert box.value() == 5000
    panel.step_view.setFocus()
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Right)
    assert panel.current_step == 5001 and box.value() == 5001
    qtbot.keyClick(panel.step_view, Qt.Key.Key_End)
    assert box.value() == T - 1
    # while a number is being typed, a step from elsewhere does not overwrite it
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "12")
    window.go_to_step(7)
    assert box.lineEdit().text().endswith("12") and panel.current_step == 7
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert panel.current_step == 12
    window.go_to_step(30)  # after Enter the box follows again
    assert box.value() == 30


def test_the_box_rests_while_a_new_run_computes(bounded_window, qtbot) -> None:
    window, panel, _full = bounded_window
    ws, box = panel.workspace, panel.controls.step_box
    window.runner.inline_cost = 0  # in a worker, as a long run is
    longer = np.random.default_rng(4).normal(size=(2 * T, D)).astype(np.float32)
    assert window.set_sequence(longer)
    assert "run" in ws.jobs and not box.isEnabled()
    qtbot.waitUntil(lambda: ws.trace.n_steps == 2 * T and not ws.jobs, timeout=30_000)
    assert box.isEnabled() and box.maximum() == 2 * T - 1
