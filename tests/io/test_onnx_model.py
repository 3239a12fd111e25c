"""ONNX reader against torch.onnx.export, onnxruntime and the onnx reference evaluator.

Fixtures come from ``tests/fixtures/onnx/make_fixtures.py``: torch exports carry torch's own
outputs; the ``onnx.helper`` graphs carry onnxruntime's (the reference for ``layout=1``, which
onnxruntime refuses). Tolerance 1e-5, as everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstmviz.core.compute import run
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.core.stored_layout import stored_ref
from lstmviz.io import load_model
from lstmviz.io.onnx.model import READER
from lstmviz.io.probe import Probe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
CASES = [
    "torch_uni2",
    "torch_bidir2",
    "reverse",
    "peepholes",
    "no_bias",
    "layout1_bidir",
    "constant_w",
    "clip",
    "activations_bidir",
    "external",
    "dynamo_bidir2",
    "dynamo_batch_first",
    "float16",
    "folded_wr",
    "activations_more",
    "activations_defaults",
]


def expected(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.expected.npz") as data:
        return dict(data)


def final_states(trace) -> tuple[np.ndarray, np.ndarray]:
    """(layers*dirs, H) like ONNX Y_h / torch h_n: a reverse direction ends at t = 0."""
    hs, cs = [], []
    for layer in trace.layers:
        for d in layer.directions:
            k = 0 if d.weights.reverse else -1
            hs.append(d.h[k])
            cs.append(d.c[k])
    return np.stack(hs), np.stack(cs)


@pytest.mark.parametrize("name", CASES)
def test_outputs_match_the_framework(name):
    exp = expected(name)
    model = load_model(FIXTURES / f"{name}.onnx")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    h, c = final_states(trace)  # torch: h_n of every layer; helper graphs: one node's Y_h
    np.testing.assert_allclose(h, exp["Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp["Y_c"], atol=1e-5)


def test_stored_initial_states_and_sequence_lens():
    """Nonzero initial_h/initial_c initializers are where run starts, as in onnxruntime."""
    exp = expected("states")
    model = load_model(FIXTURES / "states.onnx")
    direction = model.layers[0].directions[0]
    notes = direction.provenance.notes
    assert not any("initial_" in n for n in notes)
    assert any(n.startswith("sequence_lens ('seq_lens') is ignored") for n in notes)
    np.testing.assert_array_equal(direction.h0, exp["h0"][0])
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["Y"], atol=1e-5)
    zeros = run(model, exp["x"], h0=[np.zeros((1, 4))], c0=[np.zeros((1, 4))])
    assert np.abs(zeros.output - exp["Y"]).max() > 1e-3  # the states matter


def test_float16_and_folded_weights_are_recorded():
    half = load_model(FIXTURES / "float16.onnx").layers[0].directions[0]
    assert half.W_x.dtype == np.float32
    assert {t.dtype for t in half.provenance.stored} == {"float16"}
    assert "float16 widened to float32" in half.provenance.transforms
    folded = load_model(FIXTURES / "folded_wr.onnx").layers[0].directions[0].provenance
    assert "'W', 'R' folded from constants through Reshape, Transpose nodes" in folded.transforms
    assert [t.shape for t in folded.stored[:2]] == [(1, 16, 3), (1, 16, 4)]


def test_dynamo_export_structure():
    """torch.onnx.export(dynamo=True) of torch 2.13 emits real LSTM nodes (not Scan/Loop)."""
    model = load_model(FIXTURES / "dynamo_bidir2.onnx")
    assert len(model.layers) == 2 and all(layer.bidirectional for layer in model.layers)
    assert model.framework.startswith("ONNX opset 20 (pytorch 2.13")


def test_reference_evaluator_ignores_clip_and_activations_but_onnxruntime_applies_them():
    """Why the helper graphs' expected outputs come from onnxruntime, not onnx.reference."""
    for name in ("clip", "activations_bidir"):
        exp = expected(name)
        assert not exp["ref_exact"]
        assert np.abs(exp["ref_Y"] - exp["Y"]).max() > 1e-2
    for name in ("reverse", "peepholes", "external"):
        exp = expected(name)
        np.testing.assert_allclose(exp["ref_Y"], exp["Y"], atol=1e-5)


