"""The structural moves' cheap row checks agree with the moves themselves, and each move is
a pure rearrangement (the values A holds, moved)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.comparison.structural import match_blocks, moves, permute
from lstmviz.core.model import LSTMDirection


@pytest.mark.parametrize("D, H", [(3, 5), (5, 5), (7, 4), (1, 6), (12, 3), (8, 2), (6, 2)])
def test_row_probes_equal_the_moved_rows(D, H):
    rng = np.random.default_rng(D * 10 + H)
    d = LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )
    rows = [k * H for k in range(4)] + [1, 4 * H - 1]
    found = moves(d)
    assert any(m.kind == "fused_rows_swapped" for m in found)
    assert any(m.kind == "transposed" for m in found)
    for m in found:
        full = m.apply(d.W_x, d.W_h)
        probe = m.rows(d.W_x, d.W_h, rows)
        assert (full is None) == (probe is None), m.detail
        if full is None:
            continue
        for moved, part in zip(full, probe, strict=True):
            np.testing.assert_array_equal(moved[rows], part, err_msg=m.detail)
        before = np.sort(np.concatenate([d.W_x.ravel(), d.W_h.ravel()]))
        after = np.sort(np.concatenate([full[0].ravel(), full[1].ravel()]))
        np.testing.assert_array_equal(before, after, err_msg=m.detail)


def test_match_blocks_finds_the_permutation_and_permute_inverts_nothing_else():
    rng = np.random.default_rng(0)
    wx, wh = rng.normal(size=(12, 2)), rng.normal(size=(12, 3))
    sigma = (2, 0, 1, 3)
    got = match_blocks((wx, wh), (permute(wx, sigma), permute(wh, sigma)), 1e-9)
    assert got == [sigma]
    assert match_blocks((wx, wh), (wx, wh), 1e-9)[0] == (0, 1, 2, 3)
    assert match_blocks((wx, wh), (wx + 1e-3, wh), 1e-9) == []
