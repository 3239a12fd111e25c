"""Committed tf.keras 2 / Keras 2 files against the outputs tf.keras computed for them.

The files and their ``.expected.npz`` come from ``tests/fixtures/keras/make_tf_keras_fixtures.py``
(tf.keras 2.21 in a separate venv): ``x`` (T, D) and ``y<k>``, the k-th LSTM layer's output as
tf.keras returned it ((T, out) with return_sequences, (out,) without).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.io import load_model

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
FILES = [
    "full_hard_sigmoid.h5",
    "weights_only.h5",
    "chunked_names.h5",
    "bidirectional.h5",
    "bidirectional_weights.h5",
    "tf_keras_model.keras",
    "cudnn_lstm.h5",
    "cudnn_weights.h5",
    "embedding_weights.h5",
    "keras224_weights_only.h5",
    "keras216_full.h5",
]


def _expected(name: str) -> dict[str, np.ndarray]:
    with np.load(HERE / f"{Path(name).stem}.expected.npz") as data:
        return dict(data)


@pytest.mark.parametrize("name", FILES)
def test_outputs_match_tf_keras(name: str) -> None:
    model = load_model(HERE / name)
    exp = _expected(name)
    trace = lstmviz.run(model, exp["x"])
    ys = sorted((k for k in exp if k.startswith("y")), key=lambda k: int(k[1:]))
    assert ys and len(ys) == len(model.layers)
    for k, key in enumerate(ys):
        want = exp[key]
        got = trace.layers[k].output if want.ndim == 2 else trace.layers[k].last_output
        assert got.shape == want.shape, (name, k)
        assert np.abs(want).max() > 1e-3  # a real signal, not zeros
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{name} layer {k}")


def _settings(model, layer: int = 0, direction: int = 0) -> dict:
    prov = model.layers[layer].directions[direction].provenance
    return {s.name: s for s in prov.settings}


def test_full_model_hard_sigmoid_is_keras2_slope_read_from_config() -> None:
    model = load_model(HERE / "full_hard_sigmoid.h5")
    assert model.source_format == "Keras HDF5 full model"
    assert model.framework == "tf.keras 2.21.0"
    w = model.layers[0].directions[0]
    assert w.act_gate.name == "hard_sigmoid_k2" and w.act_cand.name == "tanh"
    s = _settings(model)
    assert s["recurrent_activation"].value == "hard_sigmoid_k2"
    assert not s["recurrent_activation"].assumed
    assert model.layers[0].return_sequences and not model.layers[1].return_sequences
    prov = w.provenance
    assert prov.gate_order == ("i", "f", "c", "o") and prov.perm == (0, 1, 2, 3)
    kernel = prov.stored[0]
    assert kernel.name == "model_weights/lstm/lstm/lstm_cell/kernel:0"
    assert kernel.shape == (3, 16) and kernel.transposed and kernel.dtype == "float32"
    assert "kernel [3,16] transposed to W_x [16,3]" in prov.transforms
    kinds = [info.kind for info in model.all_layers]
    assert kinds == ["InputLayer", "LSTM", "Dropout", "LSTM", "Dense"]
    assert not any("chains only" in n for n in model.notes)  # Dropout is identity


def test_weights_only_assumes_tf_keras_v2_defaults() -> None:
    model = load_model(HERE / "weights_only.h5")
    assert model.source_format == "Keras HDF5 weights-only"
    s = _settings(model)
    assert s["recurrent_activation"].value == "sigmoid" and s["recurrent_activation"].assumed
    assert s["activation"].assumed and not s["units"].assumed
    second = model.layers[1].directions[0]
    assert not np.any(second.b)  # use_bias=False: no bias array, b = 0
    assert len(second.provenance.stored) == 2


def test_chunked_name_lists_are_joined() -> None:
    import h5py

    with h5py.File(HERE / "chunked_names.h5") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
    a, b = load_model(HERE / "chunked_names.h5"), load_model(HERE / "weights_only.h5")
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.directions[0].W_x, lb.directions[0].W_x)


def test_bidirectional_merge_modes_and_go_backwards() -> None:
    model = load_model(HERE / "bidirectional.h5")
    modes = [layer.merge_mode for layer in model.layers]
    assert modes[0] is MergeMode.CONCAT and modes[1] is MergeMode.MUL
    assert modes[3] is MergeMode.AVE
    back = model.layers[2]
    assert not back.bidirectional and back.directions[0].reverse
    assert back.output_order is OutputOrder.PROCESSING
    fw, bw = model.layers[0].directions
    assert not fw.reverse and bw.reverse
    assert "forward" in fw.provenance.stored[0].name and "backward" in bw.provenance.stored[0].name
    assert model.layers[0].kind == "Bidirectional(LSTM)"


def test_bidirectional_weights_only_forward_first() -> None:
    model = load_model(HERE / "bidirectional_weights.h5")
    fw, bw = model.layers[0].directions
    assert "forward" in fw.provenance.stored[0].name and "backward" in bw.provenance.stored[0].name
    assert any("merge_mode" in n for n in model.notes)


def test_tf_keras_dot_keras_uses_keras2_hard_sigmoid() -> None:
    model = load_model(HERE / "tf_keras_model.keras")
    assert model.layers[0].directions[0].act_gate.name == "hard_sigmoid_k2"
    assert model.framework.startswith("tf.keras 2.")


@pytest.mark.parametrize("name", ["cudnn_lstm.h5", "cudnn_weights.h5"])
def test_cudnn_lstm_conversion(name: str) -> None:
    model = load_model(HERE / name)
    layer = model.layers[0]
    assert layer.kind == "CuDNNLSTM"
    w = layer.directions[0]
    D, H = w.input_size, w.hidden_size
    assert w.act_gate.name == "sigmoid" and w.act_cand.name == "tanh"
    assert any("CuDNN biases summed" in t for t in w.provenance.transforms)
    assert w.n_stored_params == 4 * (D * H + H * H + 2 * H)
    assert w.n_params == 4 * (D * H + H * H + H)


def test_embedding_before_lstm_is_kept() -> None:
    model = load_model(HERE / "embedding_weights.h5")
    exp = _expected("embedding_weights.h5")
    assert model.embedding is not None and model.embedding.shape == (7, 3)
    np.testing.assert_allclose(model.embedding[exp["tokens"]], exp["x"], atol=0)
    assert [i.kind for i in model.all_layers] == ["Embedding", "LSTM", "Dense"]


def test_keras_224_weights_only_assumes_hard_sigmoid_k2() -> None:
    model = load_model(HERE / "keras224_weights_only.h5")
    assert model.framework == "Keras 2.2.4"
    s = _settings(model)
    assert (
        s["recurrent_activation"].value == "hard_sigmoid_k2" and s["recurrent_activation"].assumed
    )
    assert "2.2.5" in s["recurrent_activation"].note
    prov = model.layers[0].directions[0].provenance
    assert prov.stored[0].name == "lstm_1/lstm_1/kernel:0"


def test_keras_216_list_config() -> None:
    model = load_model(HERE / "keras216_full.h5")
    assert model.framework == "Keras 2.1.6" and not model.layers[0].return_sequences
    assert not _settings(model)["recurrent_activation"].assumed


def _cudnn_reference(kernel: np.ndarray, rec: np.ndarray, bias: np.ndarray, x: np.ndarray):
    """cuDNN's LSTM written out from the raw CuDNNLSTM arrays, without lstmviz.

    cuDNN receives each gate's ``[D, H]`` kernel slice as raw C-order bytes and reads them as
    a row-major ``(H, D)`` matrix W_k; each recurrent slice ``[H, H]`` is its R_k as stored
    (Keras' converter transposes both into LSTM form); two biases b_W, b_R; gates i, f, c, o:
    i = σ(W_i x + R_i h + bW_i + bR_i), … c' = f c + i tanh(...), h' = o tanh(c').
    """
    D, H = kernel.shape[0], rec.shape[0]
    W = [np.frombuffer(kernel[:, k * H : (k + 1) * H].tobytes(), np.float32).reshape(H, D)
         for k in range(4)]  # fmt: skip
    R = [rec[:, k * H : (k + 1) * H] for k in range(4)]
    bW, bR = bias[: 4 * H].reshape(4, H), bias[4 * H :].reshape(4, H)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, c, out = np.zeros(H), np.zeros(H), []
    for x_t in x.astype(np.float64):
        z = [W[k] @ x_t + R[k] @ h + bW[k] + bR[k] for k in range(4)]
        c = sig(z[1]) * c + sig(z[0]) * np.tanh(z[2])
        h = sig(z[3]) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_cudnn_semantics_written_out_match_tf_keras_and_lstmviz() -> None:
    import h5py

    exp = _expected("cudnn_lstm.h5")
    with h5py.File(HERE / "cudnn_lstm.h5") as f:
        g = f["model_weights/cu_dnnlstm/cu_dnnlstm"]
        kernel, rec, bias = (np.asarray(g[n]) for n in ("kernel:0", "recurrent_kernel:0", "bias:0"))
    ref = _cudnn_reference(kernel, rec, bias, exp["x"])
    np.testing.assert_allclose(ref, exp["y0"], atol=1e-5, rtol=0)  # tf.keras' conversion
    trace = lstmviz.run(load_model(HERE / "cudnn_lstm.h5"), exp["x"])
    np.testing.assert_allclose(trace.output, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["tf215_cudnn.weights.h5", "tfk221_cudnn.weights.h5"])
def test_a_versionless_weights_h5_names_everyone_who_writes_its_layout(name: str) -> None:
    """tf.keras 2.15 and tf_keras 2.21 wrote these; the layout is Keras 3's and no version is
    stored, so the label must not claim Keras 3."""
    assert load_model(HERE / name).framework == "Keras 3 or tf.keras ≥ 2.13 (version not recorded)"
