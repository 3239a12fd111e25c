"""Transport buttons draw painted icons, never a missing-glyph box (U+23F8 is not in DejaVu)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QAbstractButton, QLabel

from lstmviz.gui.debug_controls import GLYPHS, DebugControls, glyph_icon

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
ARTIFACTS.mkdir(exist_ok=True)


def texts_in_font(widget) -> list[str]:
    """Characters of every button and label text that the widget's font has no glyph for."""
    missing = []
    for child in widget.findChildren(QAbstractButton) + widget.findChildren(QLabel):
        metrics = QFontMetrics(child.font())
        missing += [ch for ch in child.text() if ord(ch) > 127 and not metrics.inFontUcs4(ord(ch))]
    return missing


def opaque_share(icon, colour: QColor | None = None) -> float:
    image = icon.pixmap(16, 16).toImage()
    pixels = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    inked = [p for p in pixels if p.alpha() > 128]
    if colour is not None:
        assert all(abs(p.lightness() - colour.lightness()) < 40 for p in inked)
    return len(inked) / len(pixels)


def test_play_and_pause_have_icons_and_no_missing_glyphs(qtbot):
    controls = DebugControls()
    qtbot.addWidget(controls)
    controls.show()
    assert texts_in_font(controls) == []
    controls.set_playing(True)
    controls.grab().save(str(ARTIFACTS / "visuals_controls_playing.png"))
    assert controls.play_button.text() == "Pause"
    assert texts_in_font(controls) == []
    assert 0.15 < opaque_share(controls.play_button.icon()) < 0.6
    controls.set_playing(False)
    assert controls.play_button.text() == "Play"
    for b in (controls.first_button, controls.back_button, controls.forward_button,
              controls.last_button, controls.run_button):  # fmt: skip
        assert 0.1 < opaque_share(b.icon()) < 0.7, b.text()


def test_icons_follow_a_dark_palette(qtbot):
    controls = DebugControls()
    qtbot.addWidget(controls)
    dark = QPalette(controls.palette())
    dark.setColor(QPalette.ColorRole.ButtonText, QColor("#eeeeee"))
    controls.setPalette(dark)
    opaque_share(controls.play_button.icon(), QColor("#eeeeee"))


def test_every_glyph_paints_something():
    for name in GLYPHS:
        assert opaque_share(glyph_icon(name, QColor("black"))) > 0.1, name


def test_no_gui_text_uses_glyphs_that_common_fonts_lack():
    """Media-control symbols (U+23E9–U+23FA: ⏸ ⏵ ⏹ …), U+2B00 arrows and emoji are missing
    from DejaVu, the default Linux font, and drew empty boxes: paint icons instead."""
    import lstmviz.gui

    risky = [(0x23E9, 0x23FA), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF)]
    found = []
    for path in Path(lstmviz.gui.__file__).parent.glob("*.py"):
        for ch in set(path.read_text(encoding="utf-8")):
            if any(lo <= ord(ch) <= hi for lo, hi in risky):
                found.append((path.name, ch, hex(ord(ch))))
    assert found == []
