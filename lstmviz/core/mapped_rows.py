"""Rows of a memory-mapped sequence let go of once read.

A bounded trace reads its input ``x`` a block at a time, and a 10⁶-step ``.npy`` is mapped,
not loaded (``sequence_files``). Pages of a mapping that were read stay in the process's
resident set until the kernel needs the memory: the first pass over 10⁶ × 64 float32 steps
left all 244 MiB of it there, a quarter of the window's memory beside the checkpoints. The
pages are clean and backed by the file, so ``MADV_DONTNEED`` drops them at no risk; a later
read (a jump) faults its few rows back in from the page cache.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

import numpy as np


def release_rows(x: Any, a: int, b: int) -> None:
    """Drop rows [a, b) of ``x`` from the resident set when ``x`` is a read-only
    ``np.memmap`` (any slice of one); nothing for any other array or platform."""
    mm = getattr(x, "_mmap", None)
    if (
        not isinstance(x, np.memmap)
        or mm is None
        or getattr(x, "mode", None) != "r"  # private copies may hold changes: never dropped
        or x.ndim != 2
        or not hasattr(mm, "madvise")
        or not hasattr(mmap, "MADV_DONTNEED")
        or b <= a
    ):
        return
    with contextlib.suppress(OSError, ValueError, TypeError, BufferError):
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        first = x.ctypes.data - base + a * x.strides[0]
        last = x.ctypes.data - base + b * x.strides[0]
        page = mmap.PAGESIZE
        lo, hi = -(-first // page) * page, last // page * page  # whole pages inside the rows
        if 0 <= lo < hi <= len(mm):
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
