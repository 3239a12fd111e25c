"""The canonical GRU direction (CONVENTIONS.md §7), the LSTM's sibling.

``W_x (3H, D)``, ``W_h (3H, H)``, ``b_x (3H,)``, ``b_h (3H,)`` with row blocks in the order
**r, z, n** (PyTorch's and cuDNN's). The input and recurrent biases stay apart because with
``reset_after`` the reset gate multiplies ``W_h·h + b_h``:

- ``reset_after=True`` ("v3": PyTorch, cuDNN, Keras ``reset_after=True``, ONNX
  ``linear_before_reset=1``): ``n = act_cand(W_n x + b_xn + r ⊙ (U_n h + b_hn))``;
- ``reset_after=False`` ("v1": TF1 ``GRUCell``/``GRUBlockCell``, Keras ``reset_after=False``,
  ONNX's default): ``n = act_cand(W_n x + b_xn + U_n (r ⊙ h) + b_hn)`` — ``b_hn`` sits
  outside the reset, as in ONNX, so it is the same as folding it into ``b_xn``; readers of
  one-bias formats leave ``b_h`` at zero.

Both: ``r = act_gate(W_r x + b_xr + U_r h + b_hr)``, ``z`` likewise,
``h' = (1 − z) ⊙ n + z ⊙ h``. ``act_gate`` is sigmoid (or a hard sigmoid, Keras), ``act_cand``
tanh unless the file says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from lstmviz.core.activations import SIGMOID, TANH, Activation
from lstmviz.core.cells import GRU_CELL, GRU_RESET_BEFORE_CELL, CellDescription
from lstmviz.core.model import FloatArray, Provenance, RecurrentDirection


def _check_clip(clip: float | None) -> None:
    if clip is not None and not clip > 0:
        raise ValueError(f"gate_clip must be positive or None, got {clip}")


def _check_activations(direction: Any, names: tuple[str, ...], kind: str) -> None:
    for name in names:
        act = getattr(direction, name)
        if not act.elementwise:
            raise ValueError(f"{name} {act.name} is not element-wise; a {kind} needs one that is")


@dataclass(frozen=True)
class GRUDirection(RecurrentDirection):
    """The weights of one GRU direction in canonical form (module docstring for equations)."""

    W_x: FloatArray
    W_h: FloatArray
    b_x: FloatArray | None = None  # None: zeros
    b_h: FloatArray | None = None
    reset_after: bool = True
    act_gate: Activation = SIGMOID
    act_cand: Activation = TANH
    reverse: bool = False
    provenance: Provenance = field(default_factory=lambda: Provenance(framework="unknown"))
    h0: FloatArray | None = None  # (H,) initial state the file stores; None: zeros
    #: ONNX ``clip``: every activation's argument clipped to ±gate_clip (None: no clip).
    gate_clip: float | None = None

    array_fields: ClassVar[tuple[str, ...]] = ("W_x", "W_h", "b_x", "b_h", "h0")

    def __post_init__(self) -> None:
        W_x = np.asarray(self.W_x)
        if W_x.ndim != 2 or W_x.shape[0] % 3 or W_x.shape[0] == 0:
            raise ValueError(f"W_x must be (3H, D), got {W_x.shape}")
        H = W_x.shape[0] // 3
        for name in ("b_x", "b_h"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(3 * H, np.float32))
        self._freeze_fields()
        if self.W_h.shape != (3 * H, H):
            raise ValueError(f"W_h must be ({3 * H}, {H}), got {self.W_h.shape}")
        for name in ("b_x", "b_h"):
            if getattr(self, name).shape != (3 * H,):
                raise ValueError(f"{name} must be ({3 * H},), got {getattr(self, name).shape}")
        if self.h0 is not None and self.h0.shape != (H,):
            raise ValueError(f"h0 must be ({H},), got {self.h0.shape}")
        _check_activations(self, ("act_gate", "act_cand"), "GRU")
        _check_clip(self.gate_clip)

    @property
    def cell(self) -> CellDescription:  # type: ignore[override]
        return GRU_CELL if self.reset_after else GRU_RESET_BEFORE_CELL

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def b(self) -> FloatArray:
        """The bias as the equations show it, per gate (``cell.gate(...).terms``): r and z
        ``b_x + b_h``; n ``b_xn`` with ``reset_after`` (``b_hn`` is inside the reset, in the
        ``cand_h`` term), else ``b_xn + b_hn``."""
        return self.derived("b shown", lambda: self.shown_bias(self.b_x.dtype))

    def shown_bias(self, dtype: np.dtype) -> FloatArray:
        """``b`` summed in ``dtype`` (a float64 run sums the float32 biases in float64)."""
        out = self.b_x.astype(dtype) + self.b_h.astype(dtype)
        if self.reset_after:
            H = self.hidden_size
            out[2 * H :] = self.b_x[2 * H :]
        return out

    @property
    def has_peepholes(self) -> bool:
        return False

    def replace(self, **changes: Any) -> GRUDirection:
        return replace(self, **changes)
