"""The status line names the sequence in use: after a 200,000-step file, a generated sequence
left "sequence x200k_16.npy (200000 steps)" in it (found in a real window)."""

from __future__ import annotations

import numpy as np
from long_sequence_setup import random_lstm

from lstmviz.core import LSTMLayer, LSTMModel


def test_the_status_follows_the_sequence(make_main_window, qtbot, tmp_path) -> None:
    rng = np.random.default_rng(1)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, 4, 3),)),))
    path = tmp_path / "walk.csv"
    np.savetxt(path, rng.normal(size=(40, 3)), delimiter=",")
    window = make_main_window()
    window.set_model(model)
    assert window.open_sequence(path)
    assert window.status_label.text().endswith("· sequence walk.csv (40 steps)")
    editor = window.debug_panel.sequence_editor
    editor.length.setValue(25)
    assert editor.generate()
    text = window.status_label.text()
    assert "walk.csv" not in text and text.endswith("· sequence zeros (25 steps)"), text
