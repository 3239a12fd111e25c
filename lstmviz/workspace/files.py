"""Requests that read files, as jobs: a model, a sequence file, a dropped array file.

Part of ``Workspace`` (a mixin, so the workspace module stays one screenful of state): every
read runs on the runner (never inline on a GUI thread: the size and the disk are unknown),
and its result is used only if it is still the current request of its kind.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lstmviz import io as lstm_io
from lstmviz.core.model import LSTMModel
from lstmviz.core.sequence import load_sequence
from lstmviz.core.sequence_files import npy_header, open_regular
from lstmviz.io.errors import LoadError
from lstmviz.workspace.jobs import Job

#: Reading a file never runs inline on a GUI thread: its size and the disk are unknown.
FILE_COST = float("inf")


class FileRequests:
    """``open``, ``open_sequence``, ``open_dropped_array`` of a ``Workspace``."""

    def open(
        self,
        path: str | os.PathLike[str],
        *,
        wait: bool = False,
        on_error: Callable[[BaseException], bool] | None = None,
        **options: Any,
    ) -> Job:
        """Load ``path`` in a job; ``MODEL`` on success, ``ERROR`` (with the LoadError) else,
        unless ``on_error(error)`` returns True (e.g. it asked which of two LSTMs to open).
        ``wait=True`` loads in the calling thread whatever the runner."""
        path = str(path)

        def done(model: LSTMModel | None, error: BaseException | None) -> None:
            if error is not None and on_error is not None and on_error(error):
                return
            if error is not None or model is None:
                self.fail(str(error) or type(error).__name__, error, "load")
            else:
                self.set_model(model, path)

        label = f"loading {Path(path).name}"

        def work(job: Job) -> LSTMModel:
            return lstm_io.load_model(path, **options)

        return self.submit("load", label, work, done, cost=FILE_COST, wait=wait)

    def open_sequence(
        self,
        path: str | os.PathLike[str],
        on_done: Callable[[bool], None] | None = None,
        wait: bool = False,
    ) -> Job | None:
        """Read a sequence file in a job, then use it (``ERROR`` names the file when it fails)."""
        model = self.model
        if model is None:
            self.fail("Open a model before a sequence", kind="sequence")
            return None
        name = Path(path).name

        def done(x: np.ndarray | None, error: BaseException | None) -> None:
            ok = error is None and x is not None and self.model is model
            if error is not None:
                self.fail(str(error), error, "sequence")
            elif ok:
                ok = self.set_sequence(x, name)
            if on_done is not None:
                on_done(bool(ok))

        def work(j: Job) -> np.ndarray:  # a large text file reports progress, stops on cancel
            return load_sequence(path, model.input_size, model.embedding, progress=j.report)

        return self.submit("sequence", f"reading {name}", work, done, cost=FILE_COST, wait=wait)

    def open_dropped_array(
        self,
        path: str | os.PathLike[str],
        on_done: Callable[[str], None] | None = None,
        wait: bool = False,
        on_error: Callable[[BaseException], bool] | None = None,
    ) -> Job:
        """A dropped ``.npy``/``.npz`` holds weights or a sequence: read it once, in a job.
        Weights become the model; no LSTM but a fit for the open model: the sequence;
        neither: the reader's message (``on_done`` gets "model", "sequence" or "error").
        One array shaped as a sequence of the open model is read as one at once (with
        progress and Cancel), never as weights first (``holds_one_sequence``)."""
        path = str(path)
        model = self.model

        def work(job: Job) -> tuple[str, Any]:
            width, emb = (0, None) if model is None else (model.input_size, model.embedding)

            def read() -> np.ndarray:  # a large sequence reports progress, stops on Cancel
                return load_sequence(path, width, emb, progress=job.report)  # as a CSV does

            if model is not None and holds_one_sequence(path, width, emb is not None):
                return "sequence", read()  # one array holds no LSTM: its error is the sequence's
            try:
                return "model", lstm_io.load_model(path)
            except LoadError as exc:
                if model is None or type(exc).__name__ == "ChoiceRequired":
                    raise
                job.check()
                try:
                    return "sequence", read()
                except (OSError, ValueError):
                    raise exc from None

        def done(result: tuple[str, Any] | None, error: BaseException | None) -> None:
            outcome = "error"
            if error is not None and on_error is not None and on_error(error):
                outcome = "handled"
            elif error is not None or result is None:
                self.fail(str(error) or type(error).__name__, error, "load")
            elif result[0] == "model":
                self.set_model(result[1], path)
                outcome = "model"
            elif self.model is model and self.set_sequence(result[1], Path(path).name):
                outcome = "sequence"
            if on_done is not None:
                on_done(outcome)

        return self.submit("load", f"reading {Path(path).name}", work, done, FILE_COST, wait)


def holds_one_sequence(path: str, width: int, ids: bool = False) -> bool:
    """Whether ``path`` (``.npy``, or an ``.npz`` of one member) holds exactly one numeric
    array shaped as a sequence for ``width`` inputs, ``(T, width)`` or ``(1, T, width)`` (with
    ``ids``, also one column of token ids), by its header alone. One array holds no LSTM (a
    lone matrix can only be a TF1 kernel, and the weights reader asked which layout for a
    dropped ``(T, 16)`` sequence), and reading it as weights first read the whole file, its
    member inflated, without progress or Cancel (0.6 s for 10⁶ × 16 compressed values)."""
    try:
        with open_regular(Path(path)) as fh:
            if fh.read(6) == b"\x93NUMPY":
                fh.seek(0)
                shape, _, dtype = npy_header(fh)
            else:
                fh.seek(0)
                with zipfile.ZipFile(fh) as zf:
                    infos = zf.infolist()
                    if len(infos) != 1 or not infos[0].filename.endswith(".npy"):
                        return False
                    with zf.open(infos[0]) as member:
                        shape, _, dtype = npy_header(member)
    except Exception:  # anything unreadable is the readers' to name
        return False
    if dtype.kind not in "fiub" or any(n < 1 for n in shape):
        return False
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    columns = shape[1] if len(shape) == 2 else 1 if len(shape) == 1 else -1
    return columns == width or (ids and columns == 1)
