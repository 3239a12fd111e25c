"""Asks the user to resolve a ``ChoiceRequired`` (which recurrent module, which array layout)."""

from __future__ import annotations

import html
import re

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from lstmviz.io.errors import ChoiceRequired

#: What the user is asked, per option (the reader's one-line message is shown below it).
QUESTIONS = {
    "prefix": (
        "Which recurrent layer?",
        "This file holds more than one LSTM, GRU or RNN. Which one should be opened?",
    ),
    "layout": (
        "Which layout?",
        "These arrays fit more than one framework's layout. Which framework wrote them?",
    ),
}
#: How each array layout looks, so the choice can be made from the shapes one knows (an LSTM's;
#: a GRU's or plain RNN's as the reader's message describes it, ``_layout_help``).
LAYOUTS = {
    "keras": "Keras: kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H]; gates i,f,c,o",
    "pytorch": "PyTorch: weight_ih [4H, D], weight_hh [4H, H], bias_ih + bias_hh; gates i,f,g,o",
    "tf1": "TensorFlow 1: one kernel [D + H, 4H] (x rows, then h rows), bias [4H]; gates i,j,f,o",
    "onnx": "ONNX: W [dirs, 4H, D], R [dirs, 4H, H], B [dirs, 8H]; gates i,o,f,c",
}


def _layout_help(error: ChoiceRequired, choice: str) -> str | None:
    """The reader's own description of ``choice`` when it reads the arrays as a GRU or plain
    RNN (``keras (GRU kernel [D,3H], …)``), else the LSTM's from ``LAYOUTS``."""
    found = re.search(rf"(?:^|[:;] ){re.escape(choice)} \(([^()]*)\)", str(error))
    if found and any(k in found.group(1) for k in ("GRU", "RNN")):
        framework = LAYOUTS[choice].partition(":")[0] if choice in LAYOUTS else choice
        return f"{framework}: {found.group(1)}"
    return LAYOUTS.get(choice)


class ChoiceDialog(QDialog):
    """A list of the reader's choices for one option; OK reloads with ``option=choice``."""

    def __init__(self, error: ChoiceRequired, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title, question = QUESTIONS.get(
            error.option, (f"Choose {error.option}", f"Choose a value for “{error.option}”:")
        )
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        self.option = error.option
        self.choices = tuple(error.choices)
        layout = QVBoxLayout(self)
        heading = QLabel(f"<b>{html.escape(question)}</b>")
        heading.setWordWrap(True)
        layout.addWidget(heading)
        # The reader's own words, for the curious, without their command-line ending
        # ("; pick one with prefix=", which the CLI completes): the list and hint say it here.
        ending = rf"[;,]?\s*pick one with {re.escape(error.option)}=\s*$"
        self.detail = QLabel(re.sub(ending, "", str(error)))
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color: #888;")
        layout.addWidget(self.detail)
        self.list = QListWidget()
        for choice in self.choices:
            help_text = _layout_help(error, choice) if error.option == "layout" else None
            self.list.addItem(f"{choice} — {help_text}" if help_text else choice)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(self.accept)
        layout.addWidget(self.list)
        hint = QLabel(f"From the command line: --option {error.option}=<choice>")
        hint.setStyleSheet("color: #888; font-size: 8pt;")
        layout.addWidget(hint)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def select(self, choice: str) -> None:
        self.list.setCurrentRow(self.choices.index(choice))

    def selected(self) -> str | None:
        row = self.list.currentRow()
        return self.choices[row] if 0 <= row < len(self.choices) else None


def ask_choice(error: ChoiceRequired, parent: QWidget | None = None) -> str | None:
    """The chosen value, or None if the user cancelled."""
    dialog = ChoiceDialog(error, parent)
    try:
        if dialog.exec() == QDialog.DialogCode.Accepted:
            return dialog.selected()
        return None
    finally:
        dialog.deleteLater()
