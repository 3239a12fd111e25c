"""The canonical plain RNN direction (Elman; Keras ``SimpleRNN``, PyTorch ``nn.RNN``, ONNX
``RNN``): ``n = h_t = act_cand(W_x x_t + W_h h_(t-1) + b)``, ``W_x (H, D)``, ``W_h (H, H)``,
``b (H,)`` (a framework's two biases summed). Its one block is called ``n`` (new state) so that
gate names and state names never clash.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from lstmviz.core.activations import TANH, Activation
from lstmviz.core.cells import RNN_CELL, CellDescription
from lstmviz.core.gru import _check_activations, _check_clip
from lstmviz.core.model import FloatArray, Provenance, RecurrentDirection


@dataclass(frozen=True)
class RNNDirection(RecurrentDirection):
    """The weights of one plain RNN direction in canonical form."""

    W_x: FloatArray
    W_h: FloatArray
    b: FloatArray | None = None  # None: zeros
    act_cand: Activation = TANH  # the activation: tanh, relu, ...
    reverse: bool = False
    provenance: Provenance = field(default_factory=lambda: Provenance(framework="unknown"))
    h0: FloatArray | None = None
    #: ONNX ``clip``: the activation's argument clipped to ±gate_clip (None: no clip).
    gate_clip: float | None = None

    array_fields: ClassVar[tuple[str, ...]] = ("W_x", "W_h", "b", "h0")
    cell: ClassVar[CellDescription] = RNN_CELL

    def __post_init__(self) -> None:
        W_x = np.asarray(self.W_x)
        if W_x.ndim != 2 or W_x.shape[0] == 0:
            raise ValueError(f"W_x must be (H, D), got {W_x.shape}")
        H = W_x.shape[0]
        if self.b is None:
            object.__setattr__(self, "b", np.zeros(H, np.float32))
        self._freeze_fields()
        if self.W_h.shape != (H, H):
            raise ValueError(f"W_h must be ({H}, {H}), got {self.W_h.shape}")
        if self.b.shape != (H,):
            raise ValueError(f"b must be ({H},), got {self.b.shape}")
        if self.h0 is not None and self.h0.shape != (H,):
            raise ValueError(f"h0 must be ({H},), got {self.h0.shape}")
        _check_activations(self, ("act_cand",), "plain RNN")
        _check_clip(self.gate_clip)

    @property
    def activation(self) -> Activation:
        """The cell's one activation (``act_cand``)."""
        return self.act_cand

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def has_peepholes(self) -> bool:
        return False

    def replace(self, **changes: Any) -> RNNDirection:
        return replace(self, **changes)
