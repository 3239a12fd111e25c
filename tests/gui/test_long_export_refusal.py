"""Export ▸ Trace of a long (bounded) run that cannot be written says so at once, in a note
that fits the bar: on 200,000 steps of a 2-layer bidirectional stack the user picked a file,
then read "…export a shorter sequence, or a range of …" cut off (found in a real window)."""

from __future__ import annotations

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtWidgets import QFileDialog

from lstmviz.core import LSTMLayer, LSTMModel, bounded_export
from lstmviz.core.checkpointed_trace import BoundedTrace
from lstmviz.gui import trace_export

T, D, H = 3000, 3, 6


@pytest.fixture
def bounded_panel(make_main_window, monkeypatch, qtbot):
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "50000")
    rng = np.random.default_rng(4)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    _window, panel = debugger_window(make_main_window, qtbot, model, rng.normal(size=(T, D)))
    assert isinstance(panel.trace, BoundedTrace)
    asked: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (asked.append(a[2]), ("", ""))[1]
    )
    return panel, asked


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_refused_export_says_why_before_the_file_dialog(bounded_panel, monkeypatch, kind):
    panel, asked = bounded_panel
    monkeypatch.setattr(bounded_export, "EXPORT_LIMIT", 1000)  # this run is ~1 MB as NPZ
    trace_export.ask_export_trace(panel, panel.workspace, kind)
    assert asked == []  # no file to pick for nothing
    note = panel.hit_banner.text()
    assert note.startswith("Not exported:") and len(note) <= 130
    assert ("export fewer steps" if kind == "npz" else "use NPZ") in note
    if kind == "npz":
        assert f"{T:,} steps would take" in note
    # the bar shows it whole at the window's default size (no "…")
    assert panel.hit_banner.label.text() == note


def test_an_export_that_fits_still_asks_for_the_file(bounded_panel):
    panel, asked = bounded_panel
    trace_export.ask_export_trace(panel, panel.workspace, "npz")
    assert asked == ["trace.npz"]
