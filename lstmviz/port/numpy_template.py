"""Text of the exported NumPy script: its header, the LSTM loop, and every activation formula.

Each formula is the one ``lstmviz.core.activations`` uses, so the script and ``run`` agree;
``{a}``/``{b}`` are replaced by the activation's alpha/beta.
"""

from __future__ import annotations

HEADER = '''"""Forward pass of {source}, {n_layers} recurrent layer(s) ({kinds}), in plain NumPy.

Written by lstmviz {version} (`lstmviz export MODEL --to numpy OUT`). It imports nothing but
NumPy. forward(x) takes x of shape (T, {D}) and returns the last layer's output sequence
(T, {out}), the same as lstmviz.run(model, x).layers[-1].output.
{equations}gate_clip, when set, clips the argument of every activation (ONNX's clip).
"""

import numpy as np
'''

#: The header's equations per cell kind (HEADER's ``{equations}``; no braces in them).
EQUATIONS: dict[str, str] = {
    "LSTM": """
LSTM, per step and direction (gate blocks in the order i, f, g, o):
    z = W_x @ x_t + W_h @ h_prev + b          (b is the sum of all the biases the file had)
    i = act_gate(z_i + p_i * c_prev)          f = act_gate(z_f + p_f * c_prev)
    g = act_cand(z_g)                         c = f * c_prev + i * g   (clipped to cell_clip)
    o = act_gate(z_o + p_o * c)               h = o * act_cell(c)      (then W_p @ h if projected)
""",
    "GRU": """
GRU, per step and direction (gate blocks in the order r, z, n; b_x input, b_h recurrent biases):
    r = act_gate(W_x_r @ x_t + b_x_r + W_h_r @ h_prev + b_h_r)
    z = act_gate(W_x_z @ x_t + b_x_z + W_h_z @ h_prev + b_h_z)
    reset_after=True  (PyTorch, Keras reset_after=True, ONNX linear_before_reset=1):
        n = act_cand(W_x_n @ x_t + b_x_n + r * (W_h_n @ h_prev + b_h_n))
    reset_after=False (TF1, Keras reset_after=False, ONNX linear_before_reset=0):
        n = act_cand(W_x_n @ x_t + b_x_n + W_h_n @ (r * h_prev) + b_h_n)
    h = (1 - z) * n + z * h_prev
""",
    "RNN": """
Plain RNN (Elman), per step and direction:
    h = act(W_x @ x_t + W_h @ h_prev + b)     (act: tanh, relu, ...)
""",
}

LSTM_DIRECTION = '''def initial(states, layer, direction, stored):
    """The caller's state for this layer and direction, else the one the file stores."""
    if states is None or states[layer] is None:
        return stored
    state = np.asarray(states[layer], dtype=np.float64)
    return state[direction] if state.ndim == 2 else state


def lstm_direction(
    x, W_x, W_h, b, reverse, act_gate, act_cand, act_cell, p_i=None, p_f=None, p_o=None,
    W_p=None, h0=None, c0=None, cell_clip=None, gate_clip=None, proj_clip=None,
):
    """One direction over x (T, D); returns h (T, P) in time order, even when it reads
    backwards (reverse=True: t = T-1 ... 0)."""
    T = x.shape[0]
    H = W_x.shape[0] // 4
    h = np.zeros(W_h.shape[1]) if h0 is None else h0
    c = np.zeros(H) if c0 is None else c0
    out = np.empty((T, W_h.shape[1]))

    def clip(z):
        return z if gate_clip is None else np.clip(z, -gate_clip, gate_clip)

    z_x = x @ W_x.T + b  # input terms of every step at once
    for t in range(T - 1, -1, -1) if reverse else range(T):
        z = z_x[t] + W_h @ h
        z_i = z[0 * H:1 * H]  # input gate
        z_f = z[1 * H:2 * H]  # forget gate
        z_g = z[2 * H:3 * H]  # candidate (called c or j elsewhere)
        z_o = z[3 * H:4 * H]  # output gate
        if p_i is not None:
            z_i = z_i + p_i * c  # peepholes see the previous cell state
        if p_f is not None:
            z_f = z_f + p_f * c
        i = act_gate(clip(z_i))
        f = act_gate(clip(z_f))
        g = act_cand(clip(z_g))
        c = f * c + i * g
        if cell_clip is not None:
            c = np.clip(c, -cell_clip, cell_clip)
        if p_o is not None:
            z_o = z_o + p_o * c  # ... the output gate's sees the new one
        o = act_gate(clip(z_o))
        h = o * act_cell(c)
        if W_p is not None:
            h = W_p @ h  # projection
            if proj_clip is not None:
                h = np.clip(h, -proj_clip, proj_clip)
        out[t] = h
    return out'''

