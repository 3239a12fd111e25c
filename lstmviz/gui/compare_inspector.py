"""Compare mode in the unit inspector: B's equation lines under A's for the selected unit.

The inspector's ``companion`` (see ``UnitInspector.refresh``): B's lines come from the same
equation text as A's (``equation_text.explain`` on B's trace of the paired direction), so they
pair line by line; a line whose value or whose terms differ from A's by more than the
comparison's tolerance is red and names the terms (``W_h·h_(t-1) +0.120``). B's pre-activation
sums go beside A's in the bar chart. While the compare job runs, or when A's layer has no
partner, one line says so instead: never a stale number. Outside compare mode (or with the
Compare dock's box off) the companion returns None and the inspector is the single-model one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from lstmviz.core.equations import explain
from lstmviz.gui import cell_rows
from lstmviz.gui.compare_debugger import DIFFERS, paired
from lstmviz.gui.compare_session import CompareSession
from lstmviz.gui.unit_inspector import UnitInspector
from lstmviz.workspace import Change, Event, Workspace

__all__ = ["CompareInspector", "Other"]

ALWAYS_ON = Qt.ScrollBarPolicy.ScrollBarAlwaysOn
AS_NEEDED = Qt.ScrollBarPolicy.ScrollBarAsNeeded  # the inspector's own (Qt's default)


@dataclass(frozen=True)
class Other:
    """What the inspector shows of B: a one-line ``message`` and, when B's numbers are in,
    ``lines``: ``(key, B's line, differs, note)`` per equation, ``note`` naming the terms
    whose values differ from A's (``W_h·h +0.120``)."""

    message: str
    lines: tuple[tuple[str, str, bool, str], ...] = ()

    def header_html(self) -> str:
        """The first paragraph: whose numbers follow (or why B's are not shown)."""
        text = html.escape(self.message)
        if self.lines:
            text += (
                f" — B's line under each of A's (<span style='color:{DIFFERS}'>≠</span> differs;"
                f" <span style='color:{DIFFERS}'>◇</span> B's sum)"
            )
        return f"<p style='margin:3px 0;color:#555'><b>compare</b> {text}</p>"

    def line_html(self, key: str) -> str:
        """B's line for the equation ``key`` (a gate, a state), red with the differing terms
        when it differs from A's; empty when B has no such line."""
        for k, line, differs, note in self.lines:
            if k == key:
                colour = DIFFERS if differs else "#666666"
                mark = (
                    f" <span style='color:{DIFFERS}'>≠ {html.escape(note)}</span>"
                    if differs
                    else ""
                )
                return (
                    f"<p style='margin:0 0 4px 14px'><span style='font-family:monospace;"
                    f"color:{colour}'>B: {html.escape(line)}</span>{mark if differs else ''}</p>"
                )
        return ""


class CompareInspector:
    """The unit inspector's ``companion`` in compare mode: B's equations beside A's, and
    B's pre-activation sums as red outlined diamonds beside A's black ones in its bar chart."""

    def __init__(self, inspector: UnitInspector, workspace: Workspace, session: CompareSession):
        self.inspector, self.workspace, self.session = inspector, workspace, session
        inspector.companion = self.other
        self.shown = True  # the Compare dock's "B and Δ in the debugger" box
        self.sums_b = pg.ScatterPlotItem(
            symbol="d", size=12, pen=pg.mkPen(DIFFERS, width=2), brush=pg.mkBrush(None)
        )
        self.sums_b.setToolTip("B's pre-activation (sum of its terms; on the edge if beyond)")
        self.sums_b.setZValue(5)
        self.sums_b.setVisible(False)
        inspector.plot.addItem(self.sums_b)
        session.subscribe(self._on_session)
        workspace.subscribe(Change.TRACE, self._on_trace)

    def _on_trace(self, _event: Event) -> None:
        if self.workspace.trace is None:  # A computes: the inspector is cleared, so are B's
            self.sums_b.setVisible(False)

    def set_shown(self, shown: bool) -> None:
        if shown != self.shown:
            self.shown = shown
            self.inspector.refresh()

    def _on_session(self, what: str) -> None:
        if what in ("comparison", "busy"):
            self.inspector.refresh()

    def other(self, layer: int, direction: int, t: int, u: int) -> Other | None:
        """None outside compare mode (the inspector is then exactly the single-model one)."""
        other = self._other(layer, direction, t, u)
        if other is None or not other.lines:
            self.sums_b.setVisible(False)
        # B's lines make the text overflow: with the scroll bar there from the start, a new
        # step lays the text out once, not again when the bar appears (~0.6 ms a step)
        policy = AS_NEEDED if other is None else ALWAYS_ON
        browser = self.inspector.browser
        if browser.verticalScrollBarPolicy() != policy:
            browser.setVerticalScrollBarPolicy(policy)
        return other

    def _other(self, layer: int, direction: int, t: int, u: int) -> Other | None:
        session = self.session
        if not self.shown or (session.model_b is None and not session.busy):
            return None
        found = paired(self.workspace, session)
        if isinstance(found, str):
            return Other(found)
        dd = found
        if (dd.layer_a, dd.direction) != (layer, direction) or not 0 <= t < dd.n_steps:
            return Other("B: computing…")
        if u >= cell_rows.hidden_size(dd.b):
            return Other(f"B: layer {dd.layer_b} has no unit {u}")
        sums = {}
        tol = session.comparison.tol
        cell = dd.b.cell
        lines = []
        for gate, line in explain(dd.b, t, u):
            key = gate or line.split(" ", 1)[0]
            note, differs = "", False
            if gate is not None:
                ta, tb = dd.a.gate_terms_at(gate, t, u), dd.b.gate_terms_at(gate, t, u)
                sums[gate] = sum(tb.values())
                parts = []
                for k, vb in tb.items():
                    d = vb - ta.get(k, 0.0)
                    if not abs(d) <= tol:
                        parts.append(f"{cell_rows.term_labels(cell, k)} {d:+.3g}")
                note = ", ".join(parts)
                differs = bool(parts)
            attr = key if key in dd.quantities or key in ("m", "act_c") else None
            if attr is not None and hasattr(dd.a, attr):
                va, vb = getattr(dd.a, attr), getattr(dd.b, attr)
                if u < va.shape[1] and u < vb.shape[1]:
                    d = float(vb[t, u]) - float(va[t, u])
                    if not abs(d) <= tol:
                        differs = True
                        note = f"{note}; Δ{key} {d:+.3g}" if note else f"Δ{key} {d:+.3g}"
            lines.append((key, line, differs, note))
        x = self.inspector.sums.getData()[0]  # A's diamonds: one per gate, in the cell's order
        if len(x) == len(cell.gate_names) and len(sums) == len(x):
            # on the edge of A's fixed scale when beyond it (a doubled bias): seen, not lost
            lo, hi = self.inspector.plot.vb.viewRange()[1]
            y = np.clip([sums[g] for g in cell.gate_names], lo, hi)
            self.sums_b.setData(x=x + 0.35, y=y)
            self.sums_b.setVisible(True)
        name = session.path_b or "model B"
        return Other(f"B = {name.rsplit('/', 1)[-1]}, layer {dd.layer_b}", tuple(lines))
