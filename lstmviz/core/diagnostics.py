"""Whole-run diagnostics: saturated gates, dead units, memory span, the first NaN/Inf.

These answer the questions one asks before stepping: which units never open or close a gate
(saturation), which never output anything (dead), how long the cell remembers (the forget-gate
product), and where the numbers first broke (NaN/Inf).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from lstmviz.core.breakpoints import SATURATION_HIGH, SATURATION_LOW
from lstmviz.core.trace import DirectionTrace, Trace

FloatArray = npt.NDArray[np.float64]
T_ = TypeVar("T_")

#: Arrays searched for NaN/Inf, in the order a step computes them.
RECORDED = ("z_x", "z_h", "peep", "pre", "i", "f", "g", "o", "c", "act_c", "m", "h")


def saturation(
    dt: DirectionTrace, gate: str, low: float = SATURATION_LOW, high: float = SATURATION_HIGH
) -> FloatArray:
    """``(H,)``: fraction of steps where the unit's gate is below ``low`` or above ``high``."""
    v = getattr(dt, gate)
    return ((v < low) | (v > high)).mean(axis=0)


def saturation_table(dt: DirectionTrace) -> FloatArray:
    """``(3, H)`` saturation of i, f, o (g is a candidate value, not a gate)."""
    return np.stack([saturation(dt, gate) for gate in ("i", "f", "o")])


def dead_units(dt: DirectionTrace, threshold: float = 1e-2) -> npt.NDArray[np.int64]:
    """Units whose output ``m = o·act(c)`` never reaches ``threshold`` in magnitude."""
    return np.flatnonzero(np.nanmax(np.abs(dt.m), axis=0, initial=0.0) < threshold)


#: Largest side of the forget-gate product image: about the pixels it is drawn on.
PRODUCT_GRID = 512


def product_steps(n_steps: int, size: int | None = PRODUCT_GRID) -> npt.NDArray[np.int64]:
    """The steps ``forget_product`` samples: all of them up to ``size``, else the step at the
    centre of each of ``size`` equal cells (cell k covers steps k·T/size … (k+1)·T/size)."""
    if size is None or n_steps <= size:
        return np.arange(n_steps)
    return np.floor((np.arange(size) + 0.5) * n_steps / size).astype(np.int64)


def _memo(owner: object, key: tuple, compute: Callable[[], T_]) -> T_:
    """``compute()`` once per run: kept in the run's own ``__dict__`` (as ``cached_property``
    does), so a worker can compute a result and the view that asks for it on the GUI thread
    gets it at once; it goes away with the run. Arrays are returned read-only."""
    cache = owner.__dict__.setdefault("_diagnostics", {})
    if key not in cache:
        value = compute()
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        cache[key] = value
    return cache[key]


def _arrays_of(trace: Trace) -> tuple[int, ...]:
    """Identities of the recorded arrays: part of a memo key, so a run whose arrays were
    replaced (tests do that to plant a NaN) is computed again."""
    return tuple(id(getattr(dt, name)) for lt in trace.layers for dt in lt.directions
                 for name in RECORDED)  # fmt: skip


def forget_product(
    dt: DirectionTrace, unit: int | None = None, size: int | None = PRODUCT_GRID
) -> FloatArray:
    """``(N, N)``: ``P[s, t]`` is the share of ``c_s`` still present in ``c_t``.

    It is the product of the forget gates of the steps after ``s`` up to ``t`` in the
    direction's processing order (``P[s, s] = 1``); steps that come before ``s`` are NaN.
    ``unit=None`` averages the per-unit products (arithmetic mean over units). ``N = T`` up to
    ``size`` steps, else the image is computed on a ``size × size`` grid of steps
    (``product_steps``): one value per pixel it is drawn on, not T² of them.

    Cost O(T·H + N²·H) as one matrix product instead of a cumulative product per row (the old
    O(T²·H) took 35 s at T = 2000, H = 1024): with ``L[t] = Σ_{k≤t} log f_k``, ``P[s, t] =
    exp(L[t] − L[s])``, split per block of rows at the block's last step r as
    ``exp(L[r] − L[s]) · exp(L[t] − L[r])`` — both factors ≤ 1 for s ≤ r ≤ t, so nothing
    overflows. A gate of exactly 0 is counted apart (``Z``), so it erases memory exactly.
    Computed once per run, unit and size (``_memo``).
    """
    key = ("product", unit, size, id(dt.f))
    return _memo(dt, key, lambda: _forget_product(dt, unit, size))


def _forget_product(dt: DirectionTrace, unit: int | None, size: int | None) -> FloatArray:
    f = np.asarray(dt.f if unit is None else dt.f[:, [unit]], dtype=np.float64)
    T = f.shape[0]
    if dt.reverse:
        f = f[::-1]
    steps = product_steps(T, size)
    # f < 0 is no gate in [0, 1] (a linear activation): then the direct products
    out = _product_rows(f, steps) if np.any(f < 0) else _product_blocks(f, steps)
    if dt.reverse:
        out = out[::-1, ::-1]
    return out


