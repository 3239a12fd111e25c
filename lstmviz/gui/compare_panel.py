"""The compare panel: pairing, diagnoses, Δ at the debugger's step, Δ over time.

It follows the workspace like every view: the selected layer/direction picks the paired
direction shown, the debugger's step moves the cursors and fills the readout (A's and B's
value of every gate, c and h of the selected unit, and Δ), and the comparison comes from the
``CompareSession``. A step only repaints the readout and moves two cursor lines (and
refills B's equations while their tab is shown): 2-6 ms at H = 1024
(``benchmarks/bench_compare_gui.py``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lstmviz.comparison import QUANTITIES, Comparison, DirectionDelta
from lstmviz.gui.compare_plots import ComparePlots
from lstmviz.gui.compare_readout import Readout
from lstmviz.gui.compare_session import CompareSession
from lstmviz.workspace import Change, Event, Workspace

ALL = "all"


def parse_pairs(text: str) -> list[tuple[int, int]] | None:
    """'0-0, 1-2' (or '0:0 1:2') → [(0, 0), (1, 2)]; empty → None (pair by shape)."""
    text = text.strip()
    if not text:
        return None
    out = []
    for part in text.replace(",", " ").split():
        a, _, b = part.replace(":", "-").partition("-")
        out.append((int(a), int(b)))
    return out


class ComparePanel(QWidget):
    """Everything compare mode shows; ``go_to_requested(layer, direction, step, unit)`` asks
    the window to show a place in the debugger."""

    go_to_requested = Signal(int, int, int, int)
    close_requested = Signal()

    def __init__(self, workspace: Workspace, session: CompareSession, parent=None) -> None:
        super().__init__(parent)
        self.workspace, self.session = workspace, session
        self.header = QLabel("Compare with… another model: File ▸ Compare with…")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.go_button = QPushButton("Go to first divergence")
        self.go_button.clicked.connect(self._on_go_clicked)
        self.pairs_edit = QLineEdit()
        self.pairs_edit.setPlaceholderText("pairs A-B, e.g. 0-0, 1-2")
        self.pairs_edit.returnPressed.connect(self._on_repair)
        repair = QPushButton("Re-pair")
        repair.clicked.connect(self._on_repair)
        close = QPushButton("Close B")
        close.clicked.connect(self.close_requested.emit)
        row = QHBoxLayout()
        for w in (self.go_button, self.pairs_edit, repair, close):
            row.addWidget(w)
        self.diagnoses = QTextBrowser()
        self.diagnoses.setOpenLinks(False)
        self.diagnoses.setMinimumHeight(48)
        self.pair_combo = QComboBox()
        self.pair_combo.currentIndexChanged.connect(self._on_pair_chosen)
        self.quantity_combo = QComboBox()
        self.quantity_combo.addItems([ALL, *QUANTITIES])
        self.quantity_combo.currentIndexChanged.connect(lambda _i: self._show_plots())
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Direction:"))
        pick.addWidget(self.pair_combo, 1)
        pick.addWidget(QLabel("Δ of:"))
        pick.addWidget(self.quantity_combo)
        #: B's and Δ's rows in the step view and B's equations in the unit inspector
        self.debugger_box = QCheckBox("B, Δ in debugger")
        self.debugger_box.setChecked(True)
        self.debugger_box.setToolTip(
            "Show model B's rows and Δ = B − A under A's in the step view, and B's equations "
            "under A's in the unit inspector"
        )
        pick.addWidget(self.debugger_box)
        self.readout = Readout()
        self.plots = ComparePlots()
        self.plots.step_clicked.connect(self._on_step_clicked)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.header)
        top_layout.addLayout(row)
        top_layout.addWidget(self.diagnoses, 1)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addLayout(pick)
        bottom_layout.addWidget(self.readout)
        self.equations = QTextBrowser()  # B's equations with this step's numbers
        self.equations.setToolTip(
            "B's equations for the selected unit at this step "
            "(A's are in the debugger's unit inspector)"
        )
        self.views = QTabWidget()
        self.views.addTab(self.plots, "Δ over time")
        self.views.addTab(self.equations, "B's equations")
        self.views.currentChanged.connect(lambda _i: self._update_readout())
        bottom_layout.addWidget(self.views, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([300, 450])  # the diagnoses get room for two or three findings
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._deltas: list[DirectionDelta] = []
        session.subscribe(self._on_session)
        workspace.subscribe(Change.STEP, self._on_step)
        workspace.subscribe(Change.SELECTION, self._on_selection)
        self._refresh()

    # -- state -----------------------------------------------------------------------------------
    @property
    def comparison(self) -> Comparison | None:
        return self.session.comparison

    def current_delta(self) -> DirectionDelta | None:
        k = self.pair_combo.currentIndex()
        return self._deltas[k] if 0 <= k < len(self._deltas) else None

    def _quantity(self) -> str | None:
        q = self.quantity_combo.currentText()
        dd = self.current_delta()
        return None if q == ALL or dd is None or q not in dd.quantities else q

    def _fit_quantities(self) -> None:
        """The Δ-of choices are the shown direction's cell's gates and states."""
        dd = self.current_delta()
        names = [ALL, *(dd.quantities if dd is not None else QUANTITIES)]
        combo = self.quantity_combo
        if [combo.itemText(k) for k in range(combo.count())] == names:
            return
        keep = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        combo.setCurrentIndex(max(names.index(keep) if keep in names else 0, 0))
        combo.blockSignals(False)

    # -- session and workspace events ------------------------------------------------------------
    def _on_session(self, what: str) -> None:
        if what == "comparison":
            self._refresh()
        elif what == "error":
            self.header.setText(
                f"<span style='color:#b00020'>{html.escape(self.session.message)}</span>"
            )
        elif what == "busy":
            self.header.setText("comparing… (both models run in the background)")

    def _on_step(self, _event: Event) -> None:
        t = self.workspace.step
        self.plots.set_step(t)
        self._update_readout()

    def _on_selection(self, _event: Event) -> None:
        s = self.workspace.selection
        for k, dd in enumerate(self._deltas):
            if (dd.layer_a, dd.direction) == (s.layer, s.direction):
                if k != self.pair_combo.currentIndex():
                    self.pair_combo.setCurrentIndex(k)  # shows the plots
                break
        self.plots.set_unit(s.unit)
        self._update_readout()

    def _on_pair_chosen(self, k: int) -> None:
        dd = self.current_delta()
        if dd is not None:
            s = self.workspace.selection
            if (s.layer, s.direction) != (dd.layer_a, dd.direction):
                self.workspace.select(layer=dd.layer_a, direction=dd.direction)
        self._show_plots()
        self._update_readout()

    def _on_go_clicked(self) -> None:
        c = self.comparison
        div = c.first_divergence if c is not None else None
        if div is not None:
            self.go_to_requested.emit(div.layer, div.direction, div.step, div.unit)

    def _on_repair(self) -> None:
        try:
            pairs = parse_pairs(self.pairs_edit.text())
        except ValueError:
            self.header.setText("pairs are written A-B, e.g. 0-0, 1-2")
            return
        self.session.set_pairs(pairs)

    def _on_step_clicked(self, t: int) -> None:
        dd = self.current_delta()
        if dd is not None and 0 <= t < dd.n_steps:
            s = self.workspace.selection
            self.go_to_requested.emit(dd.layer_a, dd.direction, t, s.unit)

    # -- drawing ---------------------------------------------------------------------------------
    def _refresh(self) -> None:
        c = self.comparison
        self._deltas = list(c.deltas) if c is not None else []
        self.pair_combo.blockSignals(True)
        self.pair_combo.clear()
        if c is not None:
            for dd in self._deltas:
                la, lb = c.a.layers[dd.layer_a], c.b.layers[dd.layer_b]
                self.pair_combo.addItem(
                    f"A {dd.layer_a} {la.direction_label(dd.direction)} ↔ "
                    f"B {dd.layer_b} {lb.direction_label(dd.direction)}"
                )
        self.pair_combo.blockSignals(False)
        self.header.setText(self._header_html())
        self.diagnoses.setHtml(self._diagnoses_html())
        self.go_button.setEnabled(c is not None and c.first_divergence is not None)
        if c is not None and self.session.pairs is not None:
            self.pairs_edit.setText(", ".join(f"{i}-{j}" for i, j in c.pairs))
        self._on_selection(None)  # picks the selected direction's pair
        if self.pair_combo.currentIndex() < 0 and self._deltas:
            self.pair_combo.setCurrentIndex(0)
        self._show_plots()
        self.plots.set_step(self.workspace.step)
        self._update_readout()

    def _header_html(self) -> str:
        c, s = self.comparison, self.session
        if c is None:
            return html.escape(s.message or "Compare with… another model: File ▸ Compare with…")
        name_a = html.escape(_name(self.workspace.model_path or c.a.source_path))
        name_b = html.escape(_name(s.path_b or c.b.source_path))
        pairs = ", ".join(f"A{i}↔B{j}" for i, j in c.pairs) or "none (no layer shapes match)"
        if c.equal:
            verdict = "<b style='color:#2e6b30'>equal</b>: same weights, same outputs"
        else:
            div = c.first_divergence
            where = (
                f"first divergence: layer {div.layer}, direction {div.direction}, step "
                f"{div.step}, unit {div.unit} (|Δ| &gt; {c.tol:g})"
                if div is not None
                else "the runs agree, the weights do not"
            )
            verdict = f"<b style='color:#b00020'>different</b> — {where}"
        return f"<b>A</b> {name_a} &nbsp; <b>B</b> {name_b}<br>pairs {pairs}<br>{verdict}"

    def _diagnoses_html(self) -> str:
        c = self.comparison
        if c is None:
            return ""
        items = []
        for d in c.diagnoses:
            where = f"B layer {d.layer}" + (
                "" if d.direction is None else f", direction {d.direction}"
            )
            items.append(
                f"<li><b>{d.kind}</b> <i>({where})</i>: {html.escape(d.detail)}"
                f"<br><span style='color:#555'>evidence: {html.escape(d.evidence)}</span>"
                f"<br><span style='color:#2e6b30'>fix: {html.escape(d.fix)}</span></li>"
            )
        for n in c.notes:
            items.append(f"<li style='color:#555'>{html.escape(n)}</li>")
        if not items:
            items.append("<li>no porting mistake found: the models are the same</li>")
        return "<ul style='margin-left:-20px'>" + "".join(items) + "</ul>"

    def _show_plots(self) -> None:
        self._fit_quantities()
        c = self.comparison
        dd = self.current_delta()
        div = c.first_divergence if c is not None else None
        self.plots.show_delta(dd, self._quantity(), div, c.tol if c is not None else 0.0)

    def _update_readout(self) -> None:
        dd = self.current_delta()
        c = self.comparison
        if dd is None or c is None:
            s = self.workspace.selection
            self.readout.set_message(
                "" if c is None else f"A's layer {s.layer} has no partner in B"
            )
            self.equations.clear()
            return
        t = min(max(self.workspace.step, 0), dd.n_steps - 1)
        u = self.workspace.selection.unit
        names, a, b = [], [], []
        for q in dd.quantities:
            va, vb = getattr(dd.a, q), getattr(dd.b, q)
            if u < va.shape[1]:
                names.append(q)
                a.append(float(va[t, u]))
                b.append(float(vb[t, u]))
        self.readout.set_values(f"step {t}, unit {u}", names, a, b, c.tol)
        if self.views.currentWidget() is self.equations:  # else filled when shown
            self._update_equations(dd, t, u, c.tol)

    def _update_equations(self, dd: DirectionDelta, t: int, u: int, tol: float) -> None:
        """B's equations of unit ``u`` at step ``t``, the lines whose value differs from A's
        in red: where a porting mistake enters the arithmetic."""
        from lstmviz.core.equations import explain

        try:
            lines = explain(dd.b, t, u)
        except (IndexError, KeyError, AttributeError, ValueError):
            self.equations.clear()
            return
        rows = []
        for gate, line in lines:
            name = gate or line.split("=", 1)[0].strip()  # a state's line: "c = f·c_(t-1) …"
            differs = False
            va, vb = getattr(dd.a, name, None), getattr(dd.b, name, None)
            if va is not None and vb is not None and u < va.shape[1]:
                d = float(vb[t, u]) - float(va[t, u])
                differs = not abs(d) <= tol
            colour = "#b00020" if differs else "#222222"
            rows.append(f"<span style='color:{colour}'>{html.escape(line)}</span>")
        self.equations.setHtml(
            "<div style='font-family:monospace'><b>B</b>: " + "<br>".join(rows) + "</div>"
        )


def _name(path: str | None) -> str:
    from pathlib import Path

    return Path(path).name if path else "(in memory)"
