"""Placeholder for the step-through debugger panel; replaced by the debugger work.

Interface the main window relies on (keep it): ``DebugPanel(parent)``, ``set_model(model)``,
``set_sequence(array)``, ``go_to_step(t)``, ``current_step``, signals ``step_changed(int)`` and
``weights_link_requested(int layer, int direction, str gate, int unit)``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lstmviz.core.model import LSTMModel


class DebugPanel(QWidget):
    step_changed = Signal(int)
    weights_link_requested = Signal(int, int, str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: LSTMModel | None = None
        self._x: np.ndarray | None = None
        self._step = 0
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Debugger (in progress)"))

    @property
    def current_step(self) -> int:
        return self._step

    def set_model(self, model: LSTMModel | None) -> None:
        self._model = model

    def set_sequence(self, x: np.ndarray) -> None:
        self._x = np.asarray(x, dtype=float)

    def go_to_step(self, t: int) -> None:
        self._step = int(t)
        self.step_changed.emit(self._step)
