"""The unit-set view on a bounded trace (a run kept as checkpoints every 16 steps): zoomed
out it draws the overview's per-block min/max of the selected units, zoomed in their exact
values recomputed in the worker; every drawn number is the full trace's of the same model and
sequence, and while values compute the view says so and shows nothing of another run or set."""

from __future__ import annotations

import html
import threading

import numpy as np
import pytest
from long_sequence_setup import random_lstm

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core.checkpointed_trace import BoundedTrace
from lstmviz.gui import unit_set_lazy
from lstmviz.gui.long_plots import envelope_columns
from lstmviz.gui.text_layout import levels_for

T, D, H = 6000, 3, 8


def _model(rng: np.random.Generator) -> LSTMModel:
    return LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),
                      LSTMLayer("lstm_1", (random_lstm(rng, H, H),))))  # fmt: skip


@pytest.fixture
def bounded(make_main_window, monkeypatch, qtbot):
    """``(window, view, full, x)``: the Select and match dock on a bounded run of ``T`` steps
    (recomputed in a worker, as at 10⁶ steps) and the full trace of the same run."""
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")
    rng = np.random.default_rng(8)
    model = _model(rng)
    x = rng.normal(size=(T, D)).astype(np.float32)
    window = make_main_window()
    window.runner.inline_cost = 0
    window.set_model(model)
    window.explore_dock.show()
    assert window.set_sequence(x)
    ws = window.workspace
    ws.ensure_trace()
    qtbot.waitUntil(lambda: isinstance(ws.trace, BoundedTrace), timeout=30_000)
    assert ws.trace.K == 16 and ws.trace.overview_block == 16
    full = run(model, x, engine=ws.trace.engine, trace="full")
    return window, window.explore_panel.unit_set_view, full, x


