"""Shared look of the debugger plots: light background, dark text, fixed colour maps.

Applied per widget (never ``pg.setConfigOption``, which would leak into other windows/tests).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont

BACKGROUND = "w"
FOREGROUND = "#222222"
GATE_CMAP = "viridis"  # [0, 1]: closed gate dark, open gate yellow
SIGNED_CMAP = "CET-D1"  # symmetric: blue negative, white zero, red positive
#: Line colours for gates and states, used consistently in every plot and the inspector.
COLORS = {
    "i": "#1f77b4",
    "f": "#2ca02c",
    "g": "#9467bd",
    "o": "#ff7f0e",
    "c": "#d62728",
    "act_c": "#e377c2",
    "h": "#17becf",
    "x": "#7f7f7f",
}
HIT_COLOR = "#e8000b"
SELECT_COLOR = "#ff00ff"


def colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def lut(name: str):
    """512 entries on purpose: with <= 256, pyqtgraph rebuilds an indexed colour table with
    256 Python ``qRgb`` calls on every render; a longer table takes its vectorised path,
    which is ~3x faster for the one-row images a step repaints."""
    return colormap(name).getLookupTable(nPts=512, alpha=False)


def style_widget(widget: pg.GraphicsLayoutWidget) -> None:
    widget.setBackground(BACKGROUND)


def style_plot(plot: pg.PlotItem, title: str | None = None) -> pg.PlotItem:
    """Dark axes and a bold-ish title; menus kept, mouse zoom limited to x."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND))
        axis.setTextPen(pg.mkPen(FOREGROUND))
    if title:
        plot.setTitle(title, color=FOREGROUND, size="10pt")
    return plot


def small_font(points: int = 8) -> QFont:
    f = QFont()
    f.setPointSize(points)
    return f


def pen(key: str, width: float = 1.5, **kwargs: object) -> pg.QtGui.QPen:
    return pg.mkPen(QColor(COLORS.get(key, key)), width=width, **kwargs)
