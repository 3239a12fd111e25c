"""The debugger's toolbar: step buttons, play/pause and speed, time slider, layer/direction."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def _button(text: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    b.setAutoRaise(False)
    b.setMinimumWidth(34)
    return b


class DebugControls(QWidget):
    """Widgets only; the panel connects them to the Debugger and Playback."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Two rows, so the toolbar still fits when the panel shares a window with docks.
        rows = QVBoxLayout(self)
        rows.setContentsMargins(2, 2, 2, 2)
        rows.setSpacing(2)
        row = QHBoxLayout()
        rows.addLayout(row)
        self.first_button = _button("|◀ First", "First step (Home)")
        self.back_button = _button("◀ Back", "Step back (Left)")
        self.play_button = _button("▶ Play", "Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.setMinimumWidth(70)
        self.forward_button = _button("Step ▶", "Step forward (Right)")
        self.last_button = _button("Last ▶|", "Last step (End)")
        self.run_button = _button("▶▶ Run to breakpoint", "Continue to the next breakpoint (F5)")
        for b in (self.first_button, self.back_button, self.play_button, self.forward_button,
                  self.last_button, self.run_button):  # fmt: skip
            row.addWidget(b)
        self.speed = QSpinBox()
        self.speed.setRange(1, 240)
        self.speed.setValue(10)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Playback speed; slow repaints skip steps instead of lagging")
        row.addWidget(self.speed)
        row.addStretch(1)
        row2 = QHBoxLayout()
        rows.addLayout(row2)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys belong to the panel
        row2.addWidget(self.slider, 1)
        self.step_label = QLabel("step – / –")
        self.step_label.setMinimumWidth(110)
        row2.addWidget(self.step_label)
        row2.addWidget(QLabel("layer"))
        self.layer = QComboBox()
        # "1: bidirectional (H=128)" whole; a long TF scope elides, its popup shows it all
        self.layer.setMinimumContentsLength(24)
        self.layer.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        row2.addWidget(self.layer)
        self.direction = QComboBox()
        self.direction.addItems(["forward", "backward"])
        row2.addWidget(self.direction)
        self.export_button = QToolButton()
        self.export_button.setText("Export ▾")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_menu = QMenu(self.export_button)
        self.export_button.setMenu(self.export_menu)
        row.addWidget(self.export_button)

    def set_steps(self, n_steps: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setMaximum(max(n_steps - 1, 0))
        self.slider.setPageStep(max(1, n_steps // 10))
        self.slider.blockSignals(False)

    def show_step(self, t: int, n_steps: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(t)
        self.slider.blockSignals(False)
        self.step_label.setText(f"step {t} of 0–{n_steps - 1}")  # 0-based, as in the trace

    def set_layers(self, names: list[str]) -> None:
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems(names)
        self.layer.blockSignals(False)

    def set_playing(self, playing: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.setText("⏸ Pause" if playing else "▶ Play")
        self.play_button.blockSignals(False)


#: (background, text, border) of a breakpoint hit and of a notice.
HIT_COLOURS = ("#ffe5e5", "#8b0000", "#e8000b")
NOTICE_COLOURS = ("#eef3fb", "#1a3d6d", "#7d9cc8")


class Banner(QLabel):
    """One line above the views: a breakpoint hit (red) or a notice (blue), hidden otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.hide()

    def show_text(self, text: str, hit: bool) -> None:
        background, colour, border = HIT_COLOURS if hit else NOTICE_COLOURS
        self.setStyleSheet(
            f"background: {background}; color: {colour}; border: 1px solid {border}; padding: 3px;"
        )
        self.setText(text)
        self.show()