def test_clip_does_not_reach_the_cell_fed_to_h():
    """onnxruntime clips only the gate arguments: c grows past clip=0.5 and still matches."""
    exp = expected("clip")
    model = load_model(FIXTURES / "clip.onnx")
    trace = run(model, exp["x"])
    d = model.layers[0].directions[0]
    assert d.gate_clip == pytest.approx(0.5)
    assert np.abs(trace.layers[0].directions[0].c).max() > 0.6
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)


def test_torch_export_structure_and_provenance():
    model = load_model(FIXTURES / "torch_bidir2.onnx")
    assert len(model.layers) == 2 and model.input_size == 3 and model.output_size == 8
    assert model.framework.startswith("ONNX opset 14 (pytorch ")
    assert any("only the LSTM nodes are run" in n for n in model.notes)
    layer = model.layers[0]
    assert layer.merge_mode is MergeMode.CONCAT and layer.output_order is OutputOrder.TIME
    fw, bw = layer.directions
    assert not fw.reverse and bw.reverse
    prov = fw.provenance
    assert prov.gate_order == ("i", "o", "f", "c") and prov.perm == (0, 2, 3, 1)
    assert [t.role for t in prov.stored] == ["W_x", "W_h", "b"]
    assert all(not t.transposed for t in prov.stored)
    assert prov.stored[0].shape == (2, 16, 3)
    assert "B split into Wb + Rb and summed" in prov.transforms
    assert prov.setting("activations").assumed
    lstm_infos = [i for i in model.all_layers if i.is_lstm]
    assert len(lstm_infos) == 2


def test_stored_layout_names_onnx_indices():
    """The GUI's stored view finds W/R/B/P rows through perm and the leading dirs axis."""
    model = load_model(FIXTURES / "activations_bidir.onnx")
    fw, bw = model.layers[0].directions
    H = fw.hidden_size
    # canonical f unit 1 = ONNX block 2 (f) row 2H+1; backward direction = index 1
    assert stored_ref(bw, "W_x", H + 1, 2, direction=1) == f"W[1, {2 * H + 1}, 2]"
    assert stored_ref(fw, "b", 3 * H, None) == f"B[0, {H}] + B[0, {5 * H}]"
    assert stored_ref(bw, "p_f", 1, None, direction=1) == f"P[1, {2 * H + 1}]"
    assert stored_ref(fw, "p_o", 0, None) == f"P[0, {H}]"
    import onnx
    from onnx import numpy_helper

    inits = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load(FIXTURES / "activations_bidir.onnx").graph.initializer
    }
    np.testing.assert_allclose(bw.p_f, inits["P"][1, 2 * H :])
    np.testing.assert_allclose(bw.W_x[H + 1, 2], inits["W"][1, 2 * H + 1, 2])


def test_activations_and_alpha_beta_are_read():
    model = load_model(FIXTURES / "activations_bidir.onnx")
    fw, bw = model.layers[0].directions
    assert (fw.act_gate.name, fw.act_gate.alpha, fw.act_gate.beta) == (
        "hard_sigmoid_ab",
        pytest.approx(0.3),
        pytest.approx(0.4),
    )
    assert fw.act_cand.name == "relu" and fw.act_cell.name == "tanh"
    assert bw.act_cand.name == "leaky_relu" and bw.act_cand.alpha == pytest.approx(0.05)
    assert bw.act_cell.name == "scaled_tanh"
    assert (bw.act_cell.alpha, bw.act_cell.beta) == (pytest.approx(0.9), pytest.approx(1.2))
    assert not fw.provenance.setting("activations").assumed


def test_missing_alpha_beta_take_onnxruntime_defaults():
    """Not the standalone operators' defaults: a bare ThresholdedRelu in an LSTM has alpha 0."""
    fw, bw = load_model(FIXTURES / "activations_defaults.onnx").layers[0].directions
    assert (fw.act_cand.name, fw.act_cand.alpha) == ("thresholded_relu", 0.0)
    assert (fw.act_cell.name, fw.act_cell.alpha) == ("elu", 1.0)
    assert (bw.act_gate.alpha, bw.act_gate.beta) == (0.2, 0.5)
    assert bw.act_cand.alpha == pytest.approx(0.01)
    more_fw, more_bw = load_model(FIXTURES / "activations_more.onnx").layers[0].directions
    assert (more_fw.act_cand.alpha, more_fw.act_cand.beta) == pytest.approx((0.7, 0.05))
    assert (more_bw.act_gate.alpha, more_bw.act_gate.beta) == (pytest.approx(0.25), 0.5)


