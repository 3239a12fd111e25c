"""Colour and axis levels shared by every plot: symmetric around zero, blind to NaN/Inf."""

from __future__ import annotations

import numpy as np


def symmetric_limit(*arrays: np.ndarray) -> float:
    """Largest finite |value| over ``arrays`` (1.0 if none), so a diverging colour map keeps
    zero at its centre and a model with NaN/Inf values still gets a drawable range."""
    limit = 0.0
    for data in arrays:
        if hasattr(data, "symmetric_limit"):  # a bounded trace's array: from its overview
            limit = max(limit, data.symmetric_limit())
            continue
        data = np.asarray(data)
        if not data.size:
            continue
        # max and min run at memory speed; the masked copy only for the rare non-finite array
        hi, lo = float(np.max(data)), float(np.min(data))
        if np.isfinite(hi) and np.isfinite(lo):
            limit = max(limit, hi, -lo)
            continue
        finite = np.abs(data[np.isfinite(data)])
        if finite.size:
            limit = max(limit, float(finite.max()))
    return limit if limit > 0 else 1.0
