"""GRU and plain-RNN files shaped like the ones public packages ship (issue 14's "hidden
real-framework GRU files"), made by the real frameworks in ``tests/fixtures/gru_real``.

The real files behind the fixtures (checked by hand against their frameworks, not committed):
flashvad 0.1.0a1's ``flashvad-stream.onnx`` and livekit-plugins-hush 0.3.3's ``df_dec.onnx``;
g2p_en 2.1.0's ``checkpoint20.npz``; madmom 0.17's ``downbeats_bgru_*.pkl`` and
``onsets_brnn_*.pkl``/``notes_brnn.pkl``; arabic-name-romanizer 0.2.0's ``decoder.onnx`` (a
written-out ``nn.GRUCell``); ao-compensation-model 0.1.6's ``gru_model_edge.tflite``; legere
0.11.0's ``lineclf.pt`` (no recurrent weights). Tests marked xfail wait for a fix outside this
file's owner, named in each reason: remove the mark with the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load

import lstmviz
from lstmviz.core.summary import model_summary
from lstmviz.io.errors import ChoiceRequired

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gru_real"
TOL = 1e-5


def _load_choosing(path: Path, want: str) -> lstmviz.LSTMModel:
    """Open ``path``, answering each choice the reader asks with the one naming ``want``
    (else PyTorch's, for a layout question about PyTorch-order arrays)."""
    options: dict[str, str] = {}
    for _ in range(3):
        try:
            return lstmviz.load_model(path, **options)
        except ChoiceRequired as e:
            picks = [c for c in e.choices if want in c] or [c for c in e.choices if "torch" in c]
            assert picks, f"no choice for {want!r} among {e.choices}"
            options[e.option] = picks[0]
    raise AssertionError(f"{path.name}: still asking after {options}")


def test_streaming_gru_onnx_from_the_torch_export_exporter():
    # flashvad's shape: one frame per call, state in and out of the graph, val_* names.
    expected = np.load(FIXTURES / "stream_gru_expected.npz")
    model = lstmviz.load_model(FIXTURES / "stream_gru.onnx")
    assert [layer.cell.name for layer in model.layers] == ["GRU"]
    out = lstmviz.run(model, expected["x"]).layers[0].output
    np.testing.assert_allclose(out, expected["y"], atol=TOL, rtol=0)


def test_stacked_onnx_gru_nodes_with_initial_states_from_one_graph_input():
    # DeepFilterNet's df_dec shape: 3 GRU nodes, each initial_h a Slice of h_in [3, 1, H].
    expected = np.load(FIXTURES / "stacked_gru_h_in_expected.npz")
    model = lstmviz.load_model(FIXTURES / "stacked_gru_h_in.onnx")
    assert [layer.cell.name for layer in model.layers] == ["GRU", "GRU", "GRU"]
    trace = lstmviz.run(model, expected["x"], h0=list(expected["h_in"]))
    for k in range(3):
        np.testing.assert_allclose(trace.layers[k].output, expected[f"layer{k}"], atol=TOL, rtol=0)


@pytest.mark.parametrize("which", ["enc", "dec"])
def test_g2p_en_style_npz_of_two_grus(which):
    # g2p_en's checkpoint20.npz: PyTorch-order GRUs under short names, enc_ and dec_.
    expected = np.load(FIXTURES / "g2p_style_expected.npz")
    model = _load_choosing(FIXTURES / "g2p_style.npz", which)
    assert [layer.cell.name for layer in model.layers] == ["GRU"]
    out = lstmviz.run(model, expected["x"]).layers[0].output
    np.testing.assert_allclose(out, expected[which], atol=TOL, rtol=0)


def test_unnamed_keras_get_weights_of_a_gru():
    expected = np.load(FIXTURES / "keras_get_weights_gru_expected.npz")
    model = _load_choosing(FIXTURES / "keras_get_weights_gru.npz", "keras")
    assert [layer.cell.name for layer in model.layers] == ["GRU"]
    out = lstmviz.run(model, expected["x"]).layers[0].output
    np.testing.assert_allclose(out, expected["y"], atol=TOL, rtol=0)


@pytest.mark.parametrize("layer", ["encoder", "decoder"])
def test_keras_seq2seq_with_two_gru_branches(layer):
    # netra-transliterate's shape: Bidirectional(GRU) encoder and GRU decoder on two inputs.
    expected = np.load(FIXTURES / "keras_two_gru_branches_expected.npz")
    model = lstmviz.load_model(FIXTURES / "keras_two_gru_branches.keras", layer=layer)
    assert [lay.cell.name for lay in model.layers] == ["GRU"]
    out = lstmviz.run(model, expected[f"x_{layer}"]).layers[0].output
    np.testing.assert_allclose(out, expected[f"y_{layer}"], atol=TOL, rtol=0)


@pytest.mark.parametrize(("name", "cell"), [("madmom_bgru", "GRU"), ("madmom_brnn", "RNN")])
def test_madmom_gru_and_rnn_networks_match_madmom(name, cell):
    # madmom's GRU: reset after with no recurrent bias, update gate u = 1 - z, learned init.
    expected = np.load(FIXTURES / f"{name}_expected.npz")
    model = lstmviz.load_model(FIXTURES / f"{name}.pkl")
    assert [layer.cell.name for layer in model.layers] == [cell, cell]
    trace = lstmviz.run(model, expected["x"])
    for k in range(2):
        np.testing.assert_allclose(trace.layers[k].output, expected[f"layer{k}"], atol=TOL, rtol=0)
    np.testing.assert_allclose(trace.final_output, expected["y"], atol=TOL, rtol=0)


def test_written_out_grucell_refusal_names_gru_nodes():
    bounded_load(FIXTURES / "stepcell_written_out.onnx").assert_refused("GRU")


def test_tflite_refusal_names_tensorflow_lite():
    bounded_load(FIXTURES / "gru_edge.tflite").assert_refused("TensorFlow Lite")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("stream_gru.onnx", {}),
        ("stacked_gru_h_in.onnx", {}),
        ("g2p_style.npz", {"prefix": "enc"}),
        ("madmom_bgru.pkl", {}),
        ("madmom_brnn.pkl", {}),
        ("keras_two_gru_branches.keras", {}),
    ],
)
def test_summary_of_a_model_without_lstm_never_says_lstm(name, options):
    text = model_summary(lstmviz.load_model(FIXTURES / name, **options))
    assert "LSTM" not in text, [line for line in text.splitlines() if "LSTM" in line]


def test_torch_file_without_recurrent_weights_names_gru_and_rnn_too():
    bounded_load(FIXTURES / "cnn_only.pt").assert_refused("GRU", "RNN")
