"""numba kernels run by a team of Python threads (``threads``): one call per thread, GIL off.

Each thread of the team calls the same kernel with its index ``tid`` of ``n`` and runs the
whole sequence; the threads meet at a spinning barrier once per step (twice where a step has
two dependent matvecs). A step's work is split by units where H is a multiple of the packed
block (64 gate columns): thread j owns the same units in every gate block, so it can finish
its units' cell update right after its share of the matvec, and one barrier per step
suffices. Elsewhere the matvec is split by blocks and the update by units, with a barrier
between. A direction is one call per thread (``lstm_direction_team``, ``gru_direction_team``):
first its input terms ``x W_xᵀ + b``, blocks claimed by whichever thread is free, then the
steps, each thread walking its weight chunks in alternating order so that a step starts on
what the last one left in its core's L2.

Why not numba's ``parallel=True``: it needs a threading layer, and none is safe by default
(GNU OpenMP aborts a forked child that starts threads again, ``workqueue`` aborts on
concurrent use, TBB is a separate 10 MB wheel), and it pays one parallel region a step
(~2 µs with OpenMP, more with TBB) where this barrier costs ~0.2 µs. These threads are plain
Python threads parked in a queue between calls: nothing runs in C threads when a process
forks, and every call has its own barrier.

Every element is computed by the same instructions as in ``_numba_kernels``' serial loop (the
same ``_add_packed_block`` per 64-lane block, the same per-unit cell arithmetic), so a team of
any size writes bit-identical buffers to the serial kernel's.
"""

import platform
import sys

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lstmviz.core._numba_kernels import (
    INPUT_ROWS,
    _add_packed_block,
    _checked_gru,
    _checked_lanes,
    _clip,
    _njit,
    _packed_block_rows,
    _step_rows,
    tanh32,
)
from lstmviz.core.compiled import PACK_LANES

f32 = np.float32

#: CPU clock ticks (the TSC on x86: ~50 µs) a waiting thread spins before yielding its core at
#: each further check: a partner that has not arrived by then was descheduled (a busy
#: machine), and spinning on would only keep it off a core. Elsewhere (no user-readable cycle
#: counter: ARM's traps) the wait is counted in pause hints, ``SPIN_LIMIT`` of them.
SPIN_TICKS = 1 << 17
SPIN_LIMIT = 20000

_MACHINE = platform.machine().lower()
_X86 = _MACHINE in ("x86_64", "amd64", "i686", "x86")
_ARM = _MACHINE in ("arm64", "aarch64")

#: Such slow barriers (and more than one step in ``SLOW_SHARE``) after which the team hands
#: the rest of the sequence to thread 0 alone: with more runnable threads than cores, every
#: barrier waits for a partner's next time slice and a team is many times slower than one
#: thread (measured at load 8 on 2 cores: H = 128 70 ms on two threads, 3-15 ms on one).
SLOW_LIMIT, SLOW_SHARE = 8, 16

#: Indices in ``sync``: the arrival counter, the abort flag, the "thread 0 alone" request
#: (two slots), and ``input_terms_team``'s next block to claim and arrival counter, each on its
#: own cache line.
_COUNT, _ABORT, _SOLO, _CLAIM, _INPUTS_DONE = 0, 8, 16, 32, 40


