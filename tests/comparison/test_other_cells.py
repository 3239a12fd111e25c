"""compare() on GRU and plain-RNN models: equal files, z/r swapped, bias doubled, unrelated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lstmviz
from lstmviz.comparison import compare
from lstmviz.core.model import LSTMLayer

GRU = Path(__file__).resolve().parents[1] / "fixtures" / "gru"


def _with(model, k, fn):
    layer = model.layers[k]
    dirs = (fn(layer.directions[0]), *layer.directions[1:])
    layers = list(model.layers)
    layers[k] = LSTMLayer(**{**vars(layer), "directions": dirs})
    return model.replace(layers=tuple(layers))


def _keras_order(d):
    """PyTorch's r,z,n blocks written where Keras/ONNX keep z,r,h (and read back as r,z,n)."""
    H = d.hidden_size

    def swap(m):
        return np.concatenate([m[H : 2 * H], m[:H], m[2 * H :]])

    return d.replace(W_x=swap(d.W_x), W_h=swap(d.W_h), b_x=swap(d.b_x), b_h=swap(d.b_h))


def test_gru_equal_in_two_files_and_mixed_stack():
    c = compare(GRU / "torch" / "gru_model.pt", GRU / "torch" / "gru_model.pt")
    assert c.equal and c.diagnoses == []
    assert c.deltas[0].quantities == ("r", "z", "n", "h")
    mixed = GRU / "onnx" / "torch_mixed.onnx"  # an LSTM layer, then a bidirectional GRU
    assert compare(mixed, mixed).equal


def test_gru_gate_order_and_bias_named():
    a = lstmviz.load_model(GRU / "torch" / "gru_model.pt")
    c = compare(a, _with(a, 1, _keras_order))
    assert [(d.kind, d.layer) for d in c.diagnoses] == [("gate_permutation", 1)]
    assert "Keras/ONNX order z,r,h read as r,z,n (PyTorch" in c.diagnoses[0].detail
    assert c.first_divergence.layer == 1
    doubled = _with(a, 0, lambda d: d.replace(b_x=2 * d.b_x, b_h=2 * d.b_h))
    assert compare(a, doubled).kinds == ["bias_doubled"]
    both = _with(
        a,
        1,
        lambda d: _keras_order(d).replace(
            b_x=0.5 * _keras_order(d).b_x, b_h=0.5 * _keras_order(d).b_h
        ),
    )
    assert sorted(compare(a, both).kinds) == ["bias_doubled", "gate_permutation"]


def test_unrelated_gru_and_other_cells_get_no_diagnosis():
    c = compare(GRU / "torch" / "gru_model.pt", GRU / "torch" / "gru_st.safetensors")
    assert not c.equal and c.diagnoses == []
    c = compare(GRU / "torch" / "rnn_tanh.pt", GRU / "torch" / "gru.pt")  # an RNN, a GRU
    assert c.pairs == () and c.diagnoses == [] and not c.equal


def test_head_note_names_the_cells_of_the_model_with_the_head():
    """Only one model with a dense head: the note names its GRUs (it said 'LSTMs')."""
    from lstmviz.core.dense import DenseLayer

    a = lstmviz.load_model(GRU / "torch" / "gru_model.pt")
    b = a.replace(head=(DenseLayer("fc", np.ones((1, a.output_size))),))
    note = "only B has a dense head after its GRUs: compared up to the GRUs"
    assert note in compare(a, b).notes
    mixed = lstmviz.load_model(GRU / "onnx" / "torch_mixed.onnx")  # LSTM, then GRU
    headed = mixed.replace(head=(DenseLayer("fc", np.ones((1, mixed.output_size))),))
    note = "only A has a dense head after its recurrent layers: compared up to the recurrent layers"
    assert note in compare(headed, mixed).notes
