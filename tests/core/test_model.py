"""The canonical model keeps its arrays immutable without copying them more than needed."""

import numpy as np
import pytest

from lstmviz.core import LSTMDirection


def _direction(W_x: np.ndarray) -> LSTMDirection:
    return LSTMDirection(W_x=W_x, W_h=np.zeros((8, 2)), b=np.zeros(8))


def test_writable_input_is_copied_and_frozen():
    W_x = np.ones((8, 3))
    w = _direction(W_x)
    W_x[0, 0] = 5.0  # the caller's array stays theirs
    assert w.W_x[0, 0] == 1.0
    with pytest.raises(ValueError):
        w.W_x[0, 0] = 2.0


def test_replace_does_not_copy_frozen_weights():
    w = _direction(np.ones((8, 3)))
    assert w.replace(reverse=True).W_x is w.W_x


def test_read_only_view_of_a_writable_array_is_still_copied():
    base = np.ones((8, 3))
    view = base[:]
    view.setflags(write=False)
    w = _direction(view)
    base[0, 0] = 7.0
    assert w.W_x[0, 0] == 1.0


def test_array_over_immutable_bytes_is_kept():
    buf = np.ones((8, 3), dtype=np.float32).tobytes()
    arr = np.frombuffer(buf, dtype=np.float32).reshape(8, 3)
    assert _direction(arr).W_x is arr


def test_half_precision_is_widened():
    w = _direction(np.ones((8, 3), dtype=np.float16))
    assert w.W_x.dtype == np.float32
