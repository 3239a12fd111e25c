"""The NumPy forward pass that records every intermediate (CONVENTIONS.md §1 equations).

``x W_xᵀ + b`` is computed once for the whole sequence; only the recurrent product runs per
step, as a handful of in-place ufunc calls writing straight into the trace's buffers.
Arithmetic is float32 by default, as in the frameworks; ``dtype=np.float64`` gives a reference.
This module runs LSTM directions; ``run`` hands each direction to the runner registered for
its class (``register``: the LSTM's here, the GRU and plain RNN of ``compute_cells``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from lstmviz.core import cells as cells_module
from lstmviz.core import compiled
from lstmviz.core.activations import SIGMOID, TANH
from lstmviz.core.cells import GRU_CELL, GRU_RESET_BEFORE_CELL, CellDescription
from lstmviz.core.compute_cells import run_gru_direction, run_rnn_direction
from lstmviz.core.dense import apply_all
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import (
    LSTMDirection,
    LSTMModel,
    MergeMode,
    OutputOrder,
    RecurrentDirection,
)
from lstmviz.core.rnn import RNNDirection
from lstmviz.core.trace import CellTrace, DirectionTrace, LayerTrace, Trace

FloatArray = npt.NDArray[np.floating]
StateArg = FloatArray | Sequence[FloatArray] | None
#: ``numpy``: the NumPy loop; ``numba``: the compiled loop of ``compiled`` (the ``fast`` extra)
#: wherever it applies (float32, sigmoid/tanh, no peepholes, no gate clip); ``auto``: numba
#: when installed and the sequence has at least ``compiled.MIN_COMPILED_STEPS`` steps.
Engine = Literal["auto", "numpy", "numba"]


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


def _initial(
    state: StateArg, layer: int, direction: int, size: int, what: str, stored: FloatArray | None
) -> FloatArray:
    """The caller's state for this layer and direction, else the one the file stores (ONNX
    ``initial_h``/``initial_c`` constants), else zeros."""
    if state is None:
        return np.zeros(size) if stored is None else stored
    per_layer = state[layer]
    arr = np.asarray(per_layer, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[direction]
    if arr.shape != (size,):
        raise ValueError(f"{what} for layer {layer} direction {direction} must have {size} values")
    return arr


#: Internal block order of the gate rows: (g, f, i, o), so the three sigmoid gates are one
#: contiguous slice and ``[c_prev, g] ⊙ [f, i]`` is one multiply (see ``_Buffers``).
_INTERNAL = (2, 1, 0, 3)


def _internal(
    a: FloatArray, dtype: np.dtype, half_sigmoid: bool, transpose: bool = False
) -> FloatArray:
    """Rows of a canonical ``(4H, ...)`` array in internal order, optionally i, f, o halved.

    Halving the sigmoid rows lets one ``tanh`` call serve all four gates:
    ``sigmoid(z) = 0.5 * tanh(z / 2) + 0.5``, and scaling by a power of two is exact.
    ``transpose`` returns the C-contiguous ``(in, 4H)`` transpose, copied 16 source rows at a
    time: each output row then receives one 64-byte cache line per copy, 3x faster than one
    copy per gate (5 vs 15 ms for a 16 MiB ``W_h``).
    """
    H = a.shape[0] // 4
    out = np.empty((a.shape[1], 4 * H) if transpose else a.shape, dtype)
    tile = 16 if transpose and a.shape[1] >= 16 else H
    for dst, src in enumerate(_INTERNAL):
        for r in range(0, H, tile):
            n = min(tile, H - r)
            block = a[src * H + r : src * H + r + n]
            if transpose:
                out[:, dst * H + r : dst * H + r + n] = block.T
            else:
                out[dst * H + r : dst * H + r + n] = block
    if half_sigmoid:
        if transpose:
            out[:, H:] *= 0.5
        else:
            out[H:] *= 0.5
    return out


def _recurrent_T(w: LSTMDirection, dtype: np.dtype, half_sigmoid: bool) -> FloatArray:
    """``W_hᵀ (P, 4H)`` in internal order, prepared once per direction (``derived``)."""
    return w.derived(
        ("W_h.T", dtype.str, half_sigmoid),
        lambda: _internal(w.W_h, dtype, half_sigmoid, transpose=True),
    )


def _projection_T(w: LSTMDirection, dtype: np.dtype) -> FloatArray | None:
    """``W_pᵀ (H, P)``, or None without a projection."""
    W_p = w.W_p
    if W_p is None:
        return None
    return w.derived(("W_p.T", dtype.str), lambda: np.ascontiguousarray(W_p.T, dtype=dtype))


def _input_weights_array(w: LSTMDirection, dtype: np.dtype, half_sigmoid: bool) -> FloatArray:
    """``[W_xᵀ; b] (D + 1, 4H)`` in internal order: the bias is the row a column of ones in
    ``x`` picks up (``_with_ones``)."""
    Wa = np.empty((w.input_size + 1, 4 * w.hidden_size), dtype)
    Wa[:-1] = _internal(w.W_x, dtype, half_sigmoid, transpose=True)
    Wa[-1] = _internal(w.b[:, None], dtype, half_sigmoid, transpose=True)[0]
    return Wa


def _input_weights(w: LSTMDirection, dtype: np.dtype, half_sigmoid: bool) -> FloatArray:
    """``_input_weights_array``, prepared once per direction (``derived``)."""
    return w.derived(
        ("[W_x.T; b]", dtype.str, half_sigmoid),
        lambda: _input_weights_array(w, dtype, half_sigmoid),
    )


def _with_ones(x: FloatArray, dtype: np.dtype) -> FloatArray:
    """``[x | 1] (T, D + 1)``: the column of ones picks up the bias row of the input weights."""
    T, D = x.shape
    xa = np.empty((T, D + 1), dtype)
    xa[:, :D] = x
    xa[:, D] = 1.0
    return xa


class _Buffers:
    """The storage one direction writes, laid out so each step is a few in-place ufunc calls.

    ``R (T+1, 5H)``: each gate row is ``[c_prev | g | f | i | o]`` and the step's new ``c`` is
    written into the ``c_prev`` slot of the row processed next, so ``c``/``c_prev`` are two
    views of one buffer; ``Hb (T+1, P)`` does the same for ``h``/``h_prev``. The extra row
    holds the initial state (row 0 going forward, row T going backward).
    """

    def __init__(self, w: LSTMDirection, T: int, dtype: np.dtype) -> None:
        H, P = w.hidden_size, w.output_size
        self.R = np.empty((T + 1, 5 * H), dtype)
        self.Hb = np.empty((T + 1, P), dtype)
        self.act_c = np.empty((T, H), dtype)
        self.m = np.empty((T, H), dtype) if w.W_p is not None else None
        rows, nxt = (slice(1, T + 1), slice(0, T)) if w.reverse else (slice(0, T), slice(1, T + 1))
        first = T if w.reverse else 0
        self.gates = self.R[rows]  # (T, 5H) time order
        self.c = self.R[nxt, :H]
        self.h_prev, self.h = self.Hb[rows], self.Hb[nxt]
        self.c0, self.h0 = self.R[first, :H], self.Hb[first]

    def m_out(self) -> FloatArray:
        return self.h if self.m is None else self.m


def _fast_path(w: LSTMDirection) -> bool:
    """Sigmoid gates, tanh candidate and cell, no peepholes and no gate clip."""
    return (
        w.act_gate == SIGMOID
        and w.act_cand == TANH
        and w.act_cell == TANH
        and not w.has_peepholes
        and w.gate_clip is None
    )


def _steps(arrays: Sequence[FloatArray], reverse: bool) -> Iterator[tuple]:
    """Rows of ``arrays`` in processing order (row views are made in C, not by slicing)."""
    if reverse:
        arrays = [a[::-1] for a in arrays]
    return zip(*arrays, strict=True)


def _run_fast(w: LSTMDirection, buf: _Buffers, dtype: np.dtype) -> None:
    """The sigmoid/tanh recurrence in 9 in-place calls per step (10-11 with clip/projection).

    Per-call overhead dominates at small H, so: ``np.dot`` (cheaper than ``matmul`` for a
    vector), array constants (a Python-float operand costs a scalar conversion per call),
    and row views made by ``zip`` over 2-D views instead of slicing in the loop.
    """
    H = w.hidden_size
    WhT = _recurrent_T(w, dtype, True)  # (P, 4H)
    WpT = _projection_T(w, dtype)
    cc, pc = w.cell_clip, w.proj_clip
    zh = np.empty(4 * H, dtype)
    half = np.full(3 * H, 0.5, dtype)
    prod = np.empty(2 * H, dtype)
    p0, p1 = prod[:H], prod[H:]
    G = buf.gates
    rows = (buf.h_prev, G[:, H:], G[:, 2 * H :], G[:, : 2 * H], G[:, 2 * H : 4 * H], G[:, 4 * H :])
    rows += (buf.c, buf.act_c, buf.m_out(), buf.h)
    dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
    for hp, gz, gs, cg, fi, go, cn, ac, mo, hn in _steps(rows, w.reverse):
        dot(hp, WhT, out=zh)
        add(gz, zh, out=gz)
        tanh(gz, out=gz)  # g = tanh(z_g); f, i, o = tanh(z / 2) ...
        mul(gs, half, out=gs)
        add(gs, half, out=gs)  # ... * 0.5 + 0.5
        mul(cg, fi, out=prod)  # [c_prev, g] * [f, i]
        add(p0, p1, out=cn)
        if cc is not None:
            np.clip(cn, -cc, cc, out=cn)
        tanh(cn, out=ac)
        mul(go, ac, out=mo)
        if WpT is not None:
            dot(mo, WpT, out=hn)
            if pc is not None:
                np.clip(hn, -pc, pc, out=hn)


def _packed_recurrent(w: LSTMDirection, dtype: np.dtype) -> FloatArray:
    """``compiled.pack(W_hᵀ)``, packed straight from W_h (the NumPy engine's transpose is not
    kept as well)."""
    return w.derived(
        ("W_h.T packed", dtype.str),
        lambda: compiled.pack(_internal(w.W_h, dtype, True, transpose=True)),
    )


def _team_inputs(
    w: LSTMDirection, x: FloatArray, kernels: compiled.Kernels, dtype: np.dtype
) -> tuple[FloatArray, FloatArray] | None:
    """``x W_xᵀ + b``'s operands for the thread team (packed ``[W_xᵀ; b]`` and ``[x | 1]``)
    when the recurrence will run on it (and 4H is a multiple of the packed block): the team
    computes them in the recurrence's call, not BLAS, whose workers spin for tens of
    milliseconds after a GEMM and would take the team's cores. None: BLAS computes them."""
    H = w.hidden_size
    if (4 * H) % compiled.PACK_LANES or not kernels.parallel_for(_packed_recurrent(w, dtype)):
        return None
    Wxk = w.derived(  # packed straight from the weights, as for W_h: one copy kept, not two
        ("[W_x.T; b] packed", dtype.str),
        lambda: compiled.pack(_input_weights_array(w, dtype, True)),
    )
    return Wxk, _with_ones(x, dtype)


