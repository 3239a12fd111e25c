"""How the main window opens files: models (with the "which LSTM?" dialog), sequence files
and drops, each read in a worker by the workspace; errors in one box, the model kept.

A mixin of ``MainWindow`` (it uses its ``workspace``, ``status_label``, ``tabs``, ...), kept
apart so the window module stays about placing views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox

from lstmviz.core.model import LSTMModel
from lstmviz.gui.choice_dialog import ask_choice
from lstmviz.io.errors import ChoiceRequired
from lstmviz.workspace import Change, Event

DEBUGGER_TAB = 1
SEQUENCE_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
#: Dropped files that hold either weights or a sequence (the workspace reads them once).
ARRAY_SUFFIXES = frozenset({".npy", ".npz"})


class FileActions:
    """``open_model``, ``open_sequence``, drops and the error box of ``MainWindow``."""

    def open_model(
        self, path: str | Path, *, wait: bool = False, **options: Any
    ) -> LSTMModel | None:
        """Load ``path``; see the module docstring for the async and ``wait=True`` paths."""
        path = str(path)
        # a window can ask which LSTM to open where a script gets the file's default
        options = {"ask_choices": self.interactive, **options}
        self.status_label.setText(f"Loading {Path(path).name}…")
        chosen: list[LSTMModel | None] = []
        before = self.workspace.model
        self.workspace.open(
            path, wait=wait, on_error=lambda e: self._on_choice(e, path, options, wait, chosen),
            **options,
        )  # fmt: skip
        if not wait:
            return None
        if chosen:
            return chosen[0]
        model = self.workspace.model
        return model if model is not before and self.workspace.model_path == path else None

    def _on_choice(
        self,
        error: BaseException,
        path: str,
        options: dict[str, Any],
        wait: bool,
        chosen: list[LSTMModel | None],
    ) -> bool:
        """A file holding several LSTMs (or layouts): ask which one and load again with it.
        Without a window to ask in, fail naming the option to pass. True when handled."""
        if not isinstance(error, ChoiceRequired):
            return False
        choice = ask_choice(error, self) if self.interactive else None
        if choice is not None:
            chosen.append(self.open_model(path, wait=wait, **{**options, error.option: choice}))
            return True
        if not self.interactive:
            example = error.choices[0] if error.choices else "…"
            self._show_error(
                f"{error} (one of: {', '.join(error.choices)}; e.g. "
                f"--option {error.option}={example})"
            )
            return True
        return False

    def _show_error(self, message: str) -> None:
        self.last_error = message
        shown = Path(self.model_path).name if self.model_path else "no model"
        self.status_label.setText(f"Error: {message}  (still showing {shown})")
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Cannot open file",
            message,
            QMessageBox.StandardButton.Ok,
            self,
        )
        self.error_box.open()  # window-modal, never blocks the event loop (or a test)
        self.load_failed.emit(message)

    def _sequence_refused(self, message: str) -> None:
        """A bad sequence: said next to the sequence editor when it is on screen (the run
        shown stays), else in the error box; the status bar says it either way."""
        self.last_error = message
        if self.tabs.currentIndex() == DEBUGGER_TAB and self._debug_panel is not None:
            self.debug_panel.sequence_editor.show_error(message)
            self.status_label.setText(f"Sequence not used: {message}")
        else:
            self._show_error(message)

    def open_sequence(self, path: str | Path, *, wait: bool = True) -> bool:
        """Read a sequence file for the loaded model and hand it to the debugger; returns
        whether it was used. Menus and drops pass ``wait=False``: read in a worker (returns
        whether reading started)."""
        outcome: list[bool] = []

        def done(ok: bool) -> None:
            outcome.append(ok)
            if ok:
                x = self.workspace.sequence
                self.status_label.setText(
                    f"{self.describe_model()} · sequence {Path(path).name} ({len(x)} steps)"
                )

        job = self.workspace.open_sequence(path, on_done=done, wait=wait)
        if job is None:
            return False
        return outcome[0] if wait else True

    # -- drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path = paths[0]
        suffix = Path(path).suffix.lower()
        if self.model is not None and suffix in SEQUENCE_SUFFIXES:
            self.open_sequence(path, wait=False)
            self._show_debugger_when(lambda: self.workspace.sequence_source == Path(path).name)
        elif self.model is not None and suffix in ARRAY_SUFFIXES:
            self._open_dropped_array(path)
        else:
            self.open_model(path)

    def _show_debugger_when(self, used: Any) -> None:
        """A dropped sequence is dropped to be stepped: open the debugger once it is used."""

        def on_sequence(_event: Event) -> None:
            unsubscribe()
            if used():
                self.tabs.setCurrentIndex(DEBUGGER_TAB)

        unsubscribe = self.workspace.subscribe((Change.SEQUENCE, Change.ERROR), on_sequence)

    def _open_dropped_array(self, path: str) -> None:
        """An ``.npy``/``.npz`` holds weights or a sequence; the workspace reads it once, in a
        worker (NumPy reads such files whole anyway). Weights become the model (a layout choice
        is asked as for any file); no LSTM in it but a fit for the open model (``x (T, D)``,
        token ids): the sequence; neither: the reader's message, the model kept."""

        def done(outcome: str) -> None:
            if outcome == "sequence":
                x = self.workspace.sequence
                self.status_label.setText(
                    f"{self.describe_model()} · sequence {Path(path).name} ({len(x)} steps)"
                )
                self.tabs.setCurrentIndex(DEBUGGER_TAB)

        self.status_label.setText(f"Reading {Path(path).name}…")
        job = self.workspace.open_dropped_array(
            path, on_done=done, on_error=lambda e: self._on_choice(e, path, {}, False, [])
        )

        def on_busy(_event: Event) -> None:  # Cancel in the job bar: "Reading…" must not stay
            if job.cancelled or job.kind not in self.workspace.jobs:
                unsubscribe()
            if job.cancelled and self.status_label.text() == f"Reading {Path(path).name}…":
                self.status_label.setText(f"Reading {Path(path).name} cancelled")

        unsubscribe = self.workspace.subscribe(Change.BUSY, on_busy)
