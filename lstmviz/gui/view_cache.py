"""Per-run results the views need (colour levels over the whole run), computed once.

Kept in the run's own ``__dict__`` (as ``cached_property`` does), so the run's worker can
compute them off the GUI thread (``prepare_trace``) and a view that switches to a layer finds
them ready instead of scanning ``(T, 4H)`` arrays on the GUI thread (1.2 s for H = 1024,
T = 2000); they go away with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T_ = TypeVar("T_")


def memo(owner: object, key: str, compute: Callable[[], T_]) -> T_:
    cache = owner.__dict__.setdefault("_view_cache", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]
