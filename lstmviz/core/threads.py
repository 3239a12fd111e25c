"""Several cores for one direction's recurrence: a small team of Python threads, each calling
a ``nogil`` numba kernel (``threads_kernels``) that runs the whole sequence, meeting at a
spinning barrier once per step.

Why this and not numba's ``parallel=True``: its threads come from a threading layer, and the
ones a plain install has are unsafe to use by default (GNU OpenMP kills a child made by
``fork()`` — multiprocessing's default on Linux before Python 3.14 — once its threads have
run; ``workqueue`` aborts when two Python threads run parallel code at once; TBB needs the
separate ``tbb`` wheel). The team is fork-safe by construction: between calls its workers are
parked in a Python queue, no C library owns a thread, and a forked child simply starts its
own workers when it first needs them (``_after_fork_in_child``). It is thread-safe: one call
uses the team at a time and a concurrent call runs serially instead of oversubscribing the
cores. And it needs no BLAS: the input terms are computed by the team too (OpenBLAS' workers
spin for tens of milliseconds after a GEMM and would take the cores the recurrence needs).

numba is imported only by the first team call (through ``compiled``), never by this module.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Bytes of a direction's packed recurrent weights each thread must get for a team to pay:
#: a step's matvec streams them, and the barrier costs ~0.2-1 µs a step (measured on 2 cores:
#: H = 128 (256 KiB) runs no faster on two threads, H = 256 (1 MiB) ~1.6× faster).
MIN_BYTES_PER_THREAD = 1 << 19

#: int64: counter, abort flag, "thread 0 alone" for even and odd steps, the input terms' next
#: block and counter (threads_kernels), each a cache line apart
_SYNC_LEN = 48
_ABORT = 8


def cores() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, and no more than
    a Linux container's CPU quota (``cpu.max``: 64 visible cores may come with a 2-CPU quota,
    where a team of 64 would wait for time slices at every step)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        n = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0)) or 1
    else:
        n = os.cpu_count() or 1
    return min(n, _cgroup_quota() or n)


def _cgroup_quota(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """CPUs of the cgroup v2 quota (``"200000 100000"`` → 2), None when unlimited or unknown."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


_local = threading.local()


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Team kernels called from this thread inside the block run on this thread alone, as
    when the team is taken: the same kernels (the packed input terms, not BLAS), so the same
    bits. For short recomputations on the window's thread: a jump recomputes ~16 steps
    (~8 ms), where a team's spinning barrier, with a core taken by another process, waits
    for a descheduled partner at every step (a jump then took 40 ms of barrier waits under
    load). ``requested()`` is unchanged, so the engine picks the same kernels."""
    before = getattr(_local, "alone", False)
    _local.alone = True
    try:
        yield
    finally:
        _local.alone = before


def requested() -> int:
    """``LSTMVIZ_NUM_THREADS`` when set to a positive integer, else every core (``cores()``).
    Read at each run, so a script may change it between runs."""
    value = os.environ.get("LSTMVIZ_NUM_THREADS", "").strip()
    try:
        return max(1, int(value)) if value else cores()
    except ValueError:
        return cores()


def team_size(weight_bytes: int, chunks: int) -> int:
    """Threads worth using for a step that streams ``weight_bytes`` of weights split in
    ``chunks`` independent parts: no more than asked for, than the parts, or than the weights
    keep busy (``MIN_BYTES_PER_THREAD`` each)."""
    return max(1, min(_team_cap(), chunks, weight_bytes // MIN_BYTES_PER_THREAD))


def _team_cap() -> int:
    return 1 if getattr(_local, "alone", False) else requested()


class _Team:
    """Parked worker threads and the lock that gives the team to one call at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.busy = threading.Lock()
        self.workers = 0
        self.native_ids: list[int] = []  # each worker's OS thread id, once it has started

    def grow(self, n: int) -> None:
        """Start workers up to ``n``; returns once each new one has said its OS thread id
        (the first call's workers are kept off the caller's CPU too, ``_keep_off_this_cpu``)."""
        while self.workers < n:
            started = threading.Event()
            threading.Thread(
                target=_work,
                args=(self.jobs, self.native_ids, started),
                name="lstmviz-team",
                daemon=True,
            ).start()
            started.wait(timeout=1.0)
            self.workers += 1


def _work(
    jobs: queue.SimpleQueue[Callable[[], None]], native_ids: list[int], started: threading.Event
) -> None:
    native_ids.append(threading.get_native_id())
    started.set()
    while True:
        jobs.get()()


def _sched_getcpu() -> Callable[[], int] | None:
    """libc's ``sched_getcpu`` (the CPU the calling thread runs on) where Python can set a
    thread's CPUs (Linux), else None."""
    if not (sys.platform.startswith("linux") and hasattr(os, "sched_setaffinity")):
        return None
    import ctypes  # here, not at import: only a team call needs it

    try:
        function = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    function.restype, function.argtypes = ctypes.c_int, []
    return function


_getcpu: dict[str, Callable[[], int] | None] = {}  # looked up by the first team call


def _current_cpu() -> int | None:
    if "function" not in _getcpu:
        _getcpu["function"] = _sched_getcpu()
    function = _getcpu["function"]
    cpu = function() if function is not None else -1
    return cpu if cpu >= 0 else None


