"""Shared look of the debugger plots: light background, dark text, fixed colour maps.

Applied per widget (never ``pg.setConfigOption``, which would leak into other windows/tests).
"""

from __future__ import annotations

import html
import itertools
import math
import re

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF

from lstmviz.gui.cell_rows import NAMED_COLOURS

BACKGROUND = "w"
FOREGROUND = "#222222"
GATE_CMAP = "viridis"  # [0, 1]: closed gate dark, open gate yellow
SIGNED_CMAP = "CET-D1"  # symmetric: blue negative, white zero, red positive
#: Line colours of named gates and states, used consistently in every plot and the inspector
#: (a cell's other names take palette colours: ``cell_rows.colour``).
COLORS = NAMED_COLOURS
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


class IntegerAxis(pg.AxisItem):
    """Ticks only at whole numbers: units and steps have no 0.5 (a 3-unit layer would get
    0.5, 1.0, 1.5 from pyqtgraph's default spacing)."""

    def tickValues(self, minVal, maxVal, size):
        levels = [
            (spacing, [v for v in values if float(v).is_integer()])
            for spacing, values in super().tickValues(minVal, maxVal, size)
            if spacing >= 1
        ]
        if levels:
            return levels
        return [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]

    def tickStrings(self, values, scale, spacing):
        return [str(round(v)) for v in values]


class FittingAxis(pg.AxisItem):
    """A vertical axis whose named ticks (``setTicks``) never silently vanish or pile up.

    pyqtgraph drops a tick label wider than its axis without a trace: with Keras-2
    ``hard_sigmoid`` the step view's "i = hard_sigmoid_k2(·)" rows lost their names while
    "g = tanh(·)" stayed. Here a label too wide is elided in the middle (the gate letter and the
    "(·)" stay), and when the rows are closer than a line of text, labels that would overlap
    the one above are left out, so a short window shows fewer names instead of a smudge.
    """

    #: Smallest point size a crowded axis shrinks its names to before leaving some out.
    MIN_POINTS = 7.0

    def setStyle(self, **kwargs) -> None:
        if "tickFont" in kwargs:  # the owner's choice; _fitted_font may shrink a copy of it
            self._chosen_font = kwargs["tickFont"]
        super().setStyle(**kwargs)

    def _fitted_font(self, levels: list, p) -> QFont:
        """The chosen tick font, made smaller (down to ``MIN_POINTS``) when the named rows
        are closer together than its lines: 7 rows of the step view in 80 pixels."""
        chosen = getattr(self, "_chosen_font", None)
        font = QFont(chosen if chosen is not None else p.font())
        values = sorted(v for level in levels for v, _ in level)
        span = abs(self.range[1] - self.range[0])
        if len(values) < 2 or span <= 0 or font.pointSizeF() <= 0:
            return font
        pitch = min(b - a for a, b in itertools.pairwise(values)) * self.height() / span
        line = QFontMetricsF(font).height()
        if pitch < 0.85 * line:
            points = font.pointSizeF() * pitch / (0.85 * line)
            font.setPointSizeF(max(self.MIN_POINTS, min(points, font.pointSizeF())))
        return font

    def generateDrawSpecs(self, p):
        levels = self._tickLevels
        if self.orientation not in ("left", "right"):
            return super().generateDrawSpecs(p)
        if levels is None:  # numbers: pyqtgraph spaces them, but a 30-pixel plot still piles
            specs = super().generateDrawSpecs(p)  # "1.0 0.5 0.0 -0.5 -1.0" on each other
            return None if specs is None else (*specs[:2], drop_overlapping(specs[2], NUMBER_SLACK))
        self.style["tickFont"] = self._fitted_font(levels, p)
        p.setFont(self.style["tickFont"])
        metrics = QFontMetricsF(p.font())
        room = self.width() - max(0, self.style["tickLength"]) - self.style["tickTextOffset"][0]
        room = max(room - 4, 10.0)  # pyqtgraph's bounding rect is a little wider than advance
        mode = Qt.TextElideMode.ElideMiddle
        self._tickLevels = [
            [(v, metrics.elidedText(str(text), mode, room)) for v, text in level]
            for level in levels
        ]
        try:
            specs = super().generateDrawSpecs(p)
        finally:
            self._tickLevels = levels
        if specs is None:
            return None
        axis_spec, tick_specs, text_specs = specs
        return axis_spec, tick_specs, drop_overlapping(text_specs)


