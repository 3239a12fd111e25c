"""madmom's pickled networks: parity with madmom's own ``NeuralNetwork.process``, refusals that
name what a network is, and hostile pickles that name madmom.

Fixtures: ``tests/fixtures/madmom/make_madmom_fixtures.py`` (real madmom, pickled as madmom's
shipped Python 2 models are). Checked by hand beside this suite: all 24 LSTM models madmom
0.17 ships (beats 2015 BLSTM ×8, beats 2016 LSTM ×8, downbeats BLSTM ×8) open and match
``NeuralNetwork.process`` within 1e-6 on random 300-step inputs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load

import lstmviz
from lstmviz.io import LoadError, find_reader
from lstmviz.io.probe import Probe

FIXTURES = Path(__file__).parents[1] / "fixtures" / "madmom"


@pytest.mark.parametrize("name", ["blstm_lstm_softmax", "lstm_protocol0"])
def test_matches_madmom(name):
    model = lstmviz.load_model(FIXTURES / f"{name}.pkl")
    expected = np.load(FIXTURES / f"{name}_expected.npz")
    trace = lstmviz.run(model, expected["x"])
    for k, layer in enumerate(trace.layers):
        # a FeedForwardLayer between two LSTMs runs as the next layer's ``before``
        if f"layer{k}" in expected and expected[f"layer{k}"].shape == layer.output.shape:
            np.testing.assert_allclose(layer.output, expected[f"layer{k}"], atol=1e-5)
    np.testing.assert_allclose(trace.network_output, expected["y"], atol=1e-5)
    assert model.framework == "madmom"


def test_every_layer_of_the_mixed_network():
    model = lstmviz.load_model(FIXTURES / "blstm_lstm_softmax.pkl")
    expected = np.load(FIXTURES / "blstm_lstm_softmax_expected.npz")
    trace = lstmviz.run(model, expected["x"])
    np.testing.assert_allclose(trace.layers[0].output, expected["layer0"], atol=1e-5)
    np.testing.assert_allclose(trace.layers[1].output, expected["layer1"], atol=1e-5)
    first, second = model.layers
    assert first.bidirectional and first.directions[1].reverse
    assert first.directions[0].has_peepholes
    assert second.directions[0].h0 is not None and second.directions[0].c0 is not None
    assert any("initial" in n for n in second.directions[0].provenance.notes)


def test_dense_layer_between_lstms_and_no_peepholes():
    model = lstmviz.load_model(FIXTURES / "lstm_protocol0.pkl")
    assert not model.layers[0].directions[0].has_peepholes
    assert len(model.layers[1].before) == 1 and len(model.head) == 1


def test_gru_with_tanh_gates_is_refused_and_plain_rnn_opens():
    """GRU and plain RNN layers open since issue 14 (tests/io/test_gru_madmom.py, against
    madmom's outputs); this bgru.pkl builds its gates from GRUCells (tanh), which madmom
    itself cannot run and lstmviz refuses by name."""
    with pytest.raises(LoadError, match="reset/update gates use tanh/tanh"):
        lstmviz.load_model(FIXTURES / "bgru.pkl")
    assert [layer.kind for layer in lstmviz.load_model(FIXTURES / "rnn.pkl").layers] == [
        "RecurrentLayer"
    ]


def test_sniffs_only_madmom_pickles(tmp_path):
    reader = find_reader(Probe.open(FIXTURES / "lstm_protocol0.pkl"))
    assert reader is not None and reader.name == "madmom"
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"weights": np.zeros(3)}, protocol=2))
    assert find_reader(Probe.open(other)).name != "madmom"


def _madmom_pickle(body: bytes) -> bytes:
    return b"\x80\x02cmadmom.ml.nn\nNeuralNetwork\n" + body


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        # a pickle naming madmom that calls os.system: refused by name, nothing run
        (b")\x81}X\x06\x00\x00\x00layerscos\nsystem\nX\x04\x00\x00\x00true\x85Rsb.", "os.system"),
        # nested tuples deep enough to crash a C hash
        (b")\x81}X\x01\x00\x00\x00a(" + b"\x85" * 300_000 + b"Nsb.", "madmom"),
        # a declared 3 GB bytearray
        (b")\x81}X\x01\x00\x00\x00a\x96" + (3 << 30).to_bytes(8, "little") + b"sb.", "madmom"),
        (b")\x81}X\x06\x00\x00\x00layers]sb.", "without an LSTM, GRU or plain recurrent layer"),
        (b")\x81}X\x06\x00\x00\x00layersNsb.", "no list of layers"),
        (b")\x81", "damaged"),
    ],
)
def test_hostile_madmom_pickles_are_bounded(tmp_path, body, needle):
    path = tmp_path / "net.pkl"
    path.write_bytes(_madmom_pickle(body))
    bounded_load(path).assert_refused(needle)


def test_truncated_real_fixture_is_refused(tmp_path):
    data = (FIXTURES / "blstm_lstm_softmax.pkl").read_bytes()
    for cut in (len(data) // 3, len(data) - 5):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        bounded_load(path).assert_refused(path.name)


def test_the_summary_lists_each_layers_trained_arrays():
    model = lstmviz.load_model(FIXTURES / "blstm_lstm_softmax.pkl")
    first = model.all_layers[0]
    names = dict(first.weights)
    assert names["fwd_layer.input_gate.weights"] == (3, 4)
    assert names["bwd_layer.cell.recurrent_weights"] == (4, 4)
    # 2 directions x (4 gates x (weights, recurrent_weights, bias) + 3 peephole vectors)
    assert first.n_params == 2 * (4 * (3 * 4 + 4 * 4 + 4) + 3 * 4)
    assert model.all_layers[2].weights == (("weights", (5, 3)), ("bias", (3,)))
