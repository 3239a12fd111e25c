"""The choice dialog speaks of the cell the file holds: a layout question about plain-RNN
arrays shows the reader's SimpleRNN / nn.RNN shapes (not the LSTM's [D, 4H]), the prefix
question asks for a recurrent layer. The question comes from a real file made by torch."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmviz
from lstmviz.gui.choice_dialog import ChoiceDialog
from lstmviz.io import ChoiceRequired


def _ask(path: Path) -> ChoiceRequired:
    with pytest.raises(ChoiceRequired) as e:
        lstmviz.load_model(path)
    return e.value


def test_layout_question_about_rnn_arrays_shows_their_shapes(qtbot, tmp_path: Path) -> None:
    rnn = torch.nn.RNN(4, 4, bias=False)  # [H, H], [H, H]: Keras SimpleRNN or nn.RNN
    buf = io.BytesIO()
    np.savez(buf, *[p.detach().numpy() for p in rnn.parameters()])
    (tmp_path / "rnn.npz").write_bytes(buf.getvalue())
    dialog = ChoiceDialog(_ask(tmp_path / "rnn.npz"))
    qtbot.addWidget(dialog)
    items = {c: dialog.list.item(k).text() for k, c in enumerate(dialog.choices)}
    assert (
        items["keras"] == "keras — Keras: SimpleRNN kernel [D,H], recurrent_kernel [H,H], bias [H]"
    )
    assert "nn.RNN weight_ih [H,D], weight_hh [H,H]" in items["pytorch"]
    assert "4H" in items["tf1"]  # read as a TF1 LSTM it is one, and says so


def test_prefix_question_names_recurrent_layers(qtbot, tmp_path: Path) -> None:
    sd = {f"{m}.{k}": v for m in ("enc", "dec") for k, v in torch.nn.GRU(3, 2).state_dict().items()}
    torch.save(sd, tmp_path / "two.pt")
    dialog = ChoiceDialog(_ask(tmp_path / "two.pt"))
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Which recurrent layer?"
    assert "LSTM" not in dialog.windowTitle()