GRU_DIRECTION = '''def gru_direction(
    x, W_x, W_h, b_x, b_h, reset_after, reverse, act_gate, act_cand, h0=None, gate_clip=None,
):
    """One GRU direction over x (T, D); returns h (T, H) in time order. Gate blocks r, z, n."""
    T = x.shape[0]
    H = W_x.shape[0] // 3
    h = np.zeros(H) if h0 is None else h0
    out = np.empty((T, H))

    def clip(z):
        return z if gate_clip is None else np.clip(z, -gate_clip, gate_clip)

    z_x = x @ W_x.T + b_x  # input terms of every step at once
    for t in range(T - 1, -1, -1) if reverse else range(T):
        x_r = z_x[t, 0 * H:1 * H]  # reset gate, input part
        x_z = z_x[t, 1 * H:2 * H]  # update gate
        x_n = z_x[t, 2 * H:3 * H]  # candidate
        if reset_after:
            z_h = W_h @ h + b_h
            h_r, h_z, h_n = z_h[0 * H:1 * H], z_h[1 * H:2 * H], z_h[2 * H:3 * H]
            r = act_gate(clip(x_r + h_r))
            z = act_gate(clip(x_z + h_z))
            n = act_cand(clip(x_n + r * h_n))  # the reset gate scales W_h_n @ h + b_h_n
        else:
            h_r = W_h[0 * H:1 * H] @ h + b_h[0 * H:1 * H]
            h_z = W_h[1 * H:2 * H] @ h + b_h[1 * H:2 * H]
            r = act_gate(clip(x_r + h_r))
            z = act_gate(clip(x_z + h_z))
            n = act_cand(clip(x_n + W_h[2 * H:3 * H] @ (r * h) + b_h[2 * H:3 * H]))
        h = (1.0 - z) * n + z * h
        out[t] = h
    return out'''

RNN_DIRECTION = '''def rnn_direction(x, W_x, W_h, b, reverse, act, h0=None, gate_clip=None):
    """One plain RNN direction over x (T, D); returns h (T, H) in time order."""
    T = x.shape[0]
    h = np.zeros(W_h.shape[0]) if h0 is None else h0
    out = np.empty((T, W_h.shape[0]))
    z_x = x @ W_x.T + b
    for t in range(T - 1, -1, -1) if reverse else range(T):
        z = z_x[t] + W_h @ h
        if gate_clip is not None:
            z = np.clip(z, -gate_clip, gate_clip)
        h = act(z)
        out[t] = h
    return out'''

