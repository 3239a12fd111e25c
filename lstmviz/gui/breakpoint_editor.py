"""The breakpoint list: type a step or a condition, tick to enable, see why the run stopped.

The examples, the placeholder and the list of names in the tooltip are the open model's:
its cells' quantities (``CellDescription.quantities``: i f g o c h … for an LSTM, r z n h …
for a GRU), so a GRU model suggests ``any z > 0.9``, not a forget gate it does not have.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lstmviz.core.cells import DEFAULT_CELL, CellDescription
from lstmviz.gui import plot_style as ps
from lstmviz.workspace import Change, Event, Workspace


def examples(cells: tuple[CellDescription, ...]) -> tuple[str, str]:
    """``(example line, placeholder)`` for a model of ``cells`` (the first cell of each kind
    leads): the retention gate nearly shut or wide open, a state's magnitude, a gate
    saturated, NaN."""
    cell = cells[0]
    gates = [g.name for g in cell.gates if g.role == "gate"] or list(cell.gate_names)
    keep = cell.retention_gate or gates[0]
    # a gate nearly shut (the retention gate: memory wiped); a candidate near its top
    first = f"any {keep} < 0.05" if cell.gate(keep).role == "gate" else f"any {keep} > 0.9"
    state = next((s for s in cell.state_names if s != "h"), "h")
    parts = ["step 12", first, f"|{state}| > 5 in unit 12"]
    if [g for g in cell.gates if g.role == "gate"]:
        parts.append(f"{gates[-1]} saturated > 90%")
    parts.append("NaN anywhere")
    return "e.g. " + " · ".join(parts), f"step 12, {first}, …"


def names_text(cells: tuple[CellDescription, ...]) -> str:
    """The quantities a condition may name in a model of ``cells``, each once."""
    names = dict.fromkeys(q for cell in cells for q in cell.quantities)
    shown = [n for n in names if not n.startswith("pre_")]
    pre = [n for n in names if n.startswith("pre_")][:1]
    return " ".join([*shown, *pre, "…"])


EXAMPLES, PLACEHOLDER = examples((DEFAULT_CELL,))


class BreakpointEditor(QWidget):
    """Edits the workspace's breakpoints; shows parse errors and why one never fires."""

    run_requested = Signal(bool)  # True: to the next breakpoint, False: to the previous one

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Breakpoints</b>")
        layout.addWidget(title)
        row = QHBoxLayout()
        self.entry = QLineEdit()
        self._cells: tuple[CellDescription, ...] = ()
        self.entry.returnPressed.connect(self.add_from_entry)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.add_from_entry)
        row.addWidget(self.entry, 1)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        self.examples = QLabel(EXAMPLES)
        self.examples.setWordWrap(True)
        self.examples.setStyleSheet("color: #888; font-size: 8pt;")  # grey on light and dark
        layout.addWidget(self.examples)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self._fit_colours()
        layout.addWidget(self.error)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.itemChanged.connect(self._on_list_item_changed)
        layout.addWidget(self.list, 1)
        self._describe_cells((DEFAULT_CELL,))
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀◀ Previous hit")
        self.prev_button.setToolTip("Run backwards to the previous breakpoint (Shift+F5)")
        self.prev_button.clicked.connect(lambda: self.run_requested.emit(False))
        self.next_button = QPushButton("Run to next ▶▶")
        self.next_button.setToolTip("Run to the next breakpoint (F5)")
        self.next_button.clicked.connect(lambda: self.run_requested.emit(True))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        workspace.subscribe((Change.BREAKPOINTS, Change.TRACE), self._update_breakpoints)
        workspace.subscribe((Change.MODEL, Change.SELECTION), self._update_model)
        self._update_model(None)  # built after the model was opened (the debugger is lazy)

    def _update_model(self, _event: Event) -> None:
        """The selected layer's cell leads the examples (a GRU layer of a mixed model
        suggests ``any z > 0.9``, not an LSTM's forget gate); the others' names follow."""
        model = self.workspace.model
        if model is not None:
            layer = min(self.workspace.selection.layer, len(model.layers) - 1)
            cells = (model.layers[layer].cell, *(lay.cell for lay in model.layers))
            self._describe_cells(tuple(dict.fromkeys(cells)))

    def _describe_cells(self, cells: tuple[CellDescription, ...]) -> None:
        """Examples, placeholder and tooltip in the names of the model's cells."""
        if cells == self._cells:
            return
        self._cells = cells
        line, placeholder = examples(cells)
        self.examples.setText(line)
        self.entry.setPlaceholderText(placeholder)
        state = next((s for s in cells[0].state_names if s != "h"), "h")
        gates = [g.name for g in cells[0].gates if g.role == "gate"]
        saturated = f" · {gates[-1]} saturated > 90%" if gates else ""
        self.entry.setToolTip(
            "A step number, or a condition on this run's values:\n"
            f"  any|all|mean|max|min <{names_text(cells)}> <op> <number>\n"
            f"  |{state}| > 5 (absolute value){saturated} · NaN anywhere\n"
            "then optional scope: in layer 1 · forward|backward · in units 3,5,10-12"
        )

    def _fit_colours(self) -> None:
        """Placeholder and error text that read on the field's own background: Qt's default
        placeholder and a fixed dark red were near-invisible on a dark desktop theme."""
        palette = self.entry.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        palette.setColor(QPalette.ColorRole.PlaceholderText, ps.mix(text, base, 0.65))
        self.entry.setPalette(palette)
        window = self.palette().color(QPalette.ColorRole.Window)
        self.error.setStyleSheet(f"color: {ps.readable(window, '#b00020', '#ff7b7b').name()};")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # light ↔ dark theme
            self._fit_colours()

    def _update_breakpoints(self, _event: Event) -> None:
        self.refresh()

    def add_from_entry(self) -> bool:
        text = self.entry.text().strip()
        if not text:
            return False
        try:
            self.workspace.add_breakpoint(text)
        except ValueError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self.entry.clear()
        return True

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.list.selectedIndexes()}, reverse=True)
        bps = self.workspace.breakpoints
        for r in rows:
            self.workspace.remove_breakpoint(bps[r])

    def refresh(self) -> None:
        """Rebuild the list (on ``BREAKPOINTS`` and ``TRACE``; a few items)."""
        self.list.blockSignals(True)
        self.list.clear()
        dbg = self.workspace.debugger
        if dbg is None:  # no run yet (or computing): the texts, without counts
            for bp in self.workspace.breakpoints:
                self.list.addItem(QListWidgetItem(bp.text + ("" if bp.enabled else "   (off)")))
        else:
            mask_counts = [int(dbg.breakpoint_mask([b]).sum()) if b.enabled else 0
                           for b in dbg.breakpoints]  # fmt: skip
            trace = dbg.trace
            for bp, n in zip(dbg.breakpoints, mask_counts, strict=True):
                suffix = f"   ({n} step{'s' if n != 1 else ''})" if bp.enabled else "   (off)"
                if getattr(trace, "bounded", False) and not hasattr(bp, "step") and bp.enabled:
                    suffix = "   (F5 scans a long run for it)"  # not counted over all steps
                why = bp.unreachable(trace) if n == 0 else None
                if why:  # kept from another model or sequence: say why it never fires
                    suffix = f"   (never fires here: {why})"
                item = QListWidgetItem(bp.text + suffix)
                if why:
                    item.setToolTip(f"{bp.text}: {why}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if bp.enabled else Qt.CheckState.Unchecked)
                self.list.addItem(item)
        self.list.blockSignals(False)

    def _on_list_item_changed(self, item: QListWidgetItem) -> None:
        bp = self.workspace.breakpoints[self.list.row(item)]
        self.workspace.set_breakpoint_enabled(bp, item.checkState() == Qt.CheckState.Checked)
