"""GRU and plain-RNN weights in NumPy ``.npz`` files: PyTorch names (``weight_ih_l0``) and
g2p_en's short names (``enc_w_ih``, ``enc_w_hh``, ``enc_b_ih``, ``enc_b_hh`` beside
``enc_emb``), made here from ``torch.nn.GRU``/``nn.RNN`` and compared with torch's outputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from test_gru_common import check

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.io import ChoiceRequired


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _short(module: torch.nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """g2p_en's naming: weight_ih_l0 → <prefix>_w_ih, bias_hh_l0 → <prefix>_b_hh."""
    out = {}
    for k, v in module.state_dict().items():
        k = k.removesuffix("_l0").replace("weight", "w").replace("bias", "b")
        out[f"{prefix}_{k}"] = v.detach().numpy()
    return out


def _torch_run(module: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out, h = module(torch.from_numpy(x))
    return out.numpy(), h.numpy()


def test_g2p_style_short_names_open_as_gru_cells(tmp_path: Path) -> None:
    torch.manual_seed(2)
    enc, dec = torch.nn.GRU(4, 6), torch.nn.RNN(4, 5)
    emb = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    path = _npz(
        tmp_path / "checkpoint.npz",
        enc_emb=emb,
        **_short(enc, "enc"),
        dec_emb=emb[:5],
        **_short(dec, "dec"),
        fc_w=np.zeros((3, 5), np.float32),
    )
    with pytest.raises(ChoiceRequired, match=r"2 recurrent modules \(enc, dec\)"):
        lstmviz.load_model(path)
    x = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    model = lstmviz.load_model(path, prefix="enc")
    d = model.layers[0].directions[0]
    assert isinstance(d, GRUDirection) and d.reset_after
    assert [t.name for t in d.provenance.stored] == ["enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh"]
    assert model.embedding is not None and model.embedding.shape == (9, 4)  # enc_emb feeds enc
    check(model, x, *_torch_run(enc, x))
    rnn = lstmviz.load_model(path, prefix="dec")
    assert rnn.layers[0].kind == "RNNCell"
    check(rnn, x, *_torch_run(dec, x))


def test_torch_named_gru_npz_goes_through_the_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(3)
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    arrays = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    model = lstmviz.load_model(_npz(tmp_path / "gru.npz", **arrays))
    assert [layer.kind for layer in model.layers] == ["GRU", "GRU"]
    assert model.framework == "PyTorch layout (NumPy arrays)"
    x = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    check(model, x, *_torch_run(gru, x))


def test_lstm_shaped_short_names_are_left_to_the_layout_guessing(tmp_path: Path) -> None:
    from lstmviz.io.arrays.gru_names import torch_names

    lstm = torch.nn.LSTM(3, 4)
    assert torch_names(_short(lstm, "enc")) is None
    assert torch_names(_short(torch.nn.GRU(3, 4), "enc")) == {
        "enc.weight_ih": "enc_w_ih",
        "enc.weight_hh": "enc_w_hh",
        "enc.bias_ih": "enc_b_ih",
        "enc.bias_hh": "enc_b_hh",
    }


def test_keras_layout_gru_and_simple_rnn_arrays_match_keras(tmp_path: Path) -> None:
    """Keras weights saved by path (``gru/gru_cell/kernel`` ...): GRU (reset_after from the
    bias shape), a Bidirectional reset-before GRU and a SimpleRNN, run like Keras 3."""
    import keras

    L = keras.layers
    rng = np.random.default_rng(4)
    inp = keras.Input((5, 3))
    h = L.GRU(4, return_sequences=True, name="gru")(inp)
    h = L.Bidirectional(L.GRU(2, reset_after=False, return_sequences=True), name="bi")(h)
    model = keras.Model(inp, L.SimpleRNN(3, return_sequences=True, name="srnn")(h))
    for w in model.weights:
        w.assign(rng.normal(0, 0.6, size=w.shape).astype("float32"))
    path = _npz(tmp_path / "k.npz", **{w.path: np.asarray(w) for w in model.weights})
    x = rng.normal(size=(5, 3)).astype(np.float32)
    loaded = lstmviz.load_model(path)
    assert [layer.kind for layer in loaded.layers] == ["GRU", "Bidirectional(GRU)", "RNN"]
    assert loaded.layers[0].directions[0].reset_after
    assert not loaded.layers[1].directions[0].reset_after
    want = np.asarray(model.predict(x[None], verbose=0))[0]
    np.testing.assert_allclose(lstmviz.run(loaded, x).layers[-1].output, want, atol=1e-5, rtol=0)
