"""Whole-run diagnostics: saturated gates, dead units, memory span, the first NaN/Inf.

These answer the questions one asks before stepping: which units never open or close a gate
(saturation), which never output anything (dead), how long the cell remembers (the product
of its retention gate: the LSTM's forget gate f, the GRU's update gate z, since
``h_t = z ⊙ h_(t-1) + (1 − z) ⊙ n``), and where the numbers first broke (NaN/Inf). Gate
names come from the cell description; a plain RNN has no retention gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from lstmviz.core.breakpoints import SATURATION_HIGH, SATURATION_LOW
from lstmviz.core.trace import CellTrace, DirectionTrace, Trace

FloatArray = npt.NDArray[np.float64]
T_ = TypeVar("T_")

#: Arrays of an LSTM searched for NaN/Inf, in the order a step computes them (any cell:
#: ``CellTrace.recorded``).
RECORDED = ("z_x", "z_h", "peep", "pre", "i", "f", "g", "o", "c", "act_c", "m", "h")


def saturating_gates(dt: CellTrace) -> tuple[str, ...]:
    """The gates that open and close (sigmoid role): i, f, o; r, z; none for a plain RNN."""
    return tuple(g.name for g in dt.cell.gates if g.role == "gate")


def saturation(
    dt: CellTrace, gate: str, low: float = SATURATION_LOW, high: float = SATURATION_HIGH
) -> FloatArray:
    """``(H,)``: fraction of steps where the unit's gate is below ``low`` or above ``high``."""
    v = dt.gate(gate)
    return ((v < low) | (v > high)).mean(axis=0)


def saturation_table(dt: CellTrace) -> FloatArray:
    """``(n, H)`` saturation of each gate of ``saturating_gates`` (LSTM: i, f, o; g is a
    candidate value, not a gate)."""
    if getattr(dt, "bounded", False):
        from lstmviz.core import trace_stream

        return trace_stream.saturation_table(dt)  # type: ignore[arg-type]
    gates = saturating_gates(dt)
    if not gates:
        return np.zeros((0, dt.weights.hidden_size))
    return np.stack([saturation(dt, gate) for gate in gates])


def dead_units(dt: CellTrace, threshold: float = 1e-2) -> npt.NDArray[np.int64]:
    """Units whose output (LSTM ``m = o·act(c)``, else ``h``) never reaches ``threshold``."""
    if getattr(dt, "bounded", False):
        from lstmviz.core import trace_stream

        return trace_stream.dead_units(dt)  # type: ignore[arg-type]
    out = getattr(dt, "m", dt.h)
    return np.flatnonzero(np.nanmax(np.abs(out), axis=0, initial=0.0) < threshold)


def retention(dt: CellTrace) -> FloatArray:
    """``(T, H)`` the retention gate (``cell.retention_gate``): the share of the previous
    state each step keeps. ValueError for a cell without one (the plain RNN)."""
    cell = getattr(dt, "cell", None)
    if cell is None:  # anything with an LSTM's ``f`` (scripts, tests)
        return dt.f
    gate = cell.retention_gate
    if gate is None:
        raise ValueError(f"a {dt.cell.name} cell has no gate that keeps its state")
    values = dt.gate(gate)
    return 1 - values if cell.retention_complement else values


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
    replaced (tests do that to plant a NaN) is computed again. The derived ones (``pre``…)
    are not part of it: reading them would compute (T, 4H) products only to name them."""
    return tuple(id(getattr(dt, name)) for lt in trace.layers for dt in lt.directions
                 for name in dt.recorded if name not in dt.derived_names)  # fmt: skip


def forget_product(
    dt: CellTrace, unit: int | None = None, size: int | None = PRODUCT_GRID
) -> FloatArray:
    """``(N, N)``: ``P[s, t]`` is the share of ``c_s`` still present in ``c_t`` (GRU: of
    ``h_s`` in ``h_t``, through the update gate z; ``retention``).

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
    if getattr(dt, "bounded", False):  # streamed window by window (trace_stream)
        from lstmviz.core import trace_stream

        return trace_stream.forget_product(dt, unit, size)  # type: ignore[arg-type]
    gate = retention(dt)
    key = ("product", unit, size, id(gate))
    return _memo(dt, key, lambda: _forget_product(dt, gate, unit, size))


#: The cell-neutral name: the product of the retention gate (f, or the GRU's z).
retention_product = forget_product


def _forget_product(
    dt: CellTrace, gate: FloatArray, unit: int | None, size: int | None
) -> FloatArray:
    f = np.asarray(gate if unit is None else gate[:, [unit]], dtype=np.float64)
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
    return _product_from_logs(Ls, block)


def _product_from_logs(Ls: FloatArray, block: int = 16) -> FloatArray:
    """The block products from ``L`` at the sampled steps (a bounded trace streams ``L``)."""
    H, N = Ls.shape[1], Ls.shape[0]
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


