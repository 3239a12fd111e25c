"""The window keeps what is alive once built, and once a run's views have it, out of full
garbage collections (``gc.freeze``: a collection over ~170,000 objects took 55 ms of a jump)."""

from __future__ import annotations

import gc

import numpy as np
from long_sequence_setup import debugger_window, random_lstm

from lstmviz.core import LSTMLayer, LSTMModel


def test_a_built_window_and_a_new_run_are_frozen(make_main_window, qtbot):
    gc.unfreeze()
    rng = np.random.default_rng(3)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, 4, 3),)),))
    window, panel = debugger_window(make_main_window, qtbot, model, rng.normal(size=(50, 3)))
    assert gc.get_freeze_count() > 10_000  # modules, classes, the window
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert window.set_sequence(rng.normal(size=(60, 3)))
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == 60, timeout=10_000)
    qtbot.waitUntil(lambda: gc.get_freeze_count() > 10_000, timeout=5_000)  # after the views