@intrinsic
def _atomic_add(typingctx, arr, idx, val):
    """``arr[idx] += val`` as one sequentially consistent atomic operation (int64 array)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.layout == "C"):
        return None
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(a.data, [args[1]])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    """``arr[idx]`` read with acquire ordering: writes made before a thread's ``_atomic_add``
    are visible to the thread that reads the counter it raised."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.layout == "C"):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(a.data, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _ticks(typingctx):
    """The x86 time-stamp counter (``llvm.readcyclecounter``), for timing a wait without a
    call; 0 on other CPUs, where it is not readable from user code (AArch64's PMCCNTR_EL0
    raises SIGILL)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        if not _X86:
            return ir.Constant(ir.IntType(64), 0)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return sig, codegen


@intrinsic
def _relax(typingctx, yield_core):
    """One wait in a spin loop: the CPU's pause hint (x86 ``pause``, ARM ``yield``), or, when
    ``yield_core``, the OS call that hands the core to another runnable thread
    (``sched_yield``; ``SwitchToThread`` on Windows)."""
    sig = types.void(types.boolean)
    x86, arm = _X86, _ARM
    name = "SwitchToThread" if sys.platform == "win32" else "sched_yield"

    def codegen(context, builder, signature, args):
        with builder.if_else(args[0]) as (then, otherwise):
            with then:
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.IntType(32), []), name
                )
                builder.call(fn, [])
            with otherwise:  # LLVM's own intrinsics: numba's JIT has no inline-asm parser
                if x86:
                    fn = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
                    )
                    builder.call(fn, [])
                elif arm:
                    fn = cgutils.get_or_insert_function(
                        builder.module,
                        ir.FunctionType(ir.VoidType(), [ir.IntType(32)]),
                        "llvm.aarch64.hint",
                    )
                    builder.call(fn, [ir.Constant(ir.IntType(32), 1)])  # YIELD
        return context.get_dummy_value()

    return sig, codegen


@_njit(inline="always")
def _barrier(sync, target, counter=_COUNT):
    """Arrive, then wait until ``target`` arrivals in all (``n`` per barrier, counted since the
    call began in ``sync[counter]``: it is never reset, so no thread can lap another). Returns
    -1 when the team was aborted (a thread failed; the caller returns at once), 1 when the
    wait was slow (it had to yield the core), else 0."""
    _atomic_add(sync, counter, 1)
    if _atomic_load(sync, counter) >= target:
        return 0
    start = _ticks()
    slow, spins = 0, 0
    while _atomic_load(sync, counter) < target:
        if _atomic_load(sync, _ABORT) != 0:
            return -1
        spins += 1
        if slow == 0 and (_ticks() - start > SPIN_TICKS or spins > SPIN_LIMIT):
            slow = 1
        _relax(slow == 1)
    return slow


@_njit(inline="always")
def _end_of_step(sync, target, s, slow):
    """The barrier that ends step ``s``, and the team's decision to go on or not: returns
    (status, slow) with status -1 aborted, 1 thread 0 goes on alone (the others return), 0 the
    team goes on. A thread whose waits were often slow asks for "alone" before it arrives, so
    every thread sees the request once the barrier lets it through, when all have finished
    step ``s``."""
    # One "alone" slot per step parity: a fast thread may already ask at the end of step s + 1
    # while a slow one is still reading the answer for step s; with one slot the slow one
    # took that later request for step s, returned, and left the fast one spinning at the
    # next barrier forever. Asking again in this slot needs the end of step s + 2, which no
    # thread reaches before every thread has passed step s + 1's barrier, after its read.
    slot = _SOLO + 8 * (s & 1)
    if slow >= SLOW_LIMIT and slow * SLOW_SHARE > s:
        _atomic_add(sync, slot, 1)
    waited = _barrier(sync, target)
    if waited < 0:
        return -1, slow
    if s > 0:  # the first wait includes waking the workers
        slow += waited
    return (1 if _atomic_load(sync, slot) != 0 else 0), slow


@_njit(inline="always")
def _share(count, tid, n):
    """``[lo, hi)`` of ``count`` items for thread ``tid`` of ``n``: contiguous, sizes differ by
    at most one."""
    return count * tid // n, count * (tid + 1) // n


@_njit(inline="always")
def _cell_units(z, c_prev, c, ac, mo, cell_clip, u0, u1):
    """``_numba_kernels._cell`` for units ``[u0, u1)``: the same arithmetic per element, each
    gate's loop over views counted from 0 (so LLVM vectorises it as it does the serial one)."""
    H = c.shape[0]
    half = f32(0.5)
    g = z[u0:u1]
    for j in range(u1 - u0):
        g[j] = tanh32(g[j])
    for k in range(1, 4):
        s = z[k * H + u0 : k * H + u1]
        for j in range(u1 - u0):
            s[j] = tanh32(s[j]) * half + half
    f, i = z[H + u0 : H + u1], z[2 * H + u0 : 2 * H + u1]
    o = z[3 * H + u0 : 3 * H + u1]
    cp, cn, a, mm = c_prev[u0:u1], c[u0:u1], ac[u0:u1], mo[u0:u1]
    use_cc = cell_clip == cell_clip
    for u in range(u1 - u0):
        v = f[u] * cp[u] + i[u] * g[u]
        cn[u] = _clip(v, cell_clip) if use_cc else v
    for u in range(u1 - u0):
        a[u] = tanh32(cn[u])
    for u in range(u1 - u0):
        mm[u] = o[u] * a[u]