def _run_compiled(
    w: LSTMDirection,
    buf: _Buffers,
    kernels: compiled.Kernels,
    dtype: np.dtype,
    inputs: tuple[FloatArray, FloatArray] | None = None,
) -> None:
    """The fast path's recurrence in one compiled call (same buffers, same arithmetic), after
    the input terms when ``inputs`` (``_team_inputs``) are given."""
    Wk = _packed_recurrent(w, dtype)
    WpT = _projection_T(w, dtype)
    nan = float("nan")
    cc = nan if w.cell_clip is None else float(w.cell_clip)
    pc = nan if w.proj_clip is None else float(w.proj_clip)
    if WpT is None:  # the kernel's "no projection"; W_pᵀ read-only like the prepared one,
        m, WpT = np.empty((0, 0), dtype), np.empty((0, 0), dtype)  # one compiled signature
        WpT.setflags(write=False)
    else:
        m = buf.m
    args = (buf.R, buf.Hb, buf.act_c, m, Wk, WpT, cc, pc, w.reverse)
    if kernels.parallel_for(Wk):
        assert kernels.run_steps_parallel is not None  # parallel_for checked it
        compiled.call_parallel(kernels, kernels.run_steps_parallel, *args, inputs)
    else:
        assert inputs is None  # given only where the recurrence runs on the team
        kernels.run_steps(*args)


