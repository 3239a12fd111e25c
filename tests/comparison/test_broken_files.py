"""Broken ports written as real files, the way a user would write them, then read back by
lstmviz's readers and compared with the original: each mistake is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.comparison import compare

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

torch = pytest.importorskip("torch")


def _save_state_dict(path: Path, layers: list[dict[str, np.ndarray]]) -> Path:
    """An nn.LSTM state_dict: one dict per layer with w_ih, w_hh, b_ih, b_hh."""
    sd = {}
    for k, lay in enumerate(layers):
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            kind, which = name.split("_")
            key = f"{'weight' if kind == 'w' else 'bias'}_{which}_l{k}"
            sd[key] = torch.from_numpy(np.ascontiguousarray(lay[name], dtype=np.float32))
    torch.save(sd, path)
    return path


def _onnx_arrays(path: Path) -> list[dict[str, np.ndarray]]:
    """W, R, B of every LSTM node, read with the onnx package as a user would."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "LSTM":
            W, R, B = (inits[n] for n in node.input[1:4])
            out.append({"W": W[0], "R": R[0], "B": B[0]})
    return out


def test_pytorch_state_dict_with_onnx_ordered_gates(tmp_path):
    """ONNX W/R/B copied into nn.LSTM's names without reordering i,o,f,c → i,f,g,o."""
    src = FIXTURES / "onnx" / "torch_uni2.onnx"
    layers = []
    for arr in _onnx_arrays(src):
        H4 = arr["W"].shape[0]
        layers.append(
            {"w_ih": arr["W"], "w_hh": arr["R"], "b_ih": arr["B"][:H4], "b_hh": arr["B"][H4:]}
        )
    b = _save_state_dict(tmp_path / "ported.pt", layers)
    c = compare(src, b)
    assert [(d.kind, d.layer) for d in c.diagnoses] == [
        ("gate_permutation", 0),
        ("gate_permutation", 1),
    ]
    assert c.diagnoses[0].detail.startswith(
        "B is stored in ONNX order i,o,f,c read as i,f,g,o (PyTorch/Keras order)"
    )
    assert "B's f block = A's o block" in c.diagnoses[0].evidence
    assert c.first_divergence is not None and c.first_divergence[:3] == (0, 0, 0)
    # done right (blocks reordered as the fix says) the port is equal
    fixed = []
    for arr in _onnx_arrays(src):
        H = arr["W"].shape[0] // 4

        def order(m, H=H):
            return np.concatenate([m[k * H : (k + 1) * H] for k in (0, 2, 3, 1)])

        fixed.append(
            {
                "w_ih": order(arr["W"]),
                "w_hh": order(arr["R"]),
                "b_ih": order(arr["B"][: 4 * H]),
                "b_hh": order(arr["B"][4 * H :]),
            }
        )
    assert compare(src, _save_state_dict(tmp_path / "fixed.pt", fixed)).equal


