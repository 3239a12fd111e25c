"""The activations Keras 3 adds, against Keras' own functions (torch backend) at 1e-6."""

import keras
import numpy as np
import pytest

from lstmviz.core import Activation, LSTMDirection
from lstmviz.core.activations import NAMES, VECTOR_NAMES

KERAS_NAMES = {
    "gelu": "gelu",
    "mish": "mish",
    "hard_silu": "hard_silu",
    "log_sigmoid": "log_sigmoid",
    "hard_tanh": "hard_tanh",
    "tanh_shrink": "tanh_shrink",
    "celu": "celu",
    "sparse_plus": "sparse_plus",
    "sparse_sigmoid": "sparse_sigmoid",
    "squareplus": "squareplus",
    "soft_shrink": "soft_shrink",
    "hard_shrink": "hard_shrink",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
}


@pytest.mark.parametrize("name", sorted(KERAS_NAMES))
def test_matches_keras(name):
    x = np.linspace(-6, 6, 97).reshape(1, -1) * np.array([[1.0], [0.3]])  # (2, 97)
    want = keras.ops.convert_to_numpy(
        keras.activations.get(KERAS_NAMES[name])(keras.ops.convert_to_tensor(x, "float64"))
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
