"""numba kernels of ``compiled``; imported only through ``compiled.recurrence()``.

Top-level functions, so that numba's on-disk cache (``cache=True``) finds them again in the
next process: the first run on a machine compiles for a few seconds, later ones load in ~0.2 s.
"""

import functools

import numba
import numpy as np

f32 = np.float32
_njit = functools.partial(numba.njit, nogil=True, error_model="numpy", fastmath={"contract"})


@_njit(inline="always")
def tanh32(x0: float) -> float:
    """tanh to a couple of float32 ulp (max |error| 2.4e-7): the 13/6 rational form of
    Eigen's ``generic_fast_tanh_float``. It has no branch, so LLVM vectorises the loops
    that call it (libm's scalar ``tanhf`` would cost ~3 ns an element); NaN stays NaN."""
    x = min(max(x0, f32(-9.0)), f32(9.0))
    x2 = x * x
    p = x2 * f32(-2.76076847742355e-16) + f32(2.00018790482477e-13)
    p = x2 * p + f32(-8.60467152213735e-11)
    p = x2 * p + f32(5.12229709037114e-08)
    p = x2 * p + f32(1.48572235717979e-05)
    p = x2 * p + f32(6.37261928875436e-04)
    p = x2 * p + f32(4.89352455891786e-03)
    q = x2 * f32(1.19825839466702e-06) + f32(1.18534705686654e-04)
    q = x2 * q + f32(2.26843463243900e-03)
    q = x2 * q + f32(4.89352518554385e-03)
    r = x * p / q
    return r if x0 == x0 else x0


@_njit(inline="always")
def _clip(v: float, limit: float) -> float:
    """``np.clip(v, -limit, limit)``, NaN kept."""
    return min(max(v, -limit), limit) if v == v else v


@_njit(inline="always")
def _cell(z, c_prev, c, ac, mo, cell_clip):
    """Activations and state update of one step, in place: ``z`` is the gate row ``[g|f|i|o]``
    with the full pre-activation (sigmoid rows halved); writes c, act(c) and o·act(c)."""
    H = c.shape[0]
    half = f32(0.5)
    for j in range(H):
        z[j] = tanh32(z[j])
    # sigmoid(z) = tanh(z / 2) / 2 + 1/2, z already halved. Counted from 0: LLVM did not
    # vectorise the same loop written as ``range(H, 4 * H)`` (measured 8x slower at H = 64).
    for j in range(3 * H):
        z[H + j] = tanh32(z[H + j]) * half + half
    use_cc = cell_clip == cell_clip
    for u in range(H):
        v = z[H + u] * c_prev[u] + z[2 * H + u] * z[u]
        c[u] = _clip(v, cell_clip) if use_cc else v
    for u in range(H):
        ac[u] = tanh32(c[u])
    for u in range(H):
        mo[u] = z[3 * H + u] * ac[u]


@_njit(inline="always")
def _add_rows4(z, hp, WhT, k):
    """``z += hp[k:k+4] · W_hᵀ[k:k+4]``: four rows per pass over z, a quarter of its traffic."""
    a0, a1, a2, a3 = hp[k], hp[k + 1], hp[k + 2], hp[k + 3]
    w0, w1, w2, w3 = WhT[k], WhT[k + 1], WhT[k + 2], WhT[k + 3]
    for j in range(z.shape[0]):
        z[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]


@_njit(inline="always")
def _add_rows8(z, hp, WhT, k):
    """Eight rows per pass: for weights beyond L2 the z traffic, not the FMAs, is what the
    L3 stream competes with (measured at H = 1024: 8 rows 0.93x torch, 4 rows 0.96x)."""
    a0, a1, a2, a3 = hp[k], hp[k + 1], hp[k + 2], hp[k + 3]
    a4, a5, a6, a7 = hp[k + 4], hp[k + 5], hp[k + 6], hp[k + 7]
    w0, w1, w2, w3 = WhT[k], WhT[k + 1], WhT[k + 2], WhT[k + 3]
    w4, w5, w6, w7 = WhT[k + 4], WhT[k + 5], WhT[k + 6], WhT[k + 7]
    for j in range(z.shape[0]):
        z[j] += (a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]) + (
            a4 * w4[j] + a5 * w5[j] + a6 * w6[j] + a7 * w7[j]
        )


@_njit(inline="always")
def _add_matvec(z, hp, WhT, block, back):
    """``z += hp · W_hᵀ`` in blocks of ``block`` (4 or 8) rows; ``back`` walks the blocks last
    to first. Alternating the direction every step starts each step on the rows the previous
    one read last, still in L1/L2, instead of the ones evicted longest ago."""
    P = WhT.shape[0]
    nb = P // block
    for bb in range(nb):
        k = (nb - 1 - bb if back else bb) * block
        if block == 8:
            _add_rows8(z, hp, WhT, k)
        else:
            _add_rows4(z, hp, WhT, k)
    for k in range(nb * block, P):
        a0 = hp[k]
        w0 = WhT[k]
        for j in range(z.shape[0]):
            z[j] += a0 * w0[j]


@_njit(cache=True)
def run_steps(R, Hb, act_c, m, WhT, WpT, cell_clip, proj_clip, reverse, block):
    """One direction's whole recurrence in place.

    Clips are NaN when absent, ``m`` and ``WpT`` empty without a projection; ``block`` is the
    matvec's rows per pass (``compiled.row_block``). Row indices follow ``_Buffers``: step t
    reads gate row ``t + reverse`` (also where h_prev is) and writes c, h to row
    ``t + 1 - reverse``. Each block size gets its own copy of the loop, with the size a
    constant: tested inside the loop instead, it cost 40% at H = 64."""
    if block == 8:
        _recurrence(R, Hb, act_c, m, WhT, WpT, cell_clip, proj_clip, reverse, 8)
    else:
        _recurrence(R, Hb, act_c, m, WhT, WpT, cell_clip, proj_clip, reverse, 4)


@_njit(inline="always")
def _recurrence(R, Hb, act_c, m, WhT, WpT, cell_clip, proj_clip, reverse, block):
    T = act_c.shape[0]
    H = act_c.shape[1]
    project = WpT.shape[0] > 0
    for s in range(T):
        t = T - 1 - s if reverse else s
        row = t + 1 if reverse else t
        nxt = t if reverse else t + 1
        z = R[row, H:]
        _add_matvec(z, Hb[row], WhT, block, s % 2 == 1)
        mo = m[t] if project else Hb[nxt]
        _cell(z, R[row, :H], R[nxt, :H], act_c[t], mo, cell_clip)
        if project:
            hn = Hb[nxt]
            for q in range(hn.shape[0]):
                hn[q] = 0.0
            _add_matvec(hn, mo, WpT, 4, False)
            if proj_clip == proj_clip:
                for q in range(hn.shape[0]):
                    hn[q] = _clip(hn[q], proj_clip)
