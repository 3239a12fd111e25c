"""The unit-set view's values on a bounded trace: the overview zoomed out, exact values zoomed in.

A bounded trace (``core.checkpointed_trace``) keeps checkpoints and, per block of steps, the
min and max of every unit of every gate and state (its overview). Zoomed out, the view draws
what a plot of 10⁵-10⁶ steps shows anyway: each unit's min/max envelope per column
(``long_plots.envelope_xy``, as the time plots draw theirs) and a heatmap with one column per
overview block (``long_plots.peak_image``). Zoomed in to ``EXACT_STEPS`` steps or fewer,
``ExactValues`` recomputes the selected units over the visible steps (and a margin, so a
small pan needs nothing new) in the window's worker, as ``text_lazy`` does for the text
view's tokens: a job of kind ``KIND``, replaced when the view moves on, its result dropped
when the run, layer, quantity or units changed meanwhile. Values are kept a ``BLOCK`` of
steps at a time, so a pan computes only the steps it brings in; the core recomputes each
chunk of K ≤ 64 steps on the worker's thread alone (``threads.alone``), leaving the other
core to the window's own jumps. The rows are ordered by what the overview gives without
reading the run: the mean of each block's midpoint (min + max) / 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core.trace_windows import MinMax
from lstmviz.gui.long_plots import EXACT_STEPS, envelope_xy
from lstmviz.gui.text_lazy import BLOCK
from lstmviz.gui.view_cache import memo
from lstmviz.workspace import Workspace
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.states import run_cost

KIND = "unit set values"
#: What the heatmap's row order is based on, for its title.
ORDER_NOTE = "by the overview: mean of (min + max)/2"

__all__ = ["EXACT_STEPS", "KIND", "ExactValues", "envelope_lines", "ordered_overview"]


def overview_activity(mm: MinMax, n_steps: int) -> npt.NDArray[np.float64]:
    """``(width,)``: per column, the mean over the run of each block's (min + max) / 2,
    weighted by the block's steps (the last may be short); -inf where a block holds NaN.
    Summed in float64 a row at a time (no float64 copy: 10⁶ steps of 24 units took 8 ms
    through one, 1-2 ms so)."""
    lo, hi, B = mm.lo, mm.hi, mm.block
    last = n_steps - (lo.shape[0] - 1) * B
    total = (lo[:-1].sum(axis=0, dtype=np.float64) + hi[:-1].sum(axis=0, dtype=np.float64)) * B
    total += (lo[-1].astype(np.float64) + hi[-1]) * last
    means = total / (2.0 * n_steps)
    return np.where(np.isnan(means), -np.inf, means)


def overview_order(activity: npt.NDArray | None, units: list[int]) -> list[int]:
    """``units`` most active first by ``overview_activity`` (exact means need every step:
    minutes at 10⁶ steps, H = 1024; the overview is at hand); unit order without one."""
    if activity is None or not units:
        return sorted(units)
    return [units[k] for k in np.argsort(-activity[units], kind="stable")]


def ordered_overview(trace: Any, values: Any, units: list[int],
                     where: str) -> tuple[list[int], MinMax | None]:  # fmt: skip
    """``(rows, overview)``: ``units`` most active first and their overview columns, from
    ``values`` (a bounded trace's step array of the quantity ``where`` names); the
    activity of every unit is worked out once per run and quantity (``view_cache.memo``)."""
    mm = values.envelope()
    if mm is None:
        return sorted(units), None
    T = trace.n_steps
    activity = memo(trace, f"unit_activity/{where}", lambda: overview_activity(mm, T))
    rows = overview_order(activity, units)
    return rows, mm.columns(rows)


def envelope_lines(mm: MinMax, n_steps: int,
                   span: tuple[int, int] | None) -> tuple[npt.NDArray, npt.NDArray]:  # fmt: skip
    """``(x, Y (len(x), n))``: each column's min/max band over ``span`` (the whole run with
    None), at most ``long_plots.MAX_COLUMNS`` columns; the columns are the same for every
    unit, so one x serves all."""
    n = mm.lo.shape[1]
    x, _ = envelope_xy(mm, n_steps, 0, span)
    Y = np.empty((len(x), n), np.float64)
    for j in range(n):
        Y[:, j] = envelope_xy(mm, n_steps, j, span)[1]
    return x, Y


def window_values(values: Any, rows: list[int], a: int, b: int, job: Job) -> npt.NDArray:
    """``(b - a, len(rows))``: the units ``rows`` of ``values`` (a bounded trace's step
    array) over steps [a, b), ``BLOCK`` steps at a time (``job.report`` stops it between
    blocks once the view moved on)."""
    out = np.empty((b - a, len(rows)), values.dtype)
    for s in range(a, b, BLOCK):
        job.report((s - a) / max(1, b - a))
        e = min(b, s + BLOCK)
        out[s - a : e - a] = np.asarray(values[s:e])[:, rows]
    return out


#: Blocks of exact values kept for one set of units: the visible steps, their margins and
#: where the view was just before (a pan back costs nothing); 4 MiB for 64 units.
KEEP_BLOCKS = 4 * EXACT_STEPS // BLOCK


class ExactValues:
    """Exact values of the shown units, recomputed in the worker on demand (``want``) a
    ``BLOCK`` of steps at a time and kept (``KEEP_BLOCKS``), so a pan computes only the
    steps it brings in; ``on_done`` is called on the window's thread when they arrive (or
    failed: ``error``)."""

    def __init__(self, workspace: Workspace, on_done: Callable[[], None]) -> None:
        self.workspace = workspace
        self.on_done = on_done
        self.key: tuple[Any, ...] | None = None
        self.blocks: dict[int, npt.NDArray] = {}  # block k: steps k·BLOCK …, (≤ BLOCK, n)
        self.error = ""
        self.asked: set[int] = set()  # the blocks the running job computes
        self._source: Any = None
        self._rows: list[int] = []
        self._n = 0
        self._centre = 0  # the block the view last asked around (eviction keeps the nearest)

    def reset(self, key: tuple[Any, ...], source: Any, rows: list[int], n_steps: int) -> None:
        """A new run, layer, quantity or set of units (``key``): nothing computed yet.
        ``source``: the quantity's ``(T, H)`` step array."""
        if key == self.key:
            return
        self.clear()
        self.key, self._source, self._rows, self._n = key, source, list(rows), n_steps

    def clear(self) -> None:
        if self.key is not None:
            self.workspace.cancel(KIND)
        self.key, self.blocks, self.error, self.asked, self._source = None, {}, "", set(), None

    @property
    def computing(self) -> bool:
        return self.key is not None and KIND in self.workspace.jobs

    def _span(self, a: int, b: int) -> range:
        return range(max(0, a) // BLOCK, -(-min(b, self._n) // BLOCK))

    def covers(self, a: int, b: int) -> bool:
        return self.key is not None and b > a and all(k in self.blocks for k in self._span(a, b))

    def window_around(self, a: int, b: int) -> tuple[tuple[int, int], npt.NDArray] | None:
        """``((wa, wb), values (wb - wa, n))``: the known blocks holding steps [a, b) and
        their known neighbours, up to ``EXACT_STEPS`` (and a block each side); None unless
        every step of [a, b) is known."""
        if not self.covers(a, b):
            return None
        span = self._span(a, b)
        lo, hi = span.start, span.stop
        most = max(hi - lo, -(-EXACT_STEPS // BLOCK) + 2)
        while hi - lo < most and (lo - 1 in self.blocks or hi in self.blocks):
            if lo - 1 in self.blocks:
                lo -= 1
            if hi in self.blocks and hi - lo < most:
                hi += 1
        values = np.concatenate([self.blocks[k] for k in range(lo, hi)])
        return (lo * BLOCK, lo * BLOCK + len(values)), values

    def want(self, a: int, b: int) -> None:
        """Steps [a, b) are visible (at most ``EXACT_STEPS``): compute the blocks of them
        and of a margin of up to half as much on each side not known yet, unless the
        running job computes them already."""
        if self.key is None or self.error or b <= a:
            return
        margin = max(0, min((b - a) // 2, (EXACT_STEPS - (b - a)) // 2))
        span = self._span(a - margin, b + margin)
        self._centre = (span.start + span.stop) // 2
        missing = [k for k in span if k not in self.blocks]
        if not missing or (self.computing and set(missing) <= self.asked):
            return
        runs: list[tuple[int, int]] = []  # contiguous missing blocks as steps [s, e)
        for k in missing:
            if runs and runs[-1][1] == k * BLOCK:
                runs[-1] = (runs[-1][0], min(self._n, (k + 1) * BLOCK))
            else:
                runs.append((k * BLOCK, min(self._n, (k + 1) * BLOCK)))
        key, source, rows = self.key, self._source, self._rows
        model = self.workspace.model

        def work(j: Job) -> list[tuple[int, npt.NDArray]]:
            return [(s, window_values(source, rows, s, e, j)) for s, e in runs]

        def done(result: list[tuple[int, npt.NDArray]] | None,
                 error: BaseException | None) -> None:  # fmt: skip
            if self.key != key:
                return  # another run, layer, quantity or set of units since
            self.asked = set()
            if error is not None:
                self.error = str(error) or type(error).__name__
            else:
                for s, vals in result or []:
                    for off in range(0, len(vals), BLOCK):
                        self.blocks[(s + off) // BLOCK] = vals[off : off + BLOCK]
                self._evict()
            self.on_done()

        cost = 0.0 if model is None else run_cost(model, sum(e - s for s, e in runs))
        self.asked = set(missing)
        self.workspace.submit(KIND, "computing the units' values", work, done, cost=cost)

    def _evict(self) -> None:
        """Keep the ``KEEP_BLOCKS`` blocks nearest to where the view last asked."""
        if len(self.blocks) > KEEP_BLOCKS:
            keep = sorted(self.blocks, key=lambda k: abs(k - self._centre))[:KEEP_BLOCKS]
            self.blocks = {k: self.blocks[k] for k in sorted(keep)}
