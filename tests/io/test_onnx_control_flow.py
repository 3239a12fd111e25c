"""LSTMs inside If/Loop/Scan subgraphs, quantized LSTMs, and files that hold no LSTM.

Fixtures and onnxruntime's outputs come from ``tests/fixtures/onnx/make_control_flow.py``
(onnxruntime is not needed here). Each branch's LSTM is its own choice (``prefix=``); the
weights reach it through outer-scope initializers, Constants, Transpose, Cast (float16),
Identity and DequantizeLinear. Parity 1e-5 against onnxruntime, except onnxruntime's
*quantized* run of a DynamicQuantizeLSTM, which also rounds X and h to uint8 (stated bound).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_onnx_model import expected, final_states

from lstmviz.core.compute import run
from lstmviz.core.stored_layout import stored_ref
from lstmviz.io import ChoiceRequired, LoadError, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
T, D, H = 6, 3, 4


@pytest.mark.parametrize("branch", ["then", "else"])
def test_each_if_branch_matches_onnxruntime(branch):
    exp = expected("if_branches")
    model = load_model(FIXTURES / "if_branches.onnx", prefix=f"{branch}_lstm")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp[f"{branch}_Y"], atol=1e-5)
    h, c = final_states(trace)
    np.testing.assert_allclose(h, exp[f"{branch}_Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp[f"{branch}_Y_c"], atol=1e-5)
    transforms = model.layers[0].directions[0].provenance.transforms
    assert f"read from the subgraph 'switch.{branch}_branch'" in transforms
    ops = "Cast, Identity, Transpose" if branch == "then" else "DequantizeLinear"
    assert any(f"folded from constants through {ops} nodes" in t for t in transforms)
    assert any("dequantized" in t for t in transforms) == (branch == "else")
    assert any("subgraph 'switch." in n for n in model.notes)


def test_branches_are_choices_listed_in_the_tree():
    with pytest.raises(ChoiceRequired, match="2 separate LSTM stacks, 2 in If/Loop/Scan") as info:
        load_model(FIXTURES / "if_branches.onnx")
    assert info.value.option == "prefix"
    assert set(info.value.choices) == {"then_lstm", "else_lstm"}
    model = load_model(FIXTURES / "if_branches.onnx", prefix="else_lstm")
    notes = {i.name: i.note for i in model.all_layers if i.is_lstm}
    assert notes == {"else_lstm": "shown", "then_lstm": "not shown; load with prefix='then_lstm'"}


def test_same_node_names_in_two_branches_get_their_scope(tmp_path):
    model = onnx.load(FIXTURES / "if_branches.onnx")
    for attr in model.graph.node[0].attribute:
        for node in attr.g.node:
            if node.op_type == "LSTM":
                node.name = "lstm"
    path = tmp_path / "same.onnx"
    onnx.save_model(model, path)
    with pytest.raises(ChoiceRequired) as info:
        load_model(path)
    assert set(info.value.choices) == {"switch.then_branch/lstm", "switch.else_branch/lstm"}
    exp = expected("if_branches")
    chosen = load_model(path, prefix="switch.else_branch/lstm")
    np.testing.assert_allclose(run(chosen, exp["x"]).output, exp["else_Y"], atol=1e-5)


@pytest.mark.parametrize("node", ["loop_lstm", "scan_lstm"])
def test_loop_and_scan_bodies_match_onnxruntime(node):
    exp = expected("loop_scan")
    model = load_model(FIXTURES / "loop_scan.onnx", prefix=node)
    if node == "loop_lstm":
        np.testing.assert_allclose(run(model, exp["x"]).output, exp["loop_Y"], atol=1e-5)
    else:  # the Scan runs its body once per sequence of Xs
        for k in range(2):
            np.testing.assert_allclose(run(model, exp["xs"][k]).output, exp["scan_Y"][k], atol=1e-5)


def test_qdq_weights_are_dequantized_like_onnxruntime():
    exp = expected("qdq")
    model = load_model(FIXTURES / "qdq.onnx")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    h, c = final_states(trace)
    np.testing.assert_allclose(h, exp["Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp["Y_c"], atol=1e-5)
    w = model.layers[0].directions[1]
    transforms = w.provenance.transforms
    assert "quantized weights dequantized by DequantizeLinear: (q - zero_point) * scale" in (
        transforms
    )
    stored = {t.role.value: t for t in w.provenance.stored}
    assert (stored["W_x"].name, stored["W_x"].dtype) == ("W_q", "int8")  # what the file holds
    assert (stored["W_h"].name, stored["W_h"].dtype) == ("R", "float32")  # Q→DQ of floats
    assert stored_ref(w, "W_x", 5, 2, direction=1) == "W_q[1, 9, 2]"


def test_int4_blocked_and_uint4_weights_match_onnxruntime():
    """opset 21: W int4 dequantized per block of 2 inputs, R uint4 per channel."""
    exp = expected("int4_blocked")
    model = load_model(FIXTURES / "int4_blocked.onnx")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    h, c = final_states(trace)
    np.testing.assert_allclose(h, exp["Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp["Y_c"], atol=1e-5)
    stored = {t.role.value: t for t in model.layers[0].directions[0].provenance.stored}
    assert (stored["W_x"].name, stored["W_x"].dtype) == ("W_q", "int4")
    assert (stored["W_h"].name, stored["W_h"].dtype) == ("R_q", "uint4")


@pytest.mark.parametrize("name", ["dynamic_quant", "dynamic_quant_channel"])
def test_dynamic_quantize_lstm(name):
    """Exact against onnxruntime's float LSTM on the dequantized weights; within 5e-3 of
    onnxruntime's quantized run (measured: 1.6e-3 per tensor, 1.1e-3 per channel)."""
    exp = expected(name)
    model = load_model(FIXTURES / f"{name}.onnx")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    h, c = final_states(trace)
    np.testing.assert_allclose(h, exp["Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp["Y_c"], atol=1e-5)
    gap = np.abs(trace.output - exp["ort_Y"]).max()
    assert 1e-5 < gap < 5e-3  # really quantized, and close
    assert np.abs(trace.output - exp["float_Y"]).max() > 1e-5  # not the float weights
    w = model.layers[0].directions[1]
    prov = w.provenance
    per = "channel" if name.endswith("channel") else "tensor"
    assert any(f"W int8 per {per}" in t and "dequantized" in t for t in prov.transforms)
    assert any(n.startswith("DynamicQuantizeLSTM (onnxruntime") for n in prov.notes)
    stored = {t.role.value: t for t in prov.stored}
    assert stored["W_x"].dtype == "int8" and stored["W_x"].shape == (2, D, 4 * H)
    assert stored["W_x"].transposed
    # canonical row 5 is gate f, unit 1; stored gates are i, o, f, c: column 2H + 1 = 9
    assert stored_ref(w, "W_x", 5, 2, direction=1) == "W_quantized[1, 2, 9]"
    quant = onnx.load(FIXTURES / f"{name}.onnx")
    arrays = {t.name: numpy_helper.to_array(t) for t in quant.graph.initializer}
    scale, zero = arrays["W_scale"][1], arrays["W_zero_point"][1]
    if per == "channel":
        scale, zero = scale[9], zero[9]
    q = int(arrays["W_quantized"][1, 2, 9])
    assert w.W_x[5, 2] == np.float32(q - int(zero)) * np.float32(scale)


# ------------------------------------------------------------------- files without an LSTM
def _save(tmp_path: Path, nodes, inits=(), inputs=None, name="m.onnx") -> Path:
    inputs = inputs or [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, 1, D])]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=list(inits),
    )
    path = tmp_path / name
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _weights(*shapes: tuple[int, ...]):
    rng = np.random.default_rng(0)
    return [
        numpy_helper.from_array(rng.normal(size=s).astype("f4"), f"w{k}")
        for k, s in enumerate(shapes)
    ]


