"""What ``lstmviz --info`` says about GRU and plain-RNN models: each layer is named by its own
cell ("the last GRU", "2 GRU chains"), "recurrent layer" where kinds mix, and an all-LSTM model
reads word for word as before. Models made here by Keras 3 (``KERAS_BACKEND=torch``) and torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmviz
from lstmviz.core.summary import model_summary

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
L = keras.layers


def _token_model(path: Path, rnn: object) -> Path:
    """Embedding → ``rnn`` → Dense, saved as ``.keras``."""
    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(12, 4, name="emb")(inp)
    h = rnn(h)  # type: ignore[operator]
    keras.Model(inp, L.Dense(3, name="head")(h)).save(path)
    return path


def _two_branches(path: Path, make: type) -> Path:
    a, b = keras.Input((5, 3)), keras.Input((5, 2))
    ha = make(4, return_sequences=True, name="a")(a)
    hb = make(4, return_sequences=True, name="b")(b)
    keras.Model([a, b], L.Concatenate()([ha, hb])).save(path)
    return path


@pytest.mark.parametrize(("make", "cell"), [(L.GRU, "GRU"), (L.SimpleRNN, "RNN")])
def test_token_model_marks_name_the_cell(tmp_path: Path, make: type, cell: str) -> None:
    path = _token_model(tmp_path / "m.keras", make(5, return_sequences=True, name="rnn"))
    text = model_summary(lstmviz.load_model(path))
    assert "LSTM" not in text, text
    assert f"[embedding: looks up token ids for the first {cell}]" in text
    assert f"[head: run after the last {cell}]" in text
    assert f"last {cell} output size 5" in text


def test_lstm_token_model_reads_as_before(tmp_path: Path) -> None:
    path = _token_model(tmp_path / "m.keras", L.LSTM(5, return_sequences=True, name="rnn"))
    text = model_summary(lstmviz.load_model(path))
    for words in (
        "[embedding: looks up token ids for the first LSTM]",
        "[head: run after the last LSTM]",
        "last LSTM output size 5",
        "LSTM layers: 1;",
    ):
        assert words in text


@pytest.mark.parametrize(("make", "word"), [(L.GRU, "GRU"), (L.LSTM, "LSTM")])
def test_two_chains_are_named_by_their_kind(tmp_path: Path, make: type, word: str) -> None:
    path = _two_branches(tmp_path / "two.keras", make)
    model = lstmviz.load_model(path)
    assert model.notes[0].startswith(f"2 {word} chains that do not feed each other")
    chosen = lstmviz.load_model(path, layer="b")
    assert chosen.notes[0] == f"layer='b' chosen: the {word}s run are 'b'"
    if word == "GRU":
        assert "LSTM" not in model_summary(model) + model_summary(chosen)


def test_mixed_model_says_recurrent_layer(tmp_path: Path) -> None:
    """GRU → LSTM: the summary counts both, and a layer run between them is 'between
    recurrent layers'."""
    inp = keras.Input((6, 3))
    h = L.GRU(4, return_sequences=True, name="gru")(inp)
    h = L.Dense(5, name="mid")(h)
    h = L.LSTM(2, return_sequences=True, name="lstm")(h)
    keras.Model(inp, h).save(tmp_path / "mixed.keras")
    text = model_summary(lstmviz.load_model(tmp_path / "mixed.keras"))
    assert "recurrent layers: 2 (GRU, LSTM)" in text
    assert "[run between recurrent layers]" in text


def test_torch_gru_beside_an_embedding_is_named_gru(tmp_path: Path) -> None:
    torch.manual_seed(1)
    gru = torch.nn.GRU(4, 3)
    sd = {"emb.weight": torch.randn(9, 4), **gru.state_dict()}
    torch.save(sd, tmp_path / "gru.pt")
    model = lstmviz.load_model(tmp_path / "gru.pt")
    assert model.embedding is not None
    text = model_summary(model)
    assert "assumed to feed the GRU directly" in text and "LSTM" not in text, text
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        want = gru(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(lstmviz.run(model, x).layers[0].output, want, atol=1e-5, rtol=0)


def test_dynamic_quantized_gru_is_not_called_an_lstm(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = torch.nn.Sequential()
    net.add_module("gru", torch.nn.GRU(3, 4))
    q = torch.ao.quantization.quantize_dynamic(net, {torch.nn.GRU}, dtype=torch.qint8)
    torch.save(q.state_dict(), tmp_path / "q.pt")
    model = lstmviz.load_model(tmp_path / "q.pt")
    transforms = model.layers[0].directions[0].provenance.transforms
    assert any("dequantized from a dynamic-quantized GRU" in t for t in transforms), transforms
    assert "LSTM" not in model_summary(model)
