"""The text view on a bounded trace (a run too long to record whole) colours the tokens on
screen: recomputed in the worker from the checkpoints, the same colours as the full trace's
with the same levels (the overview's exact min/max), the rest grey until scrolled to."""

from __future__ import annotations

import numpy as np
from long_sequence_setup import random_lstm

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core.checkpointed_trace import BoundedTrace
from lstmviz.gui import plot_style as ps
from lstmviz.gui import text_lazy
from lstmviz.gui.text_canvas import NO_VALUE
from lstmviz.gui.text_layout import colours, levels_for

T, D, H = 6000, 3, 8
GREY = (NO_VALUE.red(), NO_VALUE.green(), NO_VALUE.blue())


def _full_colours(full, quantity: str, unit: int):
    values = getattr(full.layers[0].directions[0], quantity)
    levels = levels_for(quantity, values)
    return colours(values[:, unit], levels, ps.lut(ps.SIGNED_CMAP)), levels


def test_tokens_on_screen_get_the_full_traces_colours(make_main_window, monkeypatch, qtbot):
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")
    rng = np.random.default_rng(8)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    x = rng.normal(size=(T, D)).astype(np.float32)
    window = make_main_window()
    window.runner.inline_cost = 0  # recomputed in a worker, as at 10⁶ steps
    window.set_model(model)
    window.text_dock.show()
    assert window.set_sequence(x)
    ws, tv = window.workspace, window.text_view
    qtbot.waitUntil(lambda: isinstance(ws.trace, BoundedTrace), timeout=30_000)
    full = run(model, x, engine=ws.trace.engine, trace="full")
    lazy = tv._lazy
    qtbot.waitUntil(lambda: lazy.known.any() and not lazy.computing, timeout=30_000)
    t0, t1 = tv.visible_steps()
    assert 0 == t0 < t1 < T
    (rgb, light), levels = _full_colours(full, "h", 0)
    assert tv.levels == levels
    known = np.repeat(lazy.known, text_lazy.BLOCK)[:T]
    assert known[t0:t1].all() and not known[-1]  # what is on screen, not the rest
    np.testing.assert_array_equal(tv.canvas.rgb[known], rgb[known])
    np.testing.assert_array_equal(tv.canvas.light[known], light[known])
    assert (tv.canvas.rgb[~known] == GREY).all()
    assert "being computed" in tv.describe(T - 1)
    assert f"= {full.layers[0].directions[0].h[3, 0]:.4g}" in tv.describe(3)

    window.go_to_step(T - 1)  # scrolls the text to the step, which gets coloured
    qtbot.waitUntil(lambda: lazy.is_known(T - 1) and not lazy.computing, timeout=30_000)
    np.testing.assert_array_equal(tv.canvas.rgb[T - 1], rgb[T - 1])

    ws.select(layer=0, unit=5)  # another unit: computed again, with its own levels
    tv.selection.set_quantity("c")
    qtbot.waitUntil(lambda: lazy.key is not None and lazy.key[3:] == ("c", 5), timeout=5_000)
    qtbot.waitUntil(lambda: lazy.is_known(T - 1) and not lazy.computing, timeout=30_000)
    (rgb_c, _), levels_c = _full_colours(full, "c", 5)
    assert tv.levels == levels_c
    np.testing.assert_array_equal(tv.canvas.rgb[T - 1], rgb_c[T - 1])
    assert not lazy.is_known(0)  # the first tokens are off screen now
