"""Where the user says what the LSTM reads: typed/pasted rows, a file, a generator, token ids.

Also the initial states h0/c0 per layer and direction: the ones the file stores (ONNX
``initial_h``/``initial_c``) unless typed, else zeros. Every input is
validated against the first layer's width before anything is emitted; a bad one shows a red
message next to the editor and the previous sequence stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core.model import LSTMDirection, LSTMModel
from lstmviz.core.sequence import (
    SequenceKind,
    embed_tokens,
    format_sequence,
    load_sequence,
    parse_sequence,
    parse_state,
    parse_token_ids,
)
from lstmviz.gui.sequence_generate import MAX_GENERATED_STEPS, Generation, limit_text
from lstmviz.workspace.events import Change
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.states import (
    StateMap,
    has_stored_states,
    initial_states,
    state_size,
    stored_state,
)

if TYPE_CHECKING:
    from lstmviz.workspace import Workspace

__all__ = ["SequenceEditor", "StateMap", "has_stored_states", "initial_states"]

_MAX_TEXT_VALUES = 20_000  # longer sequences are summarised instead of filling the editor


class SequenceEditor(QWidget):
    """Emits ``sequence_chosen(array, source)`` with a valid ``(T, D)`` array only."""

    sequence_chosen = Signal(object, str)
    states_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._width = 1
        self._model: LSTMModel | None = None
        self._states: StateMap = {}
        self.last_error = ""
        #: Reads a chosen file in a worker and uses it (the debug panel sets it: a 1 GB CSV
        #: takes ~12 s); None: ``load_file`` here, on this thread.
        self.open_file: Callable[[str], None] | None = None
        #: Runs a long generation as the window's job (``attach``); None: here, at once.
        self._workspace: Workspace | None = None
        self._generating: Job | None = None  # the generation the message says is running
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)

        # Type / paste
        page = QWidget()
        v = QVBoxLayout(page)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        v.addWidget(self.hint)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("0.1, 0.2, 0.3\n0.0, 1.0, -0.5\n…")
        v.addWidget(self.text)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Run the model on these rows (Ctrl+Return)")
        self.apply_button.clicked.connect(self.apply_text)
        self.load_button = QPushButton("Load file…")
        self.load_button.setToolTip("CSV, TXT, NPY or NPZ: one row per timestep")
        self.load_button.clicked.connect(self._on_load_clicked)
        row.addWidget(self.apply_button)
        row.addWidget(self.load_button)
        v.addLayout(row)
        self.tabs.addTab(page, "Type")

        # Generate
        page = QWidget()
        form = QFormLayout(page)
        self.kind = QComboBox()
        self.kind.addItems([k.value for k in SequenceKind])
        self.length = QSpinBox()
        # any length can be typed: one past the maximum is refused in words, never clamped
        # by the box (a typed 1000000 became 100000 without a word); the hint says the limit
        self.length.setRange(1, 2**31 - 1)
        self.length.setGroupSeparatorShown(True)
        self.length.setValue(50)
        self.length_hint = QLabel()
        self.length_hint.setWordWrap(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.period = QDoubleSpinBox()
        self.period.setRange(1.0, float(MAX_GENERATED_STEPS))
        self.period.setValue(16.0)
        form.addRow("kind", self.kind)
        form.addRow("length T", self.length)
        form.addRow("", self.length_hint)
        form.addRow("seed", self.seed)
        form.addRow("sine period", self.period)
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.generate)
        form.addRow(self.generate_button)
        self.tabs.addTab(page, "Generate")

        # Tokens
        page = QWidget()
        v = QVBoxLayout(page)
        self.token_hint = QLabel()
        self.token_hint.setWordWrap(True)
        v.addWidget(self.token_hint)
        self.tokens = QLineEdit()
        self.tokens.setPlaceholderText("e.g. 3 17 42 5")
        self.tokens.returnPressed.connect(self.embed)
        v.addWidget(self.tokens)
        self.embed_button = QPushButton("Embed and run")
        self.embed_button.clicked.connect(self.embed)
        v.addWidget(self.embed_button)
        v.addStretch(1)
        self.tokens_index = self.tabs.addTab(page, "Tokens")

        # Initial states
        page = QWidget()
        form = QFormLayout(page)
        self.state_target = QComboBox()
        self.state_target.currentIndexChanged.connect(self._on_state_target_changed)
        self.h0 = QLineEdit()
        self.c0 = QLineEdit()
        self.states_hint = QLabel()
        self.states_hint.setWordWrap(True)
        form.addRow(self.states_hint)
        form.addRow("layer / direction", self.state_target)
        form.addRow("h0", self.h0)
        form.addRow("c0", self.c0)
        self._state_form = form
        row = QHBoxLayout()
        self.states_button = QPushButton("Apply states")
        self.states_button.clicked.connect(self.apply_states)
        self.reset_states_button = QPushButton("All zeros")
        self.reset_states_button.clicked.connect(self.reset_states)
        self.zero_states_button = QPushButton("All zeros")  # shown when the file stores states
        self.zero_states_button.clicked.connect(self.zero_states)
        row.addWidget(self.states_button)
        row.addWidget(self.reset_states_button)
        row.addWidget(self.zero_states_button)
        form.addRow(row)
        self.states_index = self.tabs.addTab(page, "h0 / c0")

        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self._show_length_limit()

    def attach(self, workspace: Workspace) -> None:
        """Generate long sequences as ``workspace``'s jobs (progress and Cancel in the
        window's job bar, like Load file…); without it every sequence is made at once."""
        self._workspace = workspace
        workspace.subscribe(Change.BUSY, self._on_jobs_changed)

    def _show_length_limit(self) -> None:
        text = limit_text(self._width)
        self.length_hint.setText(text)
        self.length.setToolTip(f"Steps to generate: {text}")

    # -- model -----------------------------------------------------------------------------------
    def set_model(self, model: LSTMModel) -> None:
        self._model = model
        self._width = model.input_size
        self._states = {}
        self.hint.setText(
            f"One timestep per row, {self._width} number{'s' if self._width != 1 else ''} per row "
            "(commas, spaces or tabs)."
        )
        emb = model.embedding
        on_tokens = self.tabs.currentIndex() == self.tokens_index
        self.tabs.setTabEnabled(self.tokens_index, emb is not None)
        if emb is not None:  # such a model reads token ids: offer that first
            self.tabs.setCurrentIndex(self.tokens_index)
        elif on_tokens:
            self.tabs.setCurrentIndex(0)  # not the next enabled tab Qt picks, h0 / c0
        self.token_hint.setText(
            f"Token ids 0..{emb.shape[0] - 1}, looked up in the model's embedding "
            f"({emb.shape[0]} × {emb.shape[1]})."
            if emb is not None
            else "This model has no embedding matrix."
        )
        # the states the model's cells carry: "h0 / c0" with an LSTM layer, else "h0"
        carried = dict.fromkeys(s for layer in model.layers for s in layer.cell.state_names)
        self.tabs.setTabText(self.states_index, " / ".join(f"{s}0" for s in carried))
        self.state_target.blockSignals(True)
        self.state_target.clear()
        for k, layer in enumerate(model.layers):
            for d, w in enumerate(layer.directions):
                side = "backward" if d else "forward"
                kind = f"{w.cell.name}, " if len({la.cell for la in model.layers}) > 1 else ""
                self.state_target.addItem(f"layer {k} {side} ({kind}H={w.hidden_size})", (k, d))
        self.state_target.blockSignals(False)
        stored = has_stored_states(model)
        self.states_hint.setText(
            "Empty fields start from the states stored in the file (shown greyed), where it "
            "stores them; elsewhere from zeros."
            if stored
            else "Empty fields start from zeros."
        )
        self.reset_states_button.setText("File's states" if stored else "All zeros")
        self.reset_states_button.setToolTip(
            "Forget the typed states: start from the file's" if stored else ""
        )
        self.zero_states_button.setVisible(stored)
        self._on_state_target_changed(0)
        self._show_length_limit()
        self.clear_message()

    def show_sequence(self, x: np.ndarray) -> None:
        """Put the current sequence in the text box (summarised when very long)."""
        # 2,000 × 256 values took 0.1 s to format and fill a text box nobody reads whole
        rows = max(1, _MAX_TEXT_VALUES // max(x.shape[1], 1))
        if x.shape[0] <= rows:
            self.text.setPlainText(format_sequence(x, 6))
        else:
            self.text.setPlainText(format_sequence(x[:rows], 6) + "\n# … (truncated)")

    # -- messages --------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.last_error = message
        self.message.setStyleSheet("color: #b00020; font-weight: bold;")
        self.message.setText(f"⚠ {message} — the previous sequence is kept.")

    def show_status(self, message: str) -> None:
        self.message.setStyleSheet("color: #2e7d32;")
        self.message.setText(message)

    def clear_message(self) -> None:
        self.message.setText("")

    @property
    def error_text(self) -> str:
        return self.message.text() if "⚠" in self.message.text() else ""

    # -- sources ---------------------------------------------------------------------------------
    def _emit(self, make, source: str) -> bool:
        self._generating = None  # a newer request: a stopped generation is no news
        try:
            x = make()
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        except MemoryError as exc:
            self.show_error(f"not enough memory for this sequence ({exc})")
            return False
        self.show_status(f"{source}: {x.shape[0]} steps × {x.shape[1]}")
        self.sequence_chosen.emit(x, source)
        return True

    def apply_text(self) -> bool:
        return self._emit(lambda: parse_sequence(self.text.toPlainText(), self._width), "typed")

    def load_file(self, path: str) -> bool:
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        emb = None if self._model is None else self._model.embedding
        ok = self._emit(lambda: load_sequence(path, width=self._width, embedding=emb), name)
        return ok

    def _on_load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load sequence", "", "Sequences (*.csv *.txt *.npy *.npz);;All files (*)"
        )
        if not path:
            return
        self._generating = None
        if self.open_file is not None:
            self.show_status(f"reading {path.replace(chr(92), '/').rsplit('/', 1)[-1]}…")
            self.open_file(path)
        elif self.load_file(path):
            self.text.setPlainText("")  # the file's rows are shown by the panel

    def file_opened(self, name: str, x: np.ndarray) -> None:
        """``open_file`` read ``name`` and the workspace took it."""
        self.show_status(f"{name}: {x.shape[0]} steps × {x.shape[1]}")
        self.text.setPlainText("")

    def generate(self) -> bool:
        """Make the chosen sequence; past ~5 ms of work (``sequence_generate``) in the
        workspace's worker, a float32 map past ``MAX_VALUES`` values: True once it started there."""
        kind = SequenceKind(self.kind.currentText())
        values = (self.length.value(), self._width, self.seed.value(), self.period.value())
        gen = Generation(kind, *values)
        refusal = gen.refusal()
        if refusal is not None:
            self.show_error(refusal)
            return False
        if self._workspace is None:
            return self._emit(gen.make, gen.source)
        self._generating = None
        finished: list[bool] = []

        def done(x: np.ndarray | None, error: BaseException | None) -> None:
            finished.append(self._emit(lambda: gen.result(x, error), gen.source))

        self.show_status(f"{gen.label} × {gen.width}…")
        # job.report raises Cancelled once the job is cancelled: the generation stops there
        work = lambda job: gen.make(job.report)  # noqa: E731
        job = self._workspace.submit("sequence", gen.label, work, done, cost=gen.cost)
        if finished:  # the runner ran it at once (a short sequence)
            return finished[0]
        self._generating = job
        return True

    def _on_jobs_changed(self, _event: object) -> None:
        """A generation cancelled (Cancel, or a newer sequence request) says so: the
        "generating…" line must not stay."""
        job = self._generating
        if job is not None and job.cancelled:
            self._generating = None
            self.show_status(f"{job.label}: cancelled, the previous sequence is kept")

    def embed(self) -> bool:
        emb = None if self._model is None else self._model.embedding
        if emb is None:
            self.show_error("this model has no embedding; type vectors instead")
            return False
        return self._emit(
            lambda: embed_tokens(parse_token_ids(self.tokens.text(), emb.shape[0]), emb),
            "tokens",
        )

    # -- initial states --------------------------------------------------------------------------
    def _target(self) -> tuple[tuple[int, int], LSTMDirection] | None:
        key = self.state_target.currentData()
        if key is None or self._model is None:
            return None
        return key, self._model.layers[key[0]].directions[key[1]]

    def _on_state_target_changed(self, _index: int) -> None:
        found = self._target()
        if found is None:
            return
        key, w = found
        for name, edit in (("h", self.h0), ("c", self.c0)):
            carried = name in w.cell.state_names  # a GRU or plain RNN has no c
            self._state_form.setRowVisible(edit, carried)
            if not carried:
                continue
            stored, size = stored_state(w, name), state_size(w, name)
            edit.setPlaceholderText(
                f"zeros ({size} values)"
                if stored is None
                else f"from the file: {format_sequence(stored[None], 6)}"
            )
        h0, c0 = self._states.get(key, (None, None))
        self.h0.setText("" if h0 is None else format_sequence(h0[None], 6))
        self.c0.setText("" if c0 is None else format_sequence(c0[None], 6))

    def apply_states(self) -> bool:
        """Take the typed states of the chosen layer/direction; an empty field keeps the
        default (the file's state, else zeros)."""
        found = self._target()
        if found is None:
            return False
        key, w = found
        try:
            h0 = _state(self.h0.text(), stored_state(w, "h"), state_size(w, "h"), "h0")
            c0 = None
            if "c" in w.cell.state_names:
                c0 = _state(self.c0.text(), stored_state(w, "c"), state_size(w, "c"), "c0")
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        self._states[key] = (h0, c0)
        self.show_status(
            f"initial state set for layer {key[0]} {'backward' if key[1] else 'forward'}"
        )
        self.states_chosen.emit(dict(self._states))
        return True

    def reset_states(self) -> None:
        """Forget the typed states: back to the defaults (the file's states, else zeros)."""
        self._states = {}
        self.h0.clear()
        self.c0.clear()
        stored = self._model is not None and has_stored_states(self._model)
        self.show_status(
            "initial states: as stored in the file" if stored else "initial states: all zeros"
        )
        self.states_chosen.emit({})

    def zero_states(self) -> None:
        """Start every layer and direction from zeros, even where the file stores states."""
        if self._model is None:
            return
        self._states = {
            (k, d): (np.zeros(state_size(w, "h")), _zeros_if(w, "c"))
            for k, layer in enumerate(self._model.layers)
            for d, w in enumerate(layer.directions)
        }
        self._on_state_target_changed(self.state_target.currentIndex())
        self.show_status("initial states: all zeros")
        self.states_chosen.emit(dict(self._states))


def _state(text: str, stored: np.ndarray | None, size: int, what: str) -> np.ndarray:
    """The typed state, or the default (``stored``, else zeros) when the field is empty."""
    if not text.strip() and stored is not None:
        return np.asarray(stored, dtype=float)
    return parse_state(text, size, what)


def _zeros_if(w: LSTMDirection, name: str) -> np.ndarray | None:
    """Zeros for state ``name`` of ``w``, or None when its cell carries no such state."""
    return np.zeros(state_size(w, name)) if name in w.cell.state_names else None