def test_lone_reverse_direction_and_layout_setting():
    model = load_model(FIXTURES / "reverse.onnx")
    (d,) = model.layers[0].directions
    assert d.reverse and model.layers[0].output_order is OutputOrder.TIME
    layout = load_model(FIXTURES / "layout1_bidir.onnx").layers[0].directions[0]
    setting = layout.provenance.setting("layout")
    assert setting.value == 1 and not setting.assumed


def test_no_bias_and_peephole_provenance():
    nb = load_model(FIXTURES / "no_bias.onnx").layers[0].directions[0]
    assert not nb.b.any() and any("B absent" in n for n in nb.provenance.notes)
    pp = load_model(FIXTURES / "peepholes.onnx").layers[0].directions[0]
    assert pp.has_peepholes
    assert "P reordered i,o,f → p_i, p_o, p_f" in pp.provenance.transforms


@pytest.mark.parametrize("name", ["torch_uni2.onnx", "clip.onnx", "external.onnx", "gru_only.onnx"])
def test_sniff_accepts_onnx(name):
    assert READER.sniff(Probe.open(FIXTURES / name))


@pytest.mark.parametrize(
    "content",
    [
        b"\x08\x07hello world, this is text" * 10,
        b"ir_version: 7\ngraph {\n}\n",
        b"\x08\x07\x12\x05abc",  # producer_name runs past the end, no graph
        b"\x08\x07\x3a\xff\xff\xff\x0f",  # graph longer than the file
        b"\x08\x01\x12\x04\x08\x01\x10\x02",  # SavedModel-like: no graph field 7
        b"\x00\x00\x01" + bytes(60),  # looks like a TF .index block start
        b"\x89HDF\r\n\x1a\n" + bytes(64),
        b"PK\x03\x04" + bytes(64),
    ],
)
def test_sniff_refuses_other_content(tmp_path, content):
    path = tmp_path / "x.onnx"
    path.write_bytes(content)
    assert not READER.sniff(Probe.open(path))


def test_stored_count_of_a_bidirectional_layer_counts_each_direction_once():
    """ONNX keeps both directions in one W/R/B tensor; each direction owns half of it."""
    layer = load_model(FIXTURES / "torch_bidir2.onnx").layers[0]
    fw = layer.directions[0]
    D, H = fw.input_size, fw.hidden_size
    per_direction = 4 * H * D + 4 * H * H + 8 * H  # W, R and both bias halves
    assert fw.n_stored_params == per_direction
    assert layer.n_stored_params == 2 * per_direction


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed field"])
@pytest.mark.parametrize(
    "dtype", ["FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE", "INT32", "INT64", "INT8", "UINT16", "BOOL"]
)
def test_tensor_decoding_agrees_with_onnx(dtype: str, raw: bool) -> None:
    """lstmviz's by-field-number decoder against onnx.numpy_helper on the same TensorProto."""
    from onnx import TensorProto, helper, numpy_helper

    from lstmviz.io.onnx.proto import tensor_info
    from lstmviz.io.onnx.tensors import tensor_array

    code = getattr(TensorProto, dtype)
    values = np.array([[-2.5, 0.0, 1.0], [3.25, -7.0, 65.0]])
    if dtype == "BOOL":
        values = values > 0
    elif dtype in ("INT32", "INT64", "INT8"):
        values = values.astype(np.int64)
    elif dtype == "UINT16":
        values = np.abs(values).astype(np.uint16)
    np_type = helper.tensor_dtype_to_np_dtype(code)
    if raw:
        tensor = helper.make_tensor(
            "t", code, values.shape, values.astype(np_type).tobytes(), raw=True
        )
    else:
        tensor = helper.make_tensor("t", code, values.shape, values.ravel().tolist())
    ours = tensor_array(tensor_info(memoryview(tensor.SerializeToString())), FIXTURES, "f", "t")
    theirs = numpy_helper.to_array(tensor)
    if dtype == "BFLOAT16":
        theirs = theirs.astype(np.float32)  # we widen bfloat16 at once
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
