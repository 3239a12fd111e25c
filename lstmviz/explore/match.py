"""Match: every other range of the corpus ranked by how well it agrees with a selection.

LSTMVis (Strobelt et al. 2018, "match" step; ``query_similar_activations`` in its server) takes
the set S of selected units and, for a candidate range, the set C of units on throughout it (and
off just before / after when the selection asked for that); it ranks by the largest intersection
``|S ∩ C|`` and the smallest union ``|S ∪ C|``, and reports the Jaccard index ``|S ∩ C| / |S ∪ C|``.
So a candidate loses for each selected unit that is missing and for each extra unit that is on
too. ``method="overlap"`` is that score; ``method="cosine"`` compares the selected units' real
values instead (the flattened ``(length, |S|)`` patterns when ``length`` is the selection's, else
the mean vectors over each range).

Speed (≤ 100 ms for 1M tokens at H = 512, ``benchmarks/bench_explore.py``): every candidate of
length L is first scored by the number of (position, selected unit) pairs that are on in it,
one popcount pass over the packed index (``index.OnIndex``) plus a cumulative sum; only the best
few thousand windows are then scored exactly (AND of their L rows of on-bits). Overlapping
candidates are suppressed greedily, best first, so the list shows distinct places.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmviz.explore.index import popcount
from lstmviz.explore.select import UnitSet

METHODS = ("overlap", "cosine")
MAX_CANDIDATES = 1024  # windows scored exactly per round (one per block: distinct places)
ARGMAX_FROM = 8  # block length past which one argmax per block beats column passes
EXACT_BUDGET = 500_000  # candidate windows × length (× units for cosine) per round
SCORE_DECIMALS = 6  # scores equal to 6 decimals are ties (float32 cosines differ by ulps)


@dataclass(frozen=True)
class Match:
    """A range ``[start, stop)`` of global positions, inside document ``document`` at steps
    ``[doc_start, doc_stop)``. ``score``: Jaccard index (overlap) or cosine, best 1.
    ``n_on``: selected units on throughout; ``n_extra``: other units on throughout."""

    start: int
    stop: int
    score: float
    document: int
    doc_start: int
    doc_stop: int
    n_on: int = 0
    n_extra: int = 0


def match(
    states: object,
    units: UnitSet,
    top: int = 20,
    *,
    method: str = "overlap",
    length: int | None = None,
    threshold: float | None = None,
    exclude_query: bool = True,
    query_values: np.ndarray | None = None,
) -> list[Match]:
    """The ``top`` best ranges of ``length`` (default: the selection's) ranked best first.

    Ties are common (a clean selection has many matches of score 1), so the order is total and
    documented: the score rounded to 6 decimals (float32 cosines of equal patterns differ by an
    ulp, and the debugger's run and ``run_corpus`` may round differently), then the soft score
    (the selected (position, unit) pairs on in the range: integers, no rounding), then the
    corpus position, earlier first. The same states and selection always give the same list.

    ``threshold``: what counts as on (default: the selection's). The selection's own range, and
    any range overlapping it, is left out unless ``exclude_query`` is False (a selection made
    in another sequence). ``query_values``: for ``cosine``, the selection range's values
    ``(length, all units)`` when that range is not in ``states``' corpus (by default they are
    read from ``states`` at ``[units.start, units.stop)``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if len(units) == 0:
        raise ValueError("the selection has no units; lower the threshold or pick units by hand")
    if top < 1:
        return []
    L = int(length if length is not None else units.length)
    thr = float(units.threshold if threshold is None else threshold)
    idx = states.index(thr, units.quantity)  # type: ignore[attr-defined]
    N = idx.n_positions
    if units.units[-1] >= idx.n_units:
        raise ValueError(f"unit {units.units[-1]}: the states have {idx.n_units} units")
    if not 1 <= L <= N:
        raise ValueError(f"length {L} must be between 1 and the corpus' {N:,} positions")
    if method == "cosine" and query_values is None and units.stop > N:
        raise ValueError(
            f"the selection's range {units.start}-{units.stop} is not in this corpus of {N:,} "
            "positions; pass query_values= (its values) to match by cosine"
        )
    mask = idx.mask(units.units)
    soft = _soft_scores(idx, mask, L, units, exclude_query)
    n_sel = len(units)
    work = L * (n_sel if method == "cosine" else 1)  # gathered values per candidate
    first = min(MAX_CANDIDATES, max(8 * top, EXACT_BUDGET // work))
    if len(soft) <= first:  # a small corpus: every window is scored exactly
        starts, best = np.arange(len(soft)), soft
    else:
        starts, best = _block_best(soft, L)
    n_valid = int(np.count_nonzero(best >= 0))
    if n_valid == 0:
        return []
    M = min(first, n_valid)
    while True:
        cand = _best(starts, best, M)
        exact, n_on, n_extra = _exact(
            states, idx, mask, units, cand, L, method, n_sel, query_values
        )
        key = np.round(exact, SCORE_DECIMALS)  # ulps of the run's rounding are ties
        order = np.lexsort((cand, -soft[cand], -key))  # exact, then soft, then position
        chosen = _distinct(cand[order], L, top)
        if len(chosen) >= top or n_valid <= M or 16 * first <= M:
            break
        M = min(n_valid, 4 * M)
    where = {int(a): k for k, a in enumerate(cand)}
    out = []
    for a in chosen:
        k = where[a]
        d = int(np.searchsorted(states.corpus.doc_starts, a, side="right")) - 1  # type: ignore[attr-defined]
        t = a - int(states.corpus.doc_starts[d])  # type: ignore[attr-defined]
        out.append(Match(a, a + L, float(exact[k]), d, t, t + L, int(n_on[k]), int(n_extra[k])))
    return out


def _soft_scores(idx, mask: np.ndarray, L: int, units: UnitSet, exclude: bool) -> np.ndarray:
    """Per start ``a`` (``N - L + 1``): the (position, selected unit) pairs on in ``[a, a+L)``,
    minus those on in the off-before / off-after steps; -1 for starts whose range leaves its
    document or overlaps the query."""
    N = idx.n_positions
    n = N - L + 1
    cnt = idx.count(mask)
    wide = N * len(units) >= 2**31
    cs = np.zeros(N + 1, dtype=np.int64 if wide else np.int32)
    np.cumsum(cnt, out=cs[1:])
    score = cs[L:] - cs[:n]
    if units.off_before or units.off_after:
        a = np.arange(n)
        if units.off_before:
            lo = np.maximum(a - units.off_before, idx.doc_start[:n])
            score -= cs[:n] - cs[lo]
        if units.off_after:
            hi = np.minimum(a + L + units.off_after, idx.doc_end[:n])
            score -= cs[hi] - cs[L:]
    score[idx.room[:n] < L] = -1
    if exclude:
        score[max(0, units.start - L + 1) : units.stop] = -1
    return score


def _block_best(soft: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """The best start in each block of ``L`` consecutive starts, and its score. Windows that
    start within ``L`` of each other overlap, so at most one per block can be a distinct match:
    taking it first keeps one long on-run from filling the candidate list with its shifts.
    Column by column (``L`` passes over ``n / L`` blocks): ``argmax(axis=1)`` over 300,000
    rows of 3 costs ten times more."""
    n = len(soft)
    nb = -(-n // L)
    if nb * L != n:
        soft = np.concatenate([soft, np.full(nb * L - n, -1, dtype=soft.dtype)])
    blocks = soft.reshape(nb, L)
    if L > ARGMAX_FROM:  # long rows: one argmax beats L passes (L = 50: 3 ms instead of 20)
        arg = blocks.argmax(axis=1)  # the first of equal maxima, as the passes below keep
        return np.arange(nb) * L + arg, blocks[np.arange(nb), arg]
    best = blocks[:, 0].copy()
    arg = np.zeros(nb, dtype=np.int64)
    for j in range(1, L):
        col = blocks[:, j]
        better = col > best
        np.copyto(best, col, where=better)
        arg[better] = j
    return np.arange(nb) * L + arg, best


def _best(starts: np.ndarray, scores: np.ndarray, M: int) -> np.ndarray:
    """The ``M`` best-scoring starts (valid ones only), in position order; among equal scores
    the earlier (the keys are made unique: introselect slows down on many ties)."""
    if len(scores) <= M:
        keep = scores >= 0
    else:
        n = len(scores)
        key = scores.astype(np.int64) * n - np.arange(n)
        part = np.argpartition(-key, M - 1)[:M]
        keep = part[scores[part] >= 0]
    return np.sort(starts[keep])


def _exact(
    states,
    idx,
    mask,
    units: UnitSet,
    cand: np.ndarray,
    L: int,
    method: str,
    n_sel: int,
    query_values: np.ndarray | None = None,
):
    """Exact scores of the candidate starts: Jaccard of on-sets, or cosine of real values."""
    acc = idx.on_throughout(cand, L)
    if units.off_before or units.off_after:
        lo, hi = idx.doc_start[cand], idx.doc_end[cand]
        if units.off_before:
            acc &= ~idx.on_anywhere(cand - units.off_before, units.off_before, lo, hi)
        if units.off_after:
            acc &= ~idx.on_anywhere(cand + L, units.off_after, lo, hi)
    n_on = popcount(acc & mask[:, None])
    n_extra = popcount(acc & ~mask[:, None])
    if method == "overlap":
        return n_on / (n_sel + n_extra), n_on, n_extra
    values = states.values(units.quantity)
    S = units.units
    H = values.shape[1]
    flat = (cand[:, None, None] + np.arange(L)[None, :, None]) * H + S[None, None, :]
    pat = values.reshape(-1).take(flat).astype(np.float32)  # (M, L, |S|): one 1-D gather
    if query_values is None:
        query = values[units.start : units.stop][:, S].astype(np.float32)
    else:
        qv = np.asarray(query_values, dtype=np.float32)
        if qv.ndim != 2 or qv.shape[1] <= S[-1] or len(qv) == 0:
            raise ValueError(f"query_values must be (steps, units), got shape {qv.shape}")
        query = qv[:, S]
    if units.length == L:
        a, q = pat.reshape(len(cand), -1), query.reshape(-1)
    else:
        a, q = pat.mean(axis=1), query.mean(axis=0)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(q)
    cos = np.divide(a @ q, denom, out=np.zeros(len(cand), dtype=np.float32), where=denom > 0)
    return np.clip(cos, -1.0, 1.0).astype(np.float64), n_on, n_extra


def _distinct(order: np.ndarray, L: int, top: int) -> list[int]:
    """Starts in ``order`` (best first) whose ranges overlap none taken before, at most ``top``."""
    taken: list[int] = []
    sorted_taken = np.empty(0, dtype=np.int64)
    for a in order.tolist():
        k = int(np.searchsorted(sorted_taken, a))
        if k > 0 and sorted_taken[k - 1] + L > a:
            continue
        if k < len(sorted_taken) and a + L > sorted_taken[k]:
            continue
        taken.append(a)
        sorted_taken = np.insert(sorted_taken, k, a)
        if len(taken) >= top:
            break
    return taken
