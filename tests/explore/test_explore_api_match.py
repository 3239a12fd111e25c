"""select and match on synthetic states with a known answer, and against a brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmviz.explore import Corpus, UnitSet, match, select, states_from_arrays


def _corpus(lengths: list[int]) -> Corpus:
    return Corpus.from_ids([np.zeros(n, dtype=np.int64) for n in lengths])


def _planted():
    """Three documents of 40 steps, 12 units all off (-0.5) except planted on-patterns (0.8)."""
    corpus = _corpus([40, 40, 40])
    v = np.full((120, 12), -0.5, dtype=np.float32)
    v[5:9, [3, 7, 9]] = 0.8  # the query, doc 0
    v[50:54, [3, 7, 9]] = 0.8  # exact, doc 1
    v[90:94, [3, 7, 9, 11]] = 0.8  # one extra unit, doc 2
    v[20:24, [3, 7]] = 0.8  # one missing unit, doc 0
    v[100:104, [3, 7, 9]] = 0.8  # exact but unit 9 also on just before, doc 2
    v[99, 9] = 0.8
    v[78:82, [3, 7, 9]] = 0.8  # would cross from doc 1 into doc 2
    v[60:70, 0] = 0.8  # unit 0 on for long: every window in it has an extra unit
    return states_from_arrays(corpus, v)


def test_select_finds_the_planted_units():
    st = _planted()
    u = select(st, 5, 9, threshold=0.3)
    assert u.units.tolist() == [3, 7, 9] and (u.start, u.stop, u.length) == (5, 9, 4)
    assert select(st, 5, 10).units.tolist() == []  # step 9 is off
    # unit 9 is on at 99, just before 100: "off before" drops it
    assert select(st, 100, 104).units.tolist() == [3, 7, 9]
    assert select(st, 100, 104, off_before=1).units.tolist() == [3, 7]
    assert select(st, 100, 104, off_after=3).units.tolist() == [3, 7, 9]
    # the off window stays in the range's document: doc 2 starts at 80, before it is off
    assert select(st, 80, 82, off_before=5).units.tolist() == [3, 7, 9]
    with pytest.raises(ValueError, match="not inside the corpus"):
        select(st, 100, 121)


def test_overlap_ranks_by_agreement():
    st = _planted()
    u = select(st, 5, 9)
    ms = match(st, u, top=4)
    got = [(m.start, round(m.score, 4), m.n_on, m.n_extra) for m in ms]
    assert got[0] == (50, 1.0, 3, 0) and got[1] == (100, 1.0, 3, 0)
    assert got[2] == (90, 0.75, 3, 1)  # one extra unit: 3 / (3 + 1)
    assert got[3] == (20, round(2 / 3, 4), 2, 0)  # one missing: 2 / 3
    m = ms[0]
    assert (m.document, m.doc_start, m.doc_stop, m.stop) == (1, 10, 14, 54)
    # the query itself and anything overlapping it is excluded; nothing crosses a document end
    assert all(not (m.start < 9 and m.stop > 5) for m in match(st, u, top=50))
    assert all(m.document == st.corpus.locate(m.stop - 1)[0] for m in match(st, u, top=50))
    assert match(st, u, top=1, exclude_query=False)[0].start in (5, 50, 100)


def test_off_before_constraint_in_match():
    st = _planted()
    u = select(st, 5, 9, off_before=1)
    ms = match(st, u, top=3)
    # at 100 unit 9 was on just before: it no longer counts as on there
    assert [(m.start, round(m.score, 4)) for m in ms[:2]] == [(50, 1.0), (90, 0.75)]
    assert any(m.start == 100 and round(m.score, 4) == round(2 / 3, 4) for m in ms)


def test_edited_unit_set_and_length():
    st = _planted()
    u = select(st, 5, 9).with_units([3, 7])
    assert u.edited and u.units.tolist() == [3, 7] and 3 in u and 9 not in u
    assert u.adding(11).units.tolist() == [3, 7, 11] and u.removing(3).units.tolist() == [7]
    ms = match(st, u, top=5)
    assert {m.start for m in ms if m.score == 1.0} >= {20}  # exactly {3, 7} on there
    assert all(m.stop - m.start == 4 for m in ms)
    short = match(st, u, top=3, length=2)
    assert all(m.stop - m.start == 2 for m in short)
    with pytest.raises(ValueError, match="no units"):
        match(st, u.with_units([]), top=3)
    with pytest.raises(ValueError, match="length 500"):
        match(st, u, length=500)
    with pytest.raises(ValueError, match="method"):
        match(st, u, method="euclid")


def test_cosine_prefers_the_same_shape():
    corpus = _corpus([60])
    rng = np.random.default_rng(1)
    v = rng.uniform(-0.2, 0.2, (60, 6)).astype(np.float32)
    pattern = np.array([[0.9, 0.4], [0.5, 0.8], [0.7, 0.6]], dtype=np.float32)
    v[2:5, [1, 4]] = pattern
    v[30:33, [1, 4]] = 0.5 * pattern  # same shape, smaller: cosine 1
    v[45:48, [1, 4]] = pattern[::-1]  # same values, other order
    st = states_from_arrays(corpus, v)
    u = select(st, 2, 5, threshold=0.35)
    assert u.units.tolist() == [1, 4]
    ms = match(st, u, top=2, method="cosine", threshold=0.2)
    assert ms[0].start == 30 and ms[0].score == pytest.approx(1.0, abs=1e-6)
    assert ms[1].start == 45 and ms[1].score < 0.99


def _brute(v: np.ndarray, units: np.ndarray, L: int, thr: float, starts, q: tuple[int, int]):
    """Jaccard of every window, the plain way."""
    on = v >= thr
    out = {}
    for a in range(len(v) - L + 1):
        if not (starts[np.searchsorted(starts, a, side="right") - 1] + 0 <= a) or (
            np.searchsorted(starts, a, side="right") != np.searchsorted(starts, a + L - 1, "right")
        ):
            continue
        if a < q[1] and a + L > q[0]:
            continue
        c = set(np.flatnonzero(on[a : a + L].all(axis=0)).tolist())
        s = set(units.tolist())
        out[a] = len(c & s) / len(c | s)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlap_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(5, 60, size=6)]
    corpus = _corpus(lengths)
    H = 70  # more than one 64-bit word
    # smooth random states, so runs of on-steps exist
    v = np.cumsum(rng.standard_normal((corpus.n_tokens, H)), axis=0).astype(np.float32)
    v = np.tanh(v / 3)
    st = states_from_arrays(corpus, v)
    units = UnitSet(rng.choice(H, size=8, replace=False), 10, 13, threshold=0.2)
    brute = _brute(v, units.units, 3, 0.2, corpus.doc_starts[:-1], (10, 13))
    ms = match(st, units, top=10)
    assert ms[0].score == pytest.approx(max(brute.values()))
    for m in ms:
        assert m.score == pytest.approx(brute[m.start])
    assert [m.score for m in ms] == sorted((m.score for m in ms), reverse=True)
    spans = sorted((m.start, m.stop) for m in ms)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # distinct places


def test_float16_storage_matches_float32():
    st32 = _planted()
    st16 = states_from_arrays(st32.corpus, st32.values().astype(np.float16))
    u = select(st16, 5, 9)
    assert u == select(st32, 5, 9)
    assert [m.start for m in match(st16, u, top=4)] == [m.start for m in match(st32, u, top=4)]
    # a threshold that float16 cannot store exactly means "at or above the real number"
    v = np.array([[0.2998], [0.3], [0.3003]], dtype=np.float16)
    one = states_from_arrays(_corpus([3]), v)
    # float16(0.3001) is 0.30005 (below 0.3001): a plain float16 comparison would say "on"
    assert select(one, 1, 2, threshold=0.3001).units.tolist() == []
    assert select(one, 2, 3, threshold=0.3001).units.tolist() == [0]
    assert match(one, UnitSet([0], 0, 1), top=3, threshold=0.3001)[0].start == 2


def test_cosine_with_a_query_from_another_sequence():
    st = _planted()
    outside = np.full((4, 12), -0.5, dtype=np.float32)
    outside[:, [3, 7, 9]] = 0.8
    u = UnitSet([3, 7, 9], 0, 4)  # steps 0-3 of a sequence that is not in the corpus
    with pytest.raises(ValueError, match="pass query_values"):
        match(st, UnitSet([3, 7, 9], 200, 204), method="cosine")
    ms = match(st, u, top=3, method="cosine", exclude_query=False, query_values=outside)
    assert {m.start for m in ms} <= {5, 50, 100, 90, 20, 78} and ms[0].score == pytest.approx(1)
    with pytest.raises(ValueError, match="query_values must be"):
        match(st, u, method="cosine", query_values=np.zeros((4, 5)))
