"""Hostile ONNX graphs through every route into a graph (issue 18): subgraphs nested without
end, 20,000 nodes, huge declared dims, cycles, duplicate and shadowed names, names that are
megabytes of control characters. Each is loaded with ``bounded_load`` (a forked child under a
memory cap and a time limit) and must answer with one printable line in time.

The files are written as raw protobuf bytes (``onnx`` would refuse to build some of them):
the few ModelProto/GraphProto/NodeProto/AttributeProto/TensorProto fields lstmviz reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load

from lstmviz.io import ChoiceRequired, load_model

T, D, H = 6, 3, 2


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def ld(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(field << 3 | 2) + varint(len(data)) + data


def vi(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def tensor(name: str, dims: list[int], raw: bytes = b"", data_type: int = 1) -> bytes:
    return b"".join(vi(1, d) for d in dims) + vi(2, data_type) + ld(8, name) + ld(9, raw)


def floats(name: str, arr: np.ndarray) -> bytes:
    return tensor(name, list(arr.shape), arr.astype("<f4").tobytes())


def node(op: str, inputs: list[str], outputs: list[str], name: str = "", attrs=()) -> bytes:
    body = b"".join(ld(1, i) for i in inputs) + b"".join(ld(2, o) for o in outputs)
    body += ld(3, name) + ld(4, op) + b"".join(ld(5, a) for a in attrs)
    return ld(1, body)


def int_attr(name: str, value: int) -> bytes:
    return ld(1, name) + vi(3, value) + vi(20, 2)


def graph_attr(name: str, graph: bytes) -> bytes:
    return ld(1, name) + ld(6, graph) + vi(20, 5)


def value(name: str) -> bytes:
    return ld(1, name)


def model(graph: bytes) -> bytes:
    return vi(1, 8) + ld(2, "hostile") + ld(7, graph) + ld(8, vi(2, 17))


def weights() -> bytes:
    rng = np.random.default_rng(0)
    return (
        ld(5, floats("W", rng.normal(size=(1, 4 * H, D))))
        + ld(5, floats("R", rng.normal(size=(1, 4 * H, H))))
        + ld(11, value("X"))
    )


def lstm(x: str = "X", w: str = "W", out: str = "Y", name: str = "lstm") -> bytes:
    return node("LSTM", [x, w, "R"], [out], name, [int_attr("hidden_size", H)])


def write(tmp_path: Path, graph: bytes, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model(graph))
    return path


def test_the_builder_makes_a_model_that_loads(tmp_path):
    path = write(tmp_path, lstm() + weights())
    assert load_model(path).layers[0].hidden_size == H
    bounded_load(path).assert_bounded()


def nested_ifs(depth: int, inner: bytes) -> bytes:
    graph = inner
    for _ in range(depth):
        graph = node("If", ["c"], ["Y"], "if", [graph_attr("then_branch", graph)])
    return graph


def test_deep_nesting_is_refused(tmp_path):
    path = write(tmp_path, nested_ifs(20_000, lstm()) + weights())
    bounded_load(path).assert_refused("nested more than 24 deep")


def test_nesting_within_the_bound_reaches_the_lstm(tmp_path):
    path = write(tmp_path, nested_ifs(20, lstm()) + weights())
    model = load_model(path)  # outer-scope W, R resolved through 20 enclosing graphs
    assert model.layers[0].hidden_size == H
    assert any("if.then_branch/if.then_branch" in n for n in model.notes)


def test_twenty_thousand_stacks_are_labelled_in_linear_time(tmp_path):
    nodes = b"".join(lstm(out=f"Y{k}", name=f"l{k}") for k in range(20_000))
    path = write(tmp_path, nodes + weights())
    out = bounded_load(path)
    out.assert_refused("20000 separate LSTM stacks", "pick one with prefix=")
    chosen = bounded_load(path, prefix="l19999")
    chosen.assert_bounded()
    assert chosen.kind == "model", chosen


def test_a_stack_deep_in_a_long_identity_chain(tmp_path):
    chain = b"".join(node("Identity", [f"a{k}"], [f"a{k + 1}"]) for k in range(20_000))
    path = write(tmp_path, node("Identity", ["X"], ["a0"]) + chain + lstm("a20000") + weights())
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model", out


@pytest.mark.parametrize(
    ("dims", "raw", "needle"),
    [
        ([1 << 40, 4 * H, D], b"\0" * 16, "absurd dims [1099511627776, 8, 3]"),
        ([1] * 40_000, b"\0" * 4, "absurd dims [1, 1, 1, 1, 1, 1, 1, 1, ... (40000 dims)]"),
        ([-1, 4 * H, D], b"", "absurd dims [-1, 8, 3]"),
        ([1, 4 * H, D], b"\0" * 7, "raw_data holds 7 bytes"),
    ],
)
def test_declared_dims_are_checked_before_allocating(tmp_path, dims, raw, needle):
    # a second initializer named W: the last one is kept, as onnxruntime does
    graph = lstm() + weights() + ld(5, tensor("W", dims, raw))
    bounded_load(write(tmp_path, graph)).assert_refused(needle)


def test_typed_data_shorter_than_its_dims_is_refused_before_decoding(tmp_path):
    bogus = vi(1, 1 << 30) + vi(2, 10) + ld(8, "W") + ld(5, varint(0x3C00) * 8)  # float16
    path = write(tmp_path, lstm() + weights() + ld(5, bogus))
    bounded_load(path).assert_refused("8 values for dims [1073741824]")


def test_packed_varints_that_would_decode_to_far_more_bytes_are_refused(tmp_path):
    count = 4 * H * D * 1_000_000
    bogus = vi(1, 1) + vi(1, 4 * H) + vi(1, D * 1_000_000) + vi(2, 7) + ld(8, "W")
    bogus += ld(7, b"\x01" * count)  # int64_data: one byte per value, 8 bytes decoded
    path = write(tmp_path, lstm() + weights() + ld(5, bogus))
    bounded_load(path).assert_refused("decode to far more than")


def test_float_data_is_read_without_python_floats(tmp_path):
    w = np.random.default_rng(1).normal(size=(1, 4 * H, D)).astype("<f4")
    typed = vi(1, 1) + vi(1, 4 * H) + vi(1, D) + vi(2, 1) + ld(8, "W") + ld(4, w.tobytes())
    path = write(tmp_path, lstm() + weights() + ld(5, typed))
    model = load_model(path)
    np.testing.assert_array_equal(model.layers[0].directions[0].W_x[:H], w[0, :H])


def test_a_cycle_feeding_the_weights_is_refused(tmp_path):
    cycle = node("Identity", ["b"], ["a"]) + node("Identity", ["a"], ["b"])
    graph = cycle + node("Identity", ["a"], ["W2"]) + lstm(w="W2") + weights()
    bounded_load(write(tmp_path, graph)).assert_refused(
        "is not stored in the file", "a chain of more than 32 nodes"
    )


def test_lstms_feeding_each_other_in_a_cycle_are_separate_choices(tmp_path):
    graph = lstm("Y2", out="Y1", name="one") + lstm("Y1", out="Y2", name="two") + weights()
    path = write(tmp_path, graph)
    bounded_load(path).assert_refused("2 separate LSTM stacks")
    with pytest.raises(ChoiceRequired) as info:
        load_model(path)
    assert set(info.value.choices) == {"one", "two"}


def test_a_branch_reading_its_own_if_output_is_refused(tmp_path):
    branch = lstm(w="loop_W", name="inner")
    graph = node("If", ["c"], ["loop_W"], "sw", [graph_attr("then_branch", branch)]) + weights()
    bounded_load(write(tmp_path, graph)).assert_refused("depends on an If node ('sw')")


@pytest.mark.parametrize("where", ["main", "branch"])
def test_a_name_defined_twice_is_refused(tmp_path, where):
    twice = node("Identity", ["R"], ["W2"]) + node("Identity", ["W"], ["W2"]) + lstm(w="W2")
    graph = (
        twice
        if where == "main"
        else node("If", ["c"], ["Y"], "sw", [graph_attr("then_branch", twice)])
    )
    out = bounded_load(write(tmp_path, graph + weights()))
    out.assert_refused("defines 'W2' more than once", "onnxruntime refuses such a graph")


def test_a_loop_body_input_shadows_the_outer_initializer(tmp_path):
    body = ld(11, value("i")) + ld(11, value("W")) + lstm(name="body_lstm")
    graph = node("Loop", ["n", "", "W"], ["Y"], "loop", [graph_attr("body", body)]) + weights()
    bounded_load(write(tmp_path, graph)).assert_refused("input of loop.body 'W', fed at run time")


def test_megabyte_names_of_control_characters_stay_one_short_line(tmp_path):
    name = "\x1b[31m\n" * 200_000
    graph = lstm(name=name, out="Y1") + lstm(name=name + "x", out="Y2") + weights()
    out = bounded_load(write(tmp_path, graph))
    out.assert_refused("separate LSTM stacks")
    assert "\x1b" not in out.message


def test_a_long_dims_message_from_a_constant_is_bounded(tmp_path):
    value_t = b"".join(vi(1, 7) for _ in range(100_000)) + vi(2, 1) + ld(9, b"")
    constant = node("Constant", [], ["W2"], "c", [ld(1, "value") + ld(5, value_t) + vi(20, 4)])
    out = bounded_load(write(tmp_path, constant + lstm(w="W2") + weights()))
    out.assert_refused("absurd dims [7, 7, 7, 7, 7, 7, 7, 7, ... (100000 dims)]")


def test_graphs_attribute_lists_are_walked(tmp_path):
    """A GRAPHS attribute (type 10) holding 5,000 subgraphs, one with an LSTM."""
    many = b"".join(ld(11, node("Identity", ["X"], [f"o{k}"])) for k in range(5_000))
    many += ld(11, lstm(name="deep_inside"))
    attr = ld(1, "branches") + many + vi(20, 10)
    graph = node("Custom", ["X"], ["Y"], "fanout", [attr]) + weights()
    path = write(tmp_path, graph)
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model", out
    assert load_model(path).layers[0].name == "deep_inside"


def test_truncated_subgraph_is_a_damaged_file(tmp_path):
    data = model(nested_ifs(3, lstm()) + weights())
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind in ("load_error",), out


@pytest.mark.parametrize(("scale_dims", "loads"), [([1, 1, D], True), ([1, 5, D], False)])
def test_a_huge_dequantize_block_size_allocates_nothing(tmp_path, scale_dims, loads):
    """block_size 2**40 on an axis of 8: one block covers the axis (no 2**40 repeat)."""
    q = tensor("Wq", [1, 4 * H, D], b"\1" * (4 * H * D), data_type=3)  # int8
    count = int(np.prod(scale_dims))
    scale = tensor("s", scale_dims, np.full(count, 0.5, "<f4").tobytes())
    block = ld(1, "block_size") + vi(3, 1 << 40) + vi(20, 2)
    dq = node("DequantizeLinear", ["Wq", "s"], ["W2"], "dq", [int_attr("axis", 1), block])
    path = write(tmp_path, dq + lstm(w="W2") + weights() + ld(5, q) + ld(5, scale))
    out = bounded_load(path)
    if loads:
        out.assert_bounded()
        assert out.kind == "model", out
        assert np.all(load_model(path).layers[0].directions[0].W_x == 0.5)
    else:
        out.assert_refused("DequantizeLinear node that cannot be applied")


def test_many_graph_inputs_are_looked_up_in_constant_time(tmp_path):
    inputs = b"".join(ld(11, value(f"in{k}")) for k in range(100_000))
    chain = b"".join(node("Identity", [f"in{k}"], [f"o{k}"]) for k in range(0, 100_000, 10))
    body = ld(11, value("i")) + inputs + chain + lstm(name="body_lstm")
    graph = node("Loop", ["n", ""], ["Y"], "loop", [graph_attr("body", body)]) + weights()
    out = bounded_load(write(tmp_path, graph))
    out.assert_bounded()
    assert out.kind == "model", out


def test_concats_hung_off_a_long_chain_of_reversing_slices_stay_linear(tmp_path):
    """Pair detection traces every Concat input back through Slices: memoized, one pass."""
    consts = b"".join(
        ld(5, tensor(n, [1], np.array([v], "<i8").tobytes(), data_type=7))
        for n, v in (("s0", -1), ("e0", -(2**63)), ("a0", 0), ("st", -1))
    )
    n = 20_000
    chain = b"".join(
        node("Slice", [f"r{k}", "s0", "e0", "a0", "st"], [f"r{k + 1}"]) for k in range(n)
    )
    concats = b"".join(
        node("Concat", [f"r{k}", "Y1"], [f"c{k}"], "", [int_attr("axis", 1)])
        for k in range(0, n, 2)
    )
    graph = node("Identity", ["X"], ["r0"]) + chain + concats + lstm(out="Y1") + weights() + consts
    out = bounded_load(write(tmp_path, graph))
    out.assert_bounded()
    assert out.kind == "model", out


def test_a_graph_of_many_sigmoids_is_described_in_bounded_time(tmp_path):
    """Looking for a written-out cell walks up from every Sigmoid: a step budget bounds it."""
    adds = b"".join(node("Add", [f"a{k}", "X"], [f"a{k + 1}"]) for k in range(20))
    sigmoids = b"".join(node("Sigmoid", ["a20"], [f"s{k}"]) for k in range(60_000))
    out = bounded_load(write(tmp_path, node("Identity", ["X"], ["a0"]) + adds + sigmoids))
    out.assert_refused("no LSTM, GRU or RNN node (ops: Sigmoid ×60000, Add ×20, Identity)")


@pytest.mark.parametrize(
    ("raw", "typed", "needle"),
    [
        (b"\x11" * 5, False, "raw_data holds 5 bytes, int4 dims [1, 8, 2] need 8"),
        (b"", True, "is int4 outside raw_data"),
    ],
)
def test_damaged_int4_weights_are_refused(tmp_path, raw, typed, needle):
    q = vi(1, 1) + vi(1, 4 * H) + vi(1, 2) + vi(2, 22) + ld(8, "Wq")
    q += ld(5, varint(0x11) * 8) if typed else ld(9, raw)
    scale = tensor("s", [], np.ones(1, "<f4").tobytes())
    dq = node("DequantizeLinear", ["Wq", "s"], ["W2"], "dq")
    graph = dq + lstm(w="W2") + weights() + ld(5, q) + ld(5, scale)
    bounded_load(write(tmp_path, graph)).assert_refused(needle)
