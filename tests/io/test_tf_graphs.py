"""Frozen GraphDefs, SavedModels and checkpoint prefixes made by real TensorFlow
(tests/fixtures/tf/make_graph_fixtures.py, make_keras_graph_fixtures.py) against the outputs
TensorFlow computed for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lstmviz.cli import main as cli_main
from lstmviz.core.compute import run
from lstmviz.core.model import MergeMode
from lstmviz.io import LoadError, find_reader, load_model
from lstmviz.io.probe import Probe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
TOL = 1e-5


def _expected(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name / "expected.npz") as data:
        return dict(data)


def _reference(exp: dict[str, np.ndarray]) -> np.ndarray:
    if "output" in exp:
        return exp["output"]
    return np.concatenate([exp["out_fw"], exp["out_bw"]], 1)


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("basic_head", ["BasicLSTMCell"]),
        ("static_head", ["BasicLSTMCell"]),
        ("peep_proj", ["LSTMCell"]),
        ("multi", ["BasicLSTMCell", "LSTMCell"]),
        ("bidi", ["bidirectional_dynamic_rnn(LSTMCell)"]),
        ("block", ["LSTMBlockCell"]),
    ],
)
def test_frozen_tf1_graph_matches_tensorflow(name: str, kinds: list[str]) -> None:
    path = FIXTURES / name / "model.pb"
    assert find_reader(Probe.open(path)).name == "TensorFlow 1 checkpoint"
    model = load_model(path)
    assert model.source_format == "TensorFlow frozen GraphDef (weights as Const nodes)"
    assert [layer.kind for layer in model.layers] == kinds
    exp = _expected(name)
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, _reference(exp), atol=TOL)
    for layer in model.layers:
        for d in layer.directions:
            assert not d.provenance.setting("forget_bias").assumed  # read from the graph


def test_frozen_graph_gives_settings_as_the_meta_does() -> None:
    (layer,) = load_model(FIXTURES / "peep_proj" / "model.pb").layers
    d = layer.directions[0]
    assert d.provenance.setting("forget_bias").value == 0.7
    assert d.provenance.setting("forget_bias").note.startswith("read from the graph (")
    assert d.provenance.source_format == "TensorFlow frozen GraphDef"
    assert (d.cell_clip, d.proj_clip) == (0.8, 0.6)
    assert d.p_i is not None and d.W_p is not None
    bidi = load_model(FIXTURES / "bidi" / "model.pb").layers[0]
    assert bidi.merge_mode is MergeMode.NONE
    assert [d.act_cand.name for d in bidi.directions] == ["tanh", "relu"]
    block = load_model(FIXTURES / "block" / "model.pb").layers[0].directions[0]
    assert (block.provenance.setting("forget_bias").value, block.cell_clip) == (0.7, 0.9)


@pytest.mark.parametrize(
    "pick",
    [
        "basic_head/model.pb",
        "basic_head/ckpt/model.ckpt-1000",
        "basic_head/ckpt/model.ckpt-1000.index",
        "basic_head/ckpt/model.ckpt-1000.meta",
        "basic_head/saved_model",
        "basic_head/saved_model/saved_model.pb",
        "static_head/model.pb",
        "static_head/ckpt/model.ckpt-1000",
    ],
)
def test_tf1_head_is_run_so_final_output_is_the_logits(pick: str) -> None:
    """``tf.matmul(outputs[-1], weights['out']) + biases['out']`` read from the graph."""
    model = load_model(FIXTURES / pick)
    exp = _expected(pick.split("/")[0])
    (dense,) = model.head
    assert (dense.name, dense.W.shape[1]) == ("Variable", model.output_size)
    assert [t.name for t in dense.stored] == ["Variable", "Variable_1"]
    assert not model.layers[-1].return_sequences
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["logits"], atol=TOL)
    assert any("head read from the graph" in n for n in model.notes)


def test_checkpoint_prefix_opens_from_api_and_cli(tmp_path: Path, capsys) -> None:
    """``saver.save`` returns ``…/model.ckpt-1000``, a prefix that is no file on disk."""
    prefix = FIXTURES / "basic_head" / "ckpt" / "model.ckpt-1000"
    assert not prefix.exists()
    model = load_model(prefix)
    assert model.source_format.startswith("TensorFlow V2 checkpoint")
    assert cli_main([str(prefix), "--info"]) == 0
    assert "BasicLSTMCell" in capsys.readouterr().out
    for f in (FIXTURES / "basic_head" / "ckpt").iterdir():
        shutil.copy(f, tmp_path / f.name.replace("model.ckpt-1000", "model.ckpt"))
    assert load_model(tmp_path / "model.ckpt").layers[0].kind == "BasicLSTMCell"
    with pytest.raises(LoadError, match=r"model\.ckpt-5: no such file"):
        load_model(tmp_path / "model.ckpt-5")


@pytest.mark.parametrize("name", ["basic_head", "peep_proj"])
def test_tf1_saved_model_folder_reads_its_graph(name: str) -> None:
    model = load_model(FIXTURES / name / "saved_model")
    assert model.source_format == (
        "TensorFlow SavedModel (variables.index + 1 data shard + saved_model.pb graph)"
    )
    fb = model.layers[0].directions[0].provenance.setting("forget_bias")
    assert (fb.value, fb.assumed) == ({"basic_head": 0.5, "peep_proj": 0.7}[name], False)
    assert fb.note.startswith("read from saved_model.pb (")
    exp = _expected(name)
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


def test_graph_def_without_an_lstm_says_so() -> None:
    with pytest.raises(LoadError) as err:
        load_model(FIXTURES / "dense_only" / "model.pb")
    assert "TensorFlow GraphDef" in str(err.value) and "without an LSTM" in str(err.value)


def test_gru_graph_def_opens_as_a_gru() -> None:
    """GRUs open since issue 14 (outputs compared in tests/io/test_gru_tf.py)."""
    model = load_model(FIXTURES / "gru" / "model.pb")
    assert [layer.name for layer in model.layers] == ["rnn/gru_cell"]


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("keras2_stack", ["LSTM", "LSTM"]),
        ("keras2_saved", ["LSTM"]),
        ("keras2_bidi", ["Bidirectional(LSTM)"]),
        ("keras3_stack", ["LSTM", "LSTM"]),
        ("keras2_bidi_ave", ["Bidirectional(LSTM)", "LSTM"]),
        ("keras3_bidi_ave", ["Bidirectional(LSTM)", "LSTM"]),
    ],
)
def test_frozen_keras_graph_matches_keras(name: str, kinds: list[str]) -> None:
    """convert_variables_to_constants_v2 of tf_keras and Keras 3 models: layers found from the
    gate Split, activations (relu, hard_sigmoid) from its ops, the Dense head run."""
    model = load_model(FIXTURES / name / "model.pb")
    assert model.source_format.startswith("TensorFlow frozen GraphDef (Keras layers")
    assert [layer.kind for layer in model.layers] == kinds
    exp = _expected(name)
    trace = run(model, exp["x"])
    first = trace.layers[0]
    hidden = first.output if model.layers[0].return_sequences else first.last_output
    np.testing.assert_allclose(hidden, exp["hidden"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["network"], atol=TOL)
    for layer in model.layers:
        for d in layer.directions:
            assert not any(s.assumed for s in d.provenance.settings)


def test_frozen_keras_activations_are_read_from_the_graph() -> None:
    (layer,) = load_model(FIXTURES / "keras2_saved" / "model.pb").layers
    d = layer.directions[0]
    assert (d.act_cand.name, d.act_gate.name) == ("relu", "hard_sigmoid_k2")
    stack = load_model(FIXTURES / "keras3_stack" / "model.pb").layers
    assert [lay.directions[0].act_cand.name for lay in stack] == ["tanh", "relu"]


def test_tf_keras_saved_model_reads_layer_configs_from_keras_metadata() -> None:
    model = load_model(FIXTURES / "keras2_saved" / "saved_model")
    assert model.source_format.startswith("TensorFlow SavedModel")
    d = model.layers[0].directions[0]
    assert (d.act_cand.name, d.act_gate.name) == ("relu", "hard_sigmoid_k2")
    assert [t.name for t in model.head] == ["dense_1"]
    exp = _expected("keras2_saved")
    np.testing.assert_allclose(run(model, exp["x"]).final_output, exp["network"], atol=TOL)


@pytest.mark.parametrize("name", ["keras3_stack", "keras3_bidi_ave"])
def test_keras3_exported_saved_model_is_read_from_its_functions(name: str) -> None:
    """``model.export`` keeps no Keras config and saves every variable twice (``variables/N``
    and ``_all_variables/M``): the traced call's gate Splits, bound to the checkpoint's
    variables by the object graph, give the layers, activations (relu), the Bidirectional
    merge (ave), go_backwards and the Dense head."""
    model = load_model(FIXTURES / name / "saved_model")
    assert model.source_format.startswith("TensorFlow SavedModel (Keras layers")
    for layer in model.layers:
        for d in layer.directions:
            assert not any(s.assumed for s in d.provenance.settings)
    assert [d.name for d in model.head] == ["dense"]
    exp = _expected(name)
    trace = run(model, exp["x"])
    first = trace.layers[0]
    hidden = first.output if model.layers[0].return_sequences else first.last_output
    np.testing.assert_allclose(hidden, exp["hidden"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["network"], atol=TOL)


@pytest.mark.parametrize("pick", ["model.pb", "ckpt/model.ckpt-1000"])
def test_bidirectional_head_of_two_dense_layers(pick: str) -> None:
    """``relu(concat(out_fw, out_bw)[:, -1] @ fc1 + b) @ fc2 + b``: both layers run; TF's
    logits are the head's last row (bw at the last time step, not its last processed step)."""
    model = load_model(FIXTURES / "bidi_head" / pick)
    assert [(d.name, d.activation.name) for d in model.head] == [("fc1", "relu"), ("fc2", "linear")]
    marked = {i.name: [n for n, _s in i.weights] for i in model.all_layers if not i.is_lstm}
    assert marked == {"fc1": ["fc1/kernel", "fc1/bias"], "fc2": ["fc2/kernel", "fc2/bias"]}
    exp = _expected("bidi_head")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    np.testing.assert_allclose(trace.final_output[-1], exp["logits"], atol=TOL)