def memory_span(dt: CellTrace, keep: float = 0.5) -> FloatArray:
    """``(H,)`` mean number of steps until less than ``keep`` of a cell value survives.

    Summarises the retention-gate product per unit in one number (capped by the sequence
    end); NaN for a plain RNN, which has no such gate.
    """
    cell = getattr(dt, "cell", None)
    if cell is not None and cell.retention_gate is None:
        return np.full(dt.weights.hidden_size, np.nan)
    f = retention(dt)
    f = f[::-1] if dt.reverse else f
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
    if getattr(trace, "bounded", False):
        from lstmviz.core import trace_stream

        return trace_stream.first_nonfinite(trace)  # type: ignore[arg-type]
    return _memo(trace, ("nonfinite", *_arrays_of(trace)), lambda: _first_nonfinite(trace))


def _first_nonfinite(trace: Trace) -> NonFinite | None:
    best: NonFinite | None = None
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            proven = _proven_finite(dt)
            for name in dt.recorded:
                if name in proven:
                    continue
                with np.errstate(all="ignore"):  # looking for NaN/Inf: no warning about them
                    arr = getattr(dt, name)
                if arr is None:
                    continue
                bad = ~np.isfinite(arr)
                rows = np.flatnonzero(bad.any(axis=1))
                if rows.size and (best is None or rows[0] < best.step):
                    t = int(rows[0])
                    best = NonFinite(t, k, d, name, int(bad[t].sum()))
    return best


#: A derived array bounded below this in magnitude is finite: far below float32's 3.4e38,
#: whatever the rounding of its sums.
_FINITE_BOUND = 1e30


def _amax(a: npt.ArrayLike | None) -> float:
    arr = np.asarray(a if a is not None else 0.0)
    return float(np.max(np.abs(arr))) if arr.size else 0.0


def _proven_finite(dt: CellTrace) -> frozenset[str]:
    """The derived arrays of an LSTM direction (``z_x``, ``z_h``, ``peep``, ``pre``) that are
    finite by a bound on their magnitude, without computing them:
    ``|x W_xᵀ| ≤ max|x| · max_i Σ_j |W_x[i, j]|``, the same for ``h_prev W_hᵀ``, the
    peepholes' ``max|c| · max|p|``, and ``pre`` their sum with ``max|b|``. Those reductions
    read the recorded arrays once; the arrays themselves are (T, 4H) products (a streaming
    pass over a bounded run spent a quarter of its time computing them only to look for
    NaN/Inf). Empty where nothing is proven (other cells); a term is left out where an
    operand is NaN or Inf or its bound passes ``_FINITE_BOUND``: the caller checks it."""
    if type(dt) is not DirectionTrace:
        return frozenset()
    w = dt.weights
    with np.errstate(all="ignore"):
        z_x = _amax(dt.x) * _amax(w.derived(("|W_x| row sums",), lambda: _row_sums(w.W_x)))
        z_h = _amax(dt.h_prev) * _amax(w.derived(("|W_h| row sums",), lambda: _row_sums(w.W_h)))
        peep = 0.0
        if w.has_peepholes:
            p = max(_amax(q) for q in (w.p_i, w.p_f, w.p_o) if q is not None)
            peep = max(_amax(dt.c_prev), _amax(dt.c)) * p
        bound = {"z_x": z_x, "z_h": z_h, "peep": peep, "pre": z_x + z_h + _amax(dt.b) + peep}
    return frozenset(n for n, v in bound.items() if v < _FINITE_BOUND)  # NaN compares False


def _row_sums(W: FloatArray) -> FloatArray:
    return np.abs(W).sum(axis=1)


@dataclass(frozen=True)
class DirectionReport:
    """Diagnostics of one direction, ready for a table or a status line."""

    layer: int
    direction: int
    saturation: FloatArray  # (n, H) for the gates of ``gates`` (LSTM: i, f, o)
    dead: npt.NDArray[np.int64]
    mean_forget: float  # mean of the retention gate (LSTM f, GRU z); NaN for a plain RNN
    gates: tuple[str, ...] = ("i", "f", "o")
    retention_gate: str | None = "f"

    def summary(self, mostly: float = 0.9) -> str:
        names = self.gates
        parts = [
            f"{int((self.saturation[k] > mostly).sum())} units with {n} saturated"
            for k, n in enumerate(names)
        ]
        side = "backward" if self.direction else "forward"
        text = f"layer {self.layer} {side}: {len(self.dead)} dead units"
        if parts:
            text += f"; {'; '.join(parts)} (>{mostly:.0%} of steps)"
        if self.retention_gate is not None:
            text += f"; mean {self.retention_gate} = {self.mean_forget:.3f}"
        return text


def report(trace: Trace) -> list[DirectionReport]:
    """One ``DirectionReport`` per layer and direction (computed once per run)."""
    if getattr(trace, "bounded", False):
        from lstmviz.core import trace_stream

        return trace_stream.report(trace)  # type: ignore[arg-type]
    return list(_memo(trace, ("report", *_arrays_of(trace)), lambda: tuple(_report(trace))))


def _report(trace: Trace) -> list[DirectionReport]:
    out = []
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            keep = dt.cell.retention_gate
            if keep and dt.cell.retention_complement:
                keep = f"1 − {keep}"
            with np.errstate(invalid="ignore"):
                mean = float(np.nanmean(retention(dt))) if keep else float("nan")
                out.append(
                    DirectionReport(
                        k,
                        d,
                        saturation_table(dt),
                        dead_units(dt),
                        mean,
                        saturating_gates(dt),
                        keep,
                    )
                )
    return out
