"""More TensorFlow checkpoints against TensorFlow's own outputs: graph-mode variants
(make_more_fixtures.py, TF 2.21 and 2.15) and TF2 object-based checkpoints of Keras models
(make_tf2_fixtures.py: tf_keras 2.21, tf.keras 2.15, Keras 3)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lstmviz.core.compute import run
from lstmviz.core.model import MergeMode
from lstmviz.io import ChoiceRequired, LoadError, find_reader, load_model
from lstmviz.io.probe import Probe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"
TOL = 1e-5
GRAPH_FIXTURES = (
    "static_all",
    "static_all_tf215",
    "multi3",
    "multi3_tf215",
    "bidi_static",
    "bidi_static_tf215",
    "encoder_adam",
    "custom_name",
    "block_fused",
    "sharded",
)


def _expected(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name / "expected.npz") as data:
        return dict(data)


def _settings(model) -> list[dict[str, tuple]]:
    return [
        {s.name: (s.value, s.assumed) for s in d.provenance.settings}
        for layer in model.layers
        for d in layer.directions
    ]


@pytest.mark.parametrize("name", GRAPH_FIXTURES)
def test_graph_mode_checkpoints_match_tensorflow_with_settings_from_the_meta(name: str) -> None:
    model = load_model(FIXTURES / name)
    exp = _expected(name)
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)
    for settings in _settings(model):
        assert not any(assumed for _value, assumed in settings.values()), settings


@pytest.mark.parametrize("name", ["static_all", "static_all_tf215"])
def test_every_lstm_cell_option_is_read_from_a_static_graph(name: str) -> None:
    model = load_model(FIXTURES / name)
    (settings,) = _settings(model)
    assert settings["forget_bias"][0] == 0.7 and settings["activation"][0] == "softsign"
    assert (settings["cell_clip"][0], settings["proj_clip"][0]) == (0.5, 0.3)
    w = model.layers[0].directions[0]
    assert w.has_peepholes and w.W_p.shape == (3, 4) and w.act_cand.name == "softsign"
    d = run(model, _expected(name)["x"]).layers[0].directions[0]
    assert np.isclose(np.abs(d.c).max(), 0.5) and np.abs(d.h).max() <= 0.3 + 1e-7


def test_three_layer_stack_keeps_each_cells_own_settings() -> None:
    model = load_model(FIXTURES / "multi3")
    assert [layer.kind for layer in model.layers] == ["BasicLSTMCell", "LSTMCell", "BasicLSTMCell"]
    assert [layer.output_size for layer in model.layers] == [5, 3, 2]
    fbs = [s["forget_bias"][0] for s in _settings(model)]
    acts = [s["activation"][0] for s in _settings(model)]
    assert fbs == [1.0, 0.3, 2.0] and acts == ["tanh", "tanh", "relu"]
    assert model.layers[1].directions[0].has_peepholes


def test_static_bidirectional_rnn_is_recognised_from_its_graph() -> None:
    model = load_model(FIXTURES / "bidi_static")
    (layer,) = model.layers
    assert layer.kind == "static_bidirectional_rnn(LSTMCell)"
    assert layer.merge_mode is MergeMode.CONCAT and not model.notes
    fw, bw = (d.provenance.setting("forget_bias").value for d in layer.directions)
    assert (fw, bw) == (0.5, 1.5)


def test_custom_scope_with_adam_slots_global_step_and_a_dense_head() -> None:
    model = load_model(FIXTURES / "encoder_adam")
    assert [layer.name for layer in model.layers] == ["encoder/rnn/lstm_cell"]
    # 2 Adam slots for each of the 4 variables, beta1/beta2 powers, global_step
    assert any("skipped 11 optimizer/bookkeeping" in n for n in model.notes)
    others = {info.name: info.kind for info in model.all_layers if not info.is_lstm}
    assert others == {"head": "Dense"}
    assert model.layers[0].directions[0].provenance.setting("forget_bias").value == 0.5


def test_a_cell_under_a_custom_name_needs_the_meta_or_scope(tmp_path: Path) -> None:
    assert load_model(FIXTURES / "custom_name").layers[0].name == "enc/my_cell"
    for f in (FIXTURES / "custom_name").glob("model.ckpt.[id]*"):
        shutil.copy(f, tmp_path / f.name)
    with pytest.raises(LoadError, match="pass scope='enc/my_cell'") as info:
        load_model(tmp_path)
    assert "\n" not in str(info.value)
    model = load_model(tmp_path, scope="enc/my_cell", forget_bias=0.5)
    exp = _expected("custom_name")
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


def test_fused_block_lstm_settings_come_from_the_op() -> None:
    model = load_model(FIXTURES / "block_fused")
    w = model.layers[0].directions[0]
    assert model.layers[0].kind == "LSTMBlockFusedCell"
    assert w.provenance.setting("forget_bias").value == 0.6 and w.cell_clip is None


@pytest.mark.parametrize(
    "pick", ["model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002"]
)
def test_sharded_checkpoint_reads_both_shards(tmp_path: Path, pick: str) -> None:
    model = load_model(FIXTURES / "sharded" / pick)
    assert "2 data shards" in model.source_format
    for f in (FIXTURES / "sharded").iterdir():
        if f.name != pick:
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(LoadError, match=f"{pick} is missing"):
        load_model(tmp_path / "model.ckpt.index")


def test_name_based_keras_layers_assume_defaults_and_take_overrides() -> None:
    exp = _expected("keras_v1")
    assumed = load_model(FIXTURES / "keras_v1")
    w = assumed.layers[0].directions[0]
    assert w.provenance.setting("recurrent_activation").assumed
    assert any("hard_sigmoid" in n for n in assumed.notes)
    assert np.abs(run(assumed, exp["x"]).output - exp["output"]).max() > 1e-3  # v1 default
    fixed = load_model(FIXTURES / "keras_v1", recurrent_activation="hard_sigmoid_k2")
    setting = fixed.layers[0].directions[0].provenance.setting("recurrent_activation")
    assert (setting.value, setting.assumed) == ("hard_sigmoid_k2", False)
    np.testing.assert_allclose(run(fixed, exp["x"]).output, exp["output"], atol=TOL)
    with pytest.raises(LoadError, match="ambiguous"):
        load_model(FIXTURES / "keras_v1", recurrent_activation="hard_sigmoid")


def test_checkpoint_file_names_an_older_step_than_the_newest(tmp_path: Path) -> None:
    exp = _expected("steps")
    folder = FIXTURES / "steps"
    for pick, key in [
        (".", "output_1"),
        ("checkpoint", "output_1"),
        ("model.ckpt-2.index", "output_2"),
    ]:
        model = load_model(folder / pick)
        np.testing.assert_allclose(run(model, exp["x"]).output, exp[key], atol=TOL, err_msg=pick)
    for f in folder.glob("model.ckpt-*"):
        shutil.copy(f, tmp_path / f.name)
    os.utime(tmp_path / "model.ckpt-2.index", (1, 1))  # without the state file: newest index
    np.testing.assert_allclose(
        run(load_model(tmp_path), exp["x"]).output, exp["output_1"], atol=TOL
    )


# --- TF2 object-based checkpoints ---------------------------------------------------------


def test_tf_keras_save_weights_stack_with_bidirectional() -> None:
    path = FIXTURES / "tf2_keras_stack"
    assert find_reader(Probe.open(path / "ckpt.index")).name == "TensorFlow 1 checkpoint"
    model = load_model(path)
    exp = _expected("tf2_keras_stack")
    assert [(layer.name, layer.kind) for layer in model.layers] == [
        ("lstm", "LSTM"),
        ("bidirectional", "Bidirectional(LSTM)"),
    ]
    assert model.source_format.startswith("TF2 object-based checkpoint")
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)
    settings = _settings(model)[0]
    assert settings["recurrent_activation"] == ("sigmoid", True)
    assert settings["activation"] == ("tanh", True)
    assert any("merge_mode" in n and "assumed" in n for n in model.notes)
    kernel = model.layers[0].directions[0].provenance.stored[0].name
    assert kernel == "layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert "dense" in {info.name for info in model.all_layers}


def test_tf1_cell_inside_a_keras_rnn_in_an_object_checkpoint() -> None:
    model = load_model(FIXTURES / "tf2_tf1_cell" / "ckpt.data-00000-of-00001")
    exp = _expected("tf2_tf1_cell")
    w = model.layers[0].directions[0]
    assert model.layers[0].kind == "LSTMCell" and w.has_peepholes
    assert w.provenance.setting("forget_bias").assumed  # not in the file; TF's 1.0
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


def test_tf_keras_215_checkpoint_with_legacy_adam_slots() -> None:
    from test_gru_common import check  # the GRU opens since issue 14: x runs GRU → LSTM

    model = load_model(FIXTURES / "tf2_checkpoint_tf215" / "checkpoint")
    exp = _expected("tf2_checkpoint_tf215")
    assert [layer.name for layer in model.layers] == ["gru", "lstm"]
    check(model, exp["x"], exp["output"], None)
    kinds = {info.name: info.kind for info in model.all_layers}
    assert kinds["gru"] == "GRU" and kinds["dense"] == "Dense"
    assert not any(
        "OPTIMIZER_SLOT" in name for info in model.all_layers for name, _ in info.weights
    )


def test_keras3_subclassed_model_reached_through_the_optimizer() -> None:
    model = load_model(FIXTURES / "tf2_keras3_subclassed")
    exp = _expected("tf2_keras3_subclassed")
    assert [layer.name for layer in model.layers] == ["model/encoder", "model/decoder"]
    assert model.framework.startswith("Keras 3")
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


def test_corrupt_object_graph_is_a_one_line_error(tmp_path: Path) -> None:
    for f in (FIXTURES / "tf2_keras_stack").iterdir():
        shutil.copy(f, tmp_path / f.name)
    data = tmp_path / "ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    at = raw.find(b"layer_with_weights-0")  # inside the object graph string
    raw[at] ^= 0x20
    data.write_bytes(bytes(raw))
    with pytest.raises(LoadError, match="_CHECKPOINTABLE_OBJECT_GRAPH: checksum mismatch") as info:
        load_model(tmp_path)
    assert "\n" not in str(info.value)


def test_bidirectional_rnn_over_two_multi_rnn_cells_loads_one_stack_at_a_time() -> None:
    folder = FIXTURES / "bidi_multi"
    exp = _expected("bidi_multi")
    with pytest.raises(ChoiceRequired) as info:
        load_model(folder)
    assert info.value.choices == (
        "bidirectional_rnn/bw/multi_rnn_cell",
        "bidirectional_rnn/fw/multi_rnn_cell",
    )
    assert "merges them only at the end" in str(info.value)
    fw = load_model(folder, scope="bidirectional_rnn/fw/multi_rnn_cell")
    np.testing.assert_allclose(run(fw, exp["x"]).output, exp["out_fw"], atol=TOL)
    bw = load_model(folder, scope="bidirectional_rnn/bw/multi_rnn_cell", forget_bias=0.5)
    assert all(layer.directions[0].reverse for layer in bw.layers)  # each layer reads backwards
    np.testing.assert_allclose(run(bw, exp["x"]).output, exp["out_bw"], atol=TOL)  # time order