@_njit(inline="always")
def _project_columns(hn, mo, WpT, q0, q1, proj_clip):
    """``_numba_kernels._project`` (then the clip) for output columns ``[q0, q1)``."""
    H = WpT.shape[0]
    out = hn[q0:q1]
    for q in range(q1 - q0):
        out[q] = 0.0
    k = 0
    while k + 4 <= H:
        a0, a1, a2, a3 = mo[k], mo[k + 1], mo[k + 2], mo[k + 3]
        w0, w1 = WpT[k, q0:q1], WpT[k + 1, q0:q1]
        w2, w3 = WpT[k + 2, q0:q1], WpT[k + 3, q0:q1]
        for q in range(q1 - q0):
            out[q] += a0 * w0[q] + a1 * w1[q] + a2 * w2[q] + a3 * w3[q]
        k += 4
    while k < H:
        a0 = mo[k]
        w0 = WpT[k, q0:q1]
        for q in range(q1 - q0):
            out[q] += a0 * w0[q]
        k += 1
    if proj_clip == proj_clip:
        for q in range(q1 - q0):
            out[q] = _clip(out[q], proj_clip)


@_njit(inline="always")
def _add_chunks(Wk, hp, z, gates, nu, c0, c1, back):
    """``z += hp · Wk`` over this thread's 64-unit chunks ``[c0, c1)`` of each of ``gates``
    gate blocks (``nu`` chunks each). ``back`` walks them last to first: alternating it every
    step starts a step on the weights the previous step read last, still in this core's L2
    (measured H = 1024, two threads with 8 MiB each: 298 µs a step one way, 240 alternating).
    Each block's sums are the same whatever the order."""
    for kk in range(gates):
        k = gates - 1 - kk if back else kk
        for jj in range(c1 - c0):
            _add_packed_block(Wk, hp, z, k * nu + (c1 - 1 - jj if back else c0 + jj))


@_njit(cache=True)
def lstm_team(R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse, scratch, sync, tid, n):
    """``_numba_kernels.run_steps`` as thread ``tid`` of a team of ``n``: its share of every
    step, barriers between. ``scratch`` (lanes,) is shared by the team (zeroed by the caller),
    used only when 4H is not a multiple of 64. Returns False if the team was aborted."""
    T, H = act_c.shape
    G = 4 * H
    lanes = _checked_lanes(R, Hb, act_c, m, Wk, WpT)
    if not (0 <= tid < n) or scratch.shape[0] != lanes or sync.shape[0] <= _SOLO + 8:
        raise ValueError("team arguments do not match the buffers")
    project = WpT.shape[0] > 0
    aligned = H % PACK_LANES == 0
    nu, nb, P = H // PACK_LANES, Wk.shape[0], Hb.shape[1]
    c0, c1 = _share(nu, tid, n)  # aligned: 64-unit chunks, the same in each gate block
    b0, b1 = _share(nb, tid, n)  # otherwise: blocks of the matvec ...
    u0, u1 = (c0 * PACK_LANES, c1 * PACK_LANES) if aligned else _share(H, tid, n)  # ... units
    q0, q1 = _share(P, tid, n)
    met, slow, alone = 0, 0, n == 1
    for s in range(T):
        t, row, nxt = _step_rows(s, T, reverse)
        z = R[row, H:]
        hp = Hb[row]
        back = s % 2 == 1
        if aligned:
            _add_chunks(Wk, hp, z, 4, nu, c0, c1, back)
        else:
            for jj in range(b1 - b0):
                jb = b1 - 1 - jj if back else b0 + jj
                for j in range(jb * PACK_LANES, min(jb * PACK_LANES + PACK_LANES, G)):
                    scratch[j] = z[j]
                _add_packed_block(Wk, hp, scratch, jb)
                for j in range(jb * PACK_LANES, min(jb * PACK_LANES + PACK_LANES, G)):
                    z[j] = scratch[j]
            if not alone:
                met += n
                if _barrier(sync, met) < 0:
                    return False
        mo = m[t] if project else Hb[nxt]
        _cell_units(z, R[row, :H], R[nxt, :H], act_c[t], mo, cell_clip, u0, u1)
        if project:
            if not alone:
                met += n
                if _barrier(sync, met) < 0:
                    return False
            _project_columns(Hb[nxt], mo, WpT, q0, q1, proj_clip)
        if not alone:
            met += n
            status, slow = _end_of_step(sync, met, s, slow)
            if status < 0:
                return False
            if status == 1:
                if tid != 0:
                    return True
                alone = True  # thread 0 takes every unit, block and column from here on
                c0, c1, b0, b1, u0, u1, q0, q1 = 0, nu, 0, nb, 0, H, 0, P
    return True


