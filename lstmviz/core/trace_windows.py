"""Lazy, step-indexed arrays over a bounded trace, and its overview (min/max per block).

A bounded trace (``checkpointed_trace``) keeps only a checkpoint of the states every K steps;
``StepArray`` makes a recomputed quantity look like the ``(T, width)`` array a full trace
holds: ``a[t]``, ``a[t0:t1]``, ``a[t, u]``, ``a[:, block]`` (a lazy column view) and
``np.asarray(a)`` on a range small enough to hold. A range too large to hold raises
``TraceTooLarge`` with what to use instead, rather than allocating gigabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]

#: Largest array (bytes) a lazy array materializes at once.
MAX_MATERIALIZE_BYTES = 256 * 2**20


class TraceTooLarge(ValueError):
    """Asked for more steps of a bounded trace than fit in memory at once."""


#: ``rows(t0, t1) -> (t1 - t0, width)`` values of a quantity over steps [t0, t1).
RowSource = Callable[[int, int], FloatArray]


class StepArray:
    """A ``(T, width)`` quantity computed on demand from a row source, array-like for int,
    slice and (rows, columns) indexing; ``a[:, cols]`` is a lazy column view."""

    ndim = 2

    def __init__(
        self,
        name: str,
        n_steps: int,
        width: int,
        dtype: npt.DTypeLike,
        rows: RowSource,
        cols: Any = None,
        envelope: Callable[[], MinMax | None] | None = None,
    ) -> None:
        self.name = name
        self._envelope = envelope
        self._n = n_steps
        self._full = width
        self._rows = rows
        self._cols = cols  # None, a slice or an index array into the full width
        self.dtype = np.dtype(dtype)
        self._width = width if cols is None else len(np.arange(width)[cols])

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n, self._width)

    @property
    def size(self) -> int:
        return self._n * self._width

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"StepArray({self.name!r}, shape={self.shape}, recomputed on demand)"

    def _fetch(self, t0: int, t1: int) -> FloatArray:
        nbytes = (t1 - t0) * self._full * self.dtype.itemsize
        if nbytes > MAX_MATERIALIZE_BYTES:
            raise TraceTooLarge(
                f"{self.name}[{t0}:{t1}] of a bounded trace would take {nbytes / 2**20:,.0f} MiB;"
                f" read at most {MAX_MATERIALIZE_BYTES // 2**20} MiB at a time (a range of"
                " steps), stream with trace.windows() or use trace.overview for min/max"
            )
        out = self._rows(t0, t1)
        return out if self._cols is None else out[:, self._cols]

    def _step(self, t: Any) -> int:
        t = int(t)
        if t < 0:
            t += self._n
        if not 0 <= t < self._n:
            raise IndexError(f"step {t} out of range for {self._n} steps")
        return t

    def column_view(self, cols: Any) -> StepArray:
        """Columns ``cols`` of this array, still recomputed on demand."""
        base = np.arange(self._full) if self._cols is None else np.arange(self._full)[self._cols]
        sel = base[cols]
        sub: Any = sel
        if sel.size and np.all(np.diff(sel) == 1):
            sub = slice(int(sel[0]), int(sel[-1]) + 1)
        return StepArray(self.name, self._n, self._full, self.dtype, self._rows, sub,
                         self._envelope)  # fmt: skip

    def envelope(self) -> MinMax | None:
        """Min/max per block of steps of these columns (the trace's overview), or None when
        the overview does not keep this quantity (pre-activation terms)."""
        mm = None if self._envelope is None else self._envelope()
        return mm if mm is None or self._cols is None else mm.columns(self._cols)

    def symmetric_limit(self) -> float:
        """Largest finite |value| (1.0 if none): exact from the overview; for a quantity it
        does not keep, over a few sampled chunks (start, middle, end), enough for a colour
        scale (``gui.levels.symmetric_limit`` asks this instead of reading every step)."""
        mm = self.envelope()
        if mm is not None:
            parts = [mm.lo, mm.hi]
        else:
            n = self._n
            span = max(1, min(n, MAX_MATERIALIZE_BYTES // 64 // max(1, self._full * 4)))
            starts = sorted({0, max(0, n // 2 - span // 2), max(0, n - span)})
            parts = [self._fetch(a, min(n, a + span)) for a in starts]
        limit = 0.0
        for p in parts:
            finite = np.abs(p[np.isfinite(p)])
            if finite.size:
                limit = max(limit, float(finite.max()))
        return limit or 1.0

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"a step array takes at most (steps, units), got {key!r}")
            rows, cols = key
        else:
            rows, cols = key, None
        if isinstance(rows, slice) and rows == slice(None) and cols is not None:
            if isinstance(cols, (int, np.integer)):
                return _Column(self.column_view(slice(int(cols), int(cols) + 1)))
            return self.column_view(cols)
        if isinstance(rows, (int, np.integer)):
            t = self._step(rows)
            row = self._fetch(t, t + 1)[0]
            return row if cols is None else row[cols]
        if isinstance(rows, slice):
            t0, t1, stride = rows.indices(self._n)
            if stride > 0:
                block = self._fetch(t0, max(t0, t1))[::stride]
            else:
                lo, hi = (t1 + 1, t0 + 1) if t1 < t0 else (0, 0)
                block = self._fetch(lo, hi)[::-1][::-stride]
            return block if cols is None else block[:, cols]
        idx = np.asarray(rows)
        if idx.dtype == bool and idx.ndim == 2:  # a mask over values: over the whole array
            return np.asarray(self)[idx]
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.where(idx < 0, idx + self._n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(f"steps out of range for {self._n} steps")
        if idx.size == 0:
            return np.empty((0, self._width), self.dtype)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        block = self._fetch(lo, hi)[idx - lo]
        return block if cols is None else block[:, cols]

    def __array__(self, dtype: Any = None, copy: Any = None) -> FloatArray:
        out = self._fetch(0, self._n)
        return out if dtype is None else out.astype(dtype, copy=False)


class _Column:
    """``a[:, u]`` of a step array: 1-D, rows come out as scalars."""

    ndim = 1

    def __init__(self, arr: StepArray) -> None:
        self._arr = arr
        self.shape = (arr.shape[0],)
        self.dtype = arr.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        return self._arr[key][..., 0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> FloatArray:
        out = np.asarray(self._arr)[:, 0]
        return out if dtype is None else out.astype(dtype, copy=False)


@dataclass
class MinMax:
    """Per block of ``block`` steps, min and max of each column: ``lo``, ``hi``
    ``(n_blocks, width)``; NaN propagates, so a block holding a NaN shows it."""

    block: int
    lo: FloatArray
    hi: FloatArray

    @classmethod
    def empty(cls, n_steps: int, block: int, width: int, dtype: np.dtype) -> MinMax:
        n = -(-n_steps // block)
        return cls(block, np.full((n, width), np.inf, dtype), np.full((n, width), -np.inf, dtype))

    def add(self, t0: int, values: FloatArray) -> None:
        """Fold rows ``values`` for steps ``t0 .. t0 + len(values)`` into their blocks: the
        whole blocks in one reduction over a ``(blocks, block, width)`` view (a reduction per
        block cost the first pass a quarter of its time at H = 256), the partial ones at the
        edges apart."""
        t, n, B = t0, len(values), self.block
        while n > 0:
            b = t // B
            if t % B == 0 and n >= B:
                m = n // B
                whole = values[t - t0 : t - t0 + m * B].reshape(m, B, -1)
                np.minimum(self.lo[b : b + m], whole.min(axis=1), out=self.lo[b : b + m])
                np.maximum(self.hi[b : b + m], whole.max(axis=1), out=self.hi[b : b + m])
                t, n = t + m * B, n - m * B
                continue
            take = min(n, (b + 1) * B - t)
            part = values[t - t0 : t - t0 + take]
            np.minimum(self.lo[b], part.min(axis=0), out=self.lo[b])
            np.maximum(self.hi[b], part.max(axis=0), out=self.hi[b])
            t, n = t + take, n - take

    def reversed_steps(self, n_steps: int) -> MinMax | None:
        """The same envelope for the time-reversed sequence when blocks line up, else None."""
        if n_steps % self.block:
            return None
        return MinMax(self.block, self.lo[::-1].copy(), self.hi[::-1].copy())

    def columns(self, cols: Any) -> MinMax:
        return MinMax(self.block, self.lo[:, cols], self.hi[:, cols])

    def blocks(self, t0: int, t1: int) -> slice:
        """Blocks covering steps [t0, t1)."""
        return slice(t0 // self.block, -(-t1 // self.block))

    @property
    def nbytes(self) -> int:
        return self.lo.nbytes + self.hi.nbytes
