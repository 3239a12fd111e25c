"""Breakpoints on a bounded trace, scanned in streaming passes window by window.

A full trace evaluates a breakpoint over all steps at once (``Breakpoint.mask``). A bounded
trace cannot hold all steps, so ``next_hit`` walks windows of a few thousand steps from the
cursor (``BoundedTrace.windows``), evaluates each breakpoint's own ``mask`` on each window (a
real ``Trace``, so the answer is the full trace's) and stops at the first window that fires.
A window whose overview (min/max per block and unit) shows that a value condition cannot hold
is skipped without recomputing it: ``any f < 0.05`` only looks at blocks where some unit's
minimum of f is below 0.05. The scan checks ``cancel()`` between windows.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lstmviz.core.breakpoints import (
    SATURATION_HIGH,
    SATURATION_LOW,
    Breakpoint,
    ConditionBreakpoint,
    Hit,
    Kind,
    StepBreakpoint,
    trace_name,
)
from lstmviz.core.checkpointed_trace import BoundedTrace, Cancelled

#: Steps per window of a scan.
SCAN_STEPS = 4096


def _maybe(bp: ConditionBreakpoint, trace: BoundedTrace, t0: int, t1: int) -> bool:
    """False only when the overview proves ``bp`` fires nowhere in [t0, t1)."""
    if bp.kind is Kind.NONFINITE:
        return True
    q = trace_name(bp.quantity)
    for k, lt in enumerate(trace.layers):
        if bp.layers is not None and k not in bp.layers:
            continue
        for d, dt in enumerate(lt.directions):
            if bp.directions is not None and d not in bp.directions:
                continue
            if q not in dt.cell.quantities:
                continue
            mm = trace.overview.get((k, d), {}).get(q)
            if mm is None:
                return True  # h_prev, pre_f…: no overview, scan it
            lo, hi = mm.lo[mm.blocks(t0, t1)], mm.hi[mm.blocks(t0, t1)]
            if bp.units is not None:
                cols = [u for u in bp.units if u < lo.shape[1]]
                lo, hi = lo[:, cols], hi[:, cols]
            if lo.size and _could_fire(bp, lo, hi):
                return True
    return False


def _could_fire(bp: ConditionBreakpoint, lo: np.ndarray, hi: np.ndarray) -> bool:
    if np.isnan(lo).any() or np.isnan(hi).any():
        return True
    if bp.kind is Kind.SATURATED:
        if (bp.op == ">" and bp.threshold >= 0) or (bp.op == ">=" and bp.threshold > 0):
            return bool((lo < SATURATION_LOW).any() or (hi > SATURATION_HIGH).any())
        return True
    op, thr = bp.op, bp.threshold
    prunable = bp.reduce in ("any", "all") or (
        (bp.reduce == "max" and op in (">", ">=")) or (bp.reduce == "min" and op in ("<", "<="))
    )
    if not prunable:
        return True
    if bp.absolute:
        big = np.maximum(np.abs(lo), np.abs(hi))
        small = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
        lo, hi = small, big
    if op in ("<", "<="):
        return bool({"<": operator.lt, "<=": operator.le}[op](lo, thr).any())
    if op in (">", ">="):
        return bool({">": operator.gt, ">=": operator.ge}[op](hi, thr).any())
    if op in ("=", "=="):
        return bool(((lo <= thr) & (hi >= thr)).any())
    return bool(((lo != thr) | (hi != thr)).any())


def next_hit(
    trace: BoundedTrace,
    breakpoints: Sequence[Breakpoint],
    start: int,
    forward: bool = True,
    *,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[int, tuple[Hit, ...]] | None:
    """The first step after (before) ``start`` where an enabled breakpoint fires, with its
    hits; None when none does. Raises ``Cancelled`` when ``cancel()`` says so."""
    bps = [bp for bp in breakpoints if bp.enabled]
    T = trace.n_steps
    lo, hi = (start + 1, T) if forward else (0, start)
    best: int | None = None
    for bp in bps:
        if isinstance(bp, StepBreakpoint) and lo <= bp.step < hi:
            best = bp.step if best is None else (min if forward else max)(best, bp.step)
    conds = [bp for bp in bps if not isinstance(bp, StepBreakpoint)]
    if conds and lo < hi:
        if best is not None:  # only steps before the step breakpoint need a scan
            lo, hi = (lo, best) if forward else (best + 1, hi)
        found = _scan(trace, conds, lo, hi, forward, cancel, progress)
        if found is not None:
            best = found[0]
            return best, _hits(trace, bps, best, found[1])
    if best is None:
        return None
    return best, _hits(trace, bps, best, None)


def _scan(trace: BoundedTrace, conds: list[Breakpoint], lo: int, hi: int, forward: bool,
          cancel: Any, progress: Any) -> tuple[int, Any] | None:  # fmt: skip
    n = max(1, min(SCAN_STEPS, trace.window_steps()) // trace.K)
    chunks = list(trace._chunks(lo, hi))
    groups = [chunks[i : i + n] for i in range(0, len(chunks), n)]
    if not forward:
        groups.reverse()
    for i, g in enumerate(groups):
        if cancel is not None and cancel():
            raise Cancelled
        if progress is not None:
            progress(i / len(groups))
        a = max(lo, trace.chunk_bounds(g[0])[0])
        b = min(hi, trace.chunk_bounds(g[-1])[1])
        live = [bp for bp in conds if _maybe(bp, trace, a, b)]  # type: ignore[arg-type]
        if not live:
            continue
        window = trace.window(a, b)
        mask = np.zeros(b - a, dtype=bool)
        with np.errstate(invalid="ignore"):
            for bp in live:
                mask |= bp.mask(window)
        steps = np.flatnonzero(mask)
        if steps.size:
            local = int(steps[0] if forward else steps[-1])
            return a + local, (window, a)
    return None


def _hits(trace: BoundedTrace, bps: list[Breakpoint], t: int, win: Any) -> tuple[Hit, ...]:
    """Every enabled breakpoint's hits at step ``t``, with global step numbers."""
    if win is None:
        a = trace.chunk_bounds(trace.chunk_of(t))[0]
        b = trace.chunk_bounds(trace.chunk_of(t))[1]
        win = (trace.window(a, b), a)
    window, a = win
    out: list[Hit] = []
    for bp in bps:
        if isinstance(bp, StepBreakpoint):
            out.extend(bp.hits(trace, t))  # type: ignore[arg-type]
        else:
            out.extend(dataclasses.replace(h, step=t) for h in bp.hits(window, t - a))
    return tuple(out)