def _block_minmax(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(0, len(values), block)
    return np.minimum.reduceat(values, idx), np.maximum.reduceat(values, idx)


def _overview_rank(values: np.ndarray, units: list[int], block: int) -> list[int]:
    lo, hi = _block_minmax(values[:, units].astype(np.float64), block)
    means = ((lo + hi) / 2).mean(axis=0)  # T is a whole number of blocks
    return [units[k] for k in np.argsort(-means, kind="stable")]


def _title(plot) -> str:
    """The whole title (a narrow dock elides what it shows)."""
    return html.unescape(plot._fit_title[0])


def _zoom(view, qtbot, a: int, b: int) -> None:
    view.line_plot.setXRange(a - 0.5, b - 0.5, padding=0)
    qtbot.wait(60)  # the envelope's 30 ms redraw


def _exact_matches(view, values: np.ndarray) -> tuple[int, int]:
    a, b = view.steps
    for k, u in enumerate(view.rows):
        t, y = view.line_data(k)
        np.testing.assert_array_equal(t, np.arange(a, b))
        np.testing.assert_array_equal(y, values[a:b, u])
    np.testing.assert_array_equal(view.image.image, values[a:b][:, view.rows].T[::-1])
    return a, b


def test_zoomed_out_overview_and_zoomed_in_exact_values_are_the_full_traces(
    bounded, qtbot, save_artifact, monkeypatch
):
    window, view, full, _x = bounded
    computed = []  # the steps each job recomputes
    real = unit_set_lazy.window_values

    def spy(values, rows, a, b, job):
        computed.append((a, b))
        return real(values, rows, a, b, job)

    monkeypatch.setattr(unit_set_lazy, "window_values", spy)
    ws, selection = window.workspace, window.explore.selection
    selection.set_quantity("c")
    selection.set_units([1, 4, 6])
    c = full.layers[0].directions[0].c
    qtbot.waitUntil(lambda: len(view.rows) == 3 and not view.empty, timeout=5000)
    # zoomed out: nothing recomputed, the overview drawn
    assert view.steps is None and view.values is None and not view.computing
    assert view.rows == _overview_rank(c, [1, 4, 6], 16)
    assert "by the overview: mean of (min + max)/2" in _title(view.heat_plot)
    assert "min/max per 16 steps" in _title(view.line_plot)
    lo, hi = _block_minmax(c, 16)
    peak = np.where(np.abs(lo) > np.abs(hi), lo, hi)
    np.testing.assert_array_equal(view.image.image, peak[:, view.rows].T[::-1])
    assert tuple(view.image.levels) == pytest.approx(levels_for("c", c))
    mm = ws.trace.layers[0].directions[0].overview["c"].columns(view.rows)
    starts, stops, _lo, _hi = envelope_columns(mm, T, 0, (0, T))
    for k, u in enumerate(view.rows):
        t, y = view.line_data(k)
        np.testing.assert_array_equal(t[0::2], (starts + stops - 1) / 2)
        band = np.sort(y.reshape(-1, 2), axis=1)  # each column: its min and max in some order
        want = [(c[s:e, u].min(), c[s:e, u].max()) for s, e in zip(starts, stops, strict=True)]
        np.testing.assert_array_equal(band, np.array(want, dtype=np.float64))

    # zoomed in: exact values of the visible steps (and a margin), recomputed in the worker
    _zoom(view, qtbot, 1000, 1400)
    qtbot.waitUntil(lambda: view.steps is not None, timeout=30_000)
    a, b = _exact_matches(view, c)
    assert a <= 1000 and b >= 1400 and b - a <= unit_set_lazy.EXACT_STEPS
    assert f"exact, steps {a:,}" in _title(view.line_plot)
    save_artifact(window.explore_dock, "unit_set_bounded_exact")
    _zoom(view, qtbot, 1100, 1300)  # inside what is known: nothing asked
    assert view.steps == (a, b) and not view.computing
    assert len(computed) == 1
    _zoom(view, qtbot, b - 100, b + 300)  # a pan: only the steps it brings in are computed
    qtbot.waitUntil(lambda: view.steps is not None and view.steps[1] >= b + 300, timeout=30_000)
    assert len(computed) == 2 and computed[1][0] == b
    _exact_matches(view, c)

    # the step cursor and the selected span are in steps, on both plots
    ws.go_to_step(1234)
    assert [cur.value() for cur in view.cursors] == [1234, 1234]
    selection.set_span(1200, 1250)
    assert view.regions[1].getRegion() == pytest.approx((1199.5, 1249.5))
    view.regions[0].setRegion((1209.5, 1219.5))
    view.regions[0].sigRegionChangeFinished.emit(view.regions[0])
    assert selection.span == (1210, 1220)

    # the layer above recomputes through the one below: still the full trace's bits
    ws.select(layer=1)
    qtbot.waitUntil(lambda: view.steps is not None, timeout=30_000)
    _exact_matches(view, full.layers[1].directions[0].c)
    # zoomed out again: the overview, no exact values
    _zoom(view, qtbot, 0, T)
    assert view.steps is None and "exact at ≤ 4,000" in _title(view.line_plot)


def test_computing_is_said_and_nothing_stale_is_shown(bounded, monkeypatch, qtbot):
    window, view, full, x = bounded
    ws, selection = window.workspace, window.explore.selection
    gate, calls = threading.Event(), []
    real = unit_set_lazy.window_values

    def held(values, rows, a, b, job):  # the worker waits until the test lets it go
        calls.append(list(rows))
        assert gate.wait(20)
        return real(values, rows, a, b, job)

    monkeypatch.setattr(unit_set_lazy, "window_values", held)
    h = full.layers[0].directions[0].h
    selection.set_units([1, 4, 6])
    _zoom(view, qtbot, 2000, 2300)
    qtbot.waitUntil(lambda: view.computing and bool(calls), timeout=5000)
    assert "computing steps 2,000–2,299…" in _title(view.line_plot)
    assert view.values is None and view.steps is None  # meanwhile the overview's bands
    assert len(view.line_data(0)[0]) < 300 * 2

    # another set while that one computes: its job is dropped, the new set's asked for
    selection.set_units([2, 3])
    assert view.rows == _overview_rank(h, [2, 3], 16) and view.values is None
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=5000)
    assert sorted(calls[1]) == [2, 3] and view.computing
    assert "computing" in _title(view.line_plot)
    gate.set()
    qtbot.waitUntil(lambda: view.steps is not None and not view.computing, timeout=30_000)
    qtbot.wait(50)  # the first job's late result has arrived too, and is not drawn
    assert sorted(view.rows) == [2, 3] and view._drawn == 2
    _exact_matches(view, h)

    # another quantity: the overview of f at once, f's exact values when they come
    selection.set_quantity("f")
    assert view.values is None and tuple(view.image.levels) == (0.0, 1.0)
    f = full.layers[0].directions[0].f
    lo, hi = _block_minmax(f, 16)
    peak = np.where(np.abs(lo) > np.abs(hi), lo, hi)
    np.testing.assert_array_equal(view.image.image, peak[:, view.rows].T[::-1])
    qtbot.waitUntil(lambda: view.steps is not None, timeout=30_000)
    _exact_matches(view, f)

    # no units, then units again: the run is shown whole (not the empty frame's 0-1)
    selection.set_units([])
    assert view.empty and view.values is None and not view.computing
    selection.set_units([2, 3])
    assert view.line_plot.viewRange()[0] == pytest.approx([-0.5, T - 0.5], abs=1e-6)
    assert view.steps is None

    # a new sequence: the old run's values go at once; the new run's come from its own trace
    gate.clear()
    x2 = x[::-1].copy()
    assert window.set_sequence(x2)
    assert view.values is None and view.empty and not view.computing
    assert "Computing the run" in view.empty_text.textItem.toPlainText()
    qtbot.waitUntil(lambda: isinstance(ws.trace, BoundedTrace) and ws.trace.x.shape == x2.shape
                    and np.array_equal(ws.trace.x, x2), timeout=30_000)  # fmt: skip
    qtbot.waitUntil(lambda: not view.empty, timeout=5000)
    full2 = run(ws.model, x2, engine=ws.trace.engine, trace="full")
    f2 = full2.layers[0].directions[0].f
    lo, hi = _block_minmax(f2, 16)
    peak = np.where(np.abs(lo) > np.abs(hi), lo, hi)
    np.testing.assert_array_equal(view.image.image, peak[:, view.rows].T[::-1])
    assert view.steps is None  # a new run is shown whole
    gate.set()
