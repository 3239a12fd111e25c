"""Titles of the time plots name the modules lstmviz does not run; for a PyTorch state dict
(no wiring recorded) they are not said to come "after" the LSTM, and the embedding used for
token ids is not among them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import lstmviz
from lstmviz.gui.time_plots import TimePlots, _layers_after_lstms


class Model(nn.Module):
    def __init__(self, between: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 5)
        if between:
            self.inp = nn.Linear(5, 5)
        self.lstm = nn.LSTM(5, 6)
        self.fc = nn.Linear(6, 2)


def _trace(tmp_path, between: bool):
    path = tmp_path / f"m{int(between)}.pt"
    torch.save(Model(between).state_dict(), path)
    return lstmviz.run(lstmviz.load_model(path), np.zeros((3, 5)))


def test_not_run_modules_of_a_state_dict(tmp_path, qtbot):
    direct = _trace(tmp_path, between=False)
    assert _layers_after_lstms(direct) == "not run: fc (Linear)"  # the embedding is run
    through = _trace(tmp_path, between=True)
    assert (
        _layers_after_lstms(through) == "not run: embedding (Embedding), inp (Linear), fc (Linear)"
    )
    plots = TimePlots()
    qtbot.addWidget(plots)
    plots.set_trace(direct)
    assert plots._layer_plots[-1].title == "layer 0 output (last LSTM; not run: fc (Linear))"