@pytest.mark.parametrize("pick", ["model.pb", "ckpt/model.ckpt-1000"])
def test_transposed_outputs_head_on_a_stack(pick: str) -> None:
    """``tf.transpose(outputs, [1, 0, 2])[-1] @ Variable + Variable_1`` after a MultiRNNCell."""
    model = load_model(FIXTURES / "multi_transpose_head" / pick)
    exp = _expected("multi_transpose_head")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["logits"], atol=TOL)


@pytest.mark.parametrize("pick", ["frozen_saved_model", "frozen_saved_model/saved_model.pb"])
def test_saved_model_without_variables_reads_its_constants(pick: str) -> None:
    """A SavedModel of a frozen graph has no variables/variables.index: its graph is read
    like a frozen GraphDef."""
    model = load_model(FIXTURES / "basic_head" / pick)
    assert model.source_format == "TensorFlow SavedModel (weights as Const nodes)"
    exp = _expected("basic_head")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["logits"], atol=TOL)


@pytest.mark.parametrize(
    ("name", "skipped"),
    [
        ("gradients/rnn/basic_lstm_cell/MatMul_grad/MatMul", True),
        ("gradients_3/rnn/Mul_grad/Mul", True),
        ("gradients_model/lstm/kernel", False),  # a user scope that only starts alike
        ("rnn/gradients/x", False),
    ],
)
def test_only_tensorflows_gradient_scopes_are_skipped(name: str, skipped: bool) -> None:
    from lstmviz.io.tensorflow.graph import parse_graph_def

    raw = name.encode()
    node = b"\x0a" + bytes([len(raw)]) + raw + b"\x12\x03Mul"
    graph_def = b"\x0a" + bytes([len(node)]) + node
    assert len(parse_graph_def(graph_def)[1]) == (0 if skipped else 1)


