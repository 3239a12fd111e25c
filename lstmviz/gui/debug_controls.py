"""The debugger's toolbar: step buttons, play/pause and speed, time slider, layer/direction."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPainter, QPainterPath, QPalette, QPixmap
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

#: Transport glyphs as shapes on a 16 × 16 grid: ("bar", x) is a 2.5-wide bar, ("tri", x, dir)
#: a triangle 7 wide pointing right (+1) or left (-1). Painted, not typed: U+23F8 (pause) is in
#: neither DejaVu nor most Linux fonts and drew an empty box.
GLYPHS: dict[str, tuple[tuple, ...]] = {
    "first": (("bar", 2.0), ("tri", 5.0, -1), ("tri", 9.5, -1)),
    "back": (("tri", 4.5, -1),),
    "play": (("tri", 4.5, 1),),
    "pause": (("bar", 4.0), ("bar", 9.5)),
    "forward": (("tri", 4.5, 1),),
    "last": (("tri", 0.5, 1), ("tri", 5.0, 1), ("bar", 12.0)),
    "run": (("tri", 1.0, 1), ("tri", 8.0, 1)),
}


def glyph_icon(name: str, colour) -> QIcon:
    """A transport icon painted in ``colour`` (the palette's button text, so it follows a
    dark theme), at 1× and 2× for high-DPI screens."""
    icon = QIcon()
    for scale in (1, 2):
        pixmap = QPixmap(16 * scale, 16 * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        for shape in GLYPHS[name]:
            if shape[0] == "bar":
                painter.drawRect(QRectF(shape[1], 2.5, 2.5, 11))
            else:
                x, direction = shape[1], shape[2]
                tip, base = (x + 7, x) if direction > 0 else (x, x + 7)
                path = QPainterPath(QPointF(base, 2.5))
                path.lineTo(QPointF(tip, 8))
                path.lineTo(QPointF(base, 13.5))
                path.closeSubpath()
                painter.drawPath(path)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def _button(text: str, tip: str, glyph: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    b.setAutoRaise(False)
    b.setMinimumWidth(34)
    b.setIconSize(QSize(16, 16))
    b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    b.setProperty("glyph", glyph)
    return b


class StepBox(QSpinBox):
    """The typed step; ``entered`` after Enter, so the panel takes the arrow keys back (they
    stepped the text cursor in the box instead of the debugger)."""

    entered = Signal()

    def keyPressEvent(self, event) -> None:
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.entered.emit()


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
        self.first_button = _button("First", "First step (Home)", "first")
        self.back_button = _button("Back", "Step back (Left)", "back")
        self.play_button = _button("Play", "Play / pause (Space)", "play")
        self.play_button.setCheckable(True)
        self.play_button.setMinimumWidth(70)
        self.forward_button = _button("Step", "Step forward (Right)", "forward")
        self.last_button = _button("Last", "Last step (End)", "last")
        self.run_button = _button(
            "Run to breakpoint", "Continue to the next breakpoint (F5)", "run"
        )
        self._buttons = (self.first_button, self.back_button, self.play_button,
                         self.forward_button, self.last_button, self.run_button)  # fmt: skip
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
        # a typed jump: at 10⁶ steps one slider pixel is ~1,000 steps and a key is one step
        self.step_box = StepBox()
        self.step_box.setPrefix("go to ")
        self.step_box.setKeyboardTracking(False)  # jump on Enter, not at every digit typed
        self.step_box.setAccelerated(True)
        self.step_box.setToolTip("Type a step and press Enter to jump there (Ctrl+G)")
        self.step_box.editingFinished.connect(lambda: self.step_box.lineEdit().setModified(False))
        row2.addWidget(self.step_box)
        row2.addSpacing(12)  # "step 199999 of 0–199999" ran into "layer"
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
        self.export_button.setText("Export")  # the popup mode draws its own arrow
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_menu = QMenu(self.export_button)
        self.export_button.setMenu(self.export_menu)
        row.addWidget(self.export_button)
        self.reset_zoom_button = QToolButton()
        self.reset_zoom_button.setText("Reset zoom")
        self.reset_zoom_button.setToolTip(
            "Show every unit again (wheel or drag over the unit axis zooms the step view)"
        )
        row.addWidget(self.reset_zoom_button)
        self._paint_icons()

    def _paint_icons(self) -> None:
        colour = self.palette().color(QPalette.ColorRole.ButtonText)
        for b in self._buttons:
            b.setIcon(glyph_icon(b.property("glyph"), colour))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # light ↔ dark theme
            self._paint_icons()

    def set_steps(self, n_steps: int) -> None:
        # room for the widest step text of this run, so the slider does not jump as it grows
        widest = f"step {max(n_steps - 1, 0)} of 0–{max(n_steps - 1, 0)}"
        width = self.step_label.fontMetrics().horizontalAdvance(widest) + 6
        self.step_label.setMinimumWidth(max(110, width))
        self.slider.blockSignals(True)
        self.slider.setMaximum(max(n_steps - 1, 0))
        self.slider.setPageStep(max(1, n_steps // 10))
        self.slider.blockSignals(False)
        self.step_box.blockSignals(True)
        self.step_box.setMaximum(max(n_steps - 1, 0))
        self.step_box.blockSignals(False)

    def show_step(self, t: int, n_steps: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(t)
        self.slider.blockSignals(False)
        self.step_label.setText(f"step {t} of 0–{n_steps - 1}")  # 0-based, as in the trace
        box = self.step_box
        if not (box.hasFocus() and box.lineEdit().isModified()):  # a number being typed stays
            box.blockSignals(True)
            box.setValue(t)
            box.blockSignals(False)

    def set_layers(self, names: list[str]) -> None:
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems(names)
        self.layer.blockSignals(False)

    def set_playing(self, playing: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setProperty("glyph", "pause" if playing else "play")
        colour = self.palette().color(QPalette.ColorRole.ButtonText)
        self.play_button.setIcon(glyph_icon(self.play_button.property("glyph"), colour))
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
