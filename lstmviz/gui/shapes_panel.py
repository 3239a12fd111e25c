""" "Shapes explained": parameter count with this model's numbers and what the reader did."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QTextBrowser, QWidget

from lstmviz.core.model import LSTMDirection, LSTMLayer
from lstmviz.core.shapes_text import shapes_explained


def lines_to_html(lines: list[str]) -> str:
    """Headings (lines ending in ':') bold, formulas in a monospace block, notes indented."""
    out = []
    for line in lines:
        text = html.escape(line)
        if line.startswith("  "):
            out.append(f"<div style='margin-left:12px; font-family:monospace'>{text.strip()}</div>")
        elif line.endswith(":"):
            out.append(f"<div style='margin-top:6px'><b>{text}</b></div>")
        elif line.startswith("Parameters"):
            head, _, rest = text.partition(":")
            out.append(
                f"<div style='margin-top:6px'><b>{head}:</b><br>"
                f"<span style='font-family:monospace'>{rest.strip()}</span></div>"
            )
        else:
            out.append(f"<div>{text}</div>")
    return "\n".join(out)


class ShapesPanel(QTextBrowser):
    """Read-only text; updated when another direction is selected."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.lines: list[str] = []
        self.set_direction(None)

    def set_direction(
        self,
        w: LSTMDirection | None,
        layer: LSTMLayer | None = None,
        title: str = "",
        direction: int = 0,
    ) -> None:
        if w is None:
            self.lines = []
            self.setHtml("<i>Open a model to see why its arrays have their shapes.</i>")
            return
        self.lines = shapes_explained(w, layer, direction)
        head = f"<h3 style='margin:2px'>{html.escape(title)}</h3>" if title else ""
        self.setHtml(head + lines_to_html(self.lines))
