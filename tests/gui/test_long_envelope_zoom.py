"""Zoomed in, but not yet to exact values: the envelope lines take the visible range's blocks.

Found in a real window on 10⁶ steps: zoomed to ~12,000 steps, the whole run's 600 envelope
columns (1,667 steps each) were stretched over the plot, each drawn as one diagonal from its
min to its max: seven plot-tall sawteeth where the data was a band of a 314-step sine.
"""

from __future__ import annotations

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core.checkpointed_trace import BoundedTrace
from lstmviz.gui import long_plots

T, D, H = 6000, 3, 6


def _columns(tp, line) -> list[tuple[int, int]]:
    """The envelope columns the line draws (empty when it draws exact values), checked
    to be the drawing of ``envelope_columns``: a band of vertical min-max strokes."""
    ref = tp._refiner
    _item, values, col = ref._lines[id(line)]
    if ref._exact is not None:
        return []
    span = ref._around
    starts, stops, lo, hi = long_plots.envelope_columns(values.envelope(), T, col, span)
    x, y = long_plots.envelope_xy(values.envelope(), T, col, span)
    np.testing.assert_array_equal(line.xData, x)
    np.testing.assert_array_equal(line.yData, y)
    assert (x[0::2] == x[1::2]).all()  # vertical strokes
    np.testing.assert_array_equal(np.minimum(y[0::2], y[1::2]), lo)
    np.testing.assert_array_equal(np.maximum(y[0::2], y[1::2]), hi)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _assert_envelope_of(tp, line, values: np.ndarray) -> None:
    y = line.yData
    for k, (a, b) in enumerate(_columns(tp, line)):
        assert min(y[2 * k], y[2 * k + 1]) == values[a:b].min()
        assert max(y[2 * k], y[2 * k + 1]) == values[a:b].max()


@pytest.mark.parametrize("kind", ["bounded", "full"])
def test_a_zoomed_envelope_has_the_visible_ranges_columns(
    kind, make_main_window, monkeypatch, qtbot
) -> None:
    limit = "100000" if kind == "bounded" else str(10**10)
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", limit)
    # 10⁶ steps in miniature: exact values below 300 steps, 40 columns for the whole run
    monkeypatch.setattr(long_plots, "EXACT_STEPS", 300)
    monkeypatch.setattr(long_plots, "MAX_COLUMNS", 40)
    monkeypatch.setattr(long_plots, "LINE_BLOCKS", 6000)
    rng = np.random.default_rng(3)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    x = rng.normal(size=(T, D)).astype(np.float32)
    _window, panel = debugger_window(make_main_window, qtbot, model, x)
    assert isinstance(panel.trace, BoundedTrace) == (kind == "bounded")
    full = panel.trace
    if kind == "bounded":  # the full trace on the engine the window's run used
        full = run(model, x, engine=panel.trace.engine, trace="full")
    f = full.layers[0].directions[0].f[:, 1]
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)
    panel.workspace.select(layer=0, unit=1)
    qtbot.waitUntil(lambda: bool(tp.gate_lines), timeout=10_000)
    line = tp.gate_lines["f"]
    whole = _columns(tp, line)
    assert len(whole) <= 40 and whole[0][0] == 0 and whole[-1][1] == T
    _assert_envelope_of(tp, line, f)
    wide = max(b - a for a, b in whole)

    tp._plots[0].setXRange(3000, 3600, padding=0)  # 600 steps: over EXACT_STEPS
    qtbot.waitUntil(lambda: _columns(tp, line) not in ([], whole), timeout=5_000)
    cols = _columns(tp, line)
    assert cols[0][0] <= 3000 and cols[-1][1] >= 3600  # the view is covered
    assert max(b - a for a, b in cols) < wide / 3  # finer columns than the whole run's
    assert len(cols) <= 40
    _assert_envelope_of(tp, line, f)

    tp._plots[0].setXRange(3100, 3300, padding=0)  # exact values, then back out
    qtbot.waitUntil(lambda: not _columns(tp, line), timeout=5_000)
    tp._plots[0].setXRange(0, T, padding=0)
    qtbot.waitUntil(lambda: _columns(tp, line) == whole, timeout=5_000)
    _assert_envelope_of(tp, line, f)
