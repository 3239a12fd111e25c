"""numba kernels of ``compiled``; imported only through ``compiled.recurrence()``.

Top-level functions, so that numba's on-disk cache (``cache=True``) finds them again in the
next process: the first run on a machine compiles for a few seconds, later ones load in ~0.2 s.
"""

import functools

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lstmviz.core.compiled import PACK_LANES

f32 = np.float32
_njit = functools.partial(numba.njit, nogil=True, error_model="numpy", fastmath={"contract"})

#: Vectors of 16 float32 per packed block of ``W_hᵀ``, whose width ``compiled`` owns.
_PACK_VECTORS = PACK_LANES // 16


@_njit(inline="always")
def tanh32(x0: float) -> float:
    """tanh to a few float32 ulp (max |error| 2.8e-7 over [-10, 10]), never outside
    [-1, 1]: the 13/6 rational form of Eigen's ``generic_fast_tanh_float``. It has no branch,
    so LLVM vectorises the loops that call it (libm's scalar ``tanhf`` would cost ~3 ns an
    element); NaN stays NaN."""
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
    r = min(max(x * p / q, f32(-1.0)), f32(1.0))  # the rational form reaches 1 + 2e-7 near 9
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


def _is_f32(arr, ndim):
    """The IR below assumes contiguous float32 arrays of ``ndim`` dimensions."""
    return (
        isinstance(arr, types.Array)
        and arr.dtype == types.float32
        and arr.ndim == ndim
        and arr.layout == "C"
    )


def _packed_products(builder, w_base, P, x_rows, sums):
    """IR for ``sums[r] += x_rows[r][k] · w_base[k]`` over ``k < P`` for each row ``r``:
    ``w_base`` points at one packed block (P rows of 64 lanes), ``x_rows`` at float rows,
    ``sums`` the 4 vectors of 16 lanes of each row's 64 sums (allocas, so registers). Each
    lane's sum is one ``fmuladd`` chain over ``k`` in order whatever the number of rows, so
    the result does not depend on how many rows share a pass."""
    i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), 16)
    fmuladd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fmuladd.v16f32"
    )
    splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), 16), [0] * 16)
    with cgutils.for_range(builder, P) as loop:
        k = loop.index
        row = builder.gep(w_base, [builder.mul(k, i64(PACK_LANES))])
        weights = []
        for v in range(_PACK_VECTORS):
            w = builder.load(_vector_at(builder, row, 16 * v))
            w.align = 4
            weights.append(w)
        for x_row, row_sums in zip(x_rows, sums, strict=True):
            x_k = builder.load(builder.gep(x_row, [k]))
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), x_k, ir.IntType(32)(0))
            x_vec = builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat_mask)
            for w, acc in zip(weights, row_sums, strict=True):
                builder.store(builder.call(fmuladd, [x_vec, w, builder.load(acc)]), acc)


def _vector_at(builder, base, offset):
    """A ``<16 x float>*`` at ``base + offset`` floats."""
    vec = ir.VectorType(ir.FloatType(), 16)
    return builder.bitcast(builder.gep(base, [ir.IntType(64)(offset)]), vec.as_pointer())


def _block_base(builder, W_arr, jb):
    """Pointer to the first float of packed block ``jb`` of a ``(NB, P, 64)`` array."""
    i64 = ir.IntType(64)
    P = builder.extract_value(W_arr.shape, 1)
    return builder.gep(W_arr.data, [builder.mul(jb, builder.mul(P, i64(PACK_LANES)))]), P


def _row_at(builder, arr, row, offset):
    """``&arr[row, offset]`` of a C-contiguous 2-D float array (its row stride in bytes)."""
    i8p = ir.IntType(8).as_pointer()
    stride = builder.extract_value(arr.strides, 0)
    start = builder.gep(builder.bitcast(arr.data, i8p), [builder.mul(row, stride)])
    return builder.gep(builder.bitcast(start, ir.FloatType().as_pointer()), [offset])


def _sum_registers(builder, count):
    """``count`` rows of ``_PACK_VECTORS`` vector allocas in the entry block (promoted to
    registers by LLVM)."""
    vec = ir.VectorType(ir.FloatType(), 16)
    return [[cgutils.alloca_once(builder, vec) for _ in range(_PACK_VECTORS)] for _ in range(count)]


