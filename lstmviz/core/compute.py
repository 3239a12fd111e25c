"""The NumPy forward pass that records every intermediate (CONVENTIONS.md §1 equations).

``x W_xᵀ + b`` is computed once for the whole sequence; only the recurrent product runs per
step. Arithmetic is float64 by default so the trace is a reference the frameworks' float32
results can be compared with at 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import LSTMDirection, LSTMModel, MergeMode, OutputOrder
from lstmviz.core.trace import DirectionTrace, LayerTrace, Trace

FloatArray = npt.NDArray[np.floating]
StateArg = FloatArray | Sequence[FloatArray] | None


def merge(fw: FloatArray, bw: FloatArray, mode: MergeMode) -> FloatArray:
    """Combine time-aligned forward and backward outputs as Keras ``merge_mode`` does."""
    if mode in (MergeMode.CONCAT, MergeMode.NONE):
        return np.concatenate([fw, bw], axis=-1)
    if mode is MergeMode.SUM:
        return fw + bw
    if mode is MergeMode.MUL:
        return fw * bw
    if mode is MergeMode.AVE:
        return (fw + bw) / 2
    raise ValueError(f"unknown merge mode {mode}")


def check_sequence(x: npt.ArrayLike, width: int) -> FloatArray:
    """Validate ``x`` as ``(T, width)``; a 1-D ``x`` is accepted when ``width == 1``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sequence must be numeric of shape (T, {width}): {exc}") from exc
    if arr.ndim == 1 and width == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"sequence must have shape (T, {width}), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"sequence is empty; expected shape (T, {width}) with T >= 1")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"sequence has NaN or Inf at step {bad[0]}, feature {bad[1]}")
    return arr


def _initial(state: StateArg, layer: int, direction: int, size: int, what: str) -> FloatArray:
    if state is None:
        return np.zeros(size)
    per_layer = state[layer]
    arr = np.asarray(per_layer, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[direction]
    if arr.shape != (size,):
        raise ValueError(f"{what} for layer {layer} direction {direction} must have {size} values")
    return arr


def run_direction(
    w: LSTMDirection, x: FloatArray, h0: FloatArray | None = None, c0: FloatArray | None = None
) -> DirectionTrace:
    """Run one direction over ``x (T, D)`` and record every intermediate in time order."""
    T, H, P = x.shape[0], w.hidden_size, w.output_size
    W_x = w.W_x.astype(np.float64)
    W_h = w.W_h.astype(np.float64)
    b = w.b.astype(np.float64)
    z_x = x @ W_x.T
    z_h = np.zeros((T, 4 * H))
    peep = np.zeros((T, 4 * H)) if w.has_peepholes else None
    pre = np.empty((T, 4 * H))
    gates = np.empty((T, 4 * H))
    c = np.empty((T, H))
    act_c = np.empty((T, H))
    m = np.empty((T, H))
    h = np.empty((T, P))
    h_prev = np.empty((T, P))
    c_prev = np.empty((T, H))
    p_i, p_f, p_o = (None if p is None else p.astype(np.float64) for p in (w.p_i, w.p_f, w.p_o))
    W_p = None if w.W_p is None else w.W_p.astype(np.float64)
    clip = w.gate_clip

    def act(fn, z):  # noqa: ANN001, ANN202 - local helper
        return fn(np.clip(z, -clip, clip) if clip is not None else z)

    h_t = np.zeros(P) if h0 is None else np.asarray(h0, dtype=np.float64)
    c_t = np.zeros(H) if c0 is None else np.asarray(c0, dtype=np.float64)
    order = range(T - 1, -1, -1) if w.reverse else range(T)
    for t in order:
        h_prev[t], c_prev[t] = h_t, c_t
        z_h[t] = W_h @ h_t
        z = z_x[t] + z_h[t] + b
        if peep is not None:
            if p_i is not None:
                peep[t, :H] = p_i * c_t
            if p_f is not None:
                peep[t, H : 2 * H] = p_f * c_t
            z[: 2 * H] += peep[t, : 2 * H]
        gates[t, : 2 * H] = act(w.act_gate, z[: 2 * H])
        gates[t, 2 * H : 3 * H] = act(w.act_cand, z[2 * H : 3 * H])
        c_new = gates[t, H : 2 * H] * c_t + gates[t, :H] * gates[t, 2 * H : 3 * H]
        if w.cell_clip is not None:
            c_new = np.clip(c_new, -w.cell_clip, w.cell_clip)
        if peep is not None and p_o is not None:
            peep[t, 3 * H :] = p_o * c_new
            z[3 * H :] += peep[t, 3 * H :]
        pre[t] = z
        gates[t, 3 * H :] = act(w.act_gate, z[3 * H :])
        c[t] = c_new
        act_c[t] = w.act_cell(c_new)
        m[t] = gates[t, 3 * H :] * act_c[t]
        h_new = m[t] if W_p is None else W_p @ m[t]
        if W_p is not None and w.proj_clip is not None:
            h_new = np.clip(h_new, -w.proj_clip, w.proj_clip)
        h[t] = h_new
        h_t, c_t = h_new, c_new
    return DirectionTrace(
        weights=w,
        z_x=z_x,
        z_h=z_h,
        b=b,
        peep=peep,
        pre=pre,
        i=gates[:, :H],
        f=gates[:, H : 2 * H],
        g=gates[:, 2 * H : 3 * H],
        o=gates[:, 3 * H :],
        c=c,
        act_c=act_c,
        m=m,
        h=h,
        h_prev=h_prev,
        c_prev=c_prev,
    )


def run(model: LSTMModel, x: npt.ArrayLike, h0: StateArg = None, c0: StateArg = None) -> Trace:
    """Run ``model`` on ``x (T, D)`` and return the full ``Trace``.

    ``h0``/``c0``: None (zeros) or, per layer, an array ``(out,)`` or ``(n_directions, out)``.
    Raises ValueError naming the expected shape for a wrong width, an empty or non-finite x.
    """
    seq = check_sequence(x, model.input_size)
    layer_traces = []
    inp = seq
    for k, layer in enumerate(model.layers):
        dirs = tuple(
            run_direction(
                w,
                inp,
                _initial(h0, k, d, w.output_size, "h0"),
                _initial(c0, k, d, w.hidden_size, "c0"),
            )
            for d, w in enumerate(layer.directions)
        )
        if layer.bidirectional:
            out = merge(dirs[0].h, dirs[1].h, layer.merge_mode)
        elif dirs[0].reverse and layer.output_order is OutputOrder.PROCESSING:
            out = dirs[0].h[::-1]
        else:
            out = dirs[0].h
        out = np.ascontiguousarray(out)
        layer_traces.append(LayerTrace(layer=layer, input=inp, directions=dirs, output=out))
        inp = out
    return Trace(model=model, x=seq, layers=tuple(layer_traces))


def run_batch(model: LSTMModel, x: npt.ArrayLike) -> list[Trace]:
    """Run each sequence of ``x (B, T, D)`` separately (the debugger's case is a batch of one)."""
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise ValueError(f"batch must have shape (B, T, {model.input_size}), got {arr.shape}")
    return [run(model, seq) for seq in arr]