NUMBER_SLACK = 0.05


def thin_labels(axis: pg.AxisItem) -> pg.AxisItem:
    """Make an axis pyqtgraph built itself (a ``ColorBarItem``'s) leave out tick labels that
    would overlap: a 45-pixel colour bar printed 1.0, 0.5, 0, -0.5, -1.0 over each other."""
    draw_specs = axis.generateDrawSpecs

    def generate(p):
        specs = draw_specs(p)
        return None if specs is None else (*specs[:2], drop_overlapping(specs[2], NUMBER_SLACK))

    axis.generateDrawSpecs = generate
    return axis


def drop_overlapping(text_specs: list, slack: float = 0.08) -> list:
    """``(rect, flags, text)`` specs in drawing order, without those overlapping a kept one."""
    kept: list[QRectF] = []
    out = []
    for spec in text_specs:  # drawing order: level 0 (gate names) before level 1
        # pyqtgraph's boxes include a line's leading: names may overlap a little (``slack``
        # of the box at each end), numbers, all glyph, barely
        rect = spec[0].adjusted(0, slack * spec[0].height(), 0, -slack * spec[0].height())
        if not any(rect.intersects(k) for k in kept):
            kept.append(rect)
            out.append(spec)
    return out


def integer_axes(*names: str) -> dict[str, IntegerAxis]:
    """``axisItems=`` for ``addPlot``: whole-number ticks on the named sides."""
    return {name: IntegerAxis(name) for name in names}


def style_plot(plot: pg.PlotItem, title: str | None = None) -> pg.PlotItem:
    """Dark axes and a bold-ish title; menus kept, mouse zoom limited to x.

    No SI prefixes: ``value (x0.001)`` over ticks of 500 reads worse than 0.5. A plain left
    axis becomes a ``FittingAxis``, so named rows stay named in a narrow or short plot."""
    if type(plot.getAxis("left")) is pg.AxisItem:
        plot.setAxisItems({"left": FittingAxis("left")})
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND))
        axis.setTextPen(pg.mkPen(FOREGROUND))
        axis.enableAutoSIPrefix(False)
    let_shrink(plot.titleLabel)  # a long title must not widen (and so clip) the whole view
    if title:
        plot.setTitle(title, color=FOREGROUND, size="10pt")
    return plot


def small_font(points: int = 8) -> QFont:
    f = QFont()
    f.setPointSize(points)
    return f


def pen(key: str, width: float = 1.5, **kwargs: object) -> pg.QtGui.QPen:
    return pg.mkPen(QColor(COLORS.get(key, key)), width=width, **kwargs)


def color_key(items: list[tuple[str, str]], dashed: frozenset[str] = frozenset()) -> str:
    """HTML for a title: a coloured line sample and name per series, instead of a legend box
    that would cover the data."""
    parts = []
    for key, name in items:
        sample = "╌╌" if key in dashed else "━━"
        colour = COLORS.get(key, key)
        parts.append(f"<span style='color:{colour}'>{sample}</span>&nbsp;{html.escape(name)}")
    return "&nbsp;&nbsp; ".join(parts)


def let_shrink(label: pg.LabelItem) -> None:
    """A long title may overflow its plot, but must never widen the whole layout.

    ``LabelItem.updateMin`` (called on every text change and resize) pins the minimum and
    preferred width to the text; this instance's ``updateMin`` relaxes them afterwards.
    """

    def update_min() -> None:
        pg.LabelItem.updateMin(label)
        height = label.minimumHeight()
        hints = getattr(label, "_sizeHint", None)  # pyqtgraph 0.13-0.14 keep the hints here
        if isinstance(hints, dict):
            hints[Qt.SizeHint.MinimumSize] = (20, height)
            hints[Qt.SizeHint.PreferredSize] = (20, height)
        label.setMinimumWidth(20)
        label.updateGeometry()

    label.updateMin = update_min