def _keep_off_this_cpu(native_ids: list[int]) -> None:
    """Let the parked workers run anywhere this thread may run except on the CPU it runs on
    now, before they are woken (Linux; elsewhere nothing).

    Without this, a worker woken after the machine was idle was often placed on the caller's
    own CPU (the other CPU had gone idle; on a VM its virtual CPU was halted): the two
    threads then took turns on one core, each waiting ~50 µs at every barrier for the other's
    time slice, until the scheduler's balancing moved one of them milliseconds later, by
    which time the team had handed the run to one thread (``SLOW_LIMIT``). Measured on this
    2-CPU VM, H = 256, T = 1000 after 50-150 ms idle: about half of the runs, 12-15 ms
    instead of 8-10 (with the other half of the fix: a direction is one team call,
    ``threads_kernels.lstm_direction_team``). The set is renewed at every call, so a caller
    that moved does not find a worker kept off the CPU it moved to."""
    cpu = _current_cpu()
    if cpu is None or not native_ids:
        return
    try:
        allowed = os.sched_getaffinity(0)
        others = allowed - {cpu}
        for native_id in native_ids:
            os.sched_setaffinity(native_id, others or allowed)
    except OSError:  # the worker's thread id or a CPU set the OS refuses: leave the OS to it
        return


_team = {"team": _Team()}


def _after_fork_in_child() -> None:
    """The child has none of the parent's workers (fork copies only the forking thread), and
    the parent's lock may have been held: a fresh team, grown on first use."""
    _team["team"] = _Team()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_team(kernel: Callable[..., bool], args: tuple[Any, ...], n: int) -> bool:
    """Run ``kernel(*args, sync, tid, n)`` on ``n`` threads (this one is ``tid`` 0) and wait
    for all. False, having run nothing, when ``n < 2`` or another call holds the team: the
    caller then runs its serial kernel. A failure in any thread aborts the others at their
    next barrier and is raised here."""
    team = _team["team"]
    if n < 2 or not team.busy.acquire(blocking=False):
        return False
    try:
        team.grow(n - 1)
        _keep_off_this_cpu(team.native_ids)
        sync = np.zeros(_SYNC_LEN, np.int64)
        done = threading.Semaphore(0)
        errors: list[BaseException] = []

        def job(tid: int) -> Callable[[], None]:
            def call() -> None:
                try:
                    kernel(*args, sync, tid, n)
                except BaseException as exc:  # reported to the caller, never lost
                    errors.append(exc)
                    sync[_ABORT] = 1
                finally:
                    done.release()

            return call

        for tid in range(1, n):
            team.jobs.put(job(tid))
        try:
            finished = kernel(*args, sync, 0, n)
        except BaseException:
            sync[_ABORT] = 1
            raise
        finally:
            for _ in range(n - 1):
                done.acquire()
        if errors:
            raise errors[0]
        if not finished:
            raise RuntimeError("lstmviz's thread team was aborted")
        return True
    finally:
        team.busy.release()


def _packed_chunks(H: int, lanes: int) -> int:
    return H // lanes if H % lanes == 0 else -(-4 * H // lanes)


def _no_inputs() -> tuple[np.ndarray, np.ndarray]:
    """``(Wxk, xa)`` of no blocks: a direction team kernel's "input terms already computed"
    (read-only, as a prepared ``Wxk`` is: one compiled signature)."""
    Wxk = np.zeros((0, 1, 64), np.float32)
    Wxk.setflags(write=False)
    return Wxk, np.zeros((0, 1), np.float32)


def lstm_steps(
    serial: Callable[..., None],
    team_kernel: Callable[..., bool],
    input_kernel: Callable[..., bool],
) -> Callable[..., None]:
    """``run_steps``' signature on a team sized by ``team_size``; serial where one thread is
    all that pays or the team is taken. ``inputs=(Wxk, xa)`` (packed ``[W_xᵀ; b]`` and
    ``[x | 1]``, ``compute._team_inputs``) computes the input terms into ``R``'s gate rows
    first, in the same team call (``threads_kernels.lstm_direction_team``)."""

    def run_steps_parallel(  # type: ignore[no-untyped-def]
        R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse, inputs=None
    ) -> None:
        H, lanes = act_c.shape[1], Wk.shape[2]
        n = team_size(Wk.nbytes, _packed_chunks(H, lanes))
        scratch = np.zeros(Wk.shape[0] * lanes, np.float32)
        Wxk, xa = _no_inputs() if inputs is None else inputs
        args = (Wxk, xa, R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse, scratch)
        if not run_team(team_kernel, args, n):
            if inputs is not None:
                sync = np.zeros(_SYNC_LEN, np.int64)
                input_kernel(Wxk, xa, R, int(reverse), H, sync, 0, 1)
            serial(R, Hb, act_c, m, Wk, WpT, cell_clip, proj_clip, reverse)

    return run_steps_parallel


def gru_steps(
    serial: Callable[..., None],
    team_kernel: Callable[..., bool],
    input_kernel: Callable[..., bool],
) -> Callable[..., None]:
    """``gru_steps``' signature on a team (H a multiple of 64; serial otherwise);
    ``inputs=(Wxk, xa)`` computes the input terms into ``G`` first, in the same team call."""

    def gru_steps_parallel(G, Hb, Wk, bh, Wn, reverse, inputs=None) -> None:  # type: ignore[no-untyped-def]
        H, lanes = Hb.shape[1], Wk.shape[2]
        n = team_size(Wk.nbytes + Wn.nbytes, H // lanes) if H % lanes == 0 else 1
        rh = np.zeros(H, np.float32)
        Wxk, xa = _no_inputs() if inputs is None else inputs
        if not run_team(team_kernel, (Wxk, xa, G, Hb, Wk, bh, Wn, reverse, rh), n):
            if inputs is not None:
                input_kernel(Wxk, xa, G, 0, 0, np.zeros(_SYNC_LEN, np.int64), 0, 1)
            serial(G, Hb, Wk, bh, Wn, reverse)

    return gru_steps_parallel
