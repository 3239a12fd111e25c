"""GUI test support: a ``make_main_window`` fixture (isolated settings, torn down after the test)
and ``save_artifact`` for screenshots that must not be blank."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QImage

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"


@pytest.fixture
def make_main_window(qtbot, tmp_path):
    """``make_main_window(size=(1400, 900))`` → a shown MainWindow whose QSettings live in
    ``tmp_path``; every window is closed (and its error box dismissed) at teardown."""
    from lstmviz.gui.main_window import MainWindow
    from lstmviz.gui.settings import AppSettings

    QStandardPaths.setTestModeEnabled(True)
    windows = []

    def make(size: tuple[int, int] = (1400, 900), settings: AppSettings | None = None):
        window = MainWindow(settings or AppSettings.at(tmp_path / "lstmviz.ini"))
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.error_box is not None:
            window.error_box.close()
        window._pool.waitForDone(5000)
        window.close()


def image_is_not_blank(image: QImage) -> bool:
    """More than a handful of distinct colours on a coarse grid: a real picture, not a fill."""
    colours = {
        image.pixel(x, y)
        for x in range(0, image.width(), max(1, image.width() // 60))
        for y in range(0, image.height(), max(1, image.height() // 60))
    }
    return len(colours) > 20


@pytest.fixture
def save_artifact():
    """``save_artifact(window, "name")`` → tests/_artifacts/name.png, asserted not blank."""
    from lstmviz.gui.app import save_screenshot

    def save(window, name: str) -> Path:
        path = save_screenshot(window, ARTIFACTS / f"{name}.png")
        image = QImage(str(path))
        assert not image.isNull() and image_is_not_blank(image), f"{path} is blank"
        return path

    return save


@pytest.fixture
def app_theme():
    """``app_theme("dark")`` gives the application a dark palette (as a desktop's dark theme
    arrives: Window, Base, Text, WindowText), ``"light"`` keeps the default; restored after."""
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    light = app.palette()

    def apply(theme: str) -> None:
        palette = QPalette(light)
        if theme == "dark":
            for role, colour in (
                (QPalette.ColorRole.Window, "#2b2b2b"),
                (QPalette.ColorRole.Base, "#1e1e1e"),
                (QPalette.ColorRole.Text, "#e8e8e8"),
                (QPalette.ColorRole.WindowText, "#e8e8e8"),
            ):
                palette.setColor(role, QColor(colour))
        app.setPalette(palette)

    yield apply
    app.setPalette(light)