def _product_rows(f: FloatArray, steps: npt.NDArray[np.int64]) -> FloatArray:
    """The definition, one cumulative product per sampled row (any sign of f)."""
    N = len(steps)
    out = np.full((N, N), np.nan)
    for i, s in enumerate(steps):
        later = steps >= s
        prod = np.vstack([np.ones((1, f.shape[1])), np.cumprod(f[s + 1 :], axis=0)])
        out[i, later] = prod[steps[later] - s].mean(axis=1)
    return out


#: Added to L once per zero gate: exp of any difference across a zero is exactly 0, while L's
#: own range (≥ 2000 steps · log(1e-45) ≈ -2e5) keeps ~1e-9 of relative precision.
_ZERO_PENALTY = 1e7


def _product_blocks(f: FloatArray, steps: npt.NDArray[np.int64], block: int = 16) -> FloatArray:
    zero = f == 0
    with np.errstate(divide="ignore"):
        logs = np.log(np.where(zero, 1.0, f)) - _ZERO_PENALTY * zero
    Ls = np.cumsum(logs, axis=0)[steps]  # (N, H): log of f_0·…·f_t, a zero as -1e7
    H, N = f.shape[1], len(steps)
    out = np.full((N, N), np.nan)
    for i0 in range(0, N, block):
        i1 = min(i0 + block, N)
        r = i1 - 1  # the block's last sampled row
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            # rows s in the block against columns t ≥ r: one matrix product of factors ≤ 1
            left = np.exp(Ls[r] - Ls[i0:i1])  # (b, H)
            right = np.exp(Ls[r:] - Ls[r])  # (N - r, H)
            out[i0:i1, r:] = left @ right.T / H
            # inside the block (s ≤ t < r): directly, (b, b, H) at once
            inner = np.exp(Ls[None, i0:r] - Ls[i0:i1, None]).mean(axis=2)  # [s, t]
            later = np.triu(np.ones((i1 - i0, r - i0), dtype=bool))
            out[i0:i1, i0:r] = np.where(later, inner, np.nan)
    return out


def memory_span(dt: DirectionTrace, keep: float = 0.5) -> FloatArray:
    """``(H,)`` mean number of steps until less than ``keep`` of a cell value survives.

    Summarises the forget-gate product per unit in one number (capped by the sequence end).
    """
    f = dt.f[::-1] if dt.reverse else dt.f
    T, H = f.shape
    spans = np.zeros((T, H))
    for s in range(T - 1):  # the last step has nothing after it: span 0
        prod = np.cumprod(f[s + 1 :], axis=0)
        below = prod < keep
        first = np.where(below.any(axis=0), below.argmax(axis=0) + 1, T - 1 - s)
        spans[s] = first
    return spans.mean(axis=0)


@dataclass(frozen=True)
class NonFinite:
    """The first NaN/Inf: time step, where, and how many values were bad at that step."""

    step: int
    layer: int
    direction: int
    array: str
    count: int

    def describe(self) -> str:
        side = "backward" if self.direction else "forward"
        return (
            f"first NaN/Inf at step {self.step}: layer {self.layer} {side}, {self.array} "
            f"({self.count} value{'s' if self.count != 1 else ''})"
        )


def first_nonfinite(trace: Trace) -> NonFinite | None:
    """The earliest step (in time order) where any recorded array is NaN or Inf, or None."""
    return _memo(trace, ("nonfinite", *_arrays_of(trace)), lambda: _first_nonfinite(trace))


def _first_nonfinite(trace: Trace) -> NonFinite | None:
    best: NonFinite | None = None
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            for name in RECORDED:
                arr = getattr(dt, name)
                if arr is None:
                    continue
                bad = ~np.isfinite(arr)
                rows = np.flatnonzero(bad.any(axis=1))
                if rows.size and (best is None or rows[0] < best.step):
                    t = int(rows[0])
                    best = NonFinite(t, k, d, name, int(bad[t].sum()))
    return best


@dataclass(frozen=True)
class DirectionReport:
    """Diagnostics of one direction, ready for a table or a status line."""

    layer: int
    direction: int
    saturation: FloatArray  # (3, H) for i, f, o
    dead: npt.NDArray[np.int64]
    mean_forget: float

    def summary(self, mostly: float = 0.9) -> str:
        names = ("i", "f", "o")
        parts = [
            f"{int((self.saturation[k] > mostly).sum())} units with {n} saturated"
            for k, n in enumerate(names)
        ]
        side = "backward" if self.direction else "forward"
        return (
            f"layer {self.layer} {side}: {len(self.dead)} dead units; {'; '.join(parts)} "
            f"(>{mostly:.0%} of steps); mean f = {self.mean_forget:.3f}"
        )


def report(trace: Trace) -> list[DirectionReport]:
    """One ``DirectionReport`` per layer and direction (computed once per run)."""
    return list(_memo(trace, ("report", *_arrays_of(trace)), lambda: tuple(_report(trace))))


def _report(trace: Trace) -> list[DirectionReport]:
    out = []
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            with np.errstate(invalid="ignore"):
                out.append(
                    DirectionReport(
                        k, d, saturation_table(dt), dead_units(dt), float(np.nanmean(dt.f))
                    )
                )
    return out
