"""TF1 checkpoints made by real TensorFlow (tests/fixtures/tf1/make_fixtures.py) against the
outputs TensorFlow computed for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lstmviz.core.compute import run
from lstmviz.core.model import MergeMode
from lstmviz.core.summary import model_summary
from lstmviz.io import ChoiceRequired, LoadError, find_reader, load_model
from lstmviz.io.probe import Probe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"
TOL = 1e-5
SIMPLE = ("basic", "peep_proj", "block", "cudnn_compatible", "big", "old_names")


def _expected(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name / "expected.npz") as data:
        return dict(data)


@pytest.mark.parametrize("name", SIMPLE)
def test_single_cell_matches_tensorflow(name: str) -> None:
    model = load_model(FIXTURES / name / "model.ckpt.index")
    exp = _expected(name)
    trace = run(model, exp["x"])
    direction = trace.layers[0].directions[0]
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    np.testing.assert_allclose(direction.h_last, exp["h"], atol=TOL)
    np.testing.assert_allclose(direction.c_last, exp["c"], atol=TOL)


def test_multi_rnn_cell_stack_matches_tensorflow() -> None:
    model = load_model(FIXTURES / "multi")
    exp = _expected("multi")
    trace = run(model, exp["x"])
    assert [layer.kind for layer in model.layers] == ["BasicLSTMCell", "LSTMCell"]
    assert [layer.name for layer in model.layers] == [
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell",
        "rnn/multi_rnn_cell/cell_1/lstm_cell",
    ]
    np.testing.assert_allclose(trace.output, exp["output"], atol=TOL)
    for k in (0, 1):
        d = trace.layers[k].directions[0]
        np.testing.assert_allclose(d.h_last, exp[f"h{k}"], atol=TOL)
        np.testing.assert_allclose(d.c_last, exp[f"c{k}"], atol=TOL)
    fbs = [layer.directions[0].provenance.setting("forget_bias") for layer in model.layers]
    assert [s.value for s in fbs] == [1.0, 2.0] and not any(s.assumed for s in fbs)


def test_bidirectional_dynamic_rnn_is_one_layer_with_separate_outputs() -> None:
    model = load_model(FIXTURES / "bidi" / "model.ckpt.meta")
    exp = _expected("bidi")
    (layer,) = model.layers
    assert layer.bidirectional and layer.merge_mode is MergeMode.NONE
    assert layer.kind == "bidirectional_dynamic_rnn(LSTMCell)"
    assert any("out_bw" in note and "concatenated" in note for note in model.notes)
    fw, bw = layer.directions
    assert (fw.act_cand.name, bw.act_cand.name, bw.act_cell.name) == ("tanh", "relu", "relu")
    assert bw.provenance.setting("forget_bias").value == 0.25
    trace = run(model, exp["x"])
    tf_fw, tf_bw = trace.layers[0].directions
    np.testing.assert_allclose(tf_fw.h, exp["out_fw"], atol=TOL)
    np.testing.assert_allclose(tf_bw.h, exp["out_bw"], atol=TOL)  # both in time order
    np.testing.assert_allclose(
        trace.output, np.concatenate([exp["out_fw"], exp["out_bw"]], 1), atol=TOL
    )
    np.testing.assert_allclose(tf_bw.c_last, exp["c_bw"], atol=TOL)
    np.testing.assert_allclose(tf_fw.h_last, exp["h_fw"], atol=TOL)


def test_stacked_bidirectional_concatenates_each_layer() -> None:
    model = load_model(FIXTURES / "stack_bidi" / "checkpoint")
    exp = _expected("stack_bidi")
    assert [layer.merge_mode for layer in model.layers] == [MergeMode.CONCAT, MergeMode.CONCAT]
    assert [layer.input_size for layer in model.layers] == [2, 6]
    assert model.layers[0].kind == "stack_bidirectional_dynamic_rnn(LSTMCell)"
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


@pytest.mark.parametrize(
    "pick",
    ["model.ckpt.index", "model.ckpt.data-00000-of-00001", "model.ckpt.meta", "checkpoint", "."],
)
def test_every_file_of_the_checkpoint_can_be_picked(pick: str) -> None:
    path = FIXTURES / "basic" / pick
    assert find_reader(Probe.open(path)).name == "TensorFlow 1 checkpoint"
    model = load_model(path)
    assert model.layers[0].directions[0].provenance.setting("forget_bias").value == 0.5
    exp = _expected("basic")
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL)


def test_forget_bias_is_read_from_meta_and_folded_into_b_f() -> None:
    model = load_model(FIXTURES / "basic")
    w = model.layers[0].directions[0]
    setting = w.provenance.setting("forget_bias")
    assert (setting.value, setting.assumed) == (0.5, False)
    assert ".meta" in setting.note
    assert "forget_bias 0.5 added to b_f (runtime constant, not stored)" in w.provenance.transforms
    assert "TensorFlow 2.21" in model.framework  # meta_info_def.tensorflow_version


def test_without_meta_the_default_is_assumed_and_override_fixes_it(tmp_path: Path) -> None:
    for f in (FIXTURES / "basic").glob("model.ckpt.[id]*"):
        shutil.copy(f, tmp_path / f.name)
    exp = _expected("basic")
    assumed = load_model(tmp_path / "model.ckpt.index")
    setting = assumed.layers[0].directions[0].provenance.setting("forget_bias")
    assert (setting.value, setting.assumed) == (1.0, True)
    assert (
        "forget_bias=1.0 (default assumed)" in assumed.layers[0].directions[0].provenance.describe()
    )
    assert np.abs(run(assumed, exp["x"]).output - exp["output"]).max() > 1e-3  # TF used 0.5
    fixed = load_model(tmp_path / "model.ckpt.index", forget_bias=0.5)
    user = fixed.layers[0].directions[0].provenance.setting("forget_bias")
    assert (user.value, user.assumed, user.note) == (0.5, False, "given by the user")
    np.testing.assert_allclose(run(fixed, exp["x"]).output, exp["output"], atol=TOL)
    b_diff = assumed.layers[0].directions[0].b - fixed.layers[0].directions[0].b
    np.testing.assert_allclose(b_diff, np.r_[np.zeros(6), np.full(6, 0.5), np.zeros(12)], atol=1e-7)


def test_user_override_beats_the_meta_graph() -> None:
    model = load_model(FIXTURES / "peep_proj", forget_bias=0.0, cell_clip=0.5)
    w = model.layers[0].directions[0]
    assert w.cell_clip == 0.5 and w.provenance.setting("cell_clip").note == "given by the user"
    assert w.provenance.setting("forget_bias").value == 0.0


def test_clips_and_peepholes_are_read_and_actually_bind() -> None:
    model = load_model(FIXTURES / "peep_proj")
    w = model.layers[0].directions[0]
    assert (w.cell_clip, w.proj_clip) == (0.8, 0.6)
    assert w.W_p.shape == (3, 5) and w.W_h.shape == (20, 3) and w.W_x.shape == (20, 4)
    assert all(p is not None for p in (w.p_i, w.p_f, w.p_o))
    trace = run(model, _expected("peep_proj")["x"])
    d = trace.layers[0].directions[0]
    assert np.isclose(np.abs(d.c).max(), 0.8) and np.isclose(np.abs(d.h).max(), 0.6)
    roles = {t.role: t for t in w.provenance.stored}
    assert roles["W_p"].name == "rnn/lstm_cell/projection/kernel" and roles["W_p"].shape == (5, 3)
    assert roles["W_h"].offset == 4 and roles["W_h"].shape == (7, 20)  # rows D: of [D+P, 4H]


def test_lstm_block_cell_settings_come_from_op_attributes() -> None:
    model = load_model(FIXTURES / "block")
    w = model.layers[0].directions[0]
    assert model.layers[0].kind == "LSTMBlockCell"
    assert w.provenance.setting("forget_bias").value == 0.7
    assert w.cell_clip == 0.9 and w.has_peepholes


def test_cudnn_compatible_defaults_to_zero_forget_bias_and_skips_optimizer_slots() -> None:
    model = load_model(FIXTURES / "cudnn_compatible")
    w = model.layers[0].directions[0]
    setting = w.provenance.setting("forget_bias")
    assert (setting.value, setting.assumed) == (0.0, True)
    assert model.layers[0].kind == "CudnnCompatibleLSTMCell"
    assert any("skipped 7 optimizer" in n for n in model.notes)  # 4 Adam slots, 2 betas, step
    assert len(model.all_layers) == 1


def test_provenance_maps_w_h_back_into_the_stacked_kernel() -> None:
    model = load_model(FIXTURES / "basic")
    w = model.layers[0].directions[0]
    prov = w.provenance
    assert prov.gate_order == ("i", "j", "f", "o") and prov.perm == (0, 2, 1, 3)
    by_role = {t.role: t for t in prov.stored}
    kernel = "rnn/basic_lstm_cell/kernel"
    assert by_role["W_x"].name == by_role["W_h"].name == kernel
    assert by_role["W_h"].offset == 3 and by_role["W_x"].offset == 0
    assert by_role["W_h"].transposed and by_role["W_h"].shape == (9, 24)
    assert model.framework.startswith("TensorFlow 1 checkpoint")


def test_parameter_explanation_of_the_worked_example() -> None:
    """BasicLSTMCell(64) on 12 inputs: kernel (76, 256) = (12 + 64) x 4*64 -> 19,456 + 256."""
    model = load_model(FIXTURES / "big")
    layer = model.layers[0]
    w = layer.directions[0]
    assert (w.input_size, w.hidden_size) == (12, 64)
    assert w.n_stored_params == 19_456 + 256 == 19_712 == layer.n_params
    text = model_summary(model)
    assert "rnn/basic_lstm_cell/kernel: (76, 256) = 19,456 stored values" in text
    assert "rnn/basic_lstm_cell/bias: (256,) = 256 stored values" in text
    assert "= 19,712" in text
    assert "rows [0:12] → W_x, rows [12:76] → W_h" in text


def test_two_unrelated_stacks_ask_which_one() -> None:
    with pytest.raises(ChoiceRequired) as info:
        load_model(FIXTURES / "two_stacks")
    assert info.value.option == "scope"
    assert info.value.choices == ("decoder/rnn/lstm_cell", "encoder/rnn/basic_lstm_cell")
    exp = _expected("two_stacks")
    enc = load_model(FIXTURES / "two_stacks", scope="encoder/rnn/basic_lstm_cell")
    np.testing.assert_allclose(run(enc, exp["x"]).output, exp["encoder_output"], atol=TOL)
    dec = load_model(FIXTURES / "two_stacks", scope="decoder/rnn/lstm_cell")
    np.testing.assert_allclose(run(dec, exp["encoder_output"]).output, exp["output"], atol=TOL)
    with pytest.raises(LoadError, match="no LSTM stack 'nope'"):
        load_model(FIXTURES / "two_stacks", scope="nope")


def test_unsupported_checkpoints_are_reported() -> None:
    with pytest.raises(LoadError, match=r"partitioned variable .* unsupported"):
        load_model(FIXTURES / "partitioned")
    with pytest.raises(LoadError, match="V1 checkpoint"):
        load_model(FIXTURES / "v1_format" / "model.ckpt")
    with pytest.raises(LoadError, match="V1 checkpoint"):
        load_model(FIXTURES / "v1_format")
