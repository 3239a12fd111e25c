"""The unit-set view's values on a bounded trace: the overview zoomed out, exact values zoomed in.

A bounded trace (``core.checkpointed_trace``) keeps checkpoints and, per block of steps, the
min and max of every unit of every gate and state (its overview). Zoomed out, the view draws
what a plot of 10⁵-10⁶ steps shows anyway: each unit's min/max envelope per column
(``long_plots.envelope_xy``, as the time plots draw theirs) and a heatmap with one column per
overview block (``long_plots.peak_image``). Zoomed in to ``EXACT_STEPS`` steps or fewer,
``ExactValues`` recomputes the selected units over the visible steps (and a margin, so a
small pan needs nothing new) in the window's worker, as ``text_lazy`` does for the text
view's tokens: a job of kind ``KIND``, replaced when the view moves on, its result dropped
when the run, layer, quantity or units changed meanwhile. The rows are ordered by what the
overview gives without reading the run: the mean of each block's midpoint (min + max) / 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core.trace_windows import MinMax
from lstmviz.gui.long_plots import EXACT_STEPS, envelope_xy
from lstmviz.gui.text_lazy import BLOCK
from lstmviz.workspace import Workspace
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.states import run_cost

KIND = "unit set values"
#: What the heatmap's row order is based on, for its title.
ORDER_NOTE = "by the overview: mean of (min + max)/2"

__all__ = ["EXACT_STEPS", "KIND", "ExactValues", "envelope_lines", "overview_order"]


def overview_order(mm: MinMax | None, units: list[int], n_steps: int) -> list[int]:
    """``units`` most active first by the run's overview: the mean over blocks (weighted by
    their steps: the last may be short) of each block's (min + max) / 2. Exact means need
    every step (minutes at 10⁶ steps, H = 1024); the overview is at hand. Unit order when
    the overview does not keep the quantity."""
    if mm is None or not units:
        return sorted(units)
    lo = mm.lo[:, units].astype(np.float64)
    hi = mm.hi[:, units].astype(np.float64)
    starts = np.arange(lo.shape[0]) * mm.block
    weight = np.clip(n_steps - starts, 0, mm.block).astype(np.float64)[:, None]
    mid = (lo + hi) / 2
    ok = np.isfinite(mid)
    total = np.where(ok, mid, 0.0) * weight
    count = np.where(ok, weight, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(count > 0, total.sum(axis=0) / count, -np.inf)
    return [units[k] for k in np.argsort(-means, kind="stable")]


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


class ExactValues:
    """Exact values of the shown units over a window of steps, recomputed in the worker on
    demand (``want``); ``on_done`` is called on the window's thread when they arrive (or
    failed: ``error``)."""

    def __init__(self, workspace: Workspace, on_done: Callable[[], None]) -> None:
        self.workspace = workspace
        self.on_done = on_done
        self.key: tuple[Any, ...] | None = None
        self.window: tuple[int, int] | None = None  # steps of ``values``' rows
        self.values: npt.NDArray | None = None
        self.error = ""
        self.asked: tuple[int, int] | None = None  # the window the running job computes
        self._source: Any = None
        self._rows: list[int] = []
        self._n = 0

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
        self.key, self.window, self.values, self.error, self.asked = None, None, None, "", None
        self._source = None

    @property
    def computing(self) -> bool:
        return self.key is not None and KIND in self.workspace.jobs

    def covers(self, a: int, b: int) -> bool:
        w = self.window
        return self.values is not None and w is not None and w[0] <= a and b <= w[1]

    def want(self, a: int, b: int) -> None:
        """Steps [a, b) are visible (at most ``EXACT_STEPS``): compute them and a margin of
        up to half as much on each side, unless known or already being computed."""
        if self.key is None or self.error or self.covers(a, b) or b <= a:
            return
        asked = self.asked
        if self.computing and asked is not None and asked[0] <= a and b <= asked[1]:
            return  # already on it
        margin = max(0, min((b - a) // 2, (EXACT_STEPS - (b - a)) // 2))
        a2, b2 = max(0, a - margin), min(self._n, b + margin)
        key, source, rows = self.key, self._source, self._rows
        model = self.workspace.model

        def work(j: Job) -> npt.NDArray:
            return window_values(source, rows, a2, b2, j)

        def done(result: npt.NDArray | None, error: BaseException | None) -> None:
            if self.key != key:
                return  # another run, layer, quantity or set of units since
            self.asked = None
            if error is not None:
                self.error = str(error) or type(error).__name__
            else:
                self.window, self.values = (a2, b2), result
            self.on_done()

        cost = 0.0 if model is None else run_cost(model, b2 - a2)
        self.asked = (a2, b2)
        self.workspace.submit(KIND, "computing the units' values", work, done, cost=cost)
