"""``run_bounded``: a run kept as a bounded trace (``checkpointed_trace``): the input checked
and its overview taken a block at a time, the first pass (``first_pass``) recording the
checkpoints and overviews, then the trace's layers, every per-step array a ``StepArray``
recomputed on demand."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from lstmviz.core import checkpointed_trace as ct
from lstmviz.core import first_pass
from lstmviz.core.checkpointed_trace import (
    BoundedDirectionTrace,
    BoundedLayerTrace,
    BoundedTrace,
    Cancel,
    Cancelled,
    Progress,
    chunk_size,
)
from lstmviz.core.compute import StateArg
from lstmviz.core.mapped_rows import release_rows
from lstmviz.core.model import LSTMModel
from lstmviz.core.trace_windows import MinMax, StepArray


def _overview_block(model: LSTMModel, n_steps: int, K: int) -> int:
    width = sum(
        (len(w.cell.gate_names) + len(w.cell.state_names) + len(w.cell.extras)) * w.hidden_size
        for lay in model.layers
        for w in lay.directions
    )
    width += sum(lay.output_size for lay in model.layers) + model.input_size
    n_blocks = max(1, ct.OVERVIEW_BYTES // (width * 8))
    return K * max(1, math.ceil(n_steps / (n_blocks * K)))


def run_bounded(
    model: LSTMModel,
    x: npt.ArrayLike,
    h0: StateArg = None,
    c0: StateArg = None,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: str = "auto",
    chunk: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> BoundedTrace:
    """Run ``model`` on ``x (T, D)`` keeping checkpoints every ``chunk`` steps (default
    ``chunk_size``) and the overview; values are recomputed on demand, bitwise the full
    ``run``'s. ``x`` may be a memory map: it is read a chunk at a time."""
    dtype = np.dtype(dtype)
    xs = x if isinstance(x, np.ndarray) else np.asarray(x)
    if xs.ndim == 1 and model.input_size == 1:
        xs = xs[:, None]
    if xs.ndim != 2 or xs.shape[1] != model.input_size or xs.shape[0] == 0:
        raise ValueError(f"sequence must have shape (T, {model.input_size}), got {xs.shape}")
    T = xs.shape[0]
    K = chunk or chunk_size(model, T, dtype)
    tr = BoundedTrace(model, xs, dtype, ct._engine_for(engine, T), K, 1)
    tr.overview_block = block = _overview_block(model, T, tr.K)
    _check_input(tr, block, cancel)
    formed = first_pass.run_first_pass(tr, h0, c0, block, cancel, progress)
    tr.layers = _make_layers(tr)
    first_pass.output_overview(tr, block, cancel, formed)
    return tr


def _check_input(tr: BoundedTrace, block: int, cancel: Cancel | None) -> None:
    """Finite values, checked a chunk at a time (``check_sequence`` on the whole x would
    copy it to float64), and the input's overview."""
    mm = MinMax.empty(tr.n_steps, block, tr.x.shape[1], tr.dtype)
    step = max(block, 65536 // block * block)
    for a in range(0, tr.n_steps, step):
        if cancel is not None and cancel():
            raise Cancelled
        part = np.asarray(tr.x[a : a + step], dtype=np.float64)
        release_rows(tr.x, a, a + step)
        if not np.all(np.isfinite(part)):
            bad = np.argwhere(~np.isfinite(part))[0]
            raise ValueError(f"sequence has NaN or Inf at step {a + bad[0]}, feature {bad[1]}")
        mm.add(a, part.astype(tr.dtype))
    tr.overview[("x",)] = mm


def _make_layers(tr: BoundedTrace) -> tuple[BoundedLayerTrace, ...]:
    layers = []
    T, model = tr.n_steps, tr.model
    for k, layer in enumerate(model.layers):
        dirs = tuple(
            BoundedDirectionTrace(tr, k, d, tr.chunk_trace(k, d, 0))
            for d in range(len(layer.directions))
        )
        width_in = layer.directions[0].input_size
        inp = StepArray(f"layer{k}/input", T, width_in, tr.dtype,
                        lambda a, b, k=k: tr.layer_input_rows(k, a, b))  # fmt: skip
        out = StepArray(f"layer{k}/output", T, layer.output_size, tr.dtype,
                        lambda a, b, k=k: tr.layer_output_rows(k, a, b),
                        envelope=lambda k=k: tr.overview.get(("output", k)))  # fmt: skip
        layers.append(BoundedLayerTrace(layer, inp, dirs, out))
    if model.head:
        width = model.head_output_size
        tr.head_output = StepArray("head", T, width, tr.dtype, tr.head_rows,
                                   envelope=lambda: tr.overview.get(("head",)))  # fmt: skip
    return tuple(layers)


__all__ = ["run_bounded"]
