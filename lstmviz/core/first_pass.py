"""The first pass of a bounded trace: every layer's checkpoints and overview in ~L layer passes.

``bounded_run.run_bounded`` keeps, per layer and direction, the states entering each
chunk of K steps and a min/max overview. Run layer by layer, each layer above the first would
get its input by recomputing every layer below from their checkpoints: 1 + 2 + … + L layer
passes for a stack of L (a 3-layer stack twice as slow as a full-trace run). Here time is cut
into groups of chunks (about ``FIRST_PASS_BYTES`` of rows each) and a *sweep* walks the
groups once, in one order, carrying a column of layers along: layer j runs on the group, its
output on that group becomes layer j + 1's input (the same merge, ``ascontiguousarray`` and
dense calls as ``BoundedTrace.layer_input_rows``, on the same rows: a group is whole chunks,
two rows or more, so every product gives the full trace's bits — module docstring of
``checkpointed_trace``), then layer j + 1 runs on the same group, and so on.

A sweep walks forward or backward in time, so it runs only the directions going its way. What
each case costs, in passes of one direction over the sequence:

- layers whose directions all read forward (the usual stack, any mix of LSTM/GRU/RNN, dense
  layers between, a head): one sweep, each direction once — L passes, as a full run;
- a bidirectional layer: one sweep runs the directions going one way, the sweep the other
  way runs the rest, recomputes the first ones from their checkpoints on the group (one more
  pass of each, on the input it holds anyway) to form the layer's output, and carries on up.
  The reverse direction goes first when the layer above reads forward, so a bidirectional
  layer under forward layers costs one extra direction pass in all. A sweep that cannot go
  on (the layer above needs the other way) stops; the next one, starting at layer k > 0,
  gets its input by recomputing the layers below on each group from their checkpoints (one
  pass of each direction below, in calls as long as the group): a stack of bidirectional
  layers still recomputes the layers below each one but the first (as a forward layer on
  top of a bidirectional one: its reverse sweep recomputes the layers below);
- a layer whose output comes out in processing order (Keras ``go_backwards``): its output on
  a group is another group's states, so the sweep stops after it.

The head's overview and a merged (sum/mul/ave) layer output's overview are folded in from the
outputs a sweep forms anyway; only outputs no sweep formed (processing order) take one more
streaming pass at the end.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lstmviz.core import checkpointed_trace as ct
from lstmviz.core.compute import StateArg, initial_states, merge
from lstmviz.core.dense import apply_all
from lstmviz.core.model import LSTMModel, OutputOrder
from lstmviz.core.trace import CellTrace
from lstmviz.core.trace_windows import MinMax

FloatArray = ct.FloatArray


@dataclasses.dataclass(frozen=True)
class Stage:
    """Layer ``k`` in a sweep: directions ``run`` first-passed, ``redo`` (done by an earlier
    sweep) recomputed from their checkpoints, and whether the layer's output is formed."""

    k: int
    run: tuple[int, ...]
    redo: tuple[int, ...]
    output: bool


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One walk over the groups (``backward``: last group first) through ``stages``: layers
    done by earlier sweeps (recomputed, ``run`` empty), then the layers it first-passes.
    ``stages[0]`` is layer 0, or the layer above one whose output is in processing order
    (its input then comes from ``BoundedTrace.layer_input_rows``)."""

    backward: bool
    stages: tuple[Stage, ...]


def _flips(model: LSTMModel, k: int) -> bool:
    layer = model.layers[k]
    return layer.directions[0].reverse and layer.output_order is OutputOrder.PROCESSING


def _merged_overview(model: LSTMModel, k: int) -> bool:
    """Whether layer ``k``'s output overview is not just its directions' h side by side."""
    layer = model.layers[k]
    concat = len(layer.directions) == 1 or layer.merge_mode.value in ("concat", "none")
    return not concat or _flips(model, k)


def plan(model: LSTMModel) -> list[Sweep]:
    """The sweeps that first-pass every direction once (module docstring)."""
    L = len(model.layers)
    done: set[tuple[int, int]] = set()
    sweeps = []
    while len(done) < sum(len(lay.directions) for lay in model.layers):
        k0 = min(k for k, lay in enumerate(model.layers)
                 for d in range(len(lay.directions)) if (k, d) not in done)  # fmt: skip
        pending = [w.reverse for d, w in enumerate(model.layers[k0].directions)
                   if (k0, d) not in done]  # fmt: skip
        # Both ways pending: the reverse ones first when a forward layer is above, so the
        # forward sweep completes this layer and carries on up (and the other way round).
        above = model.layers[k0 + 1].directions if k0 + 1 < L else ()
        backward = all(pending) or (any(pending) and any(not w.reverse for w in above))
        stages: list[Stage] = []
        k = k0
        while True:
            dirs = model.layers[k].directions
            run = tuple(d for d, w in enumerate(dirs) if (k, d) not in done
                        and w.reverse == backward)  # fmt: skip
            redo = tuple(d for d in range(len(dirs)) if (k, d) in done)
            whole = len(run) + len(redo) == len(dirs)
            above = model.layers[k + 1].directions if k + 1 < L else ()
            nxt = any((k + 1, d) not in done and w.reverse == backward
                      for d, w in enumerate(above))  # fmt: skip
            want = nxt or _merged_overview(model, k) or (k + 1 == L and bool(model.head))
            out = whole and not _flips(model, k) and want
            stages.append(Stage(k, run, redo if out else (), out))
            done |= {(k, d) for d in run}
            if not (out and nxt):
                break
            k += 1
        # The layers below k0 are done: recompute them on each group from their checkpoints
        # (calls as long as the group, not a chunk), from above the last one whose output
        # comes from other groups (processing order; layer_input_rows recomputes that one).
        start = max((j + 1 for j in range(k0) if _flips(model, j)), default=0)
        below = tuple(Stage(j, (), tuple(range(len(model.layers[j].directions))), True)
                      for j in range(start, k0))  # fmt: skip
        sweeps.append(Sweep(backward, below + tuple(stages)))
    return sweeps


def run_first_pass(tr: ct.BoundedTrace, h0: StateArg, c0: StateArg, block: int,
                   cancel: ct.Cancel | None, progress: ct.Progress | None) -> set[Any]:  # fmt: skip
    """Every direction's checkpoints and overview; returns the overview keys of the layer
    outputs and head it folded in (``output_overview`` does the rest once the layers exist)."""
    model = tr.model
    total = sum(len(lay.directions) for lay in model.layers)
    done = 0
    formed: set[Any] = set()
    for sweep in plan(model):
        n_run = sum(len(s.run) for s in sweep.stages)

        def report(f: float, done: int = done, n_run: int = n_run) -> None:
            if progress is not None:
                progress((done + n_run * f) / total)

        formed |= _sweep(tr, sweep, h0, c0, block, cancel, report)
        done += n_run
    return formed


class _Direction:
    """A direction being first-passed: its states, checkpoints and overview."""

    def __init__(self, tr: ct.BoundedTrace, k: int, d: int, h0: StateArg, c0: StateArg,
                 block: int) -> None:  # fmt: skip
        w = tr.model.layers[k].directions[d]
        cell = w.cell
        self.w = w
        self.names = tuple(n for n in (*cell.gate_names, *cell.state_names, *cell.extras)
                           if n != "n" or "n" in cell.gate_names)  # fmt: skip
        given = {"h": h0, "c": c0}  # run's arguments, by the state each is for
        self.states = {s: np.asarray(v, tr.dtype)
                       for s, v in initial_states(w, given, k, d).items()}  # fmt: skip
        self.ck = {s: np.empty((tr.n_chunks, v.shape[0]), tr.dtype)
                   for s, v in self.states.items()}  # fmt: skip
        tr.checkpoints[(k, d)] = self.ck
        self.ov: dict[str, MinMax] = {}
        tr.overview[(k, d)] = self.ov
        self.block = block

    def run(self, tr: ct.BoundedTrace, g: range, inp: FloatArray) -> CellTrace:
        """Run over the group ``g`` of chunks; keep the states entering each chunk (read off
        the rows at each chunk's edge) and fold every recorded quantity into the overview."""
        w, states, ck = self.w, self.states, self.ck
        A, B = tr.chunk_bounds(g[0])[0], tr.chunk_bounds(g[-1])[1]
        t = ct._run_chunk(w, inp, states, tr.dtype, tr.engine)
        for c in g:
            a, b = tr.chunk_bounds(c)
            edge = (b == B) if w.reverse else (a == A)
            for s_name, v in states.items():
                if edge:
                    ck[s_name][c] = v
                else:  # the state after the row before this chunk in processing order
                    ck[s_name][c] = t.state(s_name)[b - A if w.reverse else a - 1 - A]
        for name in self.names:
            arr = getattr(t, name)
            if name not in self.ov:
                self.ov[name] = MinMax.empty(tr.n_steps, self.block, arr.shape[1], tr.dtype)
            self.ov[name].add(A, arr)
        self.states = {s_name: np.array(t.state_last(s_name)) for s_name in states}
        return t


def _sweep(tr: ct.BoundedTrace, sweep: Sweep, h0: StateArg, c0: StateArg, block: int,
           cancel: ct.Cancel | None, progress: ct.Progress) -> set[Any]:  # fmt: skip
    """Walk the groups once, running the sweep's stages on each; returns the overview keys
    of the outputs it folded in (``("output", k)``, ``("head",)``)."""
    model = tr.model
    L = len(model.layers)
    dirs = {(s.k, d): _Direction(tr, s.k, d, h0, c0, block) for s in sweep.stages for d in s.run}
    outs: dict[Any, MinMax] = {}
    for s in sweep.stages:
        if s.output and s.run and _merged_overview(model, s.k):
            outs[("output", s.k)] = MinMax.empty(tr.n_steps, block, model.layers[s.k].output_size,
                                                 tr.dtype)  # fmt: skip
        if s.output and s.run and s.k + 1 == L and model.head:
            outs[("head",)] = MinMax.empty(tr.n_steps, block, model.head_output_size, tr.dtype)
    # Rows held at once: one stage's traces (the layer's input and output are small beside them).
    per_step = max(
        sum((len(w.cell.gate_names) + len(w.cell.state_names) + len(w.cell.extras) + 4)
            * w.hidden_size for w in model.layers[s.k].directions)
        for s in sweep.stages
    ) * tr.dtype.itemsize  # fmt: skip
    G = max(1, ct.FIRST_PASS_BYTES // (per_step * tr.K))
    groups = [range(c, min(c + G, tr.n_chunks)) for c in range(0, tr.n_chunks, G)]
    done = 0
    with np.errstate(all="ignore"):
        for g in reversed(groups) if sweep.backward else groups:
            if cancel is not None and cancel():
                raise ct.Cancelled
            progress(done / tr.n_chunks)  # the workspace's job.report raises when cancelled
            A, B = tr.chunk_bounds(g[0])[0], tr.chunk_bounds(g[-1])[1]
            inp = tr.layer_input_rows(sweep.stages[0].k, A, B)
            for i, s in enumerate(sweep.stages):
                traces = {d: dirs[(s.k, d)].run(tr, g, inp) for d in s.run}
                if not s.output:
                    del traces  # before the next group's: one stage's rows held at a time
                    break
                for d in s.redo:  # from the checkpoint where the group starts in its order
                    traces[d] = tr.run_chunks(s.k, d, g, inp)
                layer = model.layers[s.k]
                hs = [traces[d].h for d in range(len(layer.directions))]
                # as layer_output_rows and layer_input_rows form them, on the same rows
                out = merge(hs[0], hs[1], layer.merge_mode) if layer.bidirectional else hs[0]
                out = np.ascontiguousarray(out)
                del traces, hs  # the next stage's rows replace them
                if ("output", s.k) in outs:
                    outs[("output", s.k)].add(A, out)
                if s.k + 1 == L and ("head",) in outs:
                    outs[("head",)].add(A, apply_all(model.head, out))
                if i + 1 == len(sweep.stages):
                    break
                before = model.layers[s.k + 1].before
                inp = np.ascontiguousarray(apply_all(before, out)) if before else out
            done += len(g)
    tr.overview.update(outs)
    return set(outs)


def output_overview(tr: ct.BoundedTrace, block: int, cancel: ct.Cancel | None,
                     formed: set[Any]) -> None:  # fmt: skip
    """Min/max per block of each layer's output and the head's not yet folded in by a sweep:
    taken from the directions' h where the output is that h (one direction in time order, or
    concatenated), else from one more streaming pass (outputs in processing order)."""
    T = tr.n_steps
    n_layers = len(tr.model.layers)
    need_pass = []
    for k, layer in enumerate(tr.model.layers):
        if ("output", k) in formed:
            continue
        if not _merged_overview(tr.model, k):
            hs = [tr.overview[(k, d)]["h"] for d in range(len(layer.directions))]
            lo = np.concatenate([m.lo for m in hs], axis=1)
            hi = np.concatenate([m.hi for m in hs], axis=1)
            tr.overview[("output", k)] = MinMax(block, lo, hi)
        else:
            need_pass.append(k)
    if tr.model.head and ("head",) not in formed:
        need_pass.append(n_layers)
    for k in need_pass:
        is_head = k == n_layers
        width = tr.model.head_output_size if is_head else tr.model.layers[k].output_size
        mm = MinMax.empty(T, block, width, tr.dtype)
        for c in range(tr.n_chunks):
            if cancel is not None and cancel():
                raise ct.Cancelled
            a, b = tr.chunk_bounds(c)
            mm.add(a, tr.head_rows(a, b) if is_head else tr.layer_output_rows(k, a, b))
        tr.overview[("head",) if is_head else ("output", k)] = mm