@intrinsic
def _add_packed_block(typingctx, Wk, hp, z, jb):
    """``z[jb·64 : jb·64 + 64] += hp · Wk[jb]`` for ``Wk (NB, P, 64)``, the packed ``W_hᵀ``.

    One of the two kernels here written as LLVM IR: the 64 sums stay in four 16-lane vector
    registers for the whole pass over ``k`` and the weights are read as one sequential stream,
    so the matvec runs at the memory's read speed (measured at H = 1024: 241 µs a step,
    a plain sequential read of the 16 MiB 235 µs, OpenBLAS' sgemv 299 µs). numba cannot
    express register accumulators in Python: LLVM does not vectorise the scalar version.
    ``llvm.fmuladd`` is an FMA where the CPU has one; ``<16 x float>`` is split by LLVM into
    whatever vector width the CPU has (AVX-512, AVX2, SSE, NEON).
    """
    if not (_is_f32(Wk, 3) and _is_f32(hp, 1) and _is_f32(z, 1)):
        return None
    sig = types.void(Wk, hp, z, jb)

    def codegen(context, builder, signature, args):
        W_arr, h_arr, z_arr = (
            context.make_array(t)(context, builder, v)
            for t, v in zip(signature.args[:3], args[:3], strict=True)
        )
        w_base, P = _block_base(builder, W_arr, args[3])
        z_base = builder.gep(z_arr.data, [builder.mul(args[3], ir.IntType(64)(PACK_LANES))])
        (sums,) = _sum_registers(builder, 1)
        for v, acc in enumerate(sums):
            load = builder.load(_vector_at(builder, z_base, 16 * v))
            load.align = 4
            builder.store(load, acc)
        _packed_products(builder, w_base, P, [h_arr.data], [sums])
        for v, acc in enumerate(sums):
            store = builder.store(builder.load(acc), _vector_at(builder, z_base, 16 * v))
            store.align = 4
        return context.get_dummy_value()

    return sig, codegen


#: Rows of ``x`` one pass over a packed block of ``W_x`` multiplies (``_packed_block_rows``):
#: each weight vector loaded is used for this many rows. 4 rows are 16 vector sums, which fit
#: AVX-512's 32 registers; with AVX2's 16 LLVM keeps some on the stack and 4 is still the
#: fastest measured (T = 1000, H = 1024: 1 row 42 ms, 2 rows 25, 4 rows 18, 8 rows 18-23).
INPUT_ROWS = 4


@intrinsic
def _packed_block_rows(typingctx, Wk, xa, t, out, row, col, jb):
    """``out[row + r, col + jb·64 : col + jb·64 + 64] = xa[t + r] · Wk[jb]`` for ``r`` <
    ``INPUT_ROWS``: a block of the input terms ``x W_xᵀ`` for several steps in one pass over
    the packed weights. Each sum is the ``fmuladd`` chain of ``_add_packed_block`` from zero
    (bit for bit the same as zeroing the lanes and calling it one row at a time), but the
    weights are read once for ``INPUT_ROWS`` rows: the product is bound by the FMA units,
    not by loads (T = 1000, H = 1024, D = 256: 18 ms against 42 ms one row at a time)."""
    if not (_is_f32(Wk, 3) and _is_f32(xa, 2) and _is_f32(out, 2)):
        return None
    sig = types.void(Wk, xa, t, out, row, col, jb)

    def codegen(context, builder, signature, args):
        W_arr, x_arr, o_arr = (
            context.make_array(signature.args[i])(context, builder, args[i]) for i in (0, 1, 3)
        )
        t, row, col, jb = args[2], args[4], args[5], args[6]
        i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), 16)
        w_base, P = _block_base(builder, W_arr, jb)
        sums = _sum_registers(builder, INPUT_ROWS)
        for row_sums in sums:
            for acc in row_sums:
                builder.store(ir.Constant(vec, [0.0] * 16), acc)
        x_rows = [
            _row_at(builder, x_arr, builder.add(t, i64(r)), i64(0)) for r in range(INPUT_ROWS)
        ]
        _packed_products(builder, w_base, P, x_rows, sums)
        lane0 = builder.add(col, builder.mul(jb, i64(PACK_LANES)))
        for r, row_sums in enumerate(sums):
            base = _row_at(builder, o_arr, builder.add(row, i64(r)), lane0)
            for v, acc in enumerate(row_sums):
                store = builder.store(builder.load(acc), _vector_at(builder, base, 16 * v))
                store.align = 4
        return context.get_dummy_value()

    return sig, codegen


