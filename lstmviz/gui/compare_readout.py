"""A, B and Δ of every gate, c and h of one unit at one step, painted as a small table.

Painted, not a rich-text QLabel: a label's new text asks its layout to recompute, which at
every step cost the whole dock a relayout (the step went from 8 to 19 ms at H = 1024). This
widget has a fixed height, and a new step only repaints its own rectangle.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

DIFFERS = QColor("#b00020")


class Readout(QWidget):
    """``set_values(title, names, a, b, tol)``; ``text()`` gives the table as plain text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)
        self._line = QFontMetricsF(font).height() + 2
        self.setFixedHeight(int(5 * self._line + 6))
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.title = ""
        self.names: list[str] = []
        self.a: list[float] = []
        self.b: list[float] = []
        self.tol = 0.0
        self.message = ""

    def set_message(self, message: str) -> None:
        self.message, self.names = message, []
        self.update()

    def set_values(
        self, title: str, names: list[str], a: list[float], b: list[float], tol: float
    ) -> None:
        self.message = ""
        self.title, self.names, self.a, self.b, self.tol = title, names, a, b, tol
        self.update()

    def rows(self) -> list[list[str]]:
        """The table's cells: header, A, B, Δ."""
        if not self.names:
            return [[self.message]] if self.message else []
        return [
            [self.title],
            ["", *self.names],
            ["A", *(f"{v:+.4f}" for v in self.a)],
            ["B", *(f"{v:+.4f}" for v in self.b)],
            ["Δ", *(_short(vb - va) for va, vb in zip(self.a, self.b, strict=True))],
        ]

    def text(self) -> str:
        return "\n".join("  ".join(r) for r in self.rows())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.setPen(pal.color(pal.ColorRole.WindowText))
        rows = self.rows()
        if not rows:
            return
        if not self.names:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignLeft, rows[0][0])
            return
        fm = QFontMetricsF(self.font())
        first = fm.horizontalAdvance("Δ ") + 4
        cols = len(self.names)
        width = max((self.width() - first) / max(cols, 1), 1.0)
        p.drawText(QRectF(0, 3, self.width(), self._line), Qt.AlignmentFlag.AlignLeft, self.title)
        for r, row in enumerate(rows[1:], start=1):
            y = 3 + r * self._line
            p.drawText(QRectF(0, y, first, self._line), Qt.AlignmentFlag.AlignLeft, row[0])
            for k, cell in enumerate(row[1:]):
                rect = QRectF(first + k * width, y, width - 4, self._line)
                if r == 4:
                    d = self.b[k] - self.a[k]
                    differs = not abs(d) <= self.tol
                    p.setPen(DIFFERS if differs else pal.color(pal.ColorRole.WindowText))
                p.drawText(rect, Qt.AlignmentFlag.AlignRight, cell)
        p.end()


def _short(d: float) -> str:
    """Δ in at most 7 characters: +1.1e-1 (Python's +1.1e-01 did not fit a column)."""
    if d == 0:
        return "0"
    text = f"{d:+.1e}"
    mantissa, _, exp = text.partition("e")
    return f"{mantissa}e{int(exp)}"