def test_keras_kernel_reshaped_instead_of_transposed(tmp_path):
    """A PyTorch weight_ih (4H, D) put into a Keras 3 LSTM with .reshape(D, 4H), not .T."""
    pytest.importorskip("keras")
    import keras

    src = FIXTURES / "torch" / "plain.pt"
    sd = torch.load(src, weights_only=True)
    w_ih, w_hh = sd["weight_ih_l0"].numpy(), sd["weight_hh_l0"].numpy()
    bias = (sd["bias_ih_l0"] + sd["bias_hh_l0"]).numpy()
    H4, D = w_ih.shape
    model = keras.Sequential([keras.Input((None, D)), keras.layers.LSTM(H4 // 4)])
    model.layers[0].set_weights([w_ih.reshape(D, H4), w_hh.T, bias])
    path = tmp_path / "ported.weights.h5"
    model.save_weights(path)
    c = compare(src, path)
    assert [d.kind for d in c.diagnoses] == ["transposed"]
    assert "reshaped" in c.diagnoses[0].detail and "W_x" in c.diagnoses[0].detail
    assert ".T" in c.diagnoses[0].fix
    model.layers[0].set_weights([w_ih.T, w_hh.T, bias])
    model.save_weights(path)
    assert compare(src, path).equal


def test_keras_bias_copied_into_both_pytorch_biases(tmp_path):
    src = FIXTURES / "keras" / "tfk221_stacked.keras"
    a = lstmviz.load_model(src)
    layers = []
    for lay in a.layers:
        d = lay.directions[0]
        layers.append({"w_ih": d.W_x, "w_hh": d.W_h, "b_ih": d.b, "b_hh": d.b})
    b = lstmviz.load_model(_save_state_dict(tmp_path / "ported.pt", layers[:1]))
    c = compare(a, b)
    assert [(d.kind, d.layer) for d in c.diagnoses] == [("bias_doubled", 0)]
    assert "twice" in c.diagnoses[0].detail


def _tf1_kernel():
    z = np.load(FIXTURES / "arrays" / "tf1_names.npz")
    return z["rnn/basic_lstm_cell/kernel"], z["rnn/basic_lstm_cell/bias"]


def _from_tf1(kernel, bias, D, h_first=False):
    """TF1 kernel [D + H, 4H] in i,j,f,o to nn.LSTM, gates reordered; forget bias NOT added."""
    W = kernel.T
    H = W.shape[0] // 4
    w_h, w_x = (W[:, :H], W[:, H:]) if h_first else (W[:, D:], W[:, :D])

    def order(m):
        return np.concatenate([m[k * H : (k + 1) * H] for k in (0, 2, 1, 3)])

    return {"w_ih": order(w_x), "w_hh": order(w_h), "b_ih": order(bias), "b_hh": 0 * bias}


def test_tf1_kernel_ported_without_its_forget_bias(tmp_path):
    """TF1 adds forget_bias=1 at run time; a port that only reorders gates loses it."""
    src = FIXTURES / "arrays" / "tf1_names.npz"
    kernel, bias = _tf1_kernel()
    D = lstmviz.load_model(src).input_size
    c = compare(src, _save_state_dict(tmp_path / "p.pt", [_from_tf1(kernel, bias, D)]))
    assert [d.kind for d in c.diagnoses] == ["forget_bias_offset"]
    assert "-1 for every unit" in c.diagnoses[0].evidence
    assert "add 1" in c.diagnoses[0].fix
    # and with the kernel split h rows first: two mistakes at once
    p = _save_state_dict(tmp_path / "q.pt", [_from_tf1(kernel, bias, D, h_first=True)])
    assert sorted(compare(src, p).kinds) == ["forget_bias_offset", "fused_rows_swapped"]


def test_bidirectional_pytorch_directions_swapped_in_file(tmp_path):
    src = FIXTURES / "torch" / "bidir2.pt"
    sd = torch.load(src, weights_only=True)
    swapped = {}
    for key, value in sd.items():
        if key.endswith("_l0"):
            swapped[key + "_reverse"] = value
        elif key.endswith("_l0_reverse"):
            swapped[key[: -len("_reverse")]] = value
        else:
            swapped[key] = value
    torch.save(swapped, tmp_path / "swapped.pt")
    c = compare(src, tmp_path / "swapped.pt")
    assert [(d.kind, d.layer) for d in c.diagnoses] == [("directions_swapped", 0)]
    assert c.first_divergence.layer == 0


def test_keras2_hard_sigmoid_model_ported_to_pytorch(tmp_path):
    """A Keras 2 LSTM with recurrent_activation='hard_sigmoid' moved to nn.LSTM (sigmoid):
    the weights are right, the activation is not, and only that layer is named."""
    src = FIXTURES / "keras" / "full_hard_sigmoid.h5"
    a = lstmviz.load_model(src)
    assert a.layers[0].directions[0].act_gate.name == "hard_sigmoid_k2"
    layers = [
        {"w_ih": d.W_x, "w_hh": d.W_h, "b_ih": d.b, "b_hh": 0 * d.b}
        for d in (lay.directions[0] for lay in a.layers)
    ]
    c = compare(src, _save_state_dict(tmp_path / "ported.pt", layers))
    assert [(d.kind, d.layer) for d in c.diagnoses] == [("activation_mismatch", 0)]
    assert "hard_sigmoid_k2" in c.diagnoses[0].detail and "0.2x" in c.diagnoses[0].detail
    assert c.first_divergence is not None and c.first_divergence.layer == 0


def test_square_keras_kernel_written_transposed(tmp_path):
    """D = 4H: a Keras kernel [D, 4H] written the wrong way round loads without complaint;
    and a TF1-style fused kernel with D + H = 4H transposed as a whole, with a permutation."""
    pytest.importorskip("keras")
    import keras

    rng = np.random.default_rng(5)
    D, H = 8, 2
    kernel, rec, bias = (
        rng.normal(size=(D, 4 * H)),
        rng.normal(size=(H, 4 * H)),
        rng.normal(size=4 * H),
    )
    model = keras.Sequential([keras.Input((None, D)), keras.layers.LSTM(H)])
    paths = []
    for k in (kernel, kernel.T):
        model.layers[0].set_weights([k, rec, bias])
        paths.append(tmp_path / f"m{len(paths)}.weights.h5")
        model.save_weights(paths[-1])
    c = compare(*paths)
    assert [d.kind for d in c.diagnoses] == ["transposed"]
    assert "as a whole" in c.diagnoses[0].detail

    import mistakes as M

    a = lstmviz.load_model(paths[0]).replace()
    d0 = a.layers[0].directions[0]
    small = d0.replace(W_x=d0.W_x[:, :6])  # D = 6, H = 2: the fused kernel is 8 x 8

    def fused_t(d):
        k = np.concatenate([d.W_x, d.W_h], axis=1).T
        return d.replace(W_x=k[:, :6], W_h=k[:, 6:])

    from lstmviz.core.model import LSTMLayer, LSTMModel

    a = LSTMModel((LSTMLayer("l", (small,)),))
    b = M.apply(a, 0, 0, lambda d: M.written_in(fused_t(d), "onnx"))
    assert sorted(compare(a, b).kinds) == ["gate_permutation", "transposed"]