@_njit(inline="always")
def _add_packed(z, hp, Wk, back):
    """``z += hp · W_hᵀ`` from the packed ``Wk``, one 64-lane block at a time. ``back`` walks
    the blocks last to first: alternating it every step starts each step on the weights the
    previous one read last, still in L1/L2, not on those evicted longest ago (~4% at H = 1024)."""
    nb = Wk.shape[0]
    for bb in range(nb):
        _add_packed_block(Wk, hp, z, nb - 1 - bb if back else bb)


@_njit(inline="always")
def _project(hn, mo, WpT):
    """``hn = mo · W_pᵀ``, four rows of ``W_pᵀ`` per pass over ``hn`` (a quarter of its
    traffic); the projection is small next to ``W_h``, so it keeps the plain loop."""
    H = WpT.shape[0]
    for q in range(hn.shape[0]):
        hn[q] = 0.0
    k = 0
    while k + 4 <= H:
        a0, a1, a2, a3 = mo[k], mo[k + 1], mo[k + 2], mo[k + 3]
        w0, w1, w2, w3 = WpT[k], WpT[k + 1], WpT[k + 2], WpT[k + 3]
        for q in range(hn.shape[0]):
            hn[q] += a0 * w0[q] + a1 * w1[q] + a2 * w2[q] + a3 * w3[q]
        k += 4
    while k < H:
        a0 = mo[k]
        w0 = WpT[k]
        for q in range(hn.shape[0]):
            hn[q] += a0 * w0[q]
        k += 1


@_njit(inline="always")
def _checked_lanes(R, Hb, act_c, m, Wk, WpT):
    """Lanes of ``Wk``, after checking every buffer against the sequence and the weights:
    the IR reads without bounds checks, and so does numba by default. ``compute`` always
    passes consistent shapes; this guards the kernels' other callers (tests, scripts)."""
    T, H = act_c.shape
    P = Hb.shape[1]
    if R.shape[0] != T + 1 or R.shape[1] != 5 * H or Hb.shape[0] != T + 1:
        raise ValueError("buffers do not match the sequence")
    if WpT.shape[0] > 0:
        if WpT.shape[0] != H or WpT.shape[1] != P or m.shape[0] != T or m.shape[1] != H:
            raise ValueError("projection buffers do not match the buffers")
    elif P != H:
        raise ValueError("buffers do not match the sequence: h is H wide without a projection")
    lanes = Wk.shape[0] * PACK_LANES
    fits = Wk.shape[2] == PACK_LANES and Wk.shape[1] == P
    if not (fits and 4 * H <= lanes < 4 * H + PACK_LANES):
        raise ValueError("packed W_h does not match the buffers")
    return lanes


@_njit(inline="always")
def _step_rows(s, T, reverse):
    """Processing step ``s`` as ``(t, row, nxt)``: its time step, the gate row it reads (also
    where h_prev is) and the row it writes c and h to (``compute._Buffers``)."""
    t = T - 1 - s if reverse else s
    return t, (t + 1 if reverse else t), (t if reverse else t + 1)


@_njit(inline="always")
def _rest_of_step(R, Hb, act_c, m, WpT, cell_clip, proj_clip, t, row, nxt):
    """Everything after the matvec: activations, c, act(c), h (through the projection)."""
    H = act_c.shape[1]
    project = WpT.shape[0] > 0
    mo = m[t] if project else Hb[nxt]
    _cell(R[row, H:], R[row, :H], R[nxt, :H], act_c[t], mo, cell_clip)
    if project:
        hn = Hb[nxt]
        _project(hn, mo, WpT)
        if proj_clip == proj_clip:
            for q in range(hn.shape[0]):
                hn[q] = _clip(hn[q], proj_clip)