#: name → (docstring, body). Bodies are indented for a ``def name(z):``.
ACTIVATIONS: dict[str, tuple[str, str]] = {
    "sigmoid": (
        "1 / (1 + exp(-z)), computed without overflow.",
        "    e = np.exp(-np.abs(z))\n    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))",
    ),
    "tanh": ("tanh(z).", "    return np.tanh(z)"),
    "relu": ("max(z, 0).", "    return np.maximum(z, 0.0)"),
    "relu6": ("min(max(z, 0), 6).", "    return np.clip(z, 0.0, 6.0)"),
    "linear": ("z, unchanged.", "    return z"),
    "softsign": ("z / (1 + |z|).", "    return z / (1.0 + np.abs(z))"),
    "softplus": ("log(1 + exp(z)).", "    return np.logaddexp(0.0, z)"),
    "elu": (
        "z if z > 0, else {a} * (exp(z) - 1).",
        "    return np.where(z > 0, z, {a} * np.expm1(np.minimum(z, 0.0)))",
    ),
    "selu": (
        "SELU with its fixed constants.",
        "    neg = 1.6732632423543772 * np.expm1(np.minimum(z, 0.0))\n"
        "    return 1.0507009873554805 * np.where(z > 0, z, neg)",
    ),
    "exponential": ("exp(z).", "    return np.exp(z)"),
    "swish": ("z * sigmoid(z).", "    return z * sigmoid(z)"),
    "hard_sigmoid_k2": (
        "Keras 1/2 and tf.keras hard_sigmoid: clip(0.2 z + 0.5, 0, 1).",
        "    return np.clip(0.2 * z + 0.5, 0.0, 1.0)",
    ),
    "hard_sigmoid_k3": (
        "Keras 3 hard_sigmoid: clip(z / 6 + 0.5, 0, 1).",
        "    return np.clip(z / 6.0 + 0.5, 0.0, 1.0)",
    ),
    "hard_sigmoid_ab": (
        "ONNX HardSigmoid: clip({a} z + {b}, 0, 1).",
        "    return np.clip({a} * z + {b}, 0.0, 1.0)",
    ),
    "leaky_relu": ("z if z >= 0, else {a} z.", "    return np.where(z >= 0, z, {a} * z)"),
    "thresholded_relu": ("z if z > {a}, else 0.", "    return np.where(z > {a}, z, 0.0)"),
    "scaled_tanh": ("{a} tanh({b} z).", "    return {a} * np.tanh({b} * z)"),
    "affine": ("{a} z + {b}.", "    return {a} * z + {b}"),
    "gelu": (
        "z * Phi(z), with erf from Abramowitz-Stegun 7.1.26 (error < 1.5e-7).",
        "    u = np.abs(z) / np.sqrt(2.0)\n"
        "    t = 1.0 / (1.0 + 0.3275911 * u)\n"
        "    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027"
        " + t * 1.061405429))))\n"
        "    erf = np.sign(z) * (1.0 - poly * np.exp(-u * u))\n"
        "    return 0.5 * z * (1.0 + erf)",
    ),
    "mish": ("z tanh(softplus(z)).", "    return z * np.tanh(np.logaddexp(0.0, z))"),
    "hard_silu": (
        "z * clip(z / 6 + 0.5, 0, 1).",
        "    return z * np.clip(z / 6.0 + 0.5, 0.0, 1.0)",
    ),
    "log_sigmoid": ("log(sigmoid(z)).", "    return -np.logaddexp(0.0, -z)"),
    "hard_tanh": ("clip(z, -1, 1).", "    return np.clip(z, -1.0, 1.0)"),
    "tanh_shrink": ("z - tanh(z).", "    return z - np.tanh(z)"),
    "celu": (
        "max(z, 0) + min(0, {a} (exp(z / {a}) - 1)).",
        "    return np.maximum(z, 0.0) + np.minimum(0.0, {a} * np.expm1(np.minimum(z, 0.0) / {a}))",
    ),
    "sparse_plus": (
        "0 below -1, z above 1, (z + 1)^2 / 4 between.",
        "    return np.where(z <= -1, 0.0, np.where(z >= 1, z, (z + 1) ** 2 / 4))",
    ),
    "sparse_sigmoid": ("clip((z + 1) / 2, 0, 1).", "    return np.clip(0.5 * (z + 1.0), 0.0, 1.0)"),
    "squareplus": ("(z + sqrt(z^2 + {a})) / 2.", "    return 0.5 * (z + np.sqrt(z * z + {a}))"),
    "soft_shrink": (
        "z - sign(z) {a} where |z| > {a}, else 0.",
        "    return np.where(np.abs(z) > {a}, z - np.sign(z) * {a}, 0.0)",
    ),
    "hard_shrink": ("z where |z| > {a}, else 0.", "    return np.where(np.abs(z) > {a}, z, 0.0)"),
    "softmax": (
        "exp(z) / sum(exp(z)) over the last axis (shifted by the max).",
        "    e = np.exp(z - np.max(z, axis=-1, keepdims=True))\n"
        "    return e / np.sum(e, axis=-1, keepdims=True)",
    ),
    "log_softmax": (
        "z - log(sum(exp(z))) over the last axis.",
        "    s = z - np.max(z, axis=-1, keepdims=True)\n"
        "    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))",
    ),
}

#: Activations whose formula calls another one (defined too).
NEEDS: dict[str, tuple[str, ...]] = {"swish": ("sigmoid",)}
