"""Views of a long run (issue 17's freezes): a step moves only the time plots' cursor (their
curves are painted once and kept), and the inspector reads a bounded trace's lazy arrays as
it reads a full trace's (no "projection" wording on a model without projection)."""

from __future__ import annotations

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtWidgets import QGraphicsItem

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core.checkpointed_trace import BoundedTrace
from lstmviz.core.equations import explain

T, D, H = 3000, 3, 6


def _model() -> LSTMModel:
    rng = np.random.default_rng(11)
    return LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))


def test_inspector_text_of_a_bounded_trace_is_the_full_traces() -> None:
    model = _model()
    x = np.random.default_rng(3).normal(size=(40, D)).astype(np.float32)
    bounded = run(model, x, trace="bounded")
    full = run(model, x, trace="full", engine=bounded.engine)
    assert isinstance(bounded, BoundedTrace) and not isinstance(full, BoundedTrace)
    bd, fd = bounded.layers[0].directions[0], full.layers[0].directions[0]
    for t in (0, 1, 17, 39):
        for u in range(H):
            lines = explain(bd, t, u)
            assert lines == explain(fd, t, u)
            assert not any("projection" in line for _, line in lines), lines
    c_line = next(line for gate, line in explain(bd, 17, 2) if line.startswith("c = "))
    assert c_line.endswith(f"= {fd.c[17, 2]:.3f}") and "·" in c_line.split(" = ")[2]


@pytest.fixture
def long_window(make_main_window, monkeypatch, qtbot):
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "1000")  # any run is bounded
    model = _model()
    x = np.random.default_rng(2).normal(size=(T, D)).astype(np.float32)
    return debugger_window(make_main_window, qtbot, model, x)


def test_a_step_moves_the_cursor_and_redraws_no_curve(long_window, qtbot, monkeypatch) -> None:
    window, panel = long_window
    assert isinstance(panel.trace, BoundedTrace)
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)
    qtbot.waitUntil(lambda: bool(tp.gate_lines), timeout=10_000)
    curves = [*tp.gate_lines.values(), *tp.state_lines.values(), *tp.input_plot.lines]
    assert curves
    cache = QGraphicsItem.CacheMode.DeviceCoordinateCache
    assert all(line.curve.cacheMode() == cache for line in curves)
    # the first paint and the refiner's range check (a 30 ms timer) are done, under load too
    qtbot.wait(200)
    qtbot.waitUntil(lambda: not tp._refiner._timer.isActive(), timeout=10_000)
    calls: list[object] = []
    for line in curves:
        monkeypatch.setattr(line, "setData", lambda *a, _l=line, **k: calls.append(_l))
        monkeypatch.setattr(line.curve, "setData", lambda *a, _l=line, **k: calls.append(_l))
    for t in (1, 2, T - 1, 0, T // 2):
        window.go_to_step(t)
        qtbot.wait(5)
        assert all(c.value() == t for c in tp._cursors)
    assert calls == []


def test_while_a_new_run_computes_the_range_says_computing(long_window, qtbot) -> None:
    window, panel = long_window
    ws, c = panel.workspace, panel.controls
    window.go_to_step(49)
    assert c.step_label.text() == f"step 49 of 0–{T - 1}" and c.slider.isEnabled()
    window.runner.inline_cost = 0  # in a worker, as a long run is
    longer = np.random.default_rng(4).normal(size=(2 * T, D)).astype(np.float32)
    assert window.set_sequence(longer)
    assert "run" in ws.jobs and ws.trace.n_steps == T  # the previous run is still shown
    assert c.step_label.text() == f"computing {2 * T} steps…"
    assert not c.slider.isEnabled()
    window.go_to_step(50)  # a step meanwhile does not bring the old range back
    assert c.step_label.text() == f"computing {2 * T} steps…"
    qtbot.waitUntil(lambda: ws.trace.n_steps == 2 * T and not ws.jobs, timeout=30_000)
    assert c.step_label.text() == f"step {ws.step} of 0–{2 * T - 1}"
    assert c.slider.isEnabled() and c.slider.maximum() == 2 * T - 1


def test_a_long_full_trace_is_drawn_as_envelopes_like_a_bounded_one(
    make_main_window, monkeypatch, qtbot
) -> None:
    from lstmviz.gui.long_plots import EXACT_STEPS, MAX_COLUMNS

    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", str(10**10))  # a full trace
    n = 3 * EXACT_STEPS
    model = _model()
    x = np.random.default_rng(6).normal(size=(n, D)).astype(np.float32)
    _window, panel = debugger_window(make_main_window, qtbot, model, x)
    assert not isinstance(panel.trace, BoundedTrace)
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)
    panel.workspace.select(layer=0, unit=2)
    qtbot.waitUntil(lambda: bool(tp.gate_lines), timeout=10_000)
    assert tp.gate_lines["f"].curve.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
    f = panel.trace.layers[0].directions[0].f[:, 2]
    line = tp.gate_lines["f"]
    block = -(-n // MAX_COLUMNS)
    assert len(line.yData) == 2 * -(-n // block)  # one min and one max per column
    starts = range(0, n, block)
    y, y_in = line.yData, tp.input_plot.lines[0].yData  # pairs: lo, hi / hi, lo in turn
    lo, hi = np.minimum(y[0::2], y[1::2]), np.maximum(y[0::2], y[1::2])
    np.testing.assert_array_equal(lo, [f[a : a + block].min() for a in starts])
    np.testing.assert_array_equal(hi, [f[a : a + block].max() for a in starts])
    x_max = [x[a : a + block, 0].max() for a in starts]
    np.testing.assert_array_equal(np.maximum(y_in[0::2], y_in[1::2]), x_max)
    tp._plots[0].setXRange(100, 300, padding=0)  # zoomed in: the exact values
    qtbot.waitUntil(lambda: len(line.yData) < 400, timeout=5_000)
    # exact values are not kept in a device pixmap (it kept stale pixels after a zoom)
    assert line.curve.cacheMode() == QGraphicsItem.CacheMode.NoCache
    a = int(line.xData[0])
    np.testing.assert_array_equal(line.yData, f[a : a + len(line.yData)])