def test_rnn_node_in_a_subgraph_is_found(tmp_path):
    """A plain RNN opens since issue 14: found in both branches like an LSTM (outputs:
    tests/io/test_gru_onnx.py)."""
    rnn = helper.make_node("RNN", ["X", "w0", "w1"], ["Y"], "my_rnn", hidden_size=H)
    branch = helper.make_graph(
        [rnn], "b", [], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    )
    node = helper.make_node("If", ["c"], ["Y"], "sw", then_branch=branch, else_branch=branch)
    inputs = [helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
    path = _save(tmp_path, [node], _weights((1, H, D), (1, H, H)), inputs)
    with pytest.raises(LoadError, match=r"2 in If/Loop/Scan subgraphs \('sw.else_branch/my_rnn'"):
        load_model(path)
    model = load_model(path, prefix="sw.then_branch/my_rnn")
    assert [layer.kind for layer in model.layers] == ["RNN"]


def test_written_out_cell_is_refused_naming_its_nodes(tmp_path):
    nodes = [
        helper.make_node("MatMul", ["X", "w0"], ["z"], "gates_matmul"),
        helper.make_node("Split", ["z"], ["a", "b", "g", "o"], "chunk", axis=-1, num_outputs=4),
        helper.make_node("Sigmoid", ["a"], ["sa"], "input_gate"),
        helper.make_node("Tanh", ["g"], ["Y"], "cell_candidate"),
    ]
    path = _save(tmp_path, nodes, _weights((D, 4 * H)))
    with pytest.raises(LoadError) as info:
        load_model(path)
    message = str(info.value)
    assert "the cell is written out as Gemm/MatMul, Sigmoid and Tanh nodes" in message
    assert "'gates_matmul', 'input_gate', 'cell_candidate'" in message
    assert message.endswith(
        "rather than a cell called step by step, or open the PyTorch state_dict"
    )


def test_a_sigmoid_after_a_conv_is_not_a_cell(tmp_path):
    nodes = [
        helper.make_node("Conv", ["X", "w0"], ["z"], "conv"),
        helper.make_node("Sigmoid", ["z"], ["s"]),
        helper.make_node("Tanh", ["s"], ["Y"]),
    ]
    path = _save(tmp_path, nodes, _weights((2, 1, 1)))
    with pytest.raises(
        LoadError, match=r"no LSTM, GRU or RNN node \(ops: Conv, Sigmoid, Tanh\); lstmviz"
    ):
        load_model(path)


def test_unsupported_quantized_op_is_named(tmp_path):
    nodes = [helper.make_node("MatMulInteger", ["X", "w0"], ["Y"], "qmm")]
    path = _save(tmp_path, nodes, [numpy_helper.from_array(np.ones((D, H), np.int8), "w0")])
    with pytest.raises(
        LoadError, match="no LSTM, GRU or RNN node but quantized MatMulInteger nodes"
    ):
        load_model(path)


def test_no_lstm_lists_the_ops_by_count(tmp_path):
    nodes = [helper.make_node("Relu", ["X"], ["r"]), helper.make_node("Relu", ["r"], ["Y"])]
    with pytest.raises(LoadError, match=r"no LSTM, GRU or RNN node \(ops: Relu ×2\)"):
        load_model(_save(tmp_path, nodes))


def test_bidirectional_layers_written_as_two_nodes_are_one_layer():
    """madmom's converter writes each BLSTM layer as a forward node, a node on X reversed by a
    Slice (Y reversed back) and a Concat; a node with direction=reverse works the same way."""
    exp = expected("split_bidir")
    model = load_model(FIXTURES / "split_bidir.onnx")
    assert [len(layer.directions) for layer in model.layers] == [2, 2]
    assert [d.reverse for d in model.layers[0].directions] == [False, True]
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.layers[0].output, exp["layer1"], atol=1e-5)
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    first, second = (layer.directions[1].provenance.transforms[-1] for layer in model.layers)
    assert first.startswith("backward direction from node 'l1_bwd': X reversed in time by a Slice")
    assert second.startswith("backward direction from node 'l2_bwd' (direction=reverse)")
    setting = model.layers[0].directions[1].provenance.setting("direction")
    assert setting.value.startswith("reverse") and not setting.assumed
    assert {i.name: i.note for i in model.all_layers if i.is_lstm} == {
        "l1_fwd": "shown",
        "l1_bwd": "shown",
        "l2_fwd": "shown",
        "l2_bwd": "shown",
    }


