"""A trace whose memory does not grow with the steps' width × T: checkpoints every K steps.

A full trace keeps every gate and state of every step: 28 bytes per unit per step, 28 GB for
10⁶ steps at H = 1024. A bounded run (``bounded_run.run_bounded``) keeps instead, per layer and
direction, the states entering every chunk of K steps (``checkpoints``) and, per block of
steps, the min and max of every recorded quantity (``overview``: what a time plot of 10⁶ steps
draws, one envelope per pixel column). Any chunk is recomputed on demand from its checkpoint,
by the same forward pass (``compute.run_direction`` and the other cells' runners) with the same
engine and dtype, so every value is bitwise the full trace's: the recurrence restarts from the
exact float32 states, and the sequence-wide matmuls (input terms, dense layers, derived terms)
give the same bits for any block of two or more rows (a one-row product goes through BLAS'
matvec, which sums in another order: chunks are never one row long). The last few chunks are
cached (LRU).

The indexing API is a full trace's: ``trace.layers[k].output[t]``,
``trace.layers[k].directions[d].f[t0:t1]``, ``.gate("z")[t0:t1]`` return arrays (the
``StepArray`` of ``trace_windows``); ``trace.window(t0, t1)`` is a real ``Trace`` of a range of
steps, on which breakpoints, diagnostics and exports run unchanged (``trace_scan`` streams them).
Stacked layers recompute their input through the layers below (same chunks, same cache).
The first pass (``first_pass``) carries a column of layers along each group of chunks, so a
stack of L forward layers costs L layer passes, not 1 + 2 + … + L.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core import compiled, threads
from lstmviz.core.cells import CellDescription
from lstmviz.core.compute import merge, run_cell, state_size
from lstmviz.core.dense import apply_all
from lstmviz.core.mapped_rows import release_rows
from lstmviz.core.model import LSTMLayer, LSTMModel, OutputOrder
from lstmviz.core.trace import CellTrace, LayerTrace, Trace
from lstmviz.core.trace_windows import MAX_MATERIALIZE_BYTES, MinMax, StepArray, TraceTooLarge

FloatArray = npt.NDArray[np.floating]

#: Bytes the checkpoints of all layers may take: K grows past ``MIN_CHUNK`` to stay under it.
#: 10⁶ steps at H = 1024: K = 18 (a jump recomputes ≤ 18 steps, ~9 ms on one thread), and
#: the whole window, with the explore Text dock open, stays under 2 GiB (2,052 MiB at 512).
CHECKPOINT_BYTES = 448 * 2**20
#: Bytes of the overview (min/max per block of every recorded quantity and output).
OVERVIEW_BYTES = 192 * 2**20
#: Bytes of recomputed chunks kept (LRU).
CACHE_BYTES = 128 * 2**20
#: Bytes of one call of the first pass (many chunks at once).
FIRST_PASS_BYTES = 64 * 2**20
#: Fewest steps per chunk: a chunk's recompute costs about K steps of the recurrence.
MIN_CHUNK = 16
#: Chunks this short are recomputed on one thread (``threads.alone``): a jump's few ms.
ALONE_STEPS = 64
#: Steps of one recompute call of a range (``_fill``): whole chunks at once from the checkpoint
#: where they start, on the team, not one call of K steps per chunk on one thread.
GROUP_STEPS = 1024
Cancel = Callable[[], bool]
Progress = Callable[[float], None]


class Cancelled(Exception):
    """The caller's ``cancel()`` said stop."""


def chunk_size(model: LSTMModel, n_steps: int, dtype: np.dtype) -> int:
    """K: the fewest steps per chunk (``MIN_CHUNK``) whose checkpoints fit ``CHECKPOINT_BYTES``."""
    per_step = sum(_state_width(w) for lay in model.layers for w in lay.directions)
    k = math.ceil(n_steps * per_step * dtype.itemsize / CHECKPOINT_BYTES)
    return max(MIN_CHUNK, k)


def _state_width(w: Any) -> int:
    return sum(state_size(w, s) for s in w.cell.state_names)


def _engine_for(engine: str, n_steps: int) -> str:
    """The engine a full run of ``n_steps`` would use, fixed for every chunk (``auto`` picks
    by T, and a chunk is much shorter)."""
    if engine != "auto":
        return engine
    if n_steps >= compiled.MIN_COMPILED_STEPS and compiled.recurrence() is not None:
        return "numba"
    return "numpy"