def _compiled_kernels(
    engine: Engine, w: LSTMDirection, T: int, dtype: np.dtype
) -> compiled.Kernels | None:
    """The compiled kernels when ``engine`` asks for them and they apply to this direction."""
    return compiled.kernels_for(engine, _fast_path(w), T, dtype)


def _run_general(w: LSTMDirection, buf: _Buffers, dtype: np.dtype) -> None:
    """Any activation, peepholes and clips: the equations of CONVENTIONS.md §1 step by step."""
    H = w.hidden_size
    WhT = _recurrent_T(w, dtype, False)
    WpT = _projection_T(w, dtype)
    p_i, p_f, p_o = (None if p is None else p.astype(dtype) for p in (w.p_i, w.p_f, w.p_o))
    gc, cc, pc = w.gate_clip, w.cell_clip, w.proj_clip

    def clip(z: FloatArray) -> FloatArray:
        return z if gc is None else np.clip(z, -gc, gc)

    G = buf.gates
    zh = np.empty(4 * H, dtype)
    rows = (buf.h_prev, G[:, H:], G[:, :H], buf.c, buf.act_c, buf.m_out(), buf.h)
    for hp, gz, c_prev, cn, ac, mo, hn in _steps(rows, w.reverse):
        np.matmul(hp, WhT, out=zh)
        gz += zh  # [g, f, i, o] pre-activations without peepholes
        if p_f is not None:
            gz[H : 2 * H] += p_f * c_prev
        if p_i is not None:
            gz[2 * H : 3 * H] += p_i * c_prev
        gz[:H] = w.act_cand(clip(gz[:H]))
        gz[H : 3 * H] = w.act_gate(clip(gz[H : 3 * H]))
        c = gz[H : 2 * H] * c_prev + gz[2 * H : 3 * H] * gz[:H]
        cn[:] = c if cc is None else np.clip(c, -cc, cc)
        if p_o is not None:
            gz[3 * H :] += p_o * cn
        gz[3 * H :] = w.act_gate(clip(gz[3 * H :]))
        ac[:] = w.act_cell(cn)
        np.multiply(gz[3 * H :], ac, out=mo)
        if WpT is not None:
            np.matmul(mo, WpT, out=hn)
            if pc is not None:
                np.clip(hn, -pc, pc, out=hn)


