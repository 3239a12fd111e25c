"""Forward passes of the GRU and the plain RNN cell, recording every intermediate.

The same plan as the LSTM's (``compute``): ``x W_xᵀ + b`` for the whole sequence is one matmul
written into the gate rows, then only the recurrent product runs per step, in place. Biases
that sit outside the reset gate are folded into that matmul (all of ``b_h`` when the reset
comes before ``W_h``; its r, z blocks otherwise), so a step adds just ``b_hn``. With sigmoid
gates the r, z columns are halved, so one ``tanh`` gives the sigmoid (``0.5·tanh(z/2) + 0.5``)
as in the LSTM's fast path; the compiled engine (``compiled``) runs the same buffers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lstmviz.core import compiled
from lstmviz.core.activations import SIGMOID, TANH
from lstmviz.core.gru import GRUDirection
from lstmviz.core.rnn import RNNDirection
from lstmviz.core.trace_cells import GRUDirectionTrace, RNNDirectionTrace

FloatArray = npt.NDArray[np.floating]


def _gru_fast(w: GRUDirection) -> bool:
    return w.act_gate == SIGMOID and w.act_cand == TANH and w.gate_clip is None


def _clipped(a: FloatArray, clip: float | None) -> FloatArray:
    """ONNX ``clip``: an activation's argument limited to ±clip (the trace keeps it unclipped
    in ``pre``, as for the LSTM)."""
    return a if clip is None else np.clip(a, -clip, clip)


def _scale(H: int, dtype: np.dtype, half: bool) -> FloatArray:
    """Column scale of the gate blocks: r, z halved for the tanh form of the sigmoid."""
    s = np.ones(3 * H, dtype)
    if half:
        s[: 2 * H] = 0.5
    return s


def _gru_input_weights(w: GRUDirection, dtype: np.dtype, half: bool) -> FloatArray:
    """``[W_xᵀ; b] (D + 1, 3H)``, the bias row holding every bias outside the reset gate."""
    H = w.hidden_size
    b = w.shown_bias(np.dtype(np.float64))
    Wa = np.empty((w.input_size + 1, 3 * H), dtype)
    Wa[:-1] = w.W_x.T
    Wa[-1] = b
    Wa *= _scale(H, dtype, half)
    return Wa


def _gru_recurrent_T(w: GRUDirection, dtype: np.dtype, half: bool) -> FloatArray:
    """``W_hᵀ (H, 3H)`` scaled as the input weights, or just ``(H, 2H)`` for r, z when the
    reset comes before ``U_n`` (which then runs on ``r ⊙ h``, ``_gru_candidate_T``)."""
    H = w.hidden_size
    cols = 3 * H if w.reset_after else 2 * H

    def make() -> FloatArray:
        out = np.array(w.W_h[:cols].T, dtype=dtype, order="C")  # a copy: scaled below
        out *= _scale(H, dtype, half)[:cols]
        return out

    return w.derived(("gru W_h.T", dtype.str, half), make)


def _gru_candidate_T(w: GRUDirection, dtype: np.dtype) -> FloatArray:
    """``U_nᵀ (H, H)`` for the reset-before candidate."""
    H = w.hidden_size
    return w.derived(
        ("gru U_n.T", dtype.str), lambda: np.ascontiguousarray(w.W_h[2 * H :].T, dtype=dtype)
    )


def _rows(Hb: FloatArray, T: int, reverse: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``h_prev``, ``h`` (time order) and the initial-state row of ``Hb (T+1, H)``."""
    if reverse:
        return Hb[1:], Hb[:T], Hb[T]
    return Hb[:T], Hb[1:], Hb[0]


def _steps(arrays: list[FloatArray], reverse: bool) -> zip:  # type: ignore[type-arg]
    return zip(*(a[::-1] if reverse else a for a in arrays), strict=True)


