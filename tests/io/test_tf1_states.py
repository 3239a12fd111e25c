"""Reading a TF1 graph's initial state values must be bounded and fall back to the note.

The ``Const`` tensors are encoded here by hand as TensorFlow lays them out (``tensor.proto``:
dtype = 1, tensor_shape = 2 {dim = 2 {size = 1}}, tensor_content = 4, float_val = 5); the
matching numbers from TensorFlow itself are checked in test_tf1_notes.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from test_tf1_bad_files import field, varint

from lstmviz.io.tensorflow.bundle import Bundle
from lstmviz.io.tensorflow.nodes import Node
from lstmviz.io.tensorflow.states import (
    MAX_STATE_VALUES,
    StateSource,
    const_array,
    direction_states,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"


def _const(shape: list[int], dtype: int = 1, content: bytes = b"", floats=()) -> Node:
    dims = b"".join(field(2, varint(1 << 3) + varint(n)) for n in shape)
    tensor = varint(1 << 3) + varint(dtype) + field(2, dims)
    if content:
        tensor += field(4, content)
    if floats:
        tensor += field(5, struct.pack(f"<{len(floats)}f", *floats))
    return Node("c", "Const", [], {"value": memoryview(field(8, tensor))})


def test_const_values_are_decoded_like_make_ndarray() -> None:
    row = np.array([[0.5, -1.0, 2.0]], np.float32)
    assert np.array_equal(const_array(_const([1, 3], content=row.tobytes())), row)
    short = const_array(_const([2, 3], floats=(0.25, 1.5)))  # the last value repeats
    assert np.array_equal(short, np.array([[0.25, 1.5, 1.5], [1.5, 1.5, 1.5]], np.float32))
    assert np.array_equal(const_array(_const([2])), np.zeros(2, np.float32))


def test_bad_or_huge_consts_are_not_read() -> None:
    assert const_array(_const([1, 3], content=b"\x00" * 7)) is None  # not whole floats
    assert const_array(_const([1, 2], content=b"\x00" * 16)) is None  # more values than shape
    assert const_array(_const([-1, 3], floats=(1.0,))) is None
    assert const_array(_const([MAX_STATE_VALUES + 1], floats=(1.0,))) is None
    assert const_array(_const([1 << 40, 1 << 40], floats=(1.0,))) is None
    assert const_array(_const([3], dtype=3, floats=(1.0,))) is None  # int32
    broken = Node("c", "Const", [], {"value": memoryview(b"\x42\xff\xff")})
    assert const_array(broken) is None


def test_unusable_values_stay_zeros_with_the_reason() -> None:
    """Rows that differ, a wrong width, a variable that is not one row: noted, not used."""
    bundle = Bundle(FIXTURES / "init_state_var_cfv2" / "model.ckpt.index")
    rows = StateSource("h", "const", np.array([[1, 2, 3, 4], [1, 2, 3, 5]], np.float32))
    kernel = StateSource("k", "variable", variable="rnn/lstm_cell/kernel")
    states = direction_states(bundle, [rows], [kernel], 4, 4)
    assert states.h0 is None and states.c0 is None and not states.read
    assert states.unknown[0].startswith("h (Const h has shape (2, 4)")
    assert "rnn/lstm_cell/kernel has shape (7, 16)" in states.unknown[1]
    missing = StateSource("m", "variable", variable="no/such")
    two = [StateSource("a", "const", np.ones(4)), StateSource("b", "const", np.ones(4))]
    states = direction_states(bundle, two, [missing], 4, 4)
    assert states.unknown == ("a", "b", "m (no/such is not in the checkpoint)")
    good = StateSource("g", "variable", variable="init/c0")
    states = direction_states(bundle, [], [good], 4, 4)
    assert states.c0 is not None and states.read == ("checkpoint variable init/c0",)
