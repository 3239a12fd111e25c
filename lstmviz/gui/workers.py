"""Background work: the workspace's jobs run on a QThreadPool and report back only as signals.

``QtRunner`` is the workspace's runner in the window. A job whose rough cost is below
``inline_cost`` (a small model's run, a few milliseconds) runs at once on the GUI thread:
a thread hop would cost more than the work and would make every small change asynchronous.
Anything larger runs on the pool; its ``done`` and progress arrive on the GUI thread through
queued signals, so views are only ever touched from the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from lstmviz import io as lstm_io
from lstmviz.workspace.jobs import Job

logger = logging.getLogger(__name__)

#: About 5 ms of NumPy work: below this a job runs inline.
INLINE_COST = 2e7


class WorkerSignals(QObject):
    """``finished(result, error)``: exactly one of the two is None (silx-style result-or-error)."""

    finished = Signal(object, object)
    progressed = Signal(float)


def _emit(signal, *args: object) -> None:
    """Emit from a worker thread; after the window closed (its signal objects deleted) the
    result has no reader, and saying so is not an error."""
    with contextlib.suppress(RuntimeError):
        signal.emit(*args)


class JobRunnable(QRunnable):
    """Executes one ``Job`` off the GUI thread; ``signals`` carry its progress and result."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.signals = WorkerSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        result, error = (None, None) if self.job.cancelled else self.job.execute()
        _emit(self.signals.finished, result, error)


class QtRunner(QObject):
    """The workspace's runner in a window: one pool, cheap jobs inline, results as signals."""

    def __init__(self, parent: QObject | None = None, inline_cost: float = INLINE_COST) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # a load and a run may overlap; a third queues
        self.inline_cost = inline_cost
        self._running: set[JobRunnable] = set()

    def submit(self, job: Job) -> None:
        if job.cost < self.inline_cost:
            result, error = job.execute()
            job.done(result, error)
            return
        runnable = JobRunnable(job)
        gui_progress = job.on_progress
        # report() runs in the worker thread: hand the progress over as a queued signal
        job.on_progress = lambda j: _emit(runnable.signals.progressed, j.progress)
        if gui_progress is not None:
            runnable.signals.progressed.connect(lambda _p, j=job: gui_progress(j))
        runnable.signals.finished.connect(
            lambda result, error, r=runnable: self._on_runnable_finished(r, result, error)
        )
        self._running.add(runnable)
        self.pool.start(runnable)

    @property
    def idle(self) -> bool:
        return not self._running

    def _on_runnable_finished(self, runnable: JobRunnable, result: Any, error: Any) -> None:
        self._running.discard(runnable)
        runnable.job.done(result, error)

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)


def load(path: str, options: dict[str, Any]):
    """The one place the GUI calls the readers (sync and async paths share it)."""
    return lstm_io.load_model(path, **options)
