"""Background work: loading a file runs in a QRunnable and reports back only through a signal."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from lstmviz import io as lstm_io

logger = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """``finished(result, error)``: exactly one of the two is None (silx-style result-or-error)."""

    finished = Signal(object, object)


class LoadWorker(QRunnable):
    """Runs ``load_model(path, **options)`` off the GUI thread.

    Any exception becomes the ``error`` half of ``finished``: a ``LoadError`` (or its
    ``ChoiceRequired`` subclass) for bad files, anything else for bugs, so the window never
    waits forever.
    """

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.options = dict(options)
        self.signals = WorkerSignals()

    def run(self) -> None:
        try:
            model = load(self.path, self.options)
        except Exception as exc:
            logger.debug("loading %s failed", self.path, exc_info=True)
            self.signals.finished.emit(None, exc)
            return
        self.signals.finished.emit(model, None)


def load(path: str, options: dict[str, Any]):
    """The one place the GUI calls the readers (sync and async paths share it)."""
    return lstm_io.load_model(path, **options)
