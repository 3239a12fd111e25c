"""The sigmoid/tanh recurrence compiled by numba: the optional ``fast`` extra.

At batch 1 the NumPy loop in ``compute`` is bound by NumPy's per-call overhead (about nine
ufunc calls of 0.4-1 µs per step), which no arrangement of NumPy calls removes; a fused,
compiled step is the only way to match a framework's C++ kernel at small H. At large H every
engine is bound by how fast ``W_h`` streams from memory; BLAS' matvec loads and stores its
partial sums once per pass over the rows, while the compiled kernel keeps them in vector
registers over a packed copy of ``W_hᵀ`` (``pack``) and reads at the memory's speed. numba is
a well-kept compiler that runs plain Python loops at C speed; it is optional (≈ 50 MB with
llvmlite) and imported only when a direction is run with it, never on the GUI's start-up path.

The kernel writes the same ``_Buffers`` layout as the NumPy fast path (gate rows
``[c_prev | g | f | i | o]`` pre-filled with ``x W_xᵀ + b``, sigmoid rows halved), so the two
engines are interchangeable and the trace does not know which one ran.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

#: Shorter sequences run in a few milliseconds in NumPy; ``auto`` does not pay numba's import
#: (~0.25 s) and cache load (~0.2 s, or a one-time compile of a few seconds) for them.
MIN_COMPILED_STEPS = 256

#: Lanes of one block of the packed ``W_hᵀ`` (``_numba_kernels._add_packed_block``): four
#: vectors of 16 float32, kept in registers while the block's rows stream past.
PACK_LANES = 64


#: Weights (bytes of the packed ``W_hᵀ``) from which a step's matvec is shared among threads
#: when numba has more than one: below it the parallel region's ~2 µs a step costs more than
#: it saves (measured with two threads: H = 128 2.4 → 4.4 µs, H = 192 5.7 → 4.0 µs).
PARALLEL_MIN_BYTES = 1 << 19

#: numba threading layers under which two Python threads may run parallel kernels at once
#: (the GUI's background preparation and a script's own call); ``workqueue`` aborts then.
_THREADSAFE_LAYERS = ("omp", "tbb")


class Kernels(NamedTuple):
    """``run_steps``: a direction's whole recurrence, in place in ``compute._Buffers``;
    ``run_steps_parallel``: the same with each step's matvec split among numba's threads
    (None where numba's threading layer is not thread-safe); ``threads``: numba's count."""

    run_steps: Callable[..., None]
    run_steps_parallel: Callable[..., None] | None
    threads: Callable[[], int]
    #: ``x W_xᵀ + b`` on numba's threads, with the parallel recurrence (see its docstring).
    input_terms_parallel: Callable[..., None] | None = None

    def parallel_for(self, Wk: np.ndarray) -> bool:
        """Whether one direction's steps share their matvec among threads: there are threads
        (numba's count, ``NUMBA_NUM_THREADS``) and the matvec is large enough to pay."""
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


@functools.cache
def recurrence() -> Kernels | None:
    """The compiled kernels, or None when numba is not installed or cannot compile here."""
    try:
        from lstmviz.core import _numba_kernels
    except ImportError:
        return None
    except Exception:  # a broken numba install must not break the NumPy path
        logger.debug("numba failed to import", exc_info=True)
        return None
    import numba

    try:  # compile (or load from numba's cache) now, so a failure falls back here, not mid-run
        _warm_up(_numba_kernels.run_steps)
    except Exception:
        logger.warning("numba could not compile lstmviz's recurrence; using NumPy", exc_info=True)
        return None
    serial = Kernels(_numba_kernels.run_steps, None, numba.get_num_threads)
    try:
        _warm_up(_numba_kernels.run_steps_parallel)
        f32 = np.float32
        _numba_kernels.input_terms_parallel(
            np.zeros((1, 2, PACK_LANES), f32), np.zeros((1, 2), f32), np.zeros((2, 80), f32), 1
        )
    except Exception:  # no usable threading layer: every step runs on one thread
        logger.debug("numba's parallel recurrence is not available", exc_info=True)
        return serial
    if numba.threading_layer() not in _THREADSAFE_LAYERS:
        return serial
    return serial._replace(
        run_steps_parallel=_numba_kernels.run_steps_parallel,
        input_terms_parallel=_numba_kernels.input_terms_parallel,
    )


def ready() -> bool:
    """True once ``recurrence()`` has been resolved (compiled, loaded from numba's cache, or
    found missing): from then on ``engine="auto"`` never waits for a compile."""
    return recurrence.cache_info().currsize > 0


def prepare_in_background() -> threading.Thread:
    """Resolve ``recurrence()`` in a daemon thread. The desktop app starts this after its
    first paint and runs the NumPy engine until ``ready()``, so the first-ever compile on a
    machine (~4 s, then cached on disk) never freezes the window."""
    thread = threading.Thread(target=recurrence, name="lstmviz-compile", daemon=True)
    thread.start()
    return thread


def _warm_up(run_steps: Callable[..., None]) -> None:
    """One step of a 1-unit direction, with the argument types ``compute`` passes."""
    f32 = np.float32
    R, Hb, act_c = np.zeros((2, 5), f32), np.zeros((2, 1), f32), np.zeros((1, 1), f32)
    Wk, empty, nan = np.zeros((1, 1, PACK_LANES), f32), np.zeros((0, 0), f32), float("nan")
    run_steps(R, Hb, act_c, empty, Wk, empty, nan, nan, False)
