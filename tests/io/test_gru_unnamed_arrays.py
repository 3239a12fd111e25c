"""Unnamed GRU and plain-RNN arrays (``arr_0``, ``arr_1`` ...) as the frameworks list them:
``np.savez(*keras_layer.get_weights())`` (Keras GRU ``[D,3H], [H,3H], [2,3H]`` or ``[3H]``,
SimpleRNN ``[D,H], [H,H], [H]``) and ``np.savez(*[p.detach().numpy() for p in
module.parameters()])`` (``nn.GRU`` ``[3H,D], [3H,H], [3H], [3H]``, ``nn.RNN`` with ``[H]``
biases). The layout is guessed from the shapes alone; each file is made here by Keras 3
(``KERAS_BACKEND=torch``) or torch and run against that framework at 1e-5.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_gru_common import check

import lstmviz
from lstmviz.core.cells import GRU_CELL
from lstmviz.core.summary import model_summary
from lstmviz.io import ChoiceRequired

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
L = keras.layers
TOL = 1e-5


def _npz(path: Path, arrays: list[np.ndarray]) -> Path:
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    path.write_bytes(buf.getvalue())
    return path


def _randomised(model: object, seed: int) -> None:
    """Weights far from Keras' initialisers (zero biases would hide a bias mix-up)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:  # type: ignore[attr-defined]
        w.assign(rng.normal(0, 0.5, size=w.shape).astype("float32"))


def _keras(layers: list[object], x: np.ndarray, seed: int) -> tuple[object, np.ndarray]:
    """A Sequential of ``layers`` on ``x`` (T, D) with random weights, and its output."""
    model = keras.Sequential([keras.Input(x.shape), *layers])
    _randomised(model, seed)
    return model, np.asarray(model.predict(x[None], verbose=0))[0]


def _x(T: int, D: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D)).astype(np.float32)


def _torch_arrays(module: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy() for p in module.parameters()]


def _torch_run(module: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out, h = module(torch.from_numpy(x))
    return out.numpy(), h.numpy()


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_get_weights_both_resets(tmp_path: Path, reset_after: bool) -> None:
    x = _x(7, 5)
    model, want = _keras([L.GRU(6, return_sequences=True, reset_after=reset_after)], x, 1)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 18), (6, 18), (2, 18) if reset_after else (18,)]
    loaded = lstmviz.load_model(_npz(tmp_path / "gru.npz", model.get_weights()))
    d = loaded.layers[0].directions[0]
    assert d.cell.name == "GRU" and d.reset_after is reset_after
    # z, r, h as Keras stores them, permuted by the cell description's stored order
    assert d.provenance.gate_order == ("z", "r", "h")
    assert d.provenance.perm == GRU_CELL.perm("keras") == (1, 0, 2)
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[0].output, want, atol=TOL, rtol=0)
    check(loaded, x, want, None)


def test_keras_simple_rnn_get_weights(tmp_path: Path) -> None:
    x = _x(6, 3)
    model, want = _keras([L.SimpleRNN(4, return_sequences=True)], x, 2)
    loaded = lstmviz.load_model(_npz(tmp_path / "rnn.npz", model.get_weights()))
    assert [layer.kind for layer in loaded.layers] == ["RNN"]
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[0].output, want, atol=TOL, rtol=0)


def test_keras_bidirectional_gru_then_lstm_among_dense_weights(tmp_path: Path) -> None:
    """get_weights() of a whole model: Bidirectional(GRU) → LSTM, then a Dense head whose
    arrays are no recurrent cell; the recurrent run is found and chained."""
    x = _x(8, 3)
    rnn = [
        L.Bidirectional(L.GRU(4, return_sequences=True)),
        L.LSTM(5, return_sequences=True),
    ]
    model, _ = _keras([*rnn, L.Dense(2)], x, 3)
    sub = keras.Model(model.inputs, model.layers[1].output)
    want = np.asarray(sub.predict(x[None], verbose=0))[0]
    loaded = lstmviz.load_model(_npz(tmp_path / "model.npz", model.get_weights()))
    assert [layer.kind for layer in loaded.layers] == ["Bidirectional(GRU)", "LSTM"]
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[-1].output, want, atol=TOL, rtol=0)
    assert any("only 9 of 11 arrays form the recurrent layer stack" in n for n in loaded.notes)