def _gru_numpy(w: GRUDirection, G: FloatArray, h_prev: FloatArray, h: FloatArray) -> None:
    """The recurrence in place: ``G`` holds the input terms and receives r, z, n."""
    H, dtype = w.hidden_size, G.dtype
    fast = _gru_fast(w)
    WhT = _gru_recurrent_T(w, dtype, fast)
    UnT = None if w.reset_after else _gru_candidate_T(w, dtype)
    bhn = w.b_h[2 * H :].astype(dtype)
    zh = np.empty(WhT.shape[1], dtype)
    tmp = np.empty(H, dtype)
    half = np.full(2 * H, 0.5, dtype)
    act_g, act_n, clip = w.act_gate, w.act_cand, w.gate_clip
    dot, add, mul, sub, tanh = np.dot, np.add, np.multiply, np.subtract, np.tanh
    zrz, zn = zh[: 2 * H], zh[2 * H :]
    rows = [h_prev, G[:, : 2 * H], G[:, :H], G[:, H : 2 * H], G[:, 2 * H :], h]
    for hp, grz, r, z, n, hn in _steps(rows, w.reverse):
        dot(hp, WhT, out=zh)
        add(grz, zrz, out=grz)
        if fast:
            tanh(grz, out=grz)
            mul(grz, half, out=grz)
            add(grz, half, out=grz)
        else:
            grz[:] = act_g(_clipped(grz, clip))
        if UnT is None:  # n = act(x_n + r ⊙ (U_n h + b_hn))
            add(zn, bhn, out=zn)
            mul(r, zn, out=tmp)
        else:  # n = act(x_n + U_n (r ⊙ h))
            mul(r, hp, out=tmp)
            dot(tmp, UnT, out=tmp)
        add(n, tmp, out=n)
        if fast:
            tanh(n, out=n)
        else:
            n[:] = act_n(_clipped(n, clip))
        sub(hp, n, out=tmp)  # h = n + z ⊙ (h_prev − n)
        mul(z, tmp, out=tmp)
        add(n, tmp, out=hn)


def _gru_compiled(
    w: GRUDirection,
    G: FloatArray,
    Hb: FloatArray,
    kernels: compiled.Kernels,
    inputs: tuple[FloatArray, FloatArray] | None = None,
) -> None:
    """The recurrence in one compiled call; the team computes the input terms into ``G``
    first when ``inputs`` (``_gru_input_terms``) are given."""
    H, dtype = w.hidden_size, G.dtype
    Wk = w.derived(("gru W_h.T packed", dtype.str), lambda: compiled.pack(
        _gru_recurrent_T(w, dtype, True)))  # fmt: skip
    if w.reset_after:
        Wn = np.zeros((0, H, compiled.PACK_LANES), dtype)
        Wn.setflags(write=False)
    else:
        Wn = w.derived(("gru U_n.T packed", dtype.str), lambda: compiled.pack(
            _gru_candidate_T(w, dtype)))  # fmt: skip
    bh = np.zeros(Wk.shape[0] * compiled.PACK_LANES, dtype)
    if w.reset_after:
        bh[2 * H : 3 * H] = w.b_h[2 * H :]
    assert kernels.gru_steps is not None
    par = kernels.gru_steps_parallel
    if par is not None and kernels.threads() > 1 and Wk.nbytes >= compiled.PARALLEL_MIN_BYTES:
        compiled.call_parallel(kernels, par, G, Hb, Wk, bh, Wn, w.reverse, inputs)
    else:
        assert inputs is None  # given only where the recurrence runs on the team
        kernels.gru_steps(G, Hb, Wk, bh, Wn, w.reverse)


def _gru_input_terms(
    w: GRUDirection, xa: FloatArray, Wa: FloatArray, kernels: compiled.Kernels | None
) -> tuple[FloatArray, tuple[FloatArray, FloatArray] | None]:
    """``G = [x | 1] · [W_xᵀ; b]`` by BLAS' GEMM, and None; or, when the recurrence will run
    on the thread team, an empty ``G`` and the operands the team computes it from in the
    recurrence's call (as for the LSTM: OpenBLAS' workers spin for tens of milliseconds after
    a GEMM and would take the team's cores)."""
    H = w.hidden_size
    cols = 3 * H if w.reset_after else 2 * H  # the packed W_h's columns (``_gru_compiled``)
    team = (
        kernels is not None
        and kernels.gru_steps_parallel is not None
        and H % compiled.PACK_LANES == 0
        and kernels.threads() > 1
        and H * cols * Wa.itemsize >= compiled.PARALLEL_MIN_BYTES
    )
    if not team:
        return xa @ Wa, None
    Wxk = w.derived(("gru [W_x.T; b] packed", Wa.dtype.str), lambda: compiled.pack(Wa))
    return np.empty((xa.shape[0], 3 * H), Wa.dtype), (Wxk, xa)