def _input_terms(
    w: LSTMDirection, x: FloatArray, half_sigmoid: bool, dtype: np.dtype, out: FloatArray
) -> None:
    """``x W_xᵀ + b`` for the whole sequence, in internal gate order, as one matmul: the
    bias rides along as a column of ones. Adding it afterwards, broadcast into the strided gate
    rows, cost almost as much as the product itself at small H (measured 0.09 vs 0.11 ms)."""
    np.matmul(_with_ones(x, dtype), _input_weights(w, dtype, half_sigmoid), out=out)


def run_direction(
    w: LSTMDirection,
    x: FloatArray,
    h0: FloatArray | None = None,
    c0: FloatArray | None = None,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: Engine = "auto",
) -> DirectionTrace:
    """Run one direction over ``x (T, D)`` and record every intermediate in time order.

    ``x W_xᵀ + b`` for the whole sequence is one matmul (``_input_terms``, or the thread
    team's kernel in the recurrence's call) written straight into the gate rows; the loop then
    adds the recurrent product and applies the activations in place.
    """
    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype=dtype)
    T, H = x.shape[0], w.hidden_size
    buf = _Buffers(w, T, dtype)
    fast = _fast_path(w)
    kernels = _compiled_kernels(engine, w, T, dtype)
    inputs = None if kernels is None else _team_inputs(w, x, kernels, dtype)
    buf.c0[:] = 0.0 if c0 is None else c0
    buf.h0[:] = 0.0 if h0 is None else h0
    with np.errstate(all="ignore"):  # a diverging model is shown, not warned about
        if inputs is None:
            _input_terms(w, x, fast, dtype, out=buf.gates[:, H:])
        if kernels is not None:
            _run_compiled(w, buf, kernels, dtype, inputs)
        else:
            (_run_fast if fast else _run_general)(w, buf, dtype)
    G = buf.gates
    return DirectionTrace(
        weights=w,
        x=x,
        b=w.b.astype(dtype),
        i=G[:, 3 * H : 4 * H],
        f=G[:, 2 * H : 3 * H],
        g=G[:, H : 2 * H],
        o=G[:, 4 * H :],
        c=buf.c,
        act_c=buf.act_c,
        m=buf.m_out(),
        h=buf.h,
        h_prev=buf.h_prev,
        c_prev=G[:, :H],
    )


