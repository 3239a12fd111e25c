"""The traces of a GRU and a plain RNN direction: ``CellTrace`` for the LSTM's siblings.

As for the LSTM, the recurrence stores only what a step needs (the gates and h; ``h_prev`` is
a view of the same buffer shifted by a row) and the pre-activation terms are derived on first
use in one matmul each over the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from lstmviz.core.gru import GRUDirection
from lstmviz.core.rnn import RNNDirection
from lstmviz.core.trace import CellTrace, FloatArray


@dataclass(frozen=True, eq=False)
class GRUDirectionTrace(CellTrace):
    """One GRU direction over the whole sequence, in time order (rows as ``DirectionTrace``).

    ``z_x = x_t W_xᵀ`` and ``z_h = h_(t-1) W_hᵀ`` are ``(T, 3H)`` in r, z, n blocks; ``b`` is
    the bias as the equations show it (``GRUDirection.b``); ``cand_h`` is the candidate's
    recurrent term: ``r ⊙ (U_n h_(t-1) + b_hn)`` with ``reset_after``, else
    ``U_n (r ⊙ h_(t-1))`` (then the n block of ``z_h``, ``U_n h_(t-1)``, is in no equation).
    ``pre`` is each gate's activation argument: r, z ``z_x + z_h + b``; n ``z_x + b + cand_h``.
    """

    derived_names: ClassVar[tuple[str, ...]] = ("z_x", "z_h", "cand_h", "pre")

    weights: GRUDirection
    x: FloatArray  # (T, D)
    b: FloatArray  # (3H,)
    r: FloatArray  # (T, H)
    z: FloatArray
    n: FloatArray
    h: FloatArray
    h_prev: FloatArray

    @cached_property
    def cand_h(self) -> FloatArray:
        """``(T, H)`` the candidate's recurrent term (class docstring)."""
        w, dtype = self.weights, self.b.dtype
        H = w.hidden_size
        if w.reset_after:
            return self.r * (self.z_h[:, 2 * H :] + w.b_h[2 * H :].astype(dtype))
        return (self.r * self.h_prev) @ w.W_h[2 * H :].astype(dtype, copy=False).T

    @cached_property
    def pre(self) -> FloatArray:
        """``(T, 3H)`` the argument of each gate's activation."""
        H = self.weights.hidden_size
        out = self.z_x + self.b
        out[:, : 2 * H] += self.z_h[:, : 2 * H]
        out[:, 2 * H :] += self.cand_h
        return out


@dataclass(frozen=True, eq=False)
class RNNDirectionTrace(CellTrace):
    """One plain RNN direction: ``n = h = act(z_x + z_h + b)``; ``n`` is ``h`` itself."""

    derived_names: ClassVar[tuple[str, ...]] = ("z_x", "z_h", "pre")

    weights: RNNDirection
    x: FloatArray  # (T, D)
    b: FloatArray  # (H,)
    h: FloatArray  # (T, H)
    h_prev: FloatArray

    @property
    def n(self) -> FloatArray:
        return self.h

    @cached_property
    def pre(self) -> FloatArray:
        out = self.z_x + self.b
        out += self.z_h
        return out
