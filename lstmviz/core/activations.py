"""Named activation functions used by LSTM gates.

Every activation is stored by an exact name. A bare "hard_sigmoid" does not exist here on
purpose: Keras 2 and Keras 3 disagree on its slope, so readers must pick
``hard_sigmoid_k2`` (clip(0.2x + 0.5)) or ``hard_sigmoid_k3`` (clip(x/6 + 0.5)) from the
file's Keras version. Constructing an ``Activation`` with an unknown name raises ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]


def _sigmoid(x: Array, a: float, b: float) -> Array:
    # Split by sign so that exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _softplus(x: Array, a: float, b: float) -> Array:
    return np.logaddexp(0.0, x)


#: NumPy has no erf; math.erf is exact, and GELU layers are rare enough for a ufunc wrapper.
_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: Array, a: float, b: float) -> Array:
    """Keras' default ``gelu(x, approximate=False)``: x·Φ(x)."""
    return 0.5 * x * (1.0 + _erf(np.asarray(x) / math.sqrt(2.0)).astype(np.result_type(x, 1.0)))


def _celu(x: Array, a: float, b: float) -> Array:
    return np.maximum(x, 0.0) + np.minimum(0.0, a * np.expm1(np.minimum(x, 0.0) / a))


def _shrink(x: Array, threshold: float, soft: bool) -> Array:
    keep = np.abs(x) > threshold
    return np.where(keep, x - np.sign(x) * threshold if soft else x, 0.0)


_FUNCS: dict[str, Callable[[Array, float, float], Array]] = {
    "sigmoid": _sigmoid,
    "tanh": lambda x, a, b: np.tanh(x),
    "relu": lambda x, a, b: np.maximum(x, 0.0),
    "relu6": lambda x, a, b: np.clip(x, 0.0, 6.0),
    "linear": lambda x, a, b: x.copy(),
    "softsign": lambda x, a, b: x / (1.0 + np.abs(x)),
    "softplus": _softplus,
    "elu": lambda x, a, b: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x, a, b: (
        1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0)))
    ),
    "exponential": lambda x, a, b: np.exp(x),
    "swish": lambda x, a, b: x * _sigmoid(x, a, b),
    # Keras 1/2, tf.keras, Theano-free backends: slope 0.2.
    "hard_sigmoid_k2": lambda x, a, b: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    # Keras >= 3.0: relu6(x + 3) / 6.
    "hard_sigmoid_k3": lambda x, a, b: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    # ONNX HardSigmoid with explicit alpha/beta.
    "hard_sigmoid_ab": lambda x, a, b: np.clip(a * x + b, 0.0, 1.0),
    "leaky_relu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "thresholded_relu": lambda x, a, b: np.where(x > a, x, 0.0),
    "scaled_tanh": lambda x, a, b: a * np.tanh(b * x),
    "affine": lambda x, a, b: a * x + b,
    # Keras 3 additions (keras.src.activations), with Keras' defaults as alpha.
    "gelu": _gelu,
    "mish": lambda x, a, b: x * np.tanh(np.logaddexp(0.0, x)),
    "hard_silu": lambda x, a, b: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "log_sigmoid": lambda x, a, b: -np.logaddexp(0.0, -x),
    "hard_tanh": lambda x, a, b: np.clip(x, -1.0, 1.0),
    "tanh_shrink": lambda x, a, b: x - np.tanh(x),
    "celu": _celu,
    "sparse_plus": lambda x, a, b: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "sparse_sigmoid": lambda x, a, b: np.clip(0.5 * (x + 1.0), 0.0, 1.0),
    "squareplus": lambda x, a, b: 0.5 * (x + np.sqrt(x * x + a)),
    "soft_shrink": lambda x, a, b: _shrink(x, a, soft=True),
    "hard_shrink": lambda x, a, b: _shrink(x, a, soft=False),
}


def _softmax(x: Array, a: float, b: float) -> Array:
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / np.sum(z, axis=-1, keepdims=True)


def _log_softmax(x: Array, a: float, b: float) -> Array:
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


#: Activations of a whole vector (the last axis), not of each element: fine for a dense head,
#: refused inside an LSTM, whose loops apply one activation to several gate blocks at once.
_VECTOR_FUNCS: dict[str, Callable[[Array, float, float], Array]] = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}

#: Default (alpha, beta) for names that take parameters.
_DEFAULT_PARAMS: dict[str, tuple[float, float]] = {
    "elu": (1.0, 0.0),
    "hard_sigmoid_ab": (0.2, 0.5),
    "leaky_relu": (0.01, 0.0),
    "thresholded_relu": (1.0, 0.0),
    "scaled_tanh": (1.0, 1.0),
    "affine": (1.0, 0.0),
    "celu": (1.0, 0.0),
    "squareplus": (4.0, 0.0),
    "soft_shrink": (0.5, 0.0),
    "hard_shrink": (0.5, 0.0),
}

#: The element-wise activations (every one usable in every role of an LSTM).
NAMES: tuple[str, ...] = tuple(_FUNCS)
VECTOR_NAMES: tuple[str, ...] = tuple(_VECTOR_FUNCS)


@dataclass(frozen=True)
class Activation:
    """An activation by exact name, with optional parameters (ONNX alpha/beta, ELU alpha)."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self) -> None:
        if self.name not in _FUNCS and self.name not in _VECTOR_FUNCS:
            hint = (
                " (use hard_sigmoid_k2 or hard_sigmoid_k3)" if "hard_sigmoid" in self.name else ""
            )
            raise ValueError(f"unknown activation {self.name!r}{hint}; known: {', '.join(NAMES)}")
        if self.name in _DEFAULT_PARAMS:
            a, b = _DEFAULT_PARAMS[self.name]
            if self.alpha is None:
                object.__setattr__(self, "alpha", a)
            if self.beta is None:
                object.__setattr__(self, "beta", b)

    def __call__(self, x: Array) -> Array:
        x = np.asarray(x)
        fn = _FUNCS.get(self.name) or _VECTOR_FUNCS[self.name]
        return fn(x, self.alpha or 0.0, self.beta or 0.0)

    @property
    def elementwise(self) -> bool:
        """False for softmax-like activations, which mix the values of the last axis."""
        return self.name in _FUNCS

    @property
    def formula(self) -> str:
        """A short human-readable formula, shown in the GUI and --info."""
        forms = {
            "sigmoid": "1/(1+exp(-x))",
            "tanh": "tanh(x)",
            "hard_sigmoid_k2": "clip(0.2x+0.5, 0, 1)  [Keras 2 / tf.keras]",
            "hard_sigmoid_k3": "clip(x/6+0.5, 0, 1)  [Keras 3]",
            "hard_sigmoid_ab": f"clip({self.alpha}x+{self.beta}, 0, 1)",
        }
        return forms.get(self.name, self.name)

    def __str__(self) -> str:
        if self.name in _DEFAULT_PARAMS and (self.alpha, self.beta) != _DEFAULT_PARAMS[self.name]:
            return f"{self.name}(alpha={self.alpha:g}, beta={self.beta:g})"
        return self.name


SIGMOID = Activation("sigmoid")
TANH = Activation("tanh")
