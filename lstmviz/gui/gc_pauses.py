"""Shorter pauses of Python's cyclic garbage collector while the window is used.

A full (generation 2) collection walks every container object of the process; with Qt,
pyqtgraph and numba loaded that is ~170,000, and one such collection took 55 ms in the middle
of a jump to a step (10⁶ steps, H = 256: the jump's own work ~12 ms; at H = 1024 jumps of
~100 ms against a median of 17). ``gc.freeze()`` moves the objects alive now (modules,
classes, the window's widgets, a finished run's views) to a permanent generation that
collections skip, as long-running Python servers do after start-up; objects made later are
collected as before. It costs no collection of its own: garbage already unreachable when it
is called stays (a few objects), which is why it is not followed by ``gc.collect()`` here.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Freeze what is alive now out of later full collections (see the module docstring)."""
    gc.freeze()