def test_torch_gru_parameters_bidirectional_stacked(tmp_path: Path) -> None:
    torch.manual_seed(4)
    gru = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)
    assert [tuple(p.shape) for p in gru.parameters()][:4] == [(15, 3), (15, 5), (15,), (15,)]
    loaded = lstmviz.load_model(_npz(tmp_path / "gru.npz", _torch_arrays(gru)))
    assert [layer.kind for layer in loaded.layers] == ["Bidirectional(GRU)"] * 2
    d = loaded.layers[0].directions[0]
    assert d.reset_after and d.provenance.gate_order == ("r", "z", "n")
    assert [t.name for t in d.provenance.stored] == ["arr_0", "arr_1", "arr_2", "arr_3"]
    np.testing.assert_array_equal(d.b_h, gru.bias_hh_l0.detach().numpy())  # kept apart
    acts = d.provenance.setting("activations")  # a GRU's two, assumed: arrays do not store them
    assert acts is not None and acts.assumed and acts.value == "sigmoid, tanh"
    x = _x(6, 3, 5)
    check(loaded, x, *_torch_run(gru, x))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_torch_rnn_parameters(tmp_path: Path, nonlinearity: str) -> None:
    torch.manual_seed(6)
    rnn = torch.nn.RNN(3, 4, num_layers=2, nonlinearity=nonlinearity)
    path = _npz(tmp_path / "rnn.npz", _torch_arrays(rnn))
    options = {} if nonlinearity == "tanh" else {"nonlinearity": "relu"}
    loaded = lstmviz.load_model(path, **options)
    assert [layer.kind for layer in loaded.layers] == ["RNN", "RNN"]
    settings = {s.name: s for s in loaded.layers[0].directions[0].provenance.settings}
    assert settings["nonlinearity"].value == nonlinearity
    assert settings["nonlinearity"].assumed is (nonlinearity == "tanh")
    x = _x(7, 3, 7)
    check(loaded, x, *_torch_run(rnn, x))


def test_bias_free_rnn_with_d_equal_h_asks_keras_or_pytorch(tmp_path: Path) -> None:
    """[H,H], [H,H] is a Keras SimpleRNN or an nn.RNN, one the other's transpose: asked, and
    each answer reproduces its framework."""
    x = _x(6, 4, 8)
    kmodel, kwant = _keras([L.SimpleRNN(4, use_bias=False, return_sequences=True)], x, 9)
    kpath = _npz(tmp_path / "k.npz", kmodel.get_weights())
    with pytest.raises(ChoiceRequired, match=r"SimpleRNN kernel \[D,H\].*nn.RNN weight_ih") as e:
        lstmviz.load_model(kpath)
    # (and a bidirectional TF1 LSTM of H = 1, which a [4, 4] kernel also fits)
    assert e.value.option == "layout" and {"keras", "pytorch"} <= set(e.value.choices)
    loaded = lstmviz.load_model(kpath, layout="keras")
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[0].output, kwant, atol=TOL, rtol=0)
    torch.manual_seed(10)
    rnn = torch.nn.RNN(4, 4, bias=False)
    tpath = _npz(tmp_path / "t.npz", _torch_arrays(rnn))
    with pytest.raises(ChoiceRequired):
        lstmviz.load_model(tpath)
    check(lstmviz.load_model(tpath, layout="pytorch"), x, *_torch_run(rnn, x))


def test_lstm_get_weights_still_read_as_lstm(tmp_path: Path) -> None:
    x = _x(5, 3, 11)
    model, want = _keras([L.LSTM(4, return_sequences=True)], x, 12)
    loaded = lstmviz.load_model(_npz(tmp_path / "lstm.npz", model.get_weights()))
    assert [layer.kind for layer in loaded.layers] == ["LSTM"]
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[0].output, want, atol=TOL, rtol=0)


def test_summary_of_unnamed_gru_arrays_never_says_lstm(tmp_path: Path) -> None:
    model, _ = _keras([L.GRU(4, return_sequences=True), L.Dense(3)], _x(5, 3), 13)
    loaded = lstmviz.load_model(_npz(tmp_path / "gru.npz", model.get_weights()))
    text = model_summary(loaded)
    assert "GRU" in text and "LSTM" not in text, text


def test_nonlinearity_option_reaches_short_named_rnn(tmp_path: Path) -> None:
    """g2p_en-style short names (dec_w_ih ...) of an nn.RNN(nonlinearity='relu')."""
    torch.manual_seed(14)
    rnn = torch.nn.RNN(3, 4, nonlinearity="relu")
    arrays = {
        "dec_" + k.removesuffix("_l0").replace("weight", "w").replace("bias", "b"): v.numpy()
        for k, v in rnn.state_dict().items()
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / "s.npz").write_bytes(buf.getvalue())
    x = _x(6, 3, 15)
    check(lstmviz.load_model(tmp_path / "s.npz", nonlinearity="relu"), x, *_torch_run(rnn, x))