def _run_chunk(w: Any, x: FloatArray, states: dict[str, FloatArray], dtype: np.dtype,
               engine: str) -> CellTrace:  # fmt: skip
    return run_cell(w, x, states, dtype=dtype, engine=engine)  # type: ignore[arg-type]


def _time_names(cell: CellDescription, probe: CellTrace) -> dict[str, int]:
    """Per-step arrays a direction trace offers, with their widths."""
    names = ("x", "h", "h_prev", *cell.gate_names, *cell.state_names, *cell.extras,
             *(f"{s}_prev" for s in cell.state_names), *type(probe).derived_names)  # fmt: skip
    out: dict[str, int] = {}
    for name in dict.fromkeys(names):
        value = getattr(probe, name, None)
        if isinstance(value, np.ndarray) and value.ndim == 2:
            out[name] = value.shape[1]
    return out


def _cut(ct: CellTrace, lo: int, hi: int) -> CellTrace:
    """``ct`` with its per-step arrays cut to rows [lo, hi) (views)."""
    fields = {}
    for f in dataclasses.fields(ct):  # type: ignore[arg-type]
        v = getattr(ct, f.name)
        rows = isinstance(v, np.ndarray) and v.ndim == 2 and f.name != "b"
        fields[f.name] = v[lo:hi] if rows else v
    return type(ct)(**fields)


class BoundedDirectionTrace(CellTrace):
    """One direction of a bounded trace: every per-step array is a ``StepArray``."""

    bounded = True

    def __init__(self, owner: BoundedTrace, k: int, d: int, probe: CellTrace) -> None:
        self.weights = probe.weights
        self.b = probe.b
        self.derived_names = type(probe).derived_names  # type: ignore[misc]
        self._owner, self._k, self._d = owner, k, d
        self._widths = _time_names(self.weights.cell, probe)
        self._none = {n for n in type(probe).derived_names if getattr(probe, n) is None}
        self._arrays: dict[str, StepArray] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._none:
            return None
        if name not in self._widths:
            raise AttributeError(f"{type(self).__name__} has no {name!r}")
        return self._steps(name)

    # CellTrace computes these from whole arrays (``h_prev @ W_hᵀ``); here they are rows
    # recomputed on demand like every other per-step array (found shadowing __getattr__:
    # the debugger's first look at a 10⁵-step bounded run asked for all of h_prev at once).
    @property  # type: ignore[override]
    def z_x(self) -> StepArray:
        return self._steps("z_x")

    @property  # type: ignore[override]
    def z_h(self) -> StepArray:
        return self._steps("z_h")

    def _steps(self, name: str) -> StepArray:
        arr = self._arrays.get(name)
        if arr is None:
            owner, k, d = self._owner, self._k, self._d
            arr = StepArray(
                f"layer{k}/{'forward' if d == 0 else 'backward'}/{name}",
                owner.n_steps,
                self._widths[name],
                owner.dtype,
                lambda t0, t1: owner.direction_rows(k, d, name, t0, t1),
                envelope=lambda: owner.overview.get((k, d), {}).get(name),
            )
            self._arrays[name] = arr
        return arr

    @property
    def overview(self) -> dict[str, MinMax]:
        """Min/max per block of each recorded quantity (gates, states, extras)."""
        return self._owner.overview[(self._k, self._d)]

    def materialize(self) -> BoundedDirectionTrace:
        return self

    @property
    def c_last(self) -> FloatArray:
        return self.state_last("c")

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._owner.checkpoints[(self._k, self._d)].values())


@dataclasses.dataclass(frozen=True)
class BoundedLayerTrace:
    """A layer of a bounded trace (``LayerTrace``'s fields, recomputed on demand)."""

    layer: LSTMLayer
    input: StepArray
    directions: tuple[BoundedDirectionTrace, ...]
    output: StepArray

    @property
    def last_output(self) -> FloatArray:
        if self.layer.bidirectional:
            fw, bw = self.directions
            return merge(fw.h_last[None], bw.h_last[None], self.layer.merge_mode)[0]
        return self.directions[0].h_last


