"""madmom GRU and plain-RNN networks (tests/fixtures/gru/madmom, made and run by madmom 0.17
with make_fixtures.py) load as canonical GRU/RNN directions and reproduce madmom's outputs,
layer by layer and through the FeedForwardLayer head."""

from __future__ import annotations

import numpy as np
import pytest
from test_gru_common import FIXTURES, TOL, reference

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.core.rnn import RNNDirection

HERE = FIXTURES / "madmom"


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("bgru", ["BidirectionalLayer(GRULayer)", "GRULayer"]),
        ("rnn", ["RecurrentLayer", "RecurrentLayer"]),
    ],
)
def test_network_matches_madmom(name: str, kinds: list[str]) -> None:
    model = lstmviz.load_model(HERE / f"{name}.pkl")
    assert [layer.kind for layer in model.layers] == kinds
    e = np.load(HERE / f"{name}_expected.npz")
    trace = lstmviz.run(model, e["x"])
    outs, _ = reference(model, e["x"])
    for k in range(len(model.layers)):
        np.testing.assert_allclose(trace.layers[k].output, e[f"layer{k}"], atol=TOL, rtol=0)
        np.testing.assert_allclose(outs[k], e[f"layer{k}"], atol=TOL, rtol=0)
    np.testing.assert_allclose(trace.head_output, e["y"], atol=TOL, rtol=0)


def test_gru_update_gate_becomes_z_negated() -> None:
    """madmom's h' = u·c + (1 − u)·h: the canonical z = 1 − u = σ(−a), so the z block is the
    update gate's weights negated, and the provenance says so."""
    from lstmviz.io.madmom.network import _unpickle  # inert records: madmom not needed

    net = _unpickle((HERE / "bgru.pkl").read_bytes(), "bgru.pkl")
    update = net["layers"][0]["fwd_layer"]["update_gate"]
    first, second = lstmviz.load_model(HERE / "bgru.pkl").layers
    fw, bw = first.directions
    H = fw.hidden_size
    np.testing.assert_array_equal(fw.W_x[H : 2 * H], -update["weights"].read().T)
    np.testing.assert_array_equal(fw.b_x[H : 2 * H], -update["bias"].read())
    assert isinstance(fw, GRUDirection) and fw.reset_after and not fw.b_h.any()
    assert bw.reverse and not fw.reverse
    assert any("z = 1 − u" in t for t in fw.provenance.transforms)
    assert second.directions[0].h0 is not None  # the learned init
    assert any("init" in n for n in second.directions[0].provenance.notes)


def test_plain_rnn_activations_and_initial_state() -> None:
    first, second = (layer.directions[0] for layer in lstmviz.load_model(HERE / "rnn.pkl").layers)
    assert isinstance(first, RNNDirection) and first.act_cand.name == "tanh"
    assert second.act_cand.name == "relu" and first.h0 is not None and second.h0 is None