def test_a_slice_that_does_not_reverse_time_is_not_a_backward_direction(tmp_path):
    model = onnx.load(FIXTURES / "split_bidir.onnx")
    for t in model.graph.initializer:
        if t.name == "rev_step":
            t.CopyFrom(numpy_helper.from_array(np.array([-2], np.int64), "rev_step"))
    path = tmp_path / "stride2.onnx"
    onnx.save_model(model, path)
    with pytest.raises(ChoiceRequired):  # l1_bwd reads X[::-2]: a separate LSTM now
        load_model(path)


def test_a_cell_written_out_in_a_loop_body_says_so(tmp_path):
    body_nodes = [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("MatMul", ["X", "w0"], ["z"], "body_matmul"),
        helper.make_node("Sigmoid", ["z"], ["s"], "body_sigmoid"),
        helper.make_node("Tanh", ["z"], ["t"], "body_tanh"),
    ]
    body = helper.make_graph(
        body_nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("t", TensorProto.FLOAT, None),
        ],
    )
    loop = helper.make_node("Loop", ["n", ""], ["Y"], "while", body=body)
    inputs = [helper.make_tensor_value_info("n", TensorProto.INT64, [])]
    with pytest.raises(LoadError) as info:
        load_model(_save(tmp_path, [loop], _weights((D, 4 * H)), inputs))
    message = str(info.value)
    assert "the recurrence is a Loop whose body computes the cell with Gemm/MatMul" in message
    assert "'body_matmul', 'body_sigmoid', 'body_tanh'" in message