def fit_title(
    plot: pg.PlotItem,
    text: str,
    size: str = "10pt",
    color: str = FOREGROUND,
    key: str = "",
    elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
    short: str = "",
) -> None:
    """Set a plot title that is elided to the plot's width (again at every resize), each
    ``<br>`` line on its own; ``key`` (HTML from ``color_key``) follows the last line while
    there is room for it and is dropped before the text is cut to nothing. ``elide`` says
    where a line is cut: ``ElideLeft`` for names whose end tells them apart. ``short`` (one
    line) is shown instead of a cut ``text`` when it fits: "b" rather than "b 409…" over a
    4096-row bias, whose cut number read as a wrong shape.

    A long title centred over a narrow plot ran past both edges and over its neighbour's
    (“W_x 96×1W_h recurrent kernel 96×24” at 1024 × 700, “turation per unit” in Diagnostics,
    “and hidden state of unit 0” in Over time).
    """
    plot._fit_title = (text, size, color, key, elide, short)
    if not getattr(plot, "_fit_title_connected", False):
        plot.geometryChanged.connect(lambda: _refit_title(plot))
        plot.vb.sigResized.connect(lambda _vb: _refit_title(plot))
        plot._fit_title_connected = True
    _refit_title(plot)


def _plain(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def _refit_title(plot: pg.PlotItem) -> None:
    text, size, color, key, elide, short = plot._fit_title
    font = QFont()
    font.setPointSizeF(float(size.removesuffix("pt")))
    metrics = QFontMetricsF(font)
    # the title is centred over the view box, which sits right of the left axis
    centre = plot.vb.geometry().center().x() if plot.vb.width() > 0 else plot.width() / 2
    room = max(2 * min(centre, plot.width() - centre) - 4, 40.0)
    lines = [html.unescape(line) for line in text.split("<br>")]
    key_width = metrics.horizontalAdvance("\u00a0" * 3 + _plain(key)) if key else 0.0
    last = lines[-1]
    fits = metrics.horizontalAdvance(last) + key_width <= room
    with_key = bool(key) and (fits or room - key_width >= 100.0)  # which line is which first
    shown_lines = [
        metrics.elidedText(
            line,
            elide,
            room - (key_width if with_key and k == len(lines) - 1 else 0),
        )
        for k, line in enumerate(lines)
    ]
    if short and shown_lines != lines and metrics.horizontalAdvance(short) <= room:
        shown_lines = [short]
    shown = "<br>".join(html.escape(line) for line in shown_lines)
    if with_key:
        shown += "&nbsp;&nbsp;&nbsp;" + key
    if shown != getattr(plot, "_fit_title_shown", None):
        plot._fit_title_shown = shown
        plot.setTitle(shown, size=size, color=color)
        plot.titleLabel.setToolTip(html.unescape(text.replace("<br>", "\n")))


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours: 1 is none, 21 black on white, 4.5 reads as text."""

    def luminance(c: QColor) -> float:
        def channel(v: int) -> float:
            x = v / 255
            return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.red()) + 0.7152 * channel(c.green()) + 0.0722 * channel(c.blue())

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def readable(background: QColor, *choices: str) -> QColor:
    """The first of ``choices`` that reads on ``background`` (contrast ≥ 4.5), else the one
    that reads best: a fixed dark blue or red vanished on a dark desktop theme."""
    colours = [QColor(c) for c in choices]
    good = [c for c in colours if contrast(c, background) >= 4.5]
    return good[0] if good else max(colours, key=lambda c: contrast(c, background))


def legible(colour: str, background: QColor, text: QColor) -> QColor:
    """``colour`` moved towards the palette's ``text`` colour just far enough to read on
    ``background`` (contrast ≥ 4.5), so it keeps its hue: the plot colours as they are (orange,
    cyan on white; blue, red on a dark field) read at 2.2–3.5 : 1 as text."""
    base = QColor(colour)
    for k in range(11):
        shade = mix(text, base, k / 10)
        if contrast(shade, background) >= 4.5:
            return shade
    return QColor(text)


def mix(a: QColor, b: QColor, share_a: float) -> QColor:
    """``share_a`` of ``a`` blended with ``b`` (opaque)."""
    return QColor(
        *(
            round(share_a * x + (1 - share_a) * y)
            for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True)
        )
    )