#: The forward pass of each direction class: ``runner(w, x, h0, *, dtype, engine, **more)``
#: returns its trace; ``more`` holds the initial value of each other state the cell carries,
#: by ``<state>0`` (the LSTM's ``c0``). Filled by ``register``, the one place a cell kind
#: (its direction class, runner and cell descriptions) is made known.
RUNNERS: dict[type, Callable[..., CellTrace]] = {}


def register(
    direction_class: type, runner: Callable[..., CellTrace], *cells: CellDescription
) -> None:
    """Make ``run`` run directions of ``direction_class`` with ``runner``, and the code that
    reads names a user types (breakpoints, selections) know ``cells`` — by default the
    class's own ``cell`` (a class whose cell depends on a setting, as the GRU's reset mode,
    names every one). A new cell kind is its description, direction class, trace class and
    this one call."""
    if not cells:
        own = getattr(direction_class, "cell", None)
        if not isinstance(own, CellDescription):
            raise TypeError(f"{direction_class.__name__}.cell is not a CellDescription: name it")
        cells = (own,)
    cells_module.register(*cells)
    RUNNERS[direction_class] = runner
    _CELLS_OF[direction_class] = cells


#: The cell descriptions each registered direction class brought (``unregister``).
_CELLS_OF: dict[type, tuple[CellDescription, ...]] = {}


def unregister(direction_class: type) -> None:
    """Undo ``register`` (a test's made-up cell): its runner and the cells only it brought."""
    RUNNERS.pop(direction_class, None)
    cells = _CELLS_OF.pop(direction_class, ())
    still = {id(c) for kept in _CELLS_OF.values() for c in kept}
    cells_module.unregister(*(c for c in cells if id(c) not in still))


def runner_for(w: object) -> Callable[..., CellTrace]:
    """The registered forward pass of ``w``'s class (or of the nearest base class that has
    one); TypeError naming ``register`` when there is none."""
    for cls in type(w).__mro__:
        runner = RUNNERS.get(cls)
        if runner is not None:
            return runner
    raise TypeError(f"no forward pass registered for {type(w).__name__} (compute.register)")


def state_size(w: RecurrentDirection, state: str) -> int:
    """Values of state ``state`` per step: ``h`` is the direction's output (P wide under an
    LSTM projection), every other state one value per unit (H)."""
    return w.output_size if state == "h" else w.hidden_size


def run_cell(
    w: RecurrentDirection,
    x: FloatArray,
    states: Mapping[str, FloatArray | None],
    *,
    dtype: npt.DTypeLike,
    engine: Engine,
) -> CellTrace:
    """One direction of any registered cell kind from its initial ``states`` by state name
    (``h``, and ``c`` for the LSTM; a missing or None state starts at zero)."""
    more = {f"{s}0": states.get(s) for s in w.cell.state_names if s != "h"}
    return runner_for(w)(w, x, states.get("h"), dtype=dtype, engine=engine, **more)


def _run_any(
    w: RecurrentDirection,
    inp: FloatArray,
    initial: Mapping[str, StateArg],
    k: int,
    d: int,
    *,
    dtype: npt.DTypeLike,
    engine: Engine,
) -> CellTrace:
    """One direction of layer ``k`` from its initial states (``initial_states``)."""
    return run_cell(w, inp, initial_states(w, initial, k, d), dtype=dtype, engine=engine)


