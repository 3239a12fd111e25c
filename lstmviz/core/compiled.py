"""The sigmoid/tanh recurrence compiled by numba (a dependency of lstmviz where numba has wheels).

At batch 1 the NumPy loop in ``compute`` is bound by NumPy's per-call overhead (about nine
ufunc calls of 0.4-1 µs per step), which no arrangement of NumPy calls removes; a fused,
compiled step is the only way to match a framework's C++ kernel at small H. At large H every
engine is bound by how fast ``W_h`` streams from memory; BLAS' matvec loads and stores its
partial sums once per pass over the rows, while the compiled kernel keeps them in vector
registers over a packed copy of ``W_hᵀ`` (``pack``) and reads at the memory's speed. numba is
a well-kept compiler that runs plain Python loops at C speed (64 MB to download with llvmlite;
left out where it has no wheel, and then every run uses NumPy). It is imported only when a
direction is run with it, or by the desktop app's background thread once its window is shown
(``prepare_in_background``). Large directions share each step among a team of threads
(``threads``).

The kernel writes the same ``_Buffers`` layout as the NumPy fast path (gate rows
``[c_prev | g | f | i | o]`` pre-filled with ``x W_xᵀ + b``, sigmoid rows halved), so the two
engines are interchangeable and the trace does not know which one ran.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from lstmviz.core import threads as _threads

logger = logging.getLogger(__name__)

#: Shorter sequences run in a few milliseconds in NumPy; ``auto`` does not pay numba's import
#: (~0.25 s) and cache load (~0.2 s, or a one-time compile of a few seconds) for them.
MIN_COMPILED_STEPS = 256

#: Seconds after which preparing the kernels is taken for a compile and said so: loading
#: them from numba's cache takes ~0.5 s, a first compile 5-15 s.
COMPILE_NOTICE_S = 2.0

#: Lanes of one block of the packed ``W_hᵀ`` (``_numba_kernels._add_packed_block``): four
#: vectors of 16 float32, kept in registers while the block's rows stream past.
PACK_LANES = 64


#: Weights (bytes of the packed ``W_hᵀ``) from which a step is shared among threads
#: (``threads``): enough for two threads at ``threads.MIN_BYTES_PER_THREAD`` each. Below it
#: the per-step barrier costs more than the second core saves.
PARALLEL_MIN_BYTES = 2 * _threads.MIN_BYTES_PER_THREAD


class Kernels(NamedTuple):
    """``run_steps``: a direction's whole recurrence, in place in ``compute._Buffers``;
    ``run_steps_parallel``: the same with each step shared by a team of threads
    (``threads.lstm_steps``; it runs serially where one thread is all that pays);
    ``threads``: how many may be used (``LSTMVIZ_NUM_THREADS``, else every core)."""

    run_steps: Callable[..., None]
    run_steps_parallel: Callable[..., None] | None
    threads: Callable[[], int]
    #: A GRU direction's recurrence (``_numba_kernels.gru_steps``), None when it did not
    #: compile here (the GRU then runs in NumPy).
    gru_steps: Callable[..., None] | None = None
    #: ``gru_steps`` sharing each step among the team (as ``run_steps_parallel``).
    gru_steps_parallel: Callable[..., None] | None = None

    def parallel_for(self, Wk: np.ndarray) -> bool:
        """Whether one direction's steps share their matvec among threads: threads were asked
        for (``threads()``) and the matvec is large enough to pay."""
        return (
            self.run_steps_parallel is not None
            and self.threads() > 1
            and Wk.nbytes >= PARALLEL_MIN_BYTES
        )


def pack(WhT: np.ndarray) -> np.ndarray:
    """``W_hᵀ (P, 4H)`` as ``(ceil(4H / 64), P, 64)``, zero-padded past 4H: each block of 64
    gate columns is one contiguous run of memory, read front to back by the kernel, which
    keeps the block's 64 sums in registers (instead of loading and storing them in every
    pass over the rows, as a row-by-row matvec must)."""
    P, G = WhT.shape
    nb = -(-G // PACK_LANES)
    out = np.zeros((nb, P, PACK_LANES), WhT.dtype)
    full = G // PACK_LANES
    out[:full] = WhT[:, : full * PACK_LANES].reshape(P, full, PACK_LANES).transpose(1, 0, 2)
    if full < nb:
        out[full, :, : G - full * PACK_LANES] = WhT[:, full * PACK_LANES :]
    return out


def call_parallel(kernels: Kernels, kernel: Callable[..., None], *args: object) -> None:
    """Run a team kernel of ``kernels`` (it sizes its team itself, ``threads.team_size``)."""
    kernel(*args)


def threads() -> int:
    """Threads one direction's steps may share: ``LSTMVIZ_NUM_THREADS`` when set, else every
    core this process may use; read at each run. Safe by default because the threads are
    lstmviz's own Python threads (``threads``), not a C threading layer: a forked child and
    concurrent calls from several Python threads work as with one thread."""
    return _threads.requested()


_lock = threading.Lock()
_resolved: dict[str, object] = {}  # "kernels": Kernels | None, "why": a reason when None
_NOT_INSTALLED = "numba is not installed (no wheel for this platform or Python?): pip install numba"


def _after_fork_in_child() -> None:
    """A forked child: a fresh lock (the parent's may have been held by another thread). The
    kernels stay: the child's team starts its own threads (``threads._after_fork_in_child``)."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def recurrence() -> Kernels | None:
    """The compiled kernels, or None when numba is not installed or cannot compile here.
    Resolved once, under a lock: two threads' first calls must not compile (or launch
    numba's threads) at the same time."""
    with _lock:
        if "kernels" not in _resolved:
            _resolved["kernels"] = _resolve()
        return _resolved["kernels"]  # type: ignore[return-value]


def unavailable() -> str:
    """Why ``recurrence()`` is None, for ``engine="numba"``'s error."""
    return str(_resolved.get("why", _NOT_INSTALLED))


def ready() -> bool:
    """True once ``recurrence()`` has been resolved (compiled, loaded from numba's cache, or
    found missing): from then on ``engine="auto"`` never waits for a compile."""
    return "kernels" in _resolved


def reset() -> None:
    """Forget the resolved kernels (tests)."""
    with _lock:
        _resolved.clear()


def prepare_in_background() -> threading.Thread:
    """Resolve ``recurrence()`` in a daemon thread. The desktop app starts this after its
    first paint and runs the NumPy engine until ``ready()``, so the first-ever compile on a
    machine (5-15 s, then cached on disk) never freezes the window."""
    thread = threading.Thread(target=recurrence, name="lstmviz-compile", daemon=True)
    thread.start()
    return thread


def _resolve() -> Kernels | None:
    try:
        from lstmviz.core import _numba_kernels
    except ImportError:
        _resolved["why"] = _NOT_INSTALLED
        return None
    except Exception as exc:  # a broken numba install must not break the NumPy path
        logger.debug("numba failed to import", exc_info=True)
        _resolved["why"] = f"numba is installed but failed to import ({exc})"
        return None
    notice = threading.Timer(COMPILE_NOTICE_S, _say_compiling)
    notice.daemon = True
    notice.start()
    try:  # compile (or load from numba's cache) now, so a failure falls back here, not mid-run
        _warm_up(_numba_kernels.run_steps, projection=False)
        _warm_up(_numba_kernels.run_steps, projection=True)
    except Exception as exc:
        notice.cancel()
        logger.warning("numba could not compile lstmviz's recurrence, using NumPy: %s", exc)
        logger.debug("compile failure", exc_info=True)
        _resolved["why"] = f"numba is installed but could not compile here ({exc})"
        return None
    try:
        return _with_team(Kernels(_numba_kernels.run_steps, None, threads, gru_steps=_gru_kernel()))
    finally:
        notice.cancel()


def _with_team(kernels: Kernels) -> Kernels:
    """``kernels`` with the team kernels (``threads``), compiled now; ``kernels`` as they are
    (every step on one thread) if those cannot compile here."""
    from lstmviz.core import _numba_kernels

    try:
        from lstmviz.core import threads_kernels as team

        for projection in (False, True):
            _warm_up_team(team.lstm_direction_team, projection)
        gru_team = None
        if kernels.gru_steps is not None:
            for after in (True, False):
                _warm_up_gru_team(team.gru_direction_team, after)
            gru_team = _threads.gru_steps(
                kernels.gru_steps, team.gru_direction_team, team.input_terms_team
            )
    except Exception as exc:
        logger.warning("lstmviz's threaded recurrence did not compile, using one thread: %s", exc)
        logger.debug("team compile failure", exc_info=True)
        return kernels
    return kernels._replace(
        run_steps_parallel=_threads.lstm_steps(
            _numba_kernels.run_steps, team.lstm_direction_team, team.input_terms_team
        ),
        gru_steps_parallel=gru_team,
    )


def _gru_kernel() -> Callable[..., None] | None:
    """``gru_steps``, compiled (or loaded from the cache) now; None if it cannot compile
    here, when the GRU runs in NumPy and the LSTM kernels stay usable."""
    from lstmviz.core import _numba_kernels

    try:
        for after in (True, False):
            _warm_up_gru(_numba_kernels.gru_steps, after)
    except Exception as exc:
        logger.warning("numba could not compile lstmviz's GRU recurrence, using NumPy: %s", exc)
        return None
    return _numba_kernels.gru_steps


def _warm_up_gru(gru_steps: Callable[..., None], after: bool) -> None:
    """One step of a 1-unit GRU with the argument types ``compute_cells`` passes."""
    f32 = np.float32
    G, Hb = np.zeros((1, 3), f32), np.zeros((2, 1), f32)
    Wk = _readonly(np.zeros((1, 1, PACK_LANES), f32))
    Wn = _readonly(np.zeros((0 if after else 1, 1, PACK_LANES), f32))
    gru_steps(G, Hb, Wk, np.zeros(PACK_LANES, f32), Wn, False)


def _say_compiling() -> None:
    """A first run on this machine is compiling: say so rather than pause in silence."""
    logger.warning("lstmviz: compiling its numba kernels, once per machine (5-15 s)...")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _warm_up(run_steps: Callable[..., None], projection: bool) -> None:
    """One step of a 1-unit direction with exactly the argument types ``compute`` passes (the
    prepared weights are read-only, which numba compiles separately), so no later call
    compiles: buffers writable, ``Wk`` and ``W_pᵀ`` read-only."""
    f32 = np.float32
    R, Hb, act_c = np.zeros((2, 5), f32), np.zeros((2, 1), f32), np.zeros((1, 1), f32)
    Wk, nan = _readonly(np.zeros((1, 1, PACK_LANES), f32)), float("nan")
    m = np.zeros((1, 1), f32) if projection else np.zeros((0, 0), f32)
    WpT = _readonly(np.zeros((1, 1), f32) if projection else np.zeros((0, 0), f32))
    run_steps(R, Hb, act_c, m, Wk, WpT, nan, nan, False)


def kernels_for(engine: str, applies: bool, T: int, dtype: np.dtype) -> Kernels | None:
    """The compiled kernels when ``engine`` asks for them and they apply to a direction
    (``applies``: its activations and options are the compiled loop's, float32); None runs
    NumPy. ``engine="numba"`` without numba is an error, ``"auto"`` below
    ``MIN_COMPILED_STEPS`` steps is NumPy (compiling would cost more than it saves)."""
    if engine == "numpy" or dtype != np.float32 or not applies:
        return None
    if engine == "auto" and T < MIN_COMPILED_STEPS:
        return None
    kernels = recurrence()
    if kernels is None and engine == "numba":
        raise RuntimeError(f"engine='numba' is not available: {unavailable()}")
    return kernels


def _team_sync() -> tuple[np.ndarray, int, int]:
    """A team of one (its barriers never wait): the argument types of a real call."""
    return np.zeros(_threads._SYNC_LEN, np.int64), 0, 1


def _warm_up_team(lstm_direction_team: Callable[..., bool], projection: bool) -> None:
    """``_warm_up`` for ``threads_kernels.lstm_direction_team``: the same buffers plus the
    team's and the input terms' (H = 16: its 4H gate columns are one packed block)."""
    f32, H, nan = np.float32, 16, float("nan")
    R, Hb, act_c = np.zeros((2, 5 * H), f32), np.zeros((2, H), f32), np.zeros((1, H), f32)
    Wk = _readonly(np.zeros((1, H, PACK_LANES), f32))
    m = np.zeros((1, H), f32) if projection else np.zeros((0, 0), f32)
    WpT = _readonly(np.zeros((H, H), f32) if projection else np.zeros((0, 0), f32))
    scratch = np.zeros(PACK_LANES, f32)
    Wxk, xa = _readonly(np.zeros((1, 2, PACK_LANES), f32)), np.zeros((1, 2), f32)
    lstm_direction_team(Wxk, xa, R, Hb, act_c, m, Wk, WpT, nan, nan, False, scratch, *_team_sync())


def _warm_up_gru_team(gru_direction_team: Callable[..., bool], after: bool) -> None:
    f32 = np.float32
    H = PACK_LANES  # the team splits a GRU in chunks of 64 units
    G, Hb = np.zeros((1, 3 * H), f32), np.zeros((2, H), f32)
    lanes = (3 if after else 2) * H
    Wk = _readonly(np.zeros((lanes // PACK_LANES, H, PACK_LANES), f32))
    Wn = _readonly(np.zeros((0 if after else 1, H, PACK_LANES), f32))
    Wxk, xa = _readonly(np.zeros((3, 2, PACK_LANES), f32)), np.zeros((1, 2), f32)
    rh = np.zeros(H, f32)
    gru_direction_team(Wxk, xa, G, Hb, Wk, np.zeros(lanes, f32), Wn, False, rh, *_team_sync())