@_njit(cache=True)
def gru_team(G, Hb, Wk, bh, Wn, reverse, rh, sync, tid, n):
    """``_numba_kernels.gru_steps`` as thread ``tid`` of ``n`` (H a multiple of 64: each
    thread owns the same 64-unit chunks of r, z and n). The reset-before candidate's ``U_n``
    reads every unit's ``r ⊙ h``: the team writes it into the shared ``rh (H,)`` and meets
    once more before the product. Returns False if the team was aborted."""
    T, H3 = G.shape
    H = H3 // 3
    lanes = _checked_gru(G, Hb, Wk, bh, Wn)
    if H % PACK_LANES or not (0 <= tid < n) or sync.shape[0] <= _SOLO + 8:
        raise ValueError("team arguments do not match the buffers")
    if rh.shape[0] != H:
        raise ValueError("team arguments do not match the buffers")
    after = Wn.shape[0] == 0
    nu = H // PACK_LANES
    c0, c1 = _share(nu, tid, n)
    u0, u1 = c0 * PACK_LANES, c1 * PACK_LANES
    zh = np.empty(lanes, f32)  # only this thread's lanes are used
    zn = np.empty(H, f32)
    half = f32(0.5)
    met, slow, alone = 0, 0, n == 1
    for s in range(T):
        t, row, nxt = _step_rows(s, T, reverse)
        g = G[t]
        hp = Hb[row]
        hn = Hb[nxt]
        back = s % 2 == 1
        for k in range(3 if after else 2):
            for j in range(k * H + u0, k * H + u1):
                zh[j] = bh[j]
        _add_chunks(Wk, hp, zh, 3 if after else 2, nu, c0, c1, back)
        for k in range(2):
            gk, zk = g[k * H + u0 : k * H + u1], zh[k * H + u0 : k * H + u1]
            for j in range(u1 - u0):
                gk[j] = tanh32(gk[j] + zk[j]) * half + half
        gn = g[2 * H + u0 : 2 * H + u1]
        if after:
            r, zr = g[u0:u1], zh[2 * H + u0 : 2 * H + u1]
            for u in range(u1 - u0):
                gn[u] = tanh32(gn[u] + r[u] * zr[u])
        else:
            for u in range(u0, u1):
                rh[u] = g[u] * hp[u]
            if not alone:
                met += n
                if _barrier(sync, met) < 0:
                    return False
            for j in range(u0, u1):
                zn[j] = 0.0
            _add_chunks(Wn, rh, zn, 1, nu, c0, c1, back)
            for u in range(u1 - u0):
                gn[u] = tanh32(gn[u] + zn[u0 + u])
        zg, hpu, hnu = g[H + u0 : H + u1], hp[u0:u1], hn[u0:u1]
        for u in range(u1 - u0):
            nv = gn[u]
            hnu[u] = nv + zg[u] * (hpu[u] - nv)
        if not alone:  # also: nobody writes rh for the next step while another reads it
            met += n
            status, slow = _end_of_step(sync, met, s, slow)
            if status < 0:
                return False
            if status == 1:
                if tid != 0:
                    return True
                alone = True
                c0, c1, u0, u1 = 0, nu, 0, H
    return True


