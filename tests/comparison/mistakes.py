"""Porting mistakes applied to a canonical model, the way they show after a broken port.

Each function takes a direction and returns the direction B's file would hold; ``apply``
puts it into one layer/direction of a model. Written independently of lstmviz.comparison
(plain NumPy on the canonical arrays), so the tests check the diagnosis, not a copy of it.
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel

ORDERS = {  # canonical gate names in each framework's storage order
    "pytorch": "ifgo",
    "onnx": "iofg",
    "tf1": "igfo",
    "caffe": "ifog",
}


def blocks(m: np.ndarray) -> list[np.ndarray]:
    H = m.shape[0] // 4
    return [m[k * H : (k + 1) * H] for k in range(4)]


def written_in(d: LSTMDirection, written: str, read: str = "pytorch") -> LSTMDirection:
    """Arrays stored in ``written`` order, read back as ``read`` order."""
    w, r = ORDERS[written], ORDERS[read]
    # stored position p holds A's gate w[p]; the reader calls it r[p]
    src = {r[p]: "ifgo".index(w[p]) for p in range(4)}

    def move(m: np.ndarray) -> np.ndarray:
        b = blocks(m)
        return np.concatenate([b[src[g]] for g in "ifgo"])

    return d.replace(W_x=move(d.W_x), W_h=move(d.W_h), b=move(d.b))


def swap_gates(d: LSTMDirection, g1: str, g2: str) -> LSTMDirection:
    k1, k2 = "ifgo".index(g1), "ifgo".index(g2)

    def move(m: np.ndarray) -> np.ndarray:
        b = blocks(m)
        b[k1], b[k2] = b[k2], b[k1]
        return np.concatenate(b)

    return d.replace(W_x=move(d.W_x), W_h=move(d.W_h), b=move(d.b))


def reshaped_not_transposed(d: LSTMDirection) -> LSTMDirection:
    """A PyTorch-style [4H, in] weight reshaped into a Keras [in, 4H] kernel slot."""
    return d.replace(
        W_x=d.W_x.reshape(d.W_x.shape[1], -1).T, W_h=d.W_h.reshape(d.W_h.shape[1], -1).T
    )


def recurrent_blocks_transposed(d: LSTMDirection) -> LSTMDirection:
    H = d.hidden_size
    return d.replace(W_h=d.W_h.reshape(4, H, H).transpose(0, 2, 1).reshape(4 * H, H))


def fused_rows_swapped(d: LSTMDirection) -> LSTMDirection:
    """A TF1 kernel [x rows; h rows] split as if the h rows came first."""
    D, H = d.input_size, d.output_size
    kernel = np.concatenate([d.W_x.T, d.W_h.T])  # (D + H, 4H) as TF1 stores it
    return d.replace(W_h=kernel[:H].T, W_x=kernel[H : H + D].T)


def forget_bias(d: LSTMDirection, value: float = 1.0) -> LSTMDirection:
    H = d.hidden_size
    b = np.array(d.b)
    b[H : 2 * H] += value
    return d.replace(b=b)


def bias_scaled(d: LSTMDirection, s: float = 2.0) -> LSTMDirection:
    return d.replace(b=np.array(d.b) * s)


def hard_sigmoid(d: LSTMDirection, name: str = "hard_sigmoid_k2") -> LSTMDirection:
    return d.replace(act_gate=Activation(name))


def apply(model: LSTMModel, layer: int, direction: int, fn, *args) -> LSTMModel:
    """``model`` with ``fn(direction, *args)`` in place of one direction."""
    lay = model.layers[layer]
    dirs = list(lay.directions)
    dirs[direction] = fn(dirs[direction], *args)
    return replace_layer(model, layer, LSTMLayer(**{**vars(lay), "directions": tuple(dirs)}))


def apply_all(model: LSTMModel, fn, *args) -> LSTMModel:
    for k, lay in enumerate(model.layers):
        for d in range(len(lay.directions)):
            model = apply(model, k, d, fn, *args)
    return model


def replace_layer(model: LSTMModel, k: int, layer: LSTMLayer) -> LSTMModel:
    layers = list(model.layers)
    layers[k] = layer
    return model.replace(layers=tuple(layers))


def swap_directions(model: LSTMModel, k: int) -> LSTMModel:
    lay = model.layers[k]
    fw, bw = lay.directions
    dirs = (bw.replace(reverse=fw.reverse), fw.replace(reverse=bw.reverse))
    return replace_layer(model, k, LSTMLayer(**{**vars(lay), "directions": dirs}))
