"""The Qt desktop app. Importing this package imports PySide6 and pyqtgraph."""

from lstmviz.gui.main_window import MainWindow

__all__ = ["MainWindow"]
