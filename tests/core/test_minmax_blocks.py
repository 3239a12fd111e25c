"""``MinMax.add``: folding rows in any pieces gives each block's min and max of its steps,
NaN included (a block holding a NaN shows it), as a plain per-block reduction does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmviz.core.trace_windows import MinMax


def _reference(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = [values[a : a + block] for a in range(0, len(values), block)]
    return np.array([b.min(axis=0) for b in blocks]), np.array([b.max(axis=0) for b in blocks])


@pytest.mark.parametrize("block", [1, 2, 5, 16])
def test_pieces_of_any_size_fold_into_their_blocks(block: int) -> None:
    rng = np.random.default_rng(block)
    for _ in range(30):
        T = int(rng.integers(1, 200))
        values = rng.normal(size=(T, 3)).astype(np.float32)
        if rng.random() < 0.3:
            values[rng.integers(0, T), rng.integers(0, 3)] = np.nan
        mm = MinMax.empty(T, block, 3, np.dtype(np.float32))
        cuts = np.sort(rng.integers(0, T + 1, rng.integers(0, 6)))
        edges = [0, *cuts.tolist(), T]
        order = list(itertools.pairwise(edges))
        rng.shuffle(order)  # a reverse direction folds its pieces last-first
        for a, b in order:
            mm.add(a, values[a:b])
        lo, hi = _reference(values, block)
        np.testing.assert_array_equal(mm.lo, lo)
        np.testing.assert_array_equal(mm.hi, hi)