def run_gru_direction(
    w: GRUDirection,
    x: FloatArray,
    h0: FloatArray | None = None,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: str = "auto",
) -> GRUDirectionTrace:
    """Run one GRU direction over ``x (T, D)``; every intermediate in time order."""
    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype=dtype)
    T, H = x.shape[0], w.hidden_size
    kernels = _kernels(engine, _gru_fast(w), T, dtype)
    fast = _gru_fast(w)
    Wa = w.derived(("gru [W_x.T; b]", dtype.str, fast), lambda: _gru_input_weights(w, dtype, fast))
    xa = np.empty((T, x.shape[1] + 1), dtype)
    xa[:, :-1] = x
    xa[:, -1] = 1.0
    Hb = np.empty((T + 1, H), dtype)
    h_prev, h, first = _rows(Hb, T, w.reverse)
    first[:] = 0.0 if h0 is None else h0
    with np.errstate(all="ignore"):  # a diverging model is shown, not warned about
        G, inputs = _gru_input_terms(w, xa, Wa, kernels)  # (T, 3H)
        if kernels is not None:
            _gru_compiled(w, G, Hb, kernels, inputs)
        else:
            _gru_numpy(w, G, h_prev, h)
    return GRUDirectionTrace(
        weights=w,
        x=x,
        b=w.shown_bias(dtype),
        r=G[:, :H],
        z=G[:, H : 2 * H],
        n=G[:, 2 * H :],
        h=h,
        h_prev=h_prev,
    )


def _kernels(engine: str, fast: bool, T: int, dtype: np.dtype) -> compiled.Kernels | None:
    """The compiled kernels when ``engine`` asks for them and they apply, None when the GRU
    kernel did not compile here."""
    kernels = compiled.kernels_for(engine, fast, T, dtype)
    return None if kernels is None or kernels.gru_steps is None else kernels


def run_rnn_direction(
    w: RNNDirection,
    x: FloatArray,
    h0: FloatArray | None = None,
    *,
    dtype: npt.DTypeLike = np.float32,
    engine: str = "auto",
) -> RNNDirectionTrace:
    """Run one plain RNN direction: ``h = act(x W_xᵀ + b + h_prev W_hᵀ)`` step by step (one
    BLAS matvec and two ufunc calls; the NumPy engine only)."""
    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype=dtype)
    T, H = x.shape[0], w.hidden_size
    Hb = np.empty((T + 1, H), dtype)
    h_prev, h, first = _rows(Hb, T, w.reverse)
    with np.errstate(all="ignore"):
        np.matmul(x, w.W_x.T.astype(dtype), out=h)
        h += w.b.astype(dtype)
    first[:] = 0.0 if h0 is None else h0
    WhT = w.derived(("rnn W_h.T", dtype.str), lambda: np.ascontiguousarray(w.W_h.T, dtype=dtype))
    zh = np.empty(H, dtype)
    act = w.act_cand
    plain = act.alpha is None and act.beta is None and w.gate_clip is None
    name = act.name if plain else ""
    ufunc = {"tanh": np.tanh}.get(name)
    with np.errstate(all="ignore"):
        for hp, hn in _steps([h_prev, h], w.reverse):
            np.dot(hp, WhT, out=zh)
            np.add(hn, zh, out=hn)
            if ufunc is not None:
                ufunc(hn, out=hn)
            elif name == "relu":
                np.maximum(hn, 0.0, out=hn)
            else:
                hn[:] = act(_clipped(hn, w.gate_clip))
    return RNNDirectionTrace(weights=w, x=x, b=w.b.astype(dtype), h=h, h_prev=h_prev)
