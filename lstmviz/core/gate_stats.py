"""Per-gate statistics of a direction's weights: the numbers beside the heatmaps.

NaN and Inf are counted, not propagated: a file with a few broken weights still gets finite
means over the rest, and the count is what the GUI flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import RecurrentDirection

#: |w| below this fraction of the matrix's largest |w| counts as "near zero".
NEAR_ZERO = 0.01


@dataclass(frozen=True)
class GateStats:
    matrix: str  # "W_x", "W_h", "b" (GRU: "b_x", "b_h")
    gate: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    l2: float
    near_zero: float  # fraction of finite values with |w| < NEAR_ZERO · max|matrix|
    n_nan: int
    n_inf: int

    @property
    def has_bad(self) -> bool:
        return self.n_nan + self.n_inf > 0


def _stats(matrix: str, gate: str, block: npt.NDArray[np.floating], scale: float) -> GateStats:
    block = np.asarray(block, dtype=np.float64).ravel()
    finite = block[np.isfinite(block)]
    n_nan, n_inf = int(np.isnan(block).sum()), int(np.isinf(block).sum())
    if finite.size == 0:
        nan = float("nan")
        return GateStats(matrix, gate, block.size, nan, nan, nan, nan, nan, nan, n_nan, n_inf)
    return GateStats(
        matrix,
        gate,
        block.size,
        float(finite.mean()),
        float(finite.std()),
        float(finite.min()),
        float(finite.max()),
        float(np.sqrt(np.sum(finite**2))),
        float(np.mean(np.abs(finite) < NEAR_ZERO * scale)) if scale > 0 else 1.0,
        n_nan,
        n_inf,
    )


#: The gate-blocked arrays of each direction class, by field name (besides W_x and W_h): the
#: biases as the direction keeps them (the GRU's two apart).
_BIASES = ("b", "b_x", "b_h")


def matrices(w: RecurrentDirection) -> dict[str, npt.NDArray[np.floating]]:
    """The gate-blocked arrays of a direction, each ``(n_gates·H, n)``: W_x, W_h and its
    bias fields (``b``; the GRU's ``b_x`` and ``b_h``)."""
    out = {"W_x": w.W_x, "W_h": w.W_h}
    for name in _BIASES:
        if name in w.array_fields:
            out[name] = np.asarray(getattr(w, name))[:, None]
    return out


def gate_stats(w: RecurrentDirection) -> list[GateStats]:
    """Statistics for W_x, W_h and the biases, one row per gate of the cell (i, f, g, o;
    r, z, n; n)."""
    out = []
    for name, a in matrices(w).items():
        finite = np.abs(a[np.isfinite(a)])
        scale = float(finite.max()) if finite.size else 0.0
        out.extend(_stats(name, g, w.gate(a, g), scale) for g in w.cell.gate_names)
    return out
