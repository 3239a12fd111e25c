"""Where two runs on the same sequence part: Δ = B − A per gate, cell and hidden state.

``DirectionDelta`` keeps the two direction traces and derives each Δ on first use (a view
asks for one gate at a time; at T = 10,000 and H = 1024 all six would be 240 MB per
direction). Steps are time indices as in the traces; "first" follows each direction's own
processing order, so a reverse direction's first divergence is its latest time index that
differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lstmviz.core.trace import DirectionTrace

#: The quantities compared, in the order views list them.
QUANTITIES: tuple[str, ...] = ("i", "f", "g", "o", "c", "h")


class Divergence(NamedTuple):
    """The first place the two models differ by more than the tolerance: A's layer index,
    the direction, the time step (trace row) and the unit."""

    layer: int
    direction: int
    step: int
    unit: int


@dataclass(frozen=True, eq=False)
class DirectionDelta:
    """One paired direction: A's layer ``layer_a``, B's ``layer_b``, direction ``direction``."""

    layer_a: int
    layer_b: int
    direction: int
    a: DirectionTrace
    b: DirectionTrace

    @property
    def reverse(self) -> bool:
        return self.a.reverse

    @property
    def quantities(self) -> tuple[str, ...]:
        """What this direction's traces record per step: an LSTM's ``QUANTITIES``, a GRU's
        r, z, n, h (the cell description's gates and states)."""
        cell = getattr(self.a.weights, "cell", None)
        if cell is None or cell.name == "LSTM":
            return QUANTITIES
        return (*cell.gate_names, *(s for s in cell.state_names if s not in cell.gate_names))

    @property
    def n_steps(self) -> int:
        return self.a.n_steps

    def delta(self, quantity: str) -> np.ndarray:
        """``(T, units)`` B − A of ``quantity`` (one of ``quantities``). The last two asked
        for are kept (a view shows one at a time; all six of a 10,000-step, 1024-unit run
        would be 240 MB per direction)."""
        cache = self.__dict__.setdefault("_delta", {})
        d = cache.pop(quantity, None)
        if d is None:
            d = self._difference(quantity)
            d.setflags(write=False)
            while len(cache) >= 2:
                cache.pop(next(iter(cache)))
        cache[quantity] = d  # most recent last
        return d

    def _difference(self, quantity: str) -> np.ndarray:
        if quantity not in self.quantities:
            raise ValueError(f"quantity must be one of {', '.join(self.quantities)}")
        a, b = getattr(self.a, quantity), getattr(self.b, quantity)
        return np.subtract(b, a, dtype=np.result_type(a, b, np.float32))

    def max_per_step(self, quantity: str | None = None) -> np.ndarray:
        """``(T,)`` max |Δ| over units at every step, of one quantity or of all of them
        (NaN counts as infinitely far)."""
        cache = self.__dict__.setdefault("_max", {})
        m = cache.get(quantity)
        if m is None:
            names = self.quantities if quantity is None else (quantity,)
            m = np.zeros(self.n_steps)
            for q in names:
                qm = cache.get(q)
                if qm is None:
                    d = np.abs(self._difference(q))
                    d[np.isnan(d)] = np.inf
                    qm = d.max(axis=1, initial=0.0).astype(np.float64)
                    qm.setflags(write=False)
                    cache[q] = qm
                np.maximum(m, qm, out=m)
            m.setflags(write=False)
            cache[quantity] = m
        return m

    def heatmap(self, quantity: str) -> np.ndarray:
        """``(units, T)`` Δ, unit × step, for a heatmap."""
        return self.delta(quantity).T

    def max_delta(self) -> float:
        return float(self.max_per_step().max(initial=0.0))

    def first(self, tol: float) -> tuple[int, int, str] | None:
        """``(step, unit, quantity)`` where |Δ| first exceeds ``tol`` in processing order;
        the unit and quantity with the largest |Δ| at that step."""
        over = np.flatnonzero(self.max_per_step() > tol)
        if over.size == 0:
            return None
        t = int(over[-1] if self.reverse else over[0])
        best = (-1.0, 0, self.quantities[0])
        for q in self.quantities:
            row = np.abs(getattr(self.b, q)[t].astype(np.float64) - getattr(self.a, q)[t])
            row = np.where(np.isnan(row), np.inf, row)
            u = int(np.argmax(row))
            if row[u] > best[0]:
                best = (float(row[u]), u, q)
        return t, best[1], best[2]

    def processing_index(self, t: int) -> int:
        return self.n_steps - 1 - t if self.reverse else t


def first_divergence(deltas: tuple[DirectionDelta, ...], tol: float) -> Divergence | None:
    """The lowest diverging layer (divergence climbs the stack, so the lowest is where it
    starts); within it the direction that diverges earliest in its own processing order."""
    best: tuple[int, int, int, Divergence] | None = None
    for dd in deltas:
        hit = dd.first(tol)
        if hit is None:
            continue
        t, u, _ = hit
        key = (dd.layer_a, dd.processing_index(t), dd.direction)
        if best is None or key < best[:3]:
            best = (*key, Divergence(dd.layer_a, dd.direction, t, u))
    return None if best is None else best[3]
