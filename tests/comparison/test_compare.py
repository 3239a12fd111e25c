"""compare(): pairing, equality, deltas and the first divergence against a hand computation."""

from __future__ import annotations

from pathlib import Path

import mistakes as M
import numpy as np
import pytest

import lstmviz
from lstmviz.comparison import Comparison, compare, default_sequence
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_public_name_is_lazy_and_the_same():
    assert lstmviz.compare is compare


def test_same_weights_in_two_frameworks_are_equal():
    """The bundled example saved by Keras 3 and by PyTorch: same numbers, two layouts."""
    c = compare(EXAMPLES / "sine_lstm.keras", EXAMPLES / "sine_lstm.pt")
    assert isinstance(c, Comparison)
    assert c.pairs == ((0, 0), (1, 1))
    assert c.equal and c.first_divergence is None and c.diagnoses == []
    assert any("head" in n for n in c.notes)  # the Keras file has the Dense head, .pt not


def test_a_model_equals_itself_and_a_changed_one_does_not():
    a = lstmviz.load_model(FIXTURES / "torch" / "bidir2.pt")
    assert compare(a, a).equal
    b = M.apply(a, 1, 1, M.forget_bias, 1e-3)
    c = compare(a, b)
    assert not c.equal and not c.weights_equal
    assert c.first_divergence is not None and c.first_divergence.layer == 1
    assert c.divergence(tol=1.0) is None  # a 1e-3 bias change never moves a gate by 1


def test_default_sequence_is_seeded_and_shared():
    a = lstmviz.load_model(FIXTURES / "torch" / "plain.pt")
    c = compare(a, a)
    assert c.x.shape == (64, a.input_size)
    np.testing.assert_array_equal(c.x, default_sequence(a.input_size))
    np.testing.assert_array_equal(c.trace_a.x, c.trace_b.x)


@pytest.mark.parametrize(
    "pair",
    [
        ("torch/bidir2.pt", "onnx/torch_bidir2.onnx"),
        ("keras/tfk221_stacked.keras", "keras/tf213_stacked.keras"),
        ("tf1/bidi", "tf1/cfv2_bidi_tf221"),
        ("onnx/torch_uni2.onnx", "tf1/cfv2_multi_tf221"),
    ],
)
def test_unrelated_models_get_no_diagnosis(pair):
    """Independently trained/initialised models of one shape: they differ, nothing is named."""
    a, b = (lstmviz.load_model(FIXTURES / p) for p in pair)
    c = compare(a, b)
    assert not c.equal
    assert c.diagnoses == [], c.summary()
    assert any("no known porting mistake" in n for n in c.notes)


def test_two_fresh_torch_models_get_no_diagnosis():
    torch = pytest.importorskip("torch")
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        lstm = torch.nn.LSTM(4, 4, num_layers=3, bidirectional=True)
        models.append(_from_state_dict(lstm.state_dict(), 3, bidirectional=True))
    c = compare(*models)
    assert c.pairs == ((0, 0), (1, 1), (2, 2)) and not c.equal and c.diagnoses == []


def _from_state_dict(sd, layers: int, bidirectional: bool = False) -> LSTMModel:
    out = []
    for k in range(layers):
        dirs = []
        for suffix in ("", "_reverse") if bidirectional else ("",):
            dirs.append(
                LSTMDirection(
                    W_x=sd[f"weight_ih_l{k}{suffix}"].numpy(),
                    W_h=sd[f"weight_hh_l{k}{suffix}"].numpy(),
                    b=(sd[f"bias_ih_l{k}{suffix}"] + sd[f"bias_hh_l{k}{suffix}"]).numpy(),
                    reverse=bool(suffix),
                )
            )
        out.append(LSTMLayer(name=f"l{k}", directions=tuple(dirs)))
    return LSTMModel(layers=tuple(out))


def test_pairing_by_shape_and_order_and_by_hand():
    a = lstmviz.load_model(FIXTURES / "keras" / "tfk221_stacked.keras")  # D 3→4→3→2
    b = a.replace(layers=a.layers[1:])  # shapes (4→3), (3→2): A's layers 1 and 2
    c = compare(a, b)
    assert c.pairs == ((1, 0), (2, 1))
    assert any("A's layer 0 has no partner" in n for n in c.notes)
    assert c.x is None and c.deltas == ()  # widths 3 vs 4: only weights compared
    assert {d.kind for d in c.diagnoses} == {"layers_shifted"}
    with pytest.raises(ValueError, match="different shapes"):
        compare(a, b, pairs=[(0, 0)])
    with pytest.raises(ValueError, match="twice"):
        compare(a, a, pairs=[(0, 0), (0, 0)])
    one = compare(a, a, pairs=[(0, 0)])
    assert one.pairs == ((0, 0),) and len(one.deltas) == 1
    assert one.with_pairs([(1, 1)]).pairs == ((1, 1),)
    assert one.pairs == [(0, 0)] and one.pairs != [(1, 1)]  # as pairs= takes them, too