@pytest.mark.parametrize(
    ("pick", "kind"), [("gru/ckpt/model.ckpt-1000", "GRUCell"), ("keras2_gru/ckpt", "GRU")]
)
def test_gru_checkpoints_open_as_grus(pick: str, kind: str) -> None:
    """GRUs open since issue 14 (outputs compared in tests/io/test_gru_tf.py)."""
    assert [layer.kind for layer in load_model(FIXTURES / pick).layers] == [kind]


def test_graph_def_with_unmatched_lstm_ops_says_so(tmp_path: Path) -> None:
    """An LSTM whose weights are not constants (a GraphDef saved before freezing) is no
    'graph without an LSTM': the message names the LSTM scope."""
    from lstmviz.io.wire import protowire as pw

    data = (FIXTURES / "basic_head" / "model.pb").read_bytes()
    kept = b""
    for number, _wire, raw in pw.iter_fields(data):
        node = pw.parse(raw)
        if pw.get_string(node, 2) == "Const" and pw.get_string(node, 1).endswith("kernel"):
            continue  # drop the kernel: the cell's MatMul then reads nothing known
        kept += b"\x0a" + pw_len(len(raw)) + bytes(raw) if number == 1 else b""
    (tmp_path / "model.pb").write_bytes(kept)
    with pytest.raises(LoadError) as err:
        load_model(tmp_path / "model.pb")
    assert "LSTM ops (rnn" in str(err.value)