@_njit(cache=True)
def run_steps(R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse):
    """One direction's whole recurrence in place.

    ``Wk`` is ``compiled.pack(W_hᵀ)``: ``(ceil(4H / 64), P, 64)``, zero columns past 4H.
    Clips are NaN when absent, ``m`` and ``WpT`` empty without a projection. Row indices
    follow ``_Buffers``: step t reads gate row ``t + reverse`` (also where h_prev is) and
    writes c, h to row ``t + 1 - reverse``."""
    T, H = act_c.shape
    G = 4 * H
    lanes = _checked_lanes(R, Hb, act_c, m, Wk, WpT)
    scratch = np.zeros(lanes, f32)  # when padded: z's last block is partial
    for s in range(T):
        t, row, nxt = _step_rows(s, T, reverse)
        z = R[row, H:]
        if lanes != G:
            scratch[:G] = z
            _add_packed(scratch, Hb[row], Wk, s % 2 == 1)
            z[:] = scratch[:G]
        else:
            _add_packed(z, Hb[row], Wk, s % 2 == 1)
        _rest_of_step(R, Hb, act_c, m, WpT, cell_clip, proj_clip, t, row, nxt)


@_njit(inline="always")
def _checked_gru(G, Hb, Wk, bh, Wn):
    """Lanes of ``Wk`` after checking every buffer (the IR reads without bounds checks)."""
    T, H3 = G.shape
    H = H3 // 3
    if H3 != 3 * H or Hb.shape[0] != T + 1 or Hb.shape[1] != H:
        raise ValueError("GRU buffers do not match the sequence")
    cols = 3 * H if Wn.shape[0] == 0 else 2 * H
    lanes = Wk.shape[0] * PACK_LANES
    if Wk.shape[1] != H or Wk.shape[2] != PACK_LANES or not cols <= lanes < cols + PACK_LANES:
        raise ValueError("packed GRU W_h does not match the buffers")
    if bh.shape[0] != lanes:
        raise ValueError("GRU recurrent bias does not match the packed W_h")
    if Wn.shape[0] > 0:
        nl = Wn.shape[0] * PACK_LANES
        if Wn.shape[1] != H or Wn.shape[2] != PACK_LANES or not H <= nl < H + PACK_LANES:
            raise ValueError("packed GRU U_n does not match the buffers")
    return lanes


@_njit(cache=True)
def gru_steps(G, Hb, Wk, bh, Wn, reverse):
    """A GRU direction's whole recurrence in place (``compute_cells``'s buffers).

    ``G (T, 3H)`` holds ``x W_xᵀ`` plus the biases outside the reset, r and z columns halved,
    and receives r, z, n. ``Hb (T+1, H)``: h_prev of step t in row ``t + reverse``, its h
    written to row ``t + 1 - reverse``. ``Wk`` is ``compiled.pack`` of ``W_hᵀ`` (r, z columns
    halved): all three blocks when the reset comes after ``W_h`` (``Wn`` empty, ``bh`` holding
    ``b_hn`` in the n lanes), only r, z before it, ``Wn`` then being the packed ``U_nᵀ``.
    """
    T, H3 = G.shape
    H = H3 // 3
    lanes = _checked_gru(G, Hb, Wk, bh, Wn)
    after = Wn.shape[0] == 0
    zh = np.empty(lanes, f32)
    zn = np.empty(Wn.shape[0] * PACK_LANES, f32)
    rh = np.empty(H, f32)
    half = f32(0.5)
    for s in range(T):
        t, row, nxt = _step_rows(s, T, reverse)
        g = G[t]
        hp = Hb[row]
        hn = Hb[nxt]
        for j in range(lanes):
            zh[j] = bh[j]
        _add_packed(zh, hp, Wk, s % 2 == 1)
        for j in range(2 * H):
            g[j] = tanh32(g[j] + zh[j]) * half + half
        if after:
            for u in range(H):
                g[2 * H + u] = tanh32(g[2 * H + u] + g[u] * zh[2 * H + u])
        else:
            for u in range(H):
                rh[u] = g[u] * hp[u]
            for j in range(zn.shape[0]):
                zn[j] = 0.0
            _add_packed(zn, rh, Wn, s % 2 == 1)
            for u in range(H):
                g[2 * H + u] = tanh32(g[2 * H + u] + zn[u])
        for u in range(H):
            n = g[2 * H + u]
            hn[u] = n + g[H + u] * (hp[u] - n)
