"""Diagnostics of a bounded trace in streaming passes: the same numbers as ``diagnostics``.

``diagnostics`` reduces whole ``(T, H)`` arrays; a bounded trace (``checkpointed_trace``)
recomputes its steps window by window instead, so here every reduction is carried across
windows: saturation as counts of saturated steps, dead units as a running ``nanmax`` of
``|m|``, the mean retention as a running sum and count, the first NaN/Inf as the first window
holding one, and the retention product from the running ``cumsum`` of ``log f`` (a
sequential sum, so it is bitwise the one over the whole array). One pass over all windows
computes the report, the first NaN/Inf and, for the diagnostics view (``prepare``), the
retention product of the direction it shows (windows in that direction's processing order);
results are kept on the trace (``diagnostics._memo``). ``cancel()`` is checked between
windows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core import diagnostics as diag
from lstmviz.core.breakpoints import SATURATION_HIGH, SATURATION_LOW
from lstmviz.core.checkpointed_trace import BoundedDirectionTrace, BoundedTrace, Cancelled

FloatArray = npt.NDArray[np.float64]
#: Steps per window of a streaming pass.
PASS_STEPS = 4096


def _pass(trace: BoundedTrace, cancel: Callable[[], bool] | None = None,
          progress: Callable[[float], None] | None = None,
          product: _Product | None = None) -> dict[str, Any]:  # fmt: skip
    """One pass over every window: per direction the saturated-step counts, the running
    ``nanmax |out|``, the retention sum and count; and the first NaN/Inf. ``product``: a
    retention product folded in the same pass (windows in its direction's processing order),
    instead of a pass of its own."""
    acc: dict[tuple[int, int], dict[str, Any]] = {}
    first: diag.NonFinite | None = None
    backward = product is not None and product.dt.reverse
    done = 0
    for a, win in trace.windows(steps=PASS_STEPS, backward=backward):
        if cancel is not None and cancel():
            raise Cancelled
        if progress is not None:
            progress(done / trace.n_steps)
        done += win.n_steps
        with np.errstate(invalid="ignore"):
            if first is None or a < first.step:  # the earliest in time, in either order
                bad = diag._first_nonfinite(win)
                if bad is not None and (first is None or a + bad.step < first.step):
                    first = diag.NonFinite(a + bad.step, bad.layer, bad.direction, bad.array,
                                           bad.count)  # fmt: skip
            if product is not None:
                product.fold(win.layers[product.dt._k].directions[product.dt._d])
            for k, lt in enumerate(win.layers):
                for d, dt in enumerate(lt.directions):
                    s = acc.setdefault((k, d), {"sat": None, "max": None, "sum": 0.0, "n": 0})
                    counts = _saturated_counts(dt, diag.saturating_gates(dt))
                    s["sat"] = counts if s["sat"] is None else s["sat"] + counts
                    out = getattr(dt, "m", dt.h)
                    m = np.nanmax(np.abs(out), axis=0, initial=0.0)
                    s["max"] = m if s["max"] is None else np.fmax(s["max"], m)
                    if dt.cell.retention_gate is not None:
                        r = np.asarray(diag.retention(dt), dtype=np.float64)
                        s["sum"] += float(np.nansum(r))
                        s["n"] += int(np.count_nonzero(~np.isnan(r)))
    reports = []
    T = trace.n_steps
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            s = acc[(k, d)]
            keep = dt.cell.retention_gate
            if keep and dt.cell.retention_complement:
                keep = f"1 − {keep}"
            mean = s["sum"] / s["n"] if keep and s["n"] else float("nan")
            dead = np.flatnonzero(s["max"] < 1e-2)
            sat = s["sat"] / T
            reports.append(
                diag.DirectionReport(k, d, sat, dead, mean, diag.saturating_gates(dt), keep)
            )
    return {"report": tuple(reports), "nonfinite": first}


def _saturated_counts(dt: Any, gates: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """``(n, H)`` steps of this window with each gate below/above the saturation levels."""
    if not gates:
        return np.zeros((0, dt.weights.hidden_size), np.int64)
    rows = [((dt.gate(g) < SATURATION_LOW) | (dt.gate(g) > SATURATION_HIGH)).sum(0) for g in gates]
    return np.stack(rows)


def whole_pass(trace: BoundedTrace, cancel: Callable[[], bool] | None = None,
               progress: Callable[[float], None] | None = None,
               product: _Product | None = None) -> dict[str, Any]:  # fmt: skip
    """``_pass``, once per run."""
    return diag._memo(trace, ("stream",), lambda: _pass(trace, cancel, progress, product))


def prepare(trace: BoundedTrace, dt: BoundedDirectionTrace | None, unit: int | None,
            cancel: Callable[[], bool] | None = None,
            progress: Callable[[float], None] | None = None) -> None:  # fmt: skip
    """Everything the diagnostics view shows, in a worker, cancellable, with progress: the
    retention product of ``dt`` (its ``unit``) and the whole-run report, in one pass when
    neither is known yet (each pass recomputes every step of the run)."""

    wants_product = dt is not None and dt.cell.retention_gate is not None
    key = ("product", unit, diag.PRODUCT_GRID)
    if wants_product and dt is not None and key not in dt.__dict__.get("_diagnostics", {}):
        if ("stream",) not in trace.__dict__.get("_diagnostics", {}):  # both: one pass
            product = _Product(dt, unit, diag.PRODUCT_GRID)
            whole_pass(trace, cancel, progress, product)
            diag._memo(dt, key, product.result)
            return
        forget_product(dt, unit, cancel=cancel, progress=progress)
    whole_pass(trace, cancel, progress)


def report(trace: BoundedTrace) -> list[diag.DirectionReport]:
    return list(whole_pass(trace)["report"])


def first_nonfinite(trace: BoundedTrace) -> diag.NonFinite | None:
    return whole_pass(trace)["nonfinite"]  # type: ignore[no-any-return]


def _direction_report(dt: BoundedDirectionTrace) -> diag.DirectionReport:
    owner = dt._owner
    for r in report(owner):
        if (r.layer, r.direction) == (dt._k, dt._d):
            return r
    raise KeyError((dt._k, dt._d))


def saturation_table(dt: BoundedDirectionTrace) -> FloatArray:
    return _direction_report(dt).saturation


def dead_units(dt: BoundedDirectionTrace) -> npt.NDArray[np.int64]:
    return _direction_report(dt).dead


def forget_product(
    dt: BoundedDirectionTrace,
    unit: int | None = None,
    size: int | None = diag.PRODUCT_GRID,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
) -> FloatArray:
    """``diagnostics.forget_product`` on a bounded direction: ``L = cumsum(log f)`` carried
    across windows in processing order, then the same block products."""
    key = ("product", unit, size)
    return diag._memo(dt, key, lambda: _forget_product(dt, unit, size, cancel, progress))


class _Product:
    """``diagnostics.forget_product`` of one bounded direction, folded window by window in
    processing order: ``L = cumsum(log f)`` carried across windows (a sequential sum, so
    bitwise the one over the whole array), the rows of ``product_steps`` kept, then the same
    block products."""

    def __init__(self, dt: BoundedDirectionTrace, unit: int | None, size: int | None) -> None:
        cell = dt.cell
        gate = cell.retention_gate
        if gate is None:
            raise ValueError(f"a {cell.name} cell has no gate that keeps its state")
        ov = dt._owner.overview[(dt._k, dt._d)][cell.gate(gate).name]
        lo = (1 - ov.hi) if cell.retention_complement else ov.lo
        if np.nanmin(lo) < 0:
            raise ValueError(
                "the retention product of a gate that goes below 0 is not streamed on a bounded"
                " trace; run it with trace='full' on a shorter sequence"
            )
        self.dt, self.unit, self.name = dt, unit, cell.gate(gate).name
        self.steps = diag.product_steps(dt._owner.n_steps, size)  # in processing order
        self.carry: FloatArray | None = None
        self.rows: list[FloatArray] = []
        self.done = 0  # processing steps folded so far

    def fold(self, window_direction: Any) -> None:
        """The next window of this direction in processing order (a ``CellTrace``)."""
        self.fold_rows(window_direction.gate(self.name))

    def fold_rows(self, g: FloatArray) -> None:
        """The retention gate's rows of the next window (time order)."""
        if self.dt.cell.retention_complement:
            g = 1 - g
        f = np.asarray(g if self.unit is None else g[:, [self.unit]], dtype=np.float64)
        if self.dt.reverse:
            f = f[::-1]
        zero = f == 0
        with np.errstate(divide="ignore"):
            logs = np.log(np.where(zero, 1.0, f)) - diag._ZERO_PENALTY * zero
        if self.carry is not None:
            logs = np.vstack([self.carry[None], logs])
        Ls = np.cumsum(logs, axis=0)
        if self.carry is not None:
            Ls = Ls[1:]
        self.carry = Ls[-1]
        n, done = len(f), self.done
        sel = self.steps[(self.steps >= done) & (self.steps < done + n)]
        self.rows.append(Ls[sel - done])
        self.done += n

    def result(self) -> FloatArray:
        out = diag._product_from_logs(np.concatenate(self.rows))
        return out[::-1, ::-1] if self.dt.reverse else out


def _forget_product(dt: BoundedDirectionTrace, unit: int | None, size: int | None,
                    cancel: Any = None, progress: Any = None) -> FloatArray:  # fmt: skip
    trace, k, d = dt._owner, dt._k, dt._d
    product = _Product(dt, unit, size)
    n_chunks_per = max(1, min(PASS_STEPS, trace.window_steps()) // trace.K)
    chunks = list(range(trace.n_chunks))
    if dt.reverse:
        chunks.reverse()
    for i in range(0, len(chunks), n_chunks_per):
        if cancel is not None and cancel():
            raise Cancelled
        if progress is not None:
            progress(i / len(chunks))
        group = chunks[i : i + n_chunks_per]
        a = min(trace.chunk_bounds(c)[0] for c in group)
        b = max(trace.chunk_bounds(c)[1] for c in group)
        product.fold_rows(trace.direction_rows(k, d, product.name, a, b))
    return product.result()
