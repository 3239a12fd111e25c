"""What each array a file stores is, in cell terms: the typed role readers give it.

Readers describe every stored array with a ``StoredRole`` (``W_x``, ``b_hh``, ``P``...), and the
core reads its ``part`` and properties — never the framework's own names — to rebuild the
stored picture and to explain shapes. A new kind of stored array is one member here.
"""

from __future__ import annotations

import enum


class StoredPart(enum.Enum):
    """What part of the cell a stored array holds, whatever the framework called it."""

    INPUT_WEIGHTS = "input weights"  # W_x, or the x rows of a fused kernel
    RECURRENT_WEIGHTS = "recurrent weights"  # W_h, or the h rows of a fused kernel
    BIAS = "bias"
    PEEPHOLE = "peephole"
    PROJECTION = "projection"
    HEAD = "head"  # a layer after the LSTM (Dense kernel/bias, normalisation statistics)


class StoredRole(str, enum.Enum):
    """The typed role a reader gives each stored array (``StoredTensor.role``).

    A ``str`` enum, so a reader may pass the plain name (``"W_x"``) and comparisons with it keep
    working; the core reads ``part`` and the other properties instead of parsing names, so it
    knows cells, not file formats. A new kind of stored array is one member here.
    """

    W_x = "W_x"  # input weights [4H, D] (or [D, 4H] transposed)
    W_h = "W_h"  # recurrent weights
    KERNEL_CUDNN = "kernel_cudnn"  # Keras CuDNNLSTM kernel (W_x in cuDNN's own block layout)
    RECURRENT_CUDNN = "recurrent_cudnn"
    b = "b"  # one summed bias (Keras, TF1; ONNX's [dirs, 8H] W and R biases in one array)
    b_ih = "b_ih"  # PyTorch's two biases, summed into the canonical b
    b_hh = "b_hh"
    b_x = "b_x"  # GRU: input and recurrent biases kept apart (the reset gate acts on W_h·h + b_h)
    b_h = "b_h"
    p_i = "p_i"  # one peephole vector per gate (TF1 w_i_diag, Keras 1 ...)
    p_f = "p_f"
    p_o = "p_o"
    P = "P"  # all three peepholes in one array (ONNX [dirs, 3H], order i, o, f)
    W_p = "W_p"  # projection [P, H]
    W = "W"  # a head's Dense kernel
    gamma = "gamma"  # a head's normalisation parameters and statistics
    beta = "beta"
    moving_mean = "moving_mean"
    moving_variance = "moving_variance"

    def __str__(self) -> str:
        return self.value

    @property
    def part(self) -> StoredPart:
        return _PARTS[self]

    @property
    def is_matrix(self) -> bool:
        """An LSTM weight matrix with gate blocks (x or h side)."""
        return self.part in (StoredPart.INPUT_WEIGHTS, StoredPart.RECURRENT_WEIGHTS)

    @property
    def is_cudnn(self) -> bool:
        return self in (StoredRole.KERNEL_CUDNN, StoredRole.RECURRENT_CUDNN)

    @property
    def canonical(self) -> str:
        """The canonical array this role feeds: ``W_x``, ``W_h``, ``b``, ``p_i``... ``W_p``."""
        return {
            StoredRole.KERNEL_CUDNN: "W_x",
            StoredRole.RECURRENT_CUDNN: "W_h",
            StoredRole.b_ih: "b",
            StoredRole.b_hh: "b",
            StoredRole.P: "peepholes",
        }.get(self, self.value)


_PARTS: dict[StoredRole, StoredPart] = {
    StoredRole.W_x: StoredPart.INPUT_WEIGHTS,
    StoredRole.KERNEL_CUDNN: StoredPart.INPUT_WEIGHTS,
    StoredRole.W_h: StoredPart.RECURRENT_WEIGHTS,
    StoredRole.RECURRENT_CUDNN: StoredPart.RECURRENT_WEIGHTS,
    StoredRole.b: StoredPart.BIAS,
    StoredRole.b_ih: StoredPart.BIAS,
    StoredRole.b_hh: StoredPart.BIAS,
    StoredRole.b_x: StoredPart.BIAS,
    StoredRole.b_h: StoredPart.BIAS,
    StoredRole.p_i: StoredPart.PEEPHOLE,
    StoredRole.p_f: StoredPart.PEEPHOLE,
    StoredRole.p_o: StoredPart.PEEPHOLE,
    StoredRole.P: StoredPart.PEEPHOLE,
    StoredRole.W_p: StoredPart.PROJECTION,
    StoredRole.W: StoredPart.HEAD,
    StoredRole.gamma: StoredPart.HEAD,
    StoredRole.beta: StoredPart.HEAD,
    StoredRole.moving_mean: StoredPart.HEAD,
    StoredRole.moving_variance: StoredPart.HEAD,
}
