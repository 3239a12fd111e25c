"""The Qt desktop app. Importing this package imports PySide6 and pyqtgraph.

``MainWindow`` is the whole app; ``lstmviz.gui.app.launch`` is what the ``lstmviz`` command runs.
"""

from lstmviz.gui.main_window import MainWindow

__all__ = ["MainWindow"]
