"""The inspector: what is selected (layer, direction, provenance) and the weight under the mouse."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from lstmviz.core.model import LSTMLayer, LSTMModel
from lstmviz.core.stored_layout import Cell
from lstmviz.gui.cell_rows import activation_text, cell_text


class DetailsPanel(QWidget):
    """Two parts: the hovered cell (monospace, updates on hover) and the selection."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell_label = QLabel("Hover a weight to see its gate, unit, stored index and value.")
        self.cell_label.setWordWrap(True)
        # palette roles, not fixed colours: a dark theme keeps light text on a dark field
        self.cell_label.setStyleSheet(
            "font-family: monospace; padding: 4px; background: palette(alternate-base);"
            " color: palette(text);"
        )
        self.cell_label.setMinimumHeight(64)
        self.text = QTextBrowser()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.cell_label)
        layout.addWidget(self.text, 1)

    def show_cell(self, cell: Cell | None) -> None:
        if cell is not None:
            self.cell_label.setText(cell.text())

    def show_selection(self, model: LSTMModel | None, k: int = 0, d: int = 0) -> None:
        if model is None:
            self.text.setHtml("<i>No model loaded.</i>")
            return
        layer: LSTMLayer = model.layers[k]
        w = layer.directions[d]
        prov = w.provenance
        rows = [
            ("File", model.source_path),
            ("Format", model.source_format),
            ("Framework", model.framework or prov.framework),
            ("Layer", f"{k}: {layer.name} ({layer.kind})"),
            ("Direction", _direction_text(layer, d)),
            ("Sizes", f"D = {w.input_size}, H = {w.hidden_size}, output {w.output_size}"),
            ("Parameters", f"{w.n_params:,} canonical, {w.n_stored_params:,} stored"),
            ("Cell", cell_text(w.cell)),
            ("Layout", prov.describe()),
            ("Activations", activation_text(w, ", ")),
        ]
        clips = [  # whatever clips this kind of direction has (an LSTM's three)
            f"{n} = {getattr(w, n)}"
            for n in sorted(vars(w))
            if n.endswith("_clip") and getattr(w, n)
        ]
        if clips:
            rows.append(("Clips", ", ".join(clips)))
        if layer.bidirectional:
            rows.append(("Merge", layer.merge_mode.value))
        body = "".join(
            f"<tr><td style='padding-right:8px'><b>{html.escape(a)}</b></td>"
            f"<td>{html.escape(str(b))}</td></tr>"
            for a, b in rows
        )
        assumed = "".join(
            f"<li style='color:#b35900'>{html.escape(s.name)} = {html.escape(str(s.value))} "
            f"(assumed){' — ' + html.escape(s.note) if s.note else ''}</li>"
            for s in prov.assumed
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in (*prov.notes, *model.notes))
        extra = (f"<p><b>Assumed settings</b></p><ul>{assumed}</ul>" if assumed else "") + (
            f"<p><b>Notes</b></p><ul>{notes}</ul>" if notes else ""
        )
        self.text.setHtml(f"<table>{body}</table>{extra}")


def _direction_text(layer: LSTMLayer, d: int) -> str:
    text = layer.direction_label(d)
    if layer.directions[d].reverse and "reads" not in text:
        text += " (reads time reversed)"
    if layer.reversed_output:
        text += "; the layer returns its sequence reversed"
    return text