class BoundedTrace:
    """``run_bounded``'s result: a ``Trace`` whose steps are recomputed from checkpoints."""

    bounded = True

    def __init__(self, model: LSTMModel, x: FloatArray, dtype: np.dtype, engine: str,
                 K: int, block: int) -> None:  # fmt: skip
        self.model = model
        self.x = x
        self.dtype = dtype
        self.engine = engine
        self.K = K
        self.overview_block = block
        T = x.shape[0]
        starts = list(range(0, T, K))
        if len(starts) > 1 and T - starts[-1] < 2:  # never a one-row chunk (module docstring)
            starts.pop()
        self._starts = np.array([*starts, T], dtype=np.int64)
        #: ``(layer, direction) -> {state: (n_chunks, width)}``: states entering each chunk
        #: in processing order (a reverse direction enters chunk c from its end).
        self.checkpoints: dict[tuple[int, int], dict[str, FloatArray]] = {}
        #: ``(layer, direction) -> {quantity: MinMax}``; ``("output", k)``, ``("x",)``,
        #: ``("head",)`` for the layer outputs, the input and the head.
        self.overview: dict[Any, Any] = {}
        self._cache: OrderedDict[tuple[int, int, int], tuple[CellTrace, int]] = OrderedDict()
        self._cache_bytes = 0
        self._subs: dict[tuple[int, ...], CellTrace] = {}
        self._asked: set[tuple[int, int, int]] = set()
        # the window's thread (jumps) and a worker (a breakpoint scan, an export) recompute
        # at once: the cache's look-up, insert and eviction are one step each under it
        self._lock = threading.RLock()
        self.layers: tuple[BoundedLayerTrace, ...] = ()
        self.head_output: StepArray | None = None

    # -- shape ---------------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_chunks(self) -> int:
        return len(self._starts) - 1

    def chunk_bounds(self, c: int) -> tuple[int, int]:
        return int(self._starts[c]), int(self._starts[c + 1])

    def chunk_of(self, t: int) -> int:
        return int(np.searchsorted(self._starts, t, side="right")) - 1

    @property
    def output(self) -> StepArray:
        return self.layers[-1].output

    @property
    def network_output(self) -> StepArray:
        return self.output if self.head_output is None else self.head_output

    @property
    def final_output(self) -> FloatArray:
        last = self.layers[-1]
        if last.layer.return_sequences:
            return self.network_output  # type: ignore[return-value]
        out = np.asarray(last.last_output, dtype=self.dtype)[None]
        if self.model.head:
            out = apply_all(self.model.head, out)
        return out[0]  # type: ignore[no-any-return]

    def materialize(self) -> BoundedTrace:
        return self

    @property
    def nbytes(self) -> int:
        """Bytes held: input, checkpoints, overview and cached chunks."""
        ck = sum(a.nbytes for c in self.checkpoints.values() for a in c.values())
        ov = 0
        for v in self.overview.values():
            items = v.values() if isinstance(v, dict) else [v]
            ov += sum(m.nbytes for m in items)
        return int(self.x.nbytes) + ck + ov + self._cache_bytes

    # -- recomputation -------------------------------------------------------------------------
    def chunk_trace(self, k: int, d: int, c: int) -> CellTrace:
        """Direction ``d`` of layer ``k`` over chunk ``c``, recomputed from its checkpoint."""
        a, b = self.chunk_bounds(c)
        return self._covering(k, d, c, 0, b - a)[0]

    def _covering(self, k: int, d: int, c: int, lo: int, hi: int) -> tuple[CellTrace, int]:
        """A recomputed trace holding rows [lo, hi) of chunk ``c`` and the chunk row its row 0
        is. A first jump into a chunk recomputes only up to the step asked for (from the
        checkpoint: a prefix going forward, a suffix going backward; two rows at least); a
        chunk asked for again is recomputed whole, so stepping through it stays cached.
        Thread-safe (a chunk is recomputed under the lock: another thread waits ≤ one chunk)."""
        with self._lock:
            return self._covering_locked(k, d, c, lo, hi)

    def _covering_locked(self, k: int, d: int, c: int, lo: int, hi: int) -> tuple[CellTrace, int]:
        key = (k, d, c)
        hit = self._cache.get(key)
        if hit is not None and hit[1] <= lo and hi <= hit[1] + len(hit[0].h):
            self._cache.move_to_end(key)
            return hit
        a, b = self.chunk_bounds(c)
        n = b - a
        w = self.model.layers[k].directions[d]
        if hit is not None or key in self._asked or n <= 2:
            start, stop = 0, n
        elif w.reverse:
            start, stop = min(lo, n - 2), n
        else:
            start, stop = 0, max(hi, 2)
        if len(self._asked) > 100_000:
            self._asked.clear()
        self._asked.add(key)
        states = {s: v[c] for s, v in self.checkpoints[(k, d)].items()}
        inp = self.layer_input_rows(k, a + start, a + stop)
        with threads.alone() if stop - start <= ALONE_STEPS else contextlib.nullcontext():
            tr = _run_chunk(w, inp, states, self.dtype, self.engine)
        self._remember(key, (tr, start))
        return tr, start

    def _fill(self, k: int, d: int, cs: range) -> None:
        """Recompute the chunks ``cs`` that are not cached whole, consecutive ones together:
        one call of up to ``GROUP_STEPS`` from the checkpoint where they start in processing
        order (as the first pass ran them, so the same bits as a call per chunk), on the
        team; each chunk's rows are then cached as a chunk's. A streaming pass over 10⁶
        steps at H = 1024 (K = 18) made 55,556 calls of 18 steps on one thread before. The
        call runs outside the lock: a jump on another thread waits only for a chunk."""
        if len(cs) * self.K <= ALONE_STEPS:
            return
        with self._lock:
            missing = [c for c in cs if not self._whole(k, d, c)]
        per = max(1, GROUP_STEPS // self.K)
        groups: list[list[int]] = []
        for c in missing:
            if groups and groups[-1][-1] == c - 1 and len(groups[-1]) < per:
                groups[-1].append(c)
            else:
                groups.append([c])
        for g in groups:
            A, B = self.chunk_bounds(g[0])[0], self.chunk_bounds(g[-1])[1]
            tr = self.run_chunks(k, d, g, self.layer_input_rows(k, A, B))
            with self._lock:
                for c in g:
                    a, b = self.chunk_bounds(c)
                    self._asked.add((k, d, c))
                    self._remember((k, d, c), (_cut(tr, a - A, b - A), 0))

    def run_chunks(self, k: int, d: int, g: Sequence[int], inp: FloatArray) -> CellTrace:
        """Direction ``d`` of layer ``k`` over the consecutive chunks ``g``, whose input rows
        are ``inp``, in one call from the checkpoint where ``g`` starts in processing order
        (its last chunk's going backward): the same bits as a call per chunk."""
        w = self.model.layers[k].directions[d]
        c = g[-1] if w.reverse else g[0]
        states = {n: v[c] for n, v in self.checkpoints[(k, d)].items()}
        return _run_chunk(w, inp, states, self.dtype, self.engine)

    def _whole(self, k: int, d: int, c: int) -> bool:
        hit = self._cache.get((k, d, c))
        a, b = self.chunk_bounds(c)
        return hit is not None and hit[1] == 0 and len(hit[0].h) == b - a

    def _remember(self, key: tuple[int, int, int], entry: tuple[CellTrace, int]) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= old[0].h.nbytes * 12
        self._cache[key] = entry
        self._cache_bytes += entry[0].h.nbytes * 12
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 4:
            _, (tr, _start) = self._cache.popitem(last=False)
            self._cache_bytes -= tr.h.nbytes * 12

    def _chunks(self, t0: int, t1: int) -> range:
        return range(self.chunk_of(t0), self.chunk_of(t1 - 1) + 1) if t1 > t0 else range(0)

    def direction_rows(self, k: int, d: int, name: str, t0: int, t1: int) -> FloatArray:
        """Rows [t0, t1) of one direction's per-step array ``name`` (time order)."""
        parts = []
        self._fill(k, d, self._chunks(t0, t1))
        for c in self._chunks(t0, t1):
            a, b = self.chunk_bounds(c)
            lo, hi = max(t0, a) - a, min(t1, b) - a
            ct, off = self._covering(k, d, c, lo, hi)
            if name in type(ct).derived_names and hi - lo < len(ct.h):
                parts.append(self._derived_rows(k, d, c, ct, off, name, lo - off, hi - off))
            else:
                parts.append(getattr(ct, name)[lo - off : hi - off])
        if not parts:
            width = self.layers[k].directions[d]._widths[name] if self.layers else 0
            return np.empty((0, width), self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _derived_rows(self, k: int, d: int, c: int, ct: CellTrace, off: int, name: str,
                      lo: int, hi: int) -> FloatArray:  # fmt: skip
        """Rows [lo, hi) of chunk ``c`` of a derived array (``z_h``, ``pre``…) from the same
        arrays cut to those rows (at least two: a one-row product rounds differently): a
        jump needs one step's terms, not the chunk's (a 4H × H product per row)."""
        with self._lock:
            return self._derived_rows_locked(k, d, c, ct, off, name, lo, hi)

    def _derived_rows_locked(self, k: int, d: int, c: int, ct: CellTrace, off: int, name: str,
                             lo: int, hi: int) -> FloatArray:  # fmt: skip
        lo2, hi2 = (
            (lo, hi) if hi - lo >= 2 else ((lo, lo + 2) if lo + 2 <= len(ct.h) else (hi - 2, hi))
        )
        key = (k, d, c, lo2 + off, hi2 + off)
        sub = self._subs.get(key)
        if sub is None:
            sub = _cut(ct, lo2, hi2)
            self._subs[key] = sub
            while len(self._subs) > 16:
                self._subs.pop(next(iter(self._subs)))
        return getattr(sub, name)[lo - lo2 : hi - lo2]  # type: ignore[no-any-return]

    def layer_output_rows(self, k: int, t0: int, t1: int) -> FloatArray:
        """Rows [t0, t1) of layer ``k``'s output as the framework gives it."""
        layer = self.model.layers[k]
        T = self.n_steps
        flip = layer.directions[0].reverse and layer.output_order is OutputOrder.PROCESSING
        a, b = (T - t1, T - t0) if flip else (t0, t1)
        hs = [self.direction_rows(k, d, "h", a, b) for d in range(len(layer.directions))]
        out = merge(hs[0], hs[1], layer.merge_mode) if layer.bidirectional else hs[0]
        return np.ascontiguousarray(out[::-1] if flip else out)

    def layer_input_rows(self, k: int, t0: int, t1: int) -> FloatArray:
        """Rows [t0, t1) of layer ``k``'s input (the sequence, or the layer below's output
        through the dense layers between)."""
        if k == 0:
            out = np.array(self.x[t0:t1], dtype=self.dtype)
            release_rows(self.x, t0, t1)  # read: out of the resident set (mapped_rows)
            return out
        before = self.model.layers[k].before
        if not before:
            return self.layer_output_rows(k - 1, t0, t1)
        a, b = self._two_rows(t0, t1)  # a one-row product rounds differently
        out = np.ascontiguousarray(apply_all(before, self.layer_output_rows(k - 1, a, b)))
        return out[t0 - a : t1 - a]

    def head_rows(self, t0: int, t1: int) -> FloatArray:
        a, b = self._two_rows(t0, t1)
        out = apply_all(self.model.head, self.layer_output_rows(len(self.layers) - 1, a, b))
        return out[t0 - a : t1 - a]  # type: ignore[no-any-return]

    def _two_rows(self, t0: int, t1: int) -> tuple[int, int]:
        if t1 - t0 >= 2 or self.n_steps < 2:
            return t0, t1
        return (t0, t0 + 2) if t0 + 2 <= self.n_steps else (t1 - 2, t1)

    # -- whole ranges ----------------------------------------------------------------------------
    def window(self, t0: int, t1: int) -> Trace:
        """A real ``Trace`` of steps [t0, t1) (its row 0 is step t0), for breakpoints,
        diagnostics and exports that run on arrays; TraceTooLarge past a few hundred MiB."""
        per_step = sum(w.hidden_size * 16 for lay in self.model.layers for w in lay.directions)
        if (t1 - t0) * per_step * self.dtype.itemsize > 4 * MAX_MATERIALIZE_BYTES:
            raise TraceTooLarge(f"steps {t0}-{t1} of a bounded trace are too many at once")
        layers = []
        for k, lay in enumerate(self.model.layers):
            dirs = [self._window_direction(k, d, t0, t1) for d in range(len(lay.directions))]
            flip = lay.directions[0].reverse and lay.output_order is OutputOrder.PROCESSING
            if flip or t1 - t0 < 2:
                out = self.layer_output_rows(k, t0, t1)
            else:
                hs = [dt.h for dt in dirs]
                out = merge(hs[0], hs[1], lay.merge_mode) if lay.bidirectional else hs[0]
                out = np.ascontiguousarray(out)
            # a direction's x is its layer's input, computed for its chunks (two rows at least)
            layers.append(LayerTrace(lay, dirs[0].x, tuple(dirs), out))
        head = None
        if self.model.head:
            last = layers[-1].output
            head = self.head_rows(t0, t1) if t1 - t0 < 2 else apply_all(self.model.head, last)
        x = np.asarray(self.x[t0:t1], dtype=self.dtype)
        return Trace(model=self.model, x=x, layers=tuple(layers), head_output=head)

    def _window_direction(self, k: int, d: int, t0: int, t1: int) -> CellTrace:
        """One direction's trace of steps [t0, t1): each chunk recomputed once (not once per
        array: a window wider than the cache would recompute it a dozen times)."""
        parts: dict[str, list[FloatArray]] = {}
        first: CellTrace | None = None
        self._fill(k, d, self._chunks(t0, t1))
        for c in self._chunks(t0, t1):
            a, b = self.chunk_bounds(c)
            lo, hi = max(t0, a) - a, min(t1, b) - a
            ct, off = self._covering(k, d, c, lo, hi)
            first = first or ct
            for f in dataclasses.fields(ct):  # type: ignore[arg-type]
                v = getattr(ct, f.name)
                if isinstance(v, np.ndarray) and v.ndim == 2 and f.name != "b":
                    parts.setdefault(f.name, []).append(v[lo - off : hi - off])
        assert first is not None
        fields = {
            f.name: np.concatenate(parts[f.name]) if f.name in parts else getattr(first, f.name)
            for f in dataclasses.fields(first)  # type: ignore[arg-type]
        }
        return type(first)(**fields)

    def window_steps(self) -> int:
        """Steps per window of a streaming pass whose chunks all stay in the cache (layers
        above recompute from the chunks below)."""
        per_step = sum(12 * w.output_size * self.dtype.itemsize
                       for lay in self.model.layers for w in lay.directions)  # fmt: skip
        return max(2 * self.K, CACHE_BYTES // max(1, 2 * per_step))

    def windows(self, t0: int = 0, t1: int | None = None, steps: int = 4096,
                backward: bool = False) -> Iterator[tuple[int, Trace]]:  # fmt: skip
        """``(start, window trace)`` over [t0, t1) in chunk-aligned pieces of ~``steps``."""
        t1 = self.n_steps if t1 is None else t1
        n = max(1, min(steps, self.window_steps()) // self.K)
        cs = list(self._chunks(t0, t1))
        groups = [cs[i : i + n] for i in range(0, len(cs), n)]
        for g in reversed(groups) if backward else groups:
            a = max(t0, self.chunk_bounds(g[0])[0])
            b = min(t1, self.chunk_bounds(g[-1])[1])
            yield a, self.window(a, b)


def estimated_full_bytes(model: LSTMModel, n_steps: int, dtype: npt.DTypeLike = np.float32) -> int:
    """What a full trace of ``n_steps`` would hold (recorded arrays plus the derived terms a
    view computes on first use), for ``run``'s choice."""
    per_step = 0
    for lay in model.layers:
        for w in lay.directions:
            n_gates = len(w.cell.gate_names)
            per_step += (2 * n_gates + 4) * w.hidden_size + 2 * w.output_size
    return int(n_steps * per_step * np.dtype(dtype).itemsize)


def auto_limit() -> int:
    """Bytes past which ``run(trace="auto")`` keeps a bounded trace: 1 GiB, or an eighth of
    the memory where that is less (``LSTMVIZ_FULL_TRACE_LIMIT`` overrides, in bytes)."""
    env = os.environ.get("LSTMVIZ_FULL_TRACE_LIMIT")
    if env:
        return int(float(env))
    limit = 2**30
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limit = min(limit, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8)
    return limit


def wants_bounded(model: LSTMModel, x: Any, dtype: npt.DTypeLike = np.float32) -> bool:
    """Whether a full trace of ``x`` would be large enough for ``run`` to keep a bounded one."""
    shape = np.shape(x)
    return bool(shape) and estimated_full_bytes(model, int(shape[0]), dtype) > auto_limit()


__all__ = [
    "BoundedTrace",
    "Cancelled",
    "TraceTooLarge",
    "chunk_size",
    "estimated_full_bytes",
    "wants_bounded",
]