@_njit(cache=True)
def input_terms_team(Wxk, xa, out, first, col0, sync, tid, n):
    """``out[first + t, col0 + j] = xa[t] · Wxk[:, j]`` for every t, the team's threads taking
    64-column blocks in turn from a shared counter, ``INPUT_ROWS`` steps per pass over a block;
    then a barrier, so that a recurrence run next by the same threads finds every block
    written. The input GEMM done on the team's threads, not BLAS', whose
    workers spin for tens of milliseconds after a call and would take the cores the recurrence
    needs next. Blocks go to whichever thread is free, not in fixed shares: the calling thread
    starts at once, a woken worker ~0.1-0.5 ms later (its core may have been idle), so the
    caller does more of them and the worker's wake-up is hidden behind useful work. Which
    thread computes a block does not change its bits. Its own counters in ``sync``: a team
    kernel may call it first with the same ``sync`` (``lstm_direction_team``). Returns False if
    the team was aborted."""
    T = xa.shape[0]
    nb = Wxk.shape[0]
    cols = nb * PACK_LANES
    fits = Wxk.shape[1] == xa.shape[1] and Wxk.shape[2] == PACK_LANES
    if not fits or first < 0 or col0 < 0 or out.shape[0] < first + T:
        raise ValueError("packed W_x does not match the buffers")
    if out.shape[1] < col0 + cols or not (0 <= tid < n) or sync.shape[0] <= _INPUTS_DONE:
        raise ValueError("packed W_x does not match the buffers")
    rows = T - T % INPUT_ROWS
    jb = _atomic_add(sync, _CLAIM, 1)
    while jb < nb:
        for t in range(0, rows, INPUT_ROWS):
            _packed_block_rows(Wxk, xa, t, out, first + t, col0, jb)
        for t in range(rows, T):  # the last few rows one at a time: the same sums
            z = out[first + t, col0:]
            for j in range(jb * PACK_LANES, (jb + 1) * PACK_LANES):
                z[j] = 0.0
            _add_packed_block(Wxk, xa[t], z, jb)
        jb = _atomic_add(sync, _CLAIM, 1)
    return n == 1 or _barrier(sync, n, _INPUTS_DONE) >= 0


@_njit(cache=True)
def lstm_direction_team(
    Wxk, xa, R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse, scratch, sync, tid, n
):
    """A direction on the team in one call per thread: ``input_terms_team`` into the gate rows
    of ``R`` (when ``Wxk`` has blocks; else they are already there), then ``lstm_team``.

    One call, not two: a thread returning to Python between them waits for the GIL when the
    other is there too (they leave the input terms' barrier together), sleeps, and is woken by
    the scheduler wherever the waker runs: measured on 2 CPUs after the machine was idle,
    half of the runs put both threads on one core, where each barrier waits for the other's
    time slice, and the team gave the run to one thread (``SLOW_LIMIT``)."""
    H = act_c.shape[1]
    if Wxk.shape[0] > 0 and not input_terms_team(Wxk, xa, R, 1 if reverse else 0, H, sync, tid, n):
        return False
    return lstm_team(R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse, scratch, sync, tid, n)


@_njit(cache=True)
def gru_direction_team(Wxk, xa, G, Hb, Wk, bh, Wn, reverse, rh, sync, tid, n):
    """``input_terms_team`` into ``G (T, 3H)`` (when ``Wxk`` has blocks), then ``gru_team``:
    one call per thread, as ``lstm_direction_team``."""
    if Wxk.shape[0] > 0 and not input_terms_team(Wxk, xa, G, 0, 0, sync, tid, n):
        return False
    return gru_team(G, Hb, Wk, bh, Wn, reverse, rh, sync, tid, n)
