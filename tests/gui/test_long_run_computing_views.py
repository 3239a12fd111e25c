"""While a long run computes, the views say so and show no numbers (found in a real window
opening 10⁶ steps: the unit inspector drew four diamonds at 0 under "Click a unit…", and the
Text dock said "Open a model to see its sequence as text" with the model open)."""

from __future__ import annotations

import numpy as np
from long_sequence_setup import debugger_window, random_lstm

from lstmviz.core import LSTMLayer, LSTMModel

T, D, H = 6000, 3, 8


def test_views_built_while_the_run_computes_show_no_values(
    make_main_window, monkeypatch, qtbot
) -> None:
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")
    rng = np.random.default_rng(8)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    window = make_main_window()
    window.runner.inline_cost = 0  # in a worker, as a long run is
    window.set_model(model)
    window.text_dock.show()
    assert window.set_sequence(rng.normal(size=(T, D)).astype(np.float32))
    ws = window.workspace
    assert ws.trace is None or ws.trace.n_steps != T
    # the debugger is built now, while the run computes (as when its tab is first clicked)
    window.tabs.setCurrentIndex(
        next(k for k in range(window.tabs.count()) if window.tabs.tabText(k) == "Debugger")
    )
    inspector = window.debug_panel.unit_inspector
    # no event was processed since set_sequence: the worker's result cannot be in yet
    assert "run" in ws.jobs and ws.trace is None
    assert inspector.header.text() == "computing…"
    assert not window.debug_panel.controls.step_box.isEnabled()  # no steps to go to yet
    assert len(inspector.sums.getData()[0]) == 0  # no diamonds at 0
    assert window.text_view.title.text() == f"{T:,} steps"
    ws.cancel("run")  # cancelled: the inspector does not go on saying computing
    assert inspector.header.text() == "not computed"
    assert window.debug_panel.computing.text().startswith("Not computed (cancelled)")
    window.debug_panel.go_to_step(0)  # a step runs it again
    assert "run" in ws.jobs and inspector.header.text() == "computing…"
    qtbot.waitUntil(lambda: ws.trace is not None and ws.trace.n_steps == T, timeout=30_000)
    qtbot.waitUntil(lambda: len(inspector.sums.getData()[0]) == 4, timeout=5_000)
    assert inspector.header.text().startswith("<b>")
    assert window.debug_panel.controls.step_box.isEnabled()
    # a bounded run: the text view colours the tokens on screen, computed in the worker
    tv = window.text_view
    assert tv.title.text().startswith("unit 0 of layer 0, colour")
    qtbot.waitUntil(lambda: bool(tv._lazy.known[0]) and tv.status.text() == "", timeout=30_000)


def test_a_new_sequence_computing_hides_the_previous_runs_numbers(
    make_main_window, monkeypatch, qtbot
) -> None:
    """Found with a 200,000-step run shown and a 25,000-step sequence generated: diagnostics
    of 200,000 steps and the inspector's "step 123456" stayed beside the new sequence."""
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")
    rng = np.random.default_rng(9)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    window, panel = debugger_window(make_main_window, qtbot, model, rng.normal(size=(T, D)))
    ws, inspector = panel.workspace, panel.unit_inspector
    window.go_to_step(4321)
    assert panel.center.currentIndex() == 0 and inspector.header.text().startswith("<b>")
    window.runner.inline_cost = 0  # in a worker, as a long run is
    assert window.set_sequence(rng.normal(size=(T // 2, D)).astype(np.float32))
    assert "run" in ws.jobs and ws.trace.n_steps == T  # the workspace keeps the old run
    assert panel.center.currentIndex() == 1
    assert panel.computing.text().startswith(f"Running the model on {T // 2} steps")
    assert inspector.header.text() == "computing…" and len(inspector.sums.getData()[0]) == 0
    ws.select(unit=3)  # a selection meanwhile does not draw the old run again
    assert inspector.header.text() == "computing…" and len(inspector.sums.getData()[0]) == 0
    assert inspector.plot.titleLabel.text == "pre-activation terms of this unit"  # no unit
    qtbot.waitUntil(lambda: ws.trace.n_steps == T // 2 and not ws.jobs, timeout=30_000)
    assert panel.center.currentIndex() == 0
    assert f"step {ws.step}" in inspector.header.text()
    assert len(inspector.sums.getData()[0]) == 4

    # cancelled: the previous run is not shown as if it were this sequence's
    assert window.set_sequence(rng.normal(size=(T, D)).astype(np.float32))
    ws.cancel("run")
    assert panel.center.currentIndex() == 1
    assert panel.computing.text().startswith("Not computed (cancelled)")
    assert window.set_sequence(ws.sequence)  # applied again: it runs
    qtbot.waitUntil(lambda: ws.trace.n_steps == T and not ws.jobs, timeout=30_000)
    assert panel.center.currentIndex() == 0
