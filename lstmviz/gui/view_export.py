"""Saving what the debugger shows: a view as PNG or SVG, the trace through a file dialog.

Kept apart from ``debug_panel`` so the panel is about wiring; a failed write is reported in a
message box (a slot's exception would otherwise only reach the terminal).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QRectF
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QGraphicsView, QMessageBox, QWidget

if TYPE_CHECKING:
    from lstmviz.gui.debug_panel import DebugPanel


def save_widget(widget: QWidget, path: str | os.PathLike[str]) -> Path:
    """``widget`` as a PNG, or as an SVG drawing when the path ends in ``.svg``.

    The SVG generator gets the widget's own resolution. At its default 72 dpi, pyqtgraph's
    axes, which replay a ``QPicture`` recorded at the screen's 96 dpi, were scaled by 72/96
    while the images were not, so cells no longer lined up with their ticks (and all text
    shrank); the PNG was right because it is painted at the screen's resolution."""
    out = Path(path)
    if out.suffix.lower() == ".svg":
        gen = QSvgGenerator()
        gen.setFileName(str(out))
        gen.setResolution(widget.logicalDpiX())
        gen.setSize(widget.size())
        gen.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
        gen.setTitle("lstmviz")
        painter = QPainter(gen)
        try:
            if isinstance(widget, QGraphicsView):  # its render() maps the scene to a rect
                widget.render(painter)
            else:  # plain widgets take (painter, offset): their children are drawn too
                widget.render(painter, QPoint())
        finally:
            painter.end()
        if not out.exists():
            raise OSError(f"{out.name}: could not write the drawing")
    elif not widget.grab().save(str(out)):
        raise OSError(f"{out.name}: could not write the image (use .png or .svg)")
    return out


def ask_export_trace(panel: DebugPanel, kind: str) -> None:
    if panel.trace is None:
        return
    filt = "NumPy archive (*.npz)" if kind == "npz" else "CSV table (*.csv)"
    path, _ = QFileDialog.getSaveFileName(panel, "Export trace", f"trace.{kind}", filt)
    if path:
        _report(panel, lambda: panel.export_trace(path), "trace")


def ask_export_view(panel: DebugPanel, kind: str) -> None:
    name = panel.views.tabText(panel.views.currentIndex()).lower().replace(" ", "_")
    filt = "PNG image (*.png)" if kind == "png" else "SVG drawing (*.svg)"
    path, _ = QFileDialog.getSaveFileName(panel, "Export view", f"{name}.{kind}", filt)
    if path:
        _report(panel, lambda: [panel.export_view(path)], "view")


def _report(panel: DebugPanel, write, what: str) -> None:
    """Run ``write`` (returns the paths written); say where it went, or why it failed."""
    try:
        paths = write()
    except (OSError, ValueError) as exc:
        QMessageBox.warning(panel, f"Export {what}", f"Could not export the {what}: {exc}")
        return
    shown = str(paths[0]) + (f" (+{len(paths) - 1} more files)" if len(paths) > 1 else "")
    panel.show_notice(f"Exported the {what} to {shown}")
