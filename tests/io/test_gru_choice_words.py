"""Questions and notes a GRU file reaches name its cells, not "LSTM": the Keras branch and
``layer=`` choices, PyTorch and ONNX ``prefix=`` and TF1 ``scope=`` choices, and the export's
Embedding note (all-LSTM files keep their words: test_keras_branches, test_torch_fixtures,
test_onnx_torch_export, test_tf1_*)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmviz
from lstmviz.io.errors import ChoiceRequired

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
L = keras.layers
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _two_gru_branches(path: Path) -> Path:
    a, b = keras.Input((5, 3)), keras.Input((5, 2))
    ha = L.GRU(4, return_sequences=True, name="a")(a)
    hb = L.GRU(4, return_sequences=True, name="b")(b)
    keras.Model([a, b], L.Concatenate(name="both")([ha, hb])).save(path)
    return path


def test_keras_choices_name_the_grus(tmp_path: Path) -> None:
    path = _two_gru_branches(tmp_path / "two.keras")
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path, ask_choices=True)  # as the window asks
    assert "has 2 GRU branches that do not feed each other ('a', 'b')" in str(info.value)
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path, layer="both")
    assert "layer='both' is a Concatenate, not a GRU; its GRUs are 'a', 'b'" in str(info.value)
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path, layer="nope")
    assert "layer='nope' is not a layer of it; its GRUs are 'a', 'b'" in str(info.value)


def test_torch_prefix_choice_names_no_lstm(tmp_path: Path) -> None:
    path = tmp_path / "gru.pt"
    torch.save(torch.nn.GRU(3, 4).state_dict(), path)
    with pytest.raises(ChoiceRequired, match="no recurrent module under prefix 'head'"):
        lstmviz.load_model(path, prefix="head")


def test_onnx_prefix_choice_names_the_gru_nodes() -> None:
    path = FIXTURES / "gru_real" / "stacked_gru_h_in.onnx"
    with pytest.raises(ChoiceRequired, match="no GRU node named or under 'nope'"):
        lstmviz.load_model(path, prefix="nope")


def test_tf1_scope_choice_names_the_gru_stack() -> None:
    tf1 = FIXTURES / "gru" / "tf" / "tf1"
    with pytest.raises(lstmviz.LoadError, match="no GRU stack 'nope'; the checkpoint has"):
        lstmviz.load_model(tf1 / "gru_cell" / "model.ckpt.index", scope="nope")
    with pytest.raises(lstmviz.LoadError, match="no recurrent stack 'nope'"):  # GRU + LSTM
        lstmviz.load_model(tf1 / "multi_gru_lstm" / "model.ckpt.index", scope="nope")


def test_export_note_names_the_first_gru(tmp_path: Path) -> None:
    model = lstmviz.load_model(FIXTURES / "gru" / "torch" / "gru_model.pt")
    model = model.replace(embedding=np.eye(9, model.input_size))
    result = lstmviz.export(model, "onnx", tmp_path / "g.onnx")
    assert any("(9, 3) before the first GRU was not written" in n for n in result.notes)
