"""Asks the user to resolve a ``ChoiceRequired`` (which LSTM prefix, which array layout)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from lstmviz.io.errors import ChoiceRequired


class ChoiceDialog(QDialog):
    """A list of the reader's choices for one option; OK reloads with ``option=choice``."""

    def __init__(self, error: ChoiceRequired, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Choose {error.option}")
        self.option = error.option
        self.choices = tuple(error.choices)
        layout = QVBoxLayout(self)
        message = QLabel(f"{error}\n\nChoose a value for “{error.option}”:")
        message.setWordWrap(True)
        layout.addWidget(message)
        self.list = QListWidget()
        self.list.addItems(list(self.choices))
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(self.accept)
        layout.addWidget(self.list)
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
