"""TF1 GRUCell / GRUBlockCell / BasicRNNCell checkpoints, a TF1 MultiRNNCell mixing a GRU and
an LSTM, and a tf.keras TF2 object-based checkpoint of a GRU and a SimpleRNN (made with
TensorFlow 2.21 by tests/fixtures/gru/tf/make_fixtures.py) load as canonical GRU/RNN
directions and reproduce TensorFlow's outputs."""

from __future__ import annotations

import numpy as np
import pytest
from test_gru_common import FIXTURES, check, check_layers

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import MergeMode
from lstmviz.core.rnn import RNNDirection
from lstmviz.io import LoadError

TF1 = FIXTURES / "tf" / "tf1"

CASES = [
    ("gru_cell", ["GRUCell"]),
    ("gru_block", ["GRUBlockCell"]),
    ("rnn_basic", ["BasicRNNCell"]),
    ("gru_bidi", ["bidirectional_dynamic_rnn(GRUCell)"]),
    ("multi_gru_lstm", ["GRUCell", "LSTMCell"]),
]


@pytest.mark.parametrize(("name", "kinds"), CASES)
def test_tf1_checkpoint_matches_tensorflow(name: str, kinds: list[str]) -> None:
    model = lstmviz.load_model(TF1 / name / "model.ckpt.index")
    assert [layer.kind for layer in model.layers] == kinds
    assert model.framework.startswith("TensorFlow 1 checkpoint")
    e = np.load(TF1 / name / "expected.npz")
    if "output" in e.files:
        output = e["output"]
    else:  # bidirectional_dynamic_rnn: (out_fw, out_bw), shown concatenated
        output = np.concatenate([e["output_fw"], e["output_bw"]], axis=-1)
        assert model.layers[0].merge_mode is MergeMode.NONE
    h_n = e["h"][None] if "h" in e.files else None
    check(model, e["x"], output, h_n)


def test_gru_cell_layout() -> None:
    """gates/kernel rows :D → W_x (r, u blocks), rows D: → W_h, candidate/kernel → block n;
    one bias per array, so b_h = 0; the reset comes before W_h."""
    path = TF1 / "gru_cell" / "model.ckpt.index"
    d = lstmviz.load_model(path).layers[0].directions[0]
    assert isinstance(d, GRUDirection) and not d.reset_after
    H, D = 5, 3
    prov = d.provenance
    assert prov.gate_order == ("r", "u", "c") and prov.perm == (0, 1, 2)
    blocks = {(t.name.rsplit("/", 2)[-2], t.role.value): t.blocks for t in prov.stored}
    assert blocks[("gates", "W_x")] == (0, 1) and blocks[("candidate", "W_h")] == (2,)
    assert {t.offset for t in prov.stored if t.role.value == "W_h"} == {D}
    assert not d.b_h.any() and d.W_x.shape == (3 * H, D)
    assert prov.setting("activation").assumed  # type: ignore[union-attr]


def test_basic_rnn_cell_activation_option() -> None:
    path = TF1 / "rnn_basic" / "model.ckpt.index"
    d = lstmviz.load_model(path, activation="relu").layers[0].directions[0]
    assert isinstance(d, RNNDirection) and d.act_cand.name == "relu"
    setting = d.provenance.setting("activation")
    assert setting is not None and not setting.assumed


def test_recurrent_activation_is_refused_for_tf1_cells() -> None:
    with pytest.raises(LoadError, match="recurrent_activation= is for Keras layers"):
        lstmviz.load_model(TF1 / "gru_cell" / "model.ckpt.index", recurrent_activation="relu")


def test_keras_tf2_checkpoint_matches_tf_keras() -> None:
    folder = FIXTURES / "tf" / "keras2" / "tf_ckpt"
    model = lstmviz.load_model(folder / "ckpt.index")
    assert [layer.kind for layer in model.layers] == ["GRU", "SimpleRNN"]
    assert model.source_format.startswith("TF2 object-based checkpoint")
    e = np.load(folder / "expected.npz")
    check_layers(model, e["x"], [e["y0"], e["y1"]])


def test_older_graph_fixtures_of_a_gru_now_open() -> None:
    """tests/fixtures/tf/gru (a GRUCell checkpoint and its frozen GraphDef), once refused as
    'a GRU, not an LSTM', run like TensorFlow did."""
    folder = FIXTURES.parent / "tf" / "gru"
    e = np.load(folder / "expected.npz")
    for path in (folder / "ckpt" / "model.ckpt-1000", folder / "model.pb"):
        model = lstmviz.load_model(path)
        assert [layer.kind for layer in model.layers] == ["GRUCell"]
        check(model, e["x"], e["output"], None)


def test_frozen_keras_graph_gru_bidirectional_gru_lstm_matches_tf_keras() -> None:
    """A frozen GraphDef's Keras GRUs (reset_after=True) are found by their gate Splits, the
    biases through the Unpack of the [2, 3H] variable, and chain with the LSTM after them."""
    path = FIXTURES / "tf" / "keras2" / "frozen_gru.pb"
    model = lstmviz.load_model(path)
    assert [layer.kind for layer in model.layers] == ["GRU", "Bidirectional(GRU)", "LSTM"]
    d = model.layers[0].directions[0]
    assert isinstance(d, GRUDirection) and d.reset_after and d.b_h.any()
    assert not d.provenance.setting("recurrent_activation").assumed  # type: ignore[union-attr]
    e = np.load(FIXTURES / "tf" / "keras2" / "frozen_gru.expected.npz")
    check_layers(model, e["x"], [e["y0"], e["y1"], e["y2"]])


def test_frozen_keras_gru_reset_before_with_hard_sigmoid_matches_tf_keras() -> None:
    """A reset_after=False Keras GRU slices its recurrent kernel in the step (``h R[:, :2H]``,
    ``(r ⊙ h) R[:, 2H:]``): found from the x-side Split; its hard_sigmoid, written out as
    Mul/Add/clip ops, is read as tf.keras' slope 0.2."""
    path = FIXTURES / "tf" / "keras2" / "frozen_gru_before.pb"
    model = lstmviz.load_model(path)
    d = model.layers[0].directions[0]
    assert isinstance(d, GRUDirection) and not d.reset_after and not d.b_h.any()
    assert d.act_gate.name == "hard_sigmoid_k2"
    e = np.load(FIXTURES / "tf" / "keras2" / "frozen_gru_before.expected.npz")
    check_layers(model, e["x"], [e["y0"]])