def initial_states(
    w: RecurrentDirection, initial: Mapping[str, StateArg], k: int, d: int
) -> dict[str, FloatArray]:
    """Each state the cell of ``w`` (layer ``k``, direction ``d``) carries, by name: the
    caller's value (``initial``: ``run``'s ``h0``/``c0`` by state name), else the file's
    (``w.h0``, ``w.c0``), else zeros."""
    return {
        s: _initial(initial.get(s), k, d, state_size(w, s), f"{s}0", getattr(w, f"{s}0", None))
        for s in w.cell.state_names
    }


register(LSTMDirection, run_direction)
register(GRUDirection, run_gru_direction, GRU_CELL, GRU_RESET_BEFORE_CELL)
register(RNNDirection, run_rnn_direction)


def run(
    model: LSTMModel,
    x: npt.ArrayLike,
    h0: StateArg = None,
    c0: StateArg = None,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: Engine = "auto",
    trace: Literal["auto", "full", "bounded"] = "auto",
) -> Trace:
    """Run ``model`` on ``x (T, D)`` and return the full ``Trace``.

    ``trace``: ``full`` records every step; ``bounded`` keeps checkpoints every K steps and
    recomputes steps on demand, bitwise the same (``checkpointed_trace``); ``auto`` takes the
    bounded one when the full one would pass ``checkpointed_trace.auto_limit()`` bytes.

    ``h0``/``c0``: None (the states the file stores, else zeros) or, per layer, an array
    ``(out,)`` or ``(n_directions, out)`` (``c0`` is read for LSTM layers only; a GRU or
    plain RNN layer's entry may be anything).
    ``dtype``: arithmetic and storage precision. float32 is what the frameworks compute in
    (their results agree at ~1e-6) and halves the memory traffic of the recurrent matmul;
    pass ``np.float64`` for a reference to compare float32 frameworks against.
    ``engine``: see ``Engine``; every engine agrees with the frameworks at 1e-5.
    Raises ValueError naming the expected shape for a wrong width, an empty or non-finite x.
    """
    if engine not in ("auto", "numpy", "numba"):
        raise ValueError(f"engine must be 'auto', 'numpy' or 'numba', not {engine!r}")
    if trace not in ("auto", "full", "bounded"):
        raise ValueError(f"trace must be 'auto', 'full' or 'bounded', not {trace!r}")
    if trace != "full":
        from lstmviz.core import bounded_run  # they import this module
        from lstmviz.core import checkpointed_trace as ct

        if trace == "bounded" or ct.wants_bounded(model, x, dtype):
            return bounded_run.run_bounded(model, x, h0, c0, dtype=dtype, engine=engine)  # type: ignore[return-value]
    seq = check_sequence(x, model.input_size).astype(dtype, copy=False)
    initial = {"h": h0, "c": c0}
    layer_traces = []
    inp = seq
    for k, layer in enumerate(model.layers):
        dirs = tuple(
            _run_any(w, inp, initial, k, d, dtype=dtype, engine=engine)
            for d, w in enumerate(layer.directions)
        )
        out = merge(dirs[0].h, dirs[1].h, layer.merge_mode) if layer.bidirectional else dirs[0].h
        if dirs[0].reverse and layer.output_order is OutputOrder.PROCESSING:
            # Keras go_backwards (alone or wrapped in Bidirectional): the time-aligned
            # (merged) sequence comes out in the reverse-reading direction's order.
            out = out[::-1]
        out = np.ascontiguousarray(out)
        layer_traces.append(LayerTrace(layer=layer, input=inp, directions=dirs, output=out))
        inp = out
        if k + 1 < len(model.layers):
            inp = np.ascontiguousarray(apply_all(model.layers[k + 1].before, inp))
    head = apply_all(model.head, inp) if model.head else None
    return Trace(model=model, x=seq, layers=tuple(layer_traces), head_output=head)


def run_batch(
    model: LSTMModel,
    x: npt.ArrayLike,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: Engine = "auto",
) -> list[Trace]:
    """Run each sequence of ``x (B, T, D)`` separately (the debugger's case is a batch of one)."""
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise ValueError(f"batch must have shape (B, T, {model.input_size}), got {arr.shape}")
    return [run(model, seq, dtype=dtype, engine=engine) for seq in arr]
