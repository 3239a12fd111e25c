"""``run`` on GRU and SimpleRNN models against Keras 3 itself (``KERAS_BACKEND=torch``).

Keras stores ``kernel [D, 3H]``, ``recurrent_kernel [H, 3H]`` in the order z, r, h and, with
``reset_after=True``, ``bias [2, 3H]`` (input row, recurrent row); with ``reset_after=False``
one ``bias [3H]``. The weights are converted here by hand (perm (1, 0, 2): canonical r is
stored block 1), not by a reader, so this tests the core's equations against the framework.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import pytest

from lstmviz.core import (
    Activation,
    GRUDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    RNNDirection,
    run,
)
from lstmviz.core.cells import GRU_CELL

TOL = 1e-5
PERM = GRU_CELL.perm("keras")  # canonical block k = stored block PERM[k]


def _blocks(a: np.ndarray, H: int) -> np.ndarray:
    """Columns of a Keras ``[in, 3H]`` array reordered to r, z, n and transposed to rows."""
    return np.concatenate([a[..., p * H : (p + 1) * H] for p in PERM], axis=-1).T


def gru_direction(layer: keras.layers.GRU, reverse: bool = False) -> GRUDirection:
    kernel, recurrent, bias = (np.asarray(v) for v in layer.get_weights())
    H = layer.units
    if layer.reset_after:
        b_x, b_h = _blocks(bias[0], H), _blocks(bias[1], H)
    else:
        b_x, b_h = _blocks(bias, H), None
    act_gate = {"sigmoid": Activation("sigmoid"), "hard_sigmoid": Activation("hard_sigmoid_k3")}
    return GRUDirection(
        _blocks(kernel, H),
        _blocks(recurrent, H),
        b_x,
        b_h,
        reset_after=layer.reset_after,
        act_gate=act_gate[layer.recurrent_activation.__name__],
        reverse=reverse,
    )


def _x(T: int, D: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D)).astype(np.float32)


def _randomize(model: keras.Model, seed: int, scale: float = 0.9) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.get_weights()])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("recurrent_activation", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_keras_gru(reset_after: bool, recurrent_activation: str, go_backwards: bool) -> None:
    layer = keras.layers.GRU(
        5,
        reset_after=reset_after,
        recurrent_activation=recurrent_activation,
        go_backwards=go_backwards,
        return_sequences=True,
        return_state=True,
    )
    inp = keras.Input((None, 3))
    model = keras.Model(inp, layer(inp))
    _randomize(model, seed=2)
    x = _x(280, 3)
    y, h_n = (np.asarray(keras.ops.convert_to_numpy(v))[0] for v in model(x[None]))
    w = gru_direction(layer, reverse=go_backwards)
    order = OutputOrder.PROCESSING if go_backwards else OutputOrder.TIME
    ours = LSTMModel((LSTMLayer("gru", (w,), output_order=order, kind="GRU"),))
    for engine in ("numpy", "auto"):
        trace = run(ours, x, engine=engine)
        np.testing.assert_allclose(trace.output, y, atol=TOL)
        np.testing.assert_allclose(trace.layers[0].directions[0].h_last, h_n, atol=TOL)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_keras_bidirectional_gru_then_simple_rnn(merge_mode: str) -> None:
    """Bidirectional(GRU) -> SimpleRNN(relu), the last returning one vector."""
    inp = keras.Input((None, 4))
    bi = keras.layers.Bidirectional(keras.layers.GRU(6, return_sequences=True), merge_mode)
    simple = keras.layers.SimpleRNN(3, activation="relu")
    model = keras.Model(inp, simple(bi(inp)))
    _randomize(model, seed=3, scale=0.6)
    x = _x(40, 4)
    want = np.asarray(keras.ops.convert_to_numpy(model(x[None])))[0]
    fw, bw = gru_direction(bi.forward_layer), gru_direction(bi.backward_layer, reverse=True)
    kernel, recurrent, bias = (np.asarray(v) for v in simple.get_weights())
    rnn = RNNDirection(kernel.T, recurrent.T, bias, act_cand=Activation("relu"))
    ours = LSTMModel(
        (
            LSTMLayer("bi", (fw, bw), merge_mode=MergeMode(merge_mode), kind="Bidirectional(GRU)"),
            LSTMLayer("rnn", (rnn,), return_sequences=False, kind="SimpleRNN"),
        )
    )
    trace = run(ours, x)
    np.testing.assert_allclose(trace.final_output, want, atol=TOL)
    np.testing.assert_allclose(trace.final_output, trace.output[-1], atol=TOL)


def test_keras_gru_with_a_dense_between_and_a_head() -> None:
    """GRU -> Dense(tanh) -> GRU(return_sequences=False) -> Dense(softmax): the Dense layers run
    as ``before``/``head`` as for LSTMs."""
    from lstmviz.core import DenseLayer

    inp = keras.Input((None, 3))
    g1 = keras.layers.GRU(4, return_sequences=True)
    mid = keras.layers.Dense(5, activation="tanh")
    g2 = keras.layers.GRU(6, reset_after=False)
    out = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inp, out(g2(mid(g1(inp)))))
    _randomize(model, seed=4, scale=0.7)
    x = _x(30, 3)
    want = np.asarray(keras.ops.convert_to_numpy(model(x[None])))[0]

    def dense(layer: keras.layers.Dense, act: str) -> DenseLayer:
        kernel, bias = (np.asarray(v) for v in layer.get_weights())
        return DenseLayer(layer.name, kernel.T, bias, Activation(act))

    ours = LSTMModel(
        (
            LSTMLayer("g1", (gru_direction(g1),), kind="GRU"),
            LSTMLayer(
                "g2",
                (gru_direction(g2),),
                return_sequences=False,
                kind="GRU",
                before=(dense(mid, "tanh"),),
            ),
        ),
        head=(dense(out, "softmax"),),
    )
    np.testing.assert_allclose(run(ours, x).final_output, want, atol=TOL)