def test_an_lstm_in_a_loop_body_notes_the_iterations():
    model = load_model(FIXTURES / "loop_scan.onnx", prefix="scan_lstm")
    assert any(n.startswith("onnxruntime runs this Scan body once per") for n in model.notes)


def test_dynamic_quantize_lstm_with_uint8_weights(tmp_path):
    """The same weights stored as uint8 (q + 128, zero point + 128) dequantize identically."""
    model = onnx.load(FIXTURES / "dynamic_quant_channel.onnx")
    for t in model.graph.initializer:
        if t.name.endswith(("_quantized", "_zero_point")):
            shifted = numpy_helper.to_array(t).astype(np.int16) + 128
            t.CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), t.name))
    path = tmp_path / "u8.onnx"
    onnx.save_model(model, path)
    exp = expected("dynamic_quant_channel")
    loaded = load_model(path)
    np.testing.assert_allclose(run(loaded, exp["x"]).output, exp["Y"], atol=1e-5)
    assert loaded.layers[0].directions[0].provenance.stored[0].dtype == "uint8"


def test_a_duplicated_initializer_keeps_the_last_copy_like_onnxruntime(tmp_path):
    """onnxruntime warns 'Duplicate initializer ... will use the latest encountered' and runs;
    two nodes defining one name it refuses ('Duplicate definition of name'), as lstmviz does."""
    model = onnx.load(FIXTURES / "peepholes.onnx")
    w = next(t for t in model.graph.initializer if t.name == "W")
    later = numpy_helper.from_array(np.full(numpy_helper.to_array(w).shape, 0.25, "f4"), "W")
    model.graph.initializer.append(later)
    path = tmp_path / "twice.onnx"
    onnx.save_model(model, path)
    assert np.all(load_model(path).layers[0].directions[0].W_x == 0.25)
    model.graph.node.insert(0, helper.make_node("Identity", ["B"], ["W"]))
    onnx.save_model(model, path)
    with pytest.raises(LoadError, match="defines 'W' more than once"):
        load_model(path)


def test_an_outer_constant_node_feeds_a_branch(tmp_path):
    """The then-branch reads W1_t from the enclosing graph: as a Constant node there too."""
    model = onnx.load(FIXTURES / "if_branches.onnx")
    w = next(t for t in model.graph.initializer if t.name == "W1_t")
    model.graph.initializer.remove(w)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["W1_t"], value=w))
    path = tmp_path / "outer_constant.onnx"
    onnx.save_model(model, path)
    exp = expected("if_branches")
    chosen = load_model(path, prefix="then_lstm")
    np.testing.assert_allclose(run(chosen, exp["x"]).output, exp["then_Y"], atol=1e-5)
