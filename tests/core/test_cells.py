"""The cell descriptions, and the GRU/RNN direction classes built on them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from lstmviz.core.activations import Activation
from lstmviz.core.cells import (
    CELLS,
    GRU_CELL,
    GRU_RESET_BEFORE_CELL,
    LSTM_CELL,
    RNN_CELL,
    cell_of,
)
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import GATES, LSTMDirection, LSTMLayer, LSTMModel, Provenance
from lstmviz.core.rnn import RNNDirection

rng = np.random.default_rng(0)


def _gru(D: int = 3, H: int = 2, **kw: object) -> GRUDirection:
    return GRUDirection(rng.normal(size=(3 * H, D)), rng.normal(size=(3 * H, H)), **kw)


def test_lstm_cell_is_what_the_lstm_code_assumed() -> None:
    assert LSTM_CELL.gate_names == GATES == ("i", "f", "g", "o")
    assert LSTM_CELL.state_names == ("h", "c")
    assert [g.role for g in LSTM_CELL.gates] == ["gate", "gate", "candidate", "gate"]
    assert LSTM_CELL.perm("keras") == (0, 1, 2, 3)
    assert LSTM_CELL.perm("tf1") == (0, 2, 1, 3)
    assert LSTM_CELL.perm("onnx") == (0, 2, 3, 1)
    assert LSTM_CELL.block("o", 5) == slice(15, 20)


def test_gru_orders_map_stored_blocks_to_r_z_n() -> None:
    """canonical block k = stored block perm[k]: Keras/ONNX z,r,h -> r is stored block 1."""
    for framework, stored in (("keras", "zrh"), ("onnx", "zrh"), ("torch", "rzn"), ("tf1", "ruc")):
        order = GRU_CELL.stored_order(framework)
        assert "".join(order.names) == stored
        shown = [order.names[p] for p in order.perm]
        want = {"keras": "rzh", "onnx": "rzh", "torch": "rzn", "tf1": "ruc"}[framework]
        assert "".join(shown) == want
    with pytest.raises(KeyError, match="known"):
        GRU_CELL.perm("caffe")


def test_equations_fill_one_units_numbers() -> None:
    c = next(e for e in LSTM_CELL.equations if e.target == "c")
    assert c.slots == ("f", "c_prev", "i", "g")
    line = c.fill({"f": 0.5, "c_prev": -1.0, "i": 0.25, "g": 2.0}, lambda v: f"{v:.2f}")
    assert line == "0.50·-1.00 + 0.25·2.00"
    n = next(e for e in GRU_CELL.equations if e.gate == "n")
    assert n.symbolic == "n = act_cand(W_x·x_t + b_x + r⊙(W_h·h_(t-1) + b_h))"
    assert n.fill({"act_cand": "tanh", "z_x": 1, "b": 2, "cand_h": 3}) == "tanh(1.0 + 2.0 + 3.0)"
    n1 = next(e for e in GRU_RESET_BEFORE_CELL.equations if e.gate == "n")
    assert [t.key for t in GRU_RESET_BEFORE_CELL.gate("n").terms] == ["z_x", "cand_h", "b"]
    assert "W_h·(r⊙h_(t-1))" in n1.symbolic
    h = GRU_CELL.equations[-1]
    assert h.fill({"z": 0.25, "n": 1, "h_prev": -1}) == "(1 − 0.25)·1.0 + 0.25·-1.0"
    every = {e.target for cell in CELLS for e in cell.equations}
    assert {"i", "f", "g", "o", "c", "m", "h", "r", "z", "n"} <= every


def test_quantities_name_gates_states_and_pre_activations() -> None:
    assert GRU_CELL.quantities == ("r", "z", "n", "h", "h_prev", "pre_r", "pre_z", "pre_n")
    assert "act_c" in LSTM_CELL.quantities and "c_prev" in LSTM_CELL.quantities
    assert RNN_CELL.quantities == ("n", "h", "h_prev", "pre_n")
    assert GRU_CELL.retention_gate == "z" and LSTM_CELL.retention_gate == "f"


def test_gru_direction_shapes_and_defaults() -> None:
    g = _gru(D=3, H=2)
    assert (g.hidden_size, g.input_size, g.output_size) == (2, 3, 2)
    assert cell_of(g) is GRU_CELL and g.kind == "GRU"
    assert g.b_x.shape == g.b_h.shape == (6,) and not g.b_x.any()
    assert g.W_x.flags.writeable is False and g.b_h.flags.writeable is False
    assert g.n_params == 6 * 3 + 6 * 2 + 12
    assert g.provenance.gate_order == ("r", "z", "n") and g.provenance.perm == (0, 1, 2)
    assert g.provenance.describe().endswith("shown as r,z,n")
    np.testing.assert_array_equal(g.gate(g.W_x, "z"), g.W_x[2:4])
    assert g.gate_activation("n").name == "tanh" and g.gate_activation("r").name == "sigmoid"
    assert cell_of(_gru(reset_after=False)) is GRU_RESET_BEFORE_CELL
    kept = _gru(provenance=Provenance("Keras 3", gate_order=("z", "r", "h"), perm=(1, 0, 2)))
    assert kept.provenance.perm == (1, 0, 2) and kept.provenance.gate_order == ("z", "r", "h")
    half = _gru(provenance=Provenance("x", gate_order=("z", "r", "h")))  # perm left at LSTM's
    assert half.provenance.gate_order == ("z", "r", "h") and half.provenance.perm == (0, 1, 2)


def test_gru_shown_bias_keeps_b_hn_apart_when_reset_after() -> None:
    b_x, b_h = np.arange(6.0), 10 * np.arange(6.0)
    after = _gru(b_x=b_x, b_h=b_h)
    np.testing.assert_array_equal(after.b, [0, 11, 22, 33, 4, 5])  # n: b_x only
    before = _gru(b_x=b_x, b_h=b_h, reset_after=False)
    np.testing.assert_array_equal(before.b, b_x + b_h)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"W_x": np.ones((4, 3)), "W_h": np.ones((4, 2))}, r"W_x must be \(3H, D\)"),
        ({"W_x": np.ones((6, 3)), "W_h": np.ones((6, 3))}, r"W_h must be \(6, 2\)"),
        ({"W_x": np.ones((6, 3)), "W_h": np.ones((6, 2)), "b_h": np.ones(5)}, "b_h must be"),
        ({"W_x": np.ones((6, 3)), "W_h": np.ones((6, 2)), "h0": np.ones(3)}, "h0 must be"),
        (
            {"W_x": np.ones((6, 3)), "W_h": np.ones((6, 2)), "act_cand": Activation("softmax")},
            "element-wise",
        ),
    ],
)
def test_gru_direction_refuses_bad_shapes(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GRUDirection(**kwargs)


def test_rnn_direction() -> None:
    r = RNNDirection(rng.normal(size=(4, 3)), rng.normal(size=(4, 4)), act_cand=Activation("relu"))
    assert cell_of(r) is RNN_CELL and r.hidden_size == 4 and r.activation.name == "relu"
    assert r.n_params == 12 + 16 + 4 and r.provenance.shown_as == ("n",)
    with pytest.raises(ValueError, match=r"W_h must be \(4, 4\)"):
        RNNDirection(np.ones((4, 3)), np.ones((4, 3)))


def test_pickle_keeps_gru_arrays_read_only() -> None:
    g = pickle.loads(pickle.dumps(_gru()))
    assert not g.W_h.flags.writeable and g.cell is GRU_CELL


def test_layers_hold_one_cell_kind_and_models_mix_them() -> None:
    lstm = LSTMDirection(np.ones((8, 3)), np.ones((8, 2)), np.zeros(8))
    gru = _gru(D=2, H=2)
    with pytest.raises(ValueError, match="same kind of cell"):
        LSTMLayer("mixed", (lstm, _gru(D=3, H=2, reverse=True)))
    model = LSTMModel((LSTMLayer("a", (lstm,)), LSTMLayer("b", (gru,), kind="GRU")))
    assert [layer.cell.name for layer in model.layers] == ["LSTM", "GRU"]
    assert cell_of(model.layers[1]) is GRU_CELL
    assert model.n_params == lstm.n_params + gru.n_params
    with pytest.raises(ValueError, match="expects 3 inputs"):
        LSTMModel((LSTMLayer("b", (gru,)), LSTMLayer("a", (lstm,))))
