"""The activations Keras 3 adds, against Keras' own functions (torch backend) at 1e-6."""

import keras
import numpy as np
import pytest

from lstmviz.core import Activation, LSTMDirection
from lstmviz.core.activations import NAMES, VECTOR_NAMES

#: lstmviz uses Keras' own names for these (keras_config maps each to itself).
KERAS_NAMES = [
    "gelu",
    "mish",
    "hard_silu",
    "log_sigmoid",
    "hard_tanh",
    "tanh_shrink",
    "celu",
    "sparse_plus",
    "sparse_sigmoid",
    "squareplus",
    "soft_shrink",
    "hard_shrink",
    "softmax",
    "log_softmax",
]


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_matches_keras(name):
    x = np.linspace(-6, 6, 97).reshape(1, -1) * np.array([[1.0], [0.3]])  # (2, 97)
    want = keras.ops.convert_to_numpy(
        keras.activations.get(name)(keras.ops.convert_to_tensor(x, "float64"))
    )
    np.testing.assert_allclose(Activation(name)(x), want, atol=1e-6, rtol=1e-6)


def test_vector_activations_are_not_elementwise():
    assert set(VECTOR_NAMES) == {"softmax", "log_softmax"}
    assert not set(VECTOR_NAMES) & set(NAMES)
    assert all(Activation(n).elementwise for n in NAMES)
    assert not Activation("softmax").elementwise
    with pytest.raises(ValueError, match="not element-wise"):
        LSTMDirection(
            W_x=np.zeros((4, 1)),
            W_h=np.zeros((4, 1)),
            b=np.zeros(4),
            act_cand=Activation("softmax"),
        )
