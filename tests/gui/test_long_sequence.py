"""A sequence long enough for the window to keep a bounded trace: every view shows the values
of the full trace (computed here apart with ``trace="full"``), steps and jumps recompute only
a chunk, time plots draw envelopes and the exact values when zoomed in, breakpoints and
diagnostics stream."""

from __future__ import annotations

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm

from lstmviz.core import GRUDirection, LSTMLayer, LSTMModel, run
from lstmviz.core import diagnostics as diag
from lstmviz.core.checkpointed_trace import BoundedTrace

T, D, H = 6000, 3, 10


def _model() -> LSTMModel:
    rng = np.random.default_rng(5)
    lstm = random_lstm(rng, H, D)
    gru = GRUDirection(rng.normal(0, 0.5, (3 * H, H)), rng.normal(0, 0.5, (3 * H, H)),
                       rng.normal(0, 0.2, 3 * H), rng.normal(0, 0.2, 3 * H))  # fmt: skip
    return LSTMModel((LSTMLayer("lstm", (lstm,)), LSTMLayer("gru", (gru,), kind="GRU")))


@pytest.fixture
def bounded_window(make_main_window, monkeypatch, qtbot):
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "1000000")  # this run is ~4 MB in full
    from lstmviz.core import trace_windows

    # a whole-run read of h (6,000 × 10 floats) is over this budget, as any whole-run read
    # of 10⁶ steps is over the real one; reads of a range of steps are not
    monkeypatch.setattr(trace_windows, "MAX_MATERIALIZE_BYTES", 200_000)
    model = _model()
    x = np.random.default_rng(2).normal(size=(T, D)).astype(np.float32)
    window, panel = debugger_window(make_main_window, qtbot, model, x)
    # the full trace on the engine the window's run used (numpy until numba has compiled)
    return window, panel, run(model, x, engine=panel.trace.engine, trace="full")


def test_every_view_shows_the_full_traces_values(bounded_window, qtbot) -> None:
    window, panel, full = bounded_window
    trace = panel.trace
    assert isinstance(trace, BoundedTrace)
    for layer, t, u in ((0, 4321, 3), (1, 17, 7), (1, T - 1, 0)):
        window.go_to_step(t)
        panel.workspace.select(layer=layer, unit=u)
        dt, ft = trace.layers[layer].directions[0], full.layers[layer].directions[0]
        view = panel.step_view
        for name in view.row_names:
            expected = ft.m[t] if (name == "h" and hasattr(ft, "m")) else ft.value(name)[t]
            np.testing.assert_array_equal(view.images[name].image[0], expected, err_msg=name)
        for gate in dt.cell.gate_names:
            np.testing.assert_array_equal(view.term_rows(gate)[-1], ft.gate_pre(gate)[t])
        lines = panel.unit_inspector.lines()
        assert lines[-1].startswith("h = ") and lines[-1].endswith(f"{ft.h[t, u]:.3f}")
        g = dt.cell.gate_names[0]
        assert any(line.endswith(f"= {ft.gate(g)[t, u]:.3f}") for line in lines)


def test_no_view_reads_the_whole_run_at_once(bounded_window, qtbot) -> None:
    """Opening, stepping, jumping and showing every tab read ranges of steps only (the
    step view's colour levels once read all of z_h, which stopped a 10⁵-step run)."""
    window, panel, full = bounded_window
    for k in range(panel.views.count()):
        panel.views.setCurrentIndex(k)
        for t in (T - 1, 3, T // 2):
            window.go_to_step(t)
            qtbot.wait(40)
            assert window.last_error == "" and panel.trace.n_steps == T
    np.testing.assert_array_equal(
        panel.step_view.images["h"].image[0], full.layers[0].directions[0].h[T // 2]
    )


def test_time_plots_draw_envelopes_and_exact_values_zoomed_in(bounded_window, qtbot) -> None:
    _window, panel, full = bounded_window
    trace = panel.trace
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)
    panel.workspace.select(layer=0, unit=4)
    f = full.layers[0].directions[0].f[:, 4]
    line = tp.gate_lines["f"]
    from lstmviz.gui.long_plots import MAX_COLUMNS

    # zoomed out: each column's min and max, a band of vertical strokes (blocks merged to at
    # most MAX_COLUMNS; the pairs alternate lo, hi / hi, lo to join along top and bottom)
    n_blocks = -(-T // trace.overview_block)
    B = trace.overview_block * -(-n_blocks // MAX_COLUMNS)
    n = -(-T // B)
    assert len(line.yData) == 2 * n
    y = line.yData
    lo, hi = np.minimum(y[0::2], y[1::2]), np.maximum(y[0::2], y[1::2])
    np.testing.assert_array_equal(lo, [f[b * B : (b + 1) * B].min() for b in range(n)])
    np.testing.assert_array_equal(hi, [f[b * B : (b + 1) * B].max() for b in range(n)])
    # zoomed in: the exact values of the visible steps
    tp._plots[0].setXRange(3000, 3200, padding=0)
    qtbot.waitUntil(lambda: len(tp.gate_lines["f"].yData) < 2 * n, timeout=5_000)
    x, y = tp.gate_lines["f"].xData.astype(int), tp.gate_lines["f"].yData
    assert x[0] <= 3000 and x[-1] >= 3200
    np.testing.assert_array_equal(y, f[x])
    h = tp.state_lines["h"]
    np.testing.assert_array_equal(h.yData, full.layers[0].directions[0].h[h.xData.astype(int), 4])


def test_breakpoints_and_diagnostics_stream(bounded_window, qtbot) -> None:
    _window, panel, full = bounded_window
    ws = panel.workspace
    # below the 6th lowest forget gate of unit 2: fires at a handful of steps
    thr = float(np.sort(full.layers[0].directions[0].f[:, 2])[5]) + 1e-7
    text = f"any f < {thr!r} in unit 2"
    ws.add_breakpoint(text)
    dbg = ws.debugger
    from lstmviz.core.debugger import Debugger

    ref = Debugger(full)
    ref.add_breakpoint(text)
    for _ in range(3):
        hits = dbg.run_to_breakpoint()
        assert hits == ref.run_to_breakpoint()
        assert ws.step == ref.step
    assert ref.step < T - 1  # it fired
    # F5 in the window: the scan runs as a job, then the cursor and the hit follow
    ws.go_to_step(0)
    ref.go_to(0)
    expected = ref.run_to_breakpoint()
    ws.run_to_breakpoint(True)
    qtbot.waitUntil(lambda: "scan" not in ws.jobs and ws.step == ref.step, timeout=20_000)
    assert ws.debugger.hits == expected
    assert "F5 scans" in panel.breakpoint_editor.list.item(0).text()
    reports = diag.report(panel.trace)
    for a, b in zip(reports, diag.report(full), strict=True):
        np.testing.assert_array_equal(a.saturation, b.saturation)
    page = panel.diagnostics_page
    panel.views.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.currentIndex() == 1 and page.shown is not None, timeout=20_000)
    np.testing.assert_array_equal(
        page.view.product, diag.forget_product(full.layers[ws.selection.layer].directions[0])
    )
