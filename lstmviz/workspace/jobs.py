"""Heavy work (load, run, diagnostics, exports, sequence files) as cancellable jobs.

The workspace never creates threads: it hands a ``Job`` to a ``Runner``. The Qt front end's
runner executes it on a thread pool and delivers ``finish`` on the GUI thread; ``InlineRunner``
(scripts, tests) runs it at once. A job that was cancelled, or superseded by a newer request of
the same kind, is dropped when it finishes: a stale result never reaches a view.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job's work function when its ``check()`` sees a cancel request."""


@dataclass
class Job:
    """One request: ``work(job)`` runs off the GUI thread; ``done(result, error)`` on it.

    ``work`` may call ``job.report(fraction)`` for progress and ``job.check()`` to stop early
    once cancelled. ``kind`` groups requests: a newer job of a kind cancels the older one.
    """

    kind: str
    label: str
    work: Callable[[Job], Any]
    done: Callable[[Any, BaseException | None], None]
    cost: float = 0.0  # rough flops; a runner may run cheap jobs inline
    progress: float = 0.0
    #: Seconds it should take (from the speed of the last such job), for an estimated
    #: progress where the work cannot report its own (``run`` is one NumPy/numba call).
    expected: float | None = None
    on_progress: Callable[[Job], None] | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(self.label)

    def report(self, fraction: float) -> None:
        self.progress = min(max(float(fraction), 0.0), 1.0)
        self.check()
        if self.on_progress is not None:
            self.on_progress(self)

    def execute(self) -> tuple[Any, BaseException | None]:
        """Run ``work``; any exception becomes the error half (the window never waits forever)."""
        try:
            return self.work(self), None
        except Exception as exc:
            logger.debug("%s failed", self.label, exc_info=True)
            return None, exc


class Runner(Protocol):
    def submit(self, job: Job) -> None: ...


class InlineRunner:
    """Runs every job at once in the caller's thread (scripts and Qt-free tests)."""

    def submit(self, job: Job) -> None:
        result, error = job.execute()
        job.done(result, error)