def test_deltas_per_gate_and_step():
    a = lstmviz.load_model(FIXTURES / "torch" / "bidir2.pt")
    b = M.apply(a, 0, 1, M.forget_bias, 0.25)
    c = compare(a, b)
    fw, bw = c.delta(0, 0), c.delta(0, 1)
    assert fw.max_delta() == 0.0  # the forward direction of layer 0 is untouched
    want = b.layers[0].directions[1]
    T = c.x.shape[0]
    np.testing.assert_allclose(
        bw.delta("f"), c.trace_b.layers[0].directions[1].f - c.trace_a.layers[0].directions[1].f
    )
    assert bw.heatmap("f").shape == (want.hidden_size, T)
    assert bw.max_per_step("f").shape == (T,)
    assert np.all(bw.max_per_step() >= bw.max_per_step("f"))
    # the backward direction reads time backwards: it first differs at the last step
    assert c.first_divergence[:3] == (0, 1, T - 1)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_first_divergence_against_a_hand_computation():
    """B's W_x differs in one weight (input 0 → gate o of unit 3); x's input 0 is zero until
    step 5, so nothing differs before it. At step 5 only o (and so h) of unit 3 moves; check
    the reported step, unit and the Δo value recomputed by hand from the equations."""
    rng = np.random.default_rng(7)
    D, H, T = 2, 5, 12
    wa = LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, H)) * 0.3,
        b=rng.normal(size=4 * H),
    )
    W_x = np.array(wa.W_x)
    W_x[3 * H + 3, 0] += 0.5  # gate o, unit 3, input 0
    a = LSTMModel(layers=(LSTMLayer("l", (wa,)),))
    b = LSTMModel(layers=(LSTMLayer("l", (wa.replace(W_x=W_x),)),))
    x = rng.normal(size=(T, D)).astype(np.float32)
    x[:5, 0] = 0.0
    c = compare(a, b, x)
    assert tuple(c.first_divergence) == (0, 0, 5, 3)
    # by hand (float64): run A to step 4, then step 5 in both
    h = np.zeros(H)
    cc = np.zeros(H)
    for t in range(5):
        z = np.array(wa.W_x) @ x[t] + np.array(wa.W_h) @ h + np.array(wa.b)
        i, f, g, o = (
            _sigmoid(z[:H]),
            _sigmoid(z[H : 2 * H]),
            np.tanh(z[2 * H : 3 * H]),
            _sigmoid(z[3 * H :]),
        )
        cc = f * cc + i * g
        h = o * np.tanh(cc)
    za = np.array(wa.W_x) @ x[5] + np.array(wa.W_h) @ h + np.array(wa.b)
    zb = W_x @ x[5] + np.array(wa.W_h) @ h + np.array(wa.b)
    d_o = _sigmoid(zb[3 * H :]) - _sigmoid(za[3 * H :])
    assert np.count_nonzero(np.abs(d_o) > 1e-9) == 1
    np.testing.assert_allclose(c.delta(0).delta("o")[5], d_o, atol=1e-6)
    assert np.all(c.delta(0).max_per_step()[:5] == 0.0)
    # a tolerance above the whole effect: no divergence
    assert c.divergence(tol=float(c.delta(0).max_per_step().max()) + 1e-6) is None


@pytest.mark.parametrize(
    "pair",
    [
        ("keras/tf213_stacked.keras", "keras/tf215_stacked.keras"),  # two TF versions
        ("keras/tfk221_bidi_back.h5", "keras/tfk221_bidi_back.keras"),  # .h5 vs .keras
        ("keras/cudnn_lstm.h5", "keras/cudnn_weights.h5"),  # CuDNNLSTM, full vs weights
        ("tf1/static_all", "tf1/static_all_tf215"),  # TF1 checkpoints of two versions
        ("torch/qlstm_script.pt", "torch/qlstm_sd.pt"),  # TorchScript vs state_dict
    ],
)
def test_the_same_weights_in_two_files_are_equal(pair):
    """Fixture pairs that hold the same weights (found by comparing all 725 same-shape
    fixture pairs: these were equal, and none of the others got a diagnosis)."""
    c = compare(*(FIXTURES / p for p in pair))
    assert c.equal and c.diagnoses == [] and c.first_divergence is None


def test_a_state_dict_cannot_say_relu():
    """nn.RNN(nonlinearity='relu'): the pickled module says relu, the bare state_dict does
    not (read as tanh): named as an activation mismatch, which it is."""
    gru = FIXTURES / "gru" / "torch"
    c = compare(gru / "rnn_relu_model.pt", gru / "rnn_relu.pt")
    assert set(c.kinds) == {"activation_mismatch"} and "relu" in c.diagnoses[0].detail