def pw_len(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


@pytest.mark.parametrize("name", ["keras2_bidi_ave", "keras3_bidi_ave"])
def test_frozen_keras_merge_mode_and_go_backwards_come_from_the_graph(name: str) -> None:
    bidi, backwards = load_model(FIXTURES / name / "model.pb").layers
    assert bidi.merge_mode is MergeMode.AVE
    assert [d.reverse for d in bidi.directions] == [False, True]
    assert backwards.directions[0].reverse
    assert backwards.output_order.value == "processing"  # Keras returns it in reading order


@pytest.mark.parametrize("pick", ["model.pb", "ckpt/model.ckpt-1000"])
def test_keras_layers_built_in_a_tf1_graph_read_their_activations_from_it(pick: str) -> None:
    """tf.keras LSTM(activation='relu') in a TF1 graph: frozen, or a Saver checkpoint with its
    .meta: the gate ops give relu (the names alone would assume tanh), the Dense head runs."""
    model = load_model(FIXTURES / "keras_graph_mode" / pick)
    (layer,) = model.layers
    assert layer.directions[0].act_cand.name == "relu"
    assert "Keras layers" in model.source_format
    exp = _expected("keras_graph_mode")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["hidden"], atol=TOL)
    np.testing.assert_allclose(trace.final_output, exp["network"], atol=TOL)


def test_tf_keras_saved_model_without_keras_metadata_is_read_from_its_functions(
    tmp_path: Path,
) -> None:
    """The same tf.keras SavedModel with keras_metadata.pb removed: its traced functions
    (standard_lstm and its loop, the weights passed in as arguments) give relu and
    hard_sigmoid and the Dense head."""
    folder = tmp_path / "saved_model"
    shutil.copytree(FIXTURES / "keras2_saved" / "saved_model", folder)
    (folder / "keras_metadata.pb").unlink()
    model = load_model(folder)
    assert model.source_format.startswith("TensorFlow SavedModel (Keras layers")
    d = model.layers[0].directions[0]
    assert (d.act_cand.name, d.act_gate.name) == ("relu", "hard_sigmoid_k2")
    exp = _expected("keras2_saved")
    np.testing.assert_allclose(run(model, exp["x"]).final_output, exp["network"], atol=TOL)


def test_layer_normalised_lstm_cell_is_refused_not_run_as_a_plain_one() -> None:
    with pytest.raises(LoadError) as err:
        load_model(FIXTURES / "layer_norm_cell" / "ckpt" / "model.ckpt-1000")
    assert "LayerNormBasicLSTMCell" in str(err.value)
