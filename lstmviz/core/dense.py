"""Per-step layers around the LSTMs that a file's wiring states: dense, normalisation, activation.

They let ``run`` reproduce what a Keras model does between two LSTMs (``before`` of the second)
and after the last one (``LSTMModel.head``, the network's output), each applied to every step
of a ``(T, n)`` sequence. Every class has ``name``, ``kind``, ``input_size`` (None: any),
``output_size(n_in)``, ``apply(h)`` and ``describe()``: the ``Transform`` protocol of ``model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import FloatArray, StoredTensor, _frozen


@dataclass(frozen=True)
class DenseLayer:
    """``y_t = act(W h_t + b)``.

    ``W (n_out, n_in)`` as PyTorch stores it (Keras' ``[in, out]`` kernel transposed), so it
    reads like the LSTM's own matrices. Only layers whose wiring the file states (a Keras
    config) are run; a bare ``fc.weight`` in a state dict says nothing of where it is applied.
    """

    name: str
    W: FloatArray
    b: FloatArray | None = None
    activation: Activation = field(default_factory=lambda: Activation("linear"))
    kind: str = "Dense"  # the class name in the file, e.g. "Dense", "TimeDistributed(Dense)"
    stored: tuple[StoredTensor, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "W", _frozen(self.W, "W"))
        if self.W.ndim != 2 or 0 in self.W.shape:
            raise ValueError(f"a dense layer's W must be (n_out, n_in), got {self.W.shape}")
        if self.b is not None:
            object.__setattr__(self, "b", _frozen(self.b, "b"))
            if self.b.shape != (self.W.shape[0],):
                raise ValueError(f"b must be ({self.W.shape[0]},), got {self.b.shape}")

    @property
    def input_size(self) -> int:
        return self.W.shape[1]

    def output_size(self, n_in: int) -> int:
        return self.W.shape[0]

    def apply(self, h: FloatArray) -> FloatArray:
        """``act(h Wᵀ + b)`` for ``h (T, n_in)``, in ``h``'s precision."""
        y = h @ self.W.T.astype(h.dtype, copy=False)
        if self.b is not None:
            y += self.b.astype(h.dtype, copy=False)
        return self.activation(y).astype(h.dtype, copy=False)

    def describe(self) -> str:
        plus_b = " + b" if self.b is not None else ""
        return f"{self.activation}(W·h{plus_b}), W {tuple(self.W.shape)}"


@dataclass(frozen=True)
class NormLayer:
    """Normalisation over the features of each step, then ``· scale + offset``.

    ``mean``/``var`` given: BatchNormalization at inference (the stored moving statistics);
    None: LayerNormalization (each step's own mean and variance). Keras' epsilon is added to
    the variance inside the square root in both.
    """

    name: str
    size: int
    scale: FloatArray | None = None
    offset: FloatArray | None = None
    mean: FloatArray | None = None
    var: FloatArray | None = None
    epsilon: float = 1e-3
    kind: str = "LayerNormalization"

    def __post_init__(self) -> None:
        for key in ("scale", "offset", "mean", "var"):
            value = getattr(self, key)
            if value is not None:
                arr = _frozen(value, key)
                if arr.shape != (self.size,):
                    raise ValueError(f"{self.kind} {key} must be ({self.size},), got {arr.shape}")
                object.__setattr__(self, key, arr)
        if (self.mean is None) != (self.var is None):
            raise ValueError("BatchNormalization needs both the moving mean and variance")
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {self.epsilon}")

    @property
    def input_size(self) -> int:
        return self.size

    def output_size(self, n_in: int) -> int:
        return self.size

    def apply(self, h: FloatArray) -> FloatArray:
        dt = h.dtype
        if self.mean is None:
            mu = h.mean(axis=-1, keepdims=True)
            var = h.var(axis=-1, keepdims=True)
        else:
            mu, var = self.mean.astype(dt), self.var.astype(dt)
        y = (h - mu) / np.sqrt(var + dt.type(self.epsilon))
        if self.scale is not None:
            y = y * self.scale.astype(dt)
        if self.offset is not None:
            y = y + self.offset.astype(dt)
        return y.astype(dt, copy=False)

    def describe(self) -> str:
        stats = "moving mean/variance" if self.mean is not None else "per-step mean/variance"
        return f"normalised by {stats} (eps {self.epsilon:g}) · scale + offset"


@dataclass(frozen=True)
class ActivationLayer:
    """A Keras ``Activation`` layer on its own: ``y_t = act(h_t)``."""

    name: str
    activation: Activation
    kind: str = "Activation"

    @property
    def input_size(self) -> None:
        return None  # any width

    def output_size(self, n_in: int) -> int:
        return n_in

    def apply(self, h: FloatArray) -> FloatArray:
        return self.activation(h).astype(h.dtype, copy=False)

    def describe(self) -> str:
        return f"{self.activation}(h)"


Transform = DenseLayer | NormLayer | ActivationLayer


def apply_all(transforms: tuple[Transform, ...], h: FloatArray) -> FloatArray:
    """``h`` through each transform in turn (overflow in an unbounded activation is shown)."""
    with np.errstate(all="ignore"):
        for t in transforms:
            h = t.apply(h)
    return h
