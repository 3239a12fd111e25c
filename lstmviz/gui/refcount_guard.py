"""Keep PySide6 6.12 from crashing Python 3.11 after a few thousand repaints.

PySide6 6.12's wrappers return ``None``/``True``/``False`` from C++ calls without taking a
reference, as if the singletons were immortal (true only from Python 3.12, PEP 683). On 3.11
each ``label.setText(…)`` or ``slider.setValue(…)`` then drops one reference to ``None``;
after some 10^5 calls (a few thousand debugger steps) the interpreter aborts with
"none_dealloc: deallocating None". Pinning a huge reference count makes the singletons
effectively immortal, which is exactly what 3.12 does. Nothing happens on 3.12+.
"""

from __future__ import annotations

import ctypes
import sys

_PIN = 1 << 40  # ~10^12 lost references before any effect: never reached in practice


def pin_singletons() -> bool:
    """Make None/True/False immortal on Python < 3.12; returns whether it did anything."""
    if sys.version_info >= (3, 12):
        return False
    for obj in (None, True, False):
        if sys.getrefcount(obj) < _PIN // 2:  # idempotent: pin once per process
            ctypes.c_ssize_t.from_address(id(obj)).value += _PIN
    return True
