"""Typed change events of a Workspace: one event per field, sent only on a real change.

napari's ``Dims`` habit: a view subscribes to the kinds it shows and owns one ``_update_*``
per kind, so a new view never needs a controller to push state into it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)


class Change(enum.Enum):
    """What changed in the workspace (one member per field)."""

    MODEL = "model"  # a new model (selection already reset, trace already None)
    SEQUENCE = "sequence"  # the x the trace is (or will be) computed on
    STATES = "states"  # typed initial states h0/c0
    TRACE = "trace"  # a finished run, or None while one is computing
    STEP = "step"
    SELECTION = "selection"  # layer, direction, unit or gate
    BREAKPOINTS = "breakpoints"
    HIT = "hit"  # why the last run-to-breakpoint stopped
    OPTIONS = "options"  # view options (stored order, product per unit, ...)
    BUSY = "busy"  # a job started, progressed, finished or was cancelled
    NOTE = "note"  # a one-line note for the user (export written, no breakpoint fires)
    ERROR = "error"  # a request failed (bad file, bad sequence); the old state stays


@dataclass(frozen=True)
class Event:
    """``change`` with the new and the previous value of that field."""

    change: Change
    value: object = None
    old: object = None


Listener = Callable[[Event], None]

K = TypeVar("K", bound=enum.Enum)
A = TypeVar("A")


class Subscribers(Generic[K, A]):
    """Listener lists per member of the enum ``K``; each listener takes one ``A``.

    Only the bookkeeping (the workspace and the explore session had the same copy): how the
    listeners are called stays with the owner, because the workspace queues an event caused
    while another is delivered and the explore session calls its listeners at once."""

    def __init__(self, kinds: type[K]) -> None:
        self._kind = kinds
        self._lists: dict[K, list[Callable[[A], None]]] = {k: [] for k in kinds}

    def subscribe(
        self, kinds: K | tuple[K, ...], listener: Callable[[A], None]
    ) -> Callable[[], None]:
        """Add ``listener`` for each of ``kinds``; returns the function that removes it."""
        chosen = (kinds,) if isinstance(kinds, self._kind) else tuple(kinds)
        for kind in chosen:
            self._lists[kind].append(listener)

        def unsubscribe() -> None:
            for kind in chosen:
                if listener in self._lists[kind]:
                    self._lists[kind].remove(listener)

        return unsubscribe

    def of(self, kind: K) -> tuple[Callable[[A], None], ...]:
        """The listeners of ``kind`` now, as a copy: one may (un)subscribe while called."""
        return tuple(self._lists[kind])


class Emitter:
    """Listeners per Change; ``subscribe`` returns the function that removes the listener."""

    def __init__(self) -> None:
        self._listeners: Subscribers[Change, Event] = Subscribers(Change)
        self._queue: list[Event] = []
        self._emitting = False

    def subscribe(
        self, changes: Change | tuple[Change, ...], listener: Listener
    ) -> Callable[[], None]:
        return self._listeners.subscribe(changes, listener)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to its listeners. One a listener causes (a view asks for the
        run when it hears MODEL, and a small run finishes at once) waits until every
        listener has heard the current one: all views hear events in the same order."""
        self._queue.append(event)
        if self._emitting:
            return
        self._emitting = True
        try:
            while self._queue:
                current = self._queue.pop(0)
                for listener in self._listeners.of(current.change):
                    listener(current)
        finally:
            self._emitting = False
            self._queue.clear()
