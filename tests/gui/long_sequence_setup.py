"""Set-up shared by the long-sequence window tests (``test_long_sequence*.py``): small random
cells, and a window on the Debugger tab once the run of a long sequence has finished (the
window shows the default example first: waiting for any trace would test that one)."""

from __future__ import annotations

import numpy as np

from lstmviz.core import LSTMDirection


def random_lstm(rng: np.random.Generator, H: int, D: int) -> LSTMDirection:
    """An LSTM direction whose gates move over a long run: weights N(0, 0.5), bias N(0, 0.2)."""
    return LSTMDirection(rng.normal(0, 0.5, (4 * H, D)), rng.normal(0, 0.5, (4 * H, H)),
                         rng.normal(0, 0.2, 4 * H))  # fmt: skip


def debugger_window(make_main_window, qtbot, model, x: np.ndarray):
    """``(window, panel)``: a window showing ``model`` on its Debugger tab, after the run of
    ``x`` (T, D) has finished."""
    window = make_main_window()
    window.set_model(model)
    window.tabs.setCurrentIndex(
        next(k for k in range(window.tabs.count()) if window.tabs.tabText(k) == "Debugger")
    )
    assert window.set_sequence(x)
    panel = window.debug_panel
    n = len(x)
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == n, timeout=30_000)
    return window, panel
