"""Shared helpers of the benchmarks: thread pinning, interleaved timing, the header line.

Import this before numpy: ``pin_threads()`` must set the BLAS/OpenMP thread variables before
any library reads them. Nothing here imports numpy or torch at module level for that reason.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "LSTMVIZ_NUM_THREADS",  # lstmviz's compiled loop shares a step only when asked to
)


def pin_threads(default: int = 1) -> int:
    """Fix the thread count of every numeric library from ``--threads N`` (default 1).

    Must run before numpy/torch are imported; torch also needs ``torch.set_num_threads``
    (``set_torch_threads``). One thread is the default because the reference machine has two
    cores shared with the GUI, and oneDNN/OpenBLAS threads only add sync cost at batch 1.
    """
    n = default
    argv = sys.argv
    for k, arg in enumerate(argv):
        if arg == "--threads" and k + 1 < len(argv):
            n = int(argv[k + 1])
        elif arg.startswith("--threads="):
            n = int(arg.split("=", 1)[1])
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run from a checkout
    return n


def set_torch_threads(n: int) -> None:
    """``torch.set_num_threads(n)`` (intra-op); inter-op threads are unused at batch 1."""
    import torch

    torch.set_num_threads(n)


def time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(
    fns: dict[str, Callable[[], object]], repeat: int, settle: float = 0.0
) -> dict[str, list[float]]:
    """Seconds per call of each function, alternating A B C A B C ... after one warm-up each.

    Alternating keeps a change in machine load (the reference machine is shared) from
    landing on one candidate only; callers report min (best case) and median. ``settle``
    seconds of sleep before each call let the previous call's thread pools go idle: OpenMP
    and OpenBLAS workers spin for up to ~0.1 s after a parallel call and would take a core
    from whichever candidate comes next.
    """
    for fn in fns.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
            out[name].append(time_once(fn))
    return out


def stats(seconds: list[float]) -> tuple[float, float]:
    """(min, median) in milliseconds."""
    return min(seconds) * 1e3, statistics.median(seconds) * 1e3


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(name: str, threads: int | None = None) -> str:
    """One line naming the run: date, commit, machine, thread count, library versions."""
    import numpy as np

    parts = [
        name,
        datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        f"commit {commit()}",
        f"{platform.processor() or platform.machine()} × {os.cpu_count()} cpus",
        f"load {os.getloadavg()[0]:.2f}",
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
    ]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__}")
    if threads is not None:
        parts.append(f"threads {threads}")
    return " | ".join(parts)
