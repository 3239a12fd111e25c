"""match on ties: the order is documented (score, then the soft score, then corpus position)
and float noise of a few ulps (the debugger's run against ``run_corpus``) does not decide it."""

from __future__ import annotations

import numpy as np

from lstmviz.explore import Corpus, UnitSet, match, states_from_arrays


def _copies(scales: list[float], seed: int = 0):
    """One document; a query pattern of 5 steps × 6 units (all on) at 0, then copies of it,
    each scaled (a cosine of exactly 1 in real numbers), 10 steps apart, off between."""
    rng = np.random.default_rng(seed)
    pattern = rng.uniform(0.5, 1.0, size=(5, 6)).astype(np.float32)
    n = 10 * (len(scales) + 1)
    v = np.full((n, 6), -0.5, dtype=np.float32)
    v[0:5] = pattern
    for k, s in enumerate(scales, start=1):
        v[10 * k : 10 * k + 5] = pattern * np.float32(s)
    corpus = Corpus.from_ids([np.zeros(n, dtype=np.int64)])
    return states_from_arrays(corpus, v)


def test_cosine_ties_are_decided_by_position_not_rounding():
    """Every copy's cosine is 1 up to float32 rounding (which differs per scale by an ulp):
    the copies come in corpus order."""
    scales = [1.0, 3.7, 0.61, 2.9, 1.3, 7.1, 0.83, 5.3, 1.9, 2.3, 4.4, 0.7]
    for seed in range(8):
        st = _copies(scales, seed)
        units = UnitSet(np.arange(6), 0, 5, 0.3)
        found = match(st, units, top=len(scales), method="cosine")
        assert [m.start for m in found] == [10 * k for k in range(1, len(scales) + 1)], seed
        assert all(abs(m.score - 1.0) < 1e-6 for m in found)


def test_overlap_ties_by_soft_score_then_position():
    """Equal Jaccard (2 of units {0, 1, 2} on throughout): the window where unit 2 is on in
    more of its steps comes first (soft score), then the earlier of equal ones."""
    n = 60
    v = np.full((n, 3), -0.5, dtype=np.float32)
    v[0:3, :3] = 0.8  # the query: units 0, 1, 2 on throughout 3 steps
    v[10:13, :2] = 0.8  # units 0, 1: soft 6
    v[20:23, :2] = 0.8  # units 0, 1, and unit 2 on in 2 steps: soft 8
    v[20:22, 2] = 0.8
    v[30:33, :2] = 0.8  # soft 6, later than 10
    v[40:43, :2] = 0.8  # soft 7
    v[40, 2] = 0.8
    corpus = Corpus.from_ids([np.zeros(n, dtype=np.int64)])
    st = states_from_arrays(corpus, v)
    found = match(st, UnitSet(np.array([0, 1, 2]), 0, 3, 0.3), top=4)
    assert [round(m.score, 6) for m in found] == [round(2 / 3, 6)] * 4
    assert [m.start for m in found] == [20, 40, 10, 30]
