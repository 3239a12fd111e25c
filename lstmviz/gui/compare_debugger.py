"""Compare mode in the debugger: B and Δ = B − A beside A in the step view (and, through
``compare_inspector``, B's equations under A's in the unit inspector).

The step view keeps drawing A (the workspace's trace) as it always does; this module adds, in
the same plot and only while a model B is open, a block of B's rows (on A's scales) and a block
of Δ rows (each on a symmetric scale ±max |Δ| of that row over the run, so 0 is white and the
sign reads at once), with the first divergence starred at its step.

Both follow the workspace (step, selection, trace) and the ``CompareSession`` (a new B, a
re-pairing, busy). The two blocks are one RGBA image coloured here (one paint per step instead
of 14), created once; a step fills preallocated arrays and swaps the image's data. While the
compare job runs, or when A's layer has no partner in B, the blocks are empty and the plot's
title says why: never a stale number. Leaving compare mode (or the Compare dock's "B, Δ in
debugger" box) hides them and has the step view lay out A's direction again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from lstmviz.comparison import DirectionDelta
from lstmviz.gui import cell_rows
from lstmviz.gui import plot_style as ps
from lstmviz.gui.compare_session import CompareSession
from lstmviz.gui.step_view import StepView, direction_caption
from lstmviz.workspace import Change, Event, Workspace

__all__ = ["CompareStepRows", "attach", "delta_limit", "paired"]

#: The step view's stretch of its gates-and-states plot alone, and with B's and Δ's rows.
STRETCH_SINGLE, STRETCH_COMPARE = 7, 16
#: The term breakdown's stretch alone, and in compare mode: it shows A only, and beside the
#: Text dock 21 rows of A, B and Δ in 150 px shrank to 7 pt smudges ("A c t", "B act c").
TERMS_SINGLE, TERMS_COMPARE = 10, 5
#: B's numbers that differ from A's.
DIFFERS = "#b00020"


def paired(workspace: Workspace, session: CompareSession) -> DirectionDelta | str:
    """The paired direction of the workspace's selection, or why there is none to show now
    (the compare job runs, B's comparison belongs to another A, no partner in B)."""
    c, s = session.comparison, workspace.selection
    if session.busy:
        return "B: computing… (both models run in the background)"
    if c is None:
        return "B: no comparison yet"
    if c.a is not workspace.model:
        return "B: computing… (the comparison is being redone for this model)"
    for dd in c.deltas:
        if (dd.layer_a, dd.direction) == (s.layer, s.direction):
            trace = workspace.trace
            if trace is not None and trace.n_steps != dd.n_steps:
                return "B: computing… (the comparison is being redone for this sequence)"
            return dd
    return f"B: A's layer {s.layer} has no partner in B (re-pair in the Compare dock)"


def delta_limit(dd: DirectionDelta, attr: str, tol: float) -> float:
    """Half the width of a Δ row's symmetric scale: max |B − A| of ``attr`` over the run (the
    worker's max per step when it is a compared quantity), at least ``tol`` so that float
    noise between equal models stays near white. Kept on ``dd`` per attribute."""
    cache = dd.__dict__.setdefault("_view_limits", {})
    lim = cache.get(attr)
    if lim is None:
        if attr in dd.quantities and getattr(dd.a, attr).shape == getattr(dd.b, attr).shape:
            m = np.asarray(dd.max_per_step(attr))
        else:
            a, b = getattr(dd.a, attr), getattr(dd.b, attr)
            m = np.abs(np.subtract(b, a, dtype=np.float32)).reshape(len(a), -1).max(axis=1)
        m = m[np.isfinite(m)]
        lim = cache[attr] = float(m.max(initial=0.0))
    return max(lim, tol, 1e-12)


class CompareStepRows:
    """B's rows and Δ's rows under A's in a ``StepView`` (see the module docstring)."""

    def __init__(self, view: StepView, workspace: Workspace, session: CompareSession) -> None:
        self.view, self.workspace, self.session = view, workspace, session
        #: B's block and Δ's block as ONE image of RGBA rows coloured here: 14 one-row
        #: images (an LSTM's 7 rows twice) cost ~0.3 ms of paint each at every step.
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setVisible(False)
        view.states.addItem(self.image)
        #: the two colour tables, 0 the gates' and 1 the signed one (Δ's, B's g, c, h)
        self._luts = np.stack([_rgba(ps.lut(ps.GATE_CMAP)), _rgba(ps.lut(ps.SIGNED_CMAP))])
        self._names: tuple[str, ...] = ()
        #: (2n, H) B's rows then Δ's at the step shown (float32; NaN stays NaN)
        self.values = np.zeros((0, 0), np.float32)
        self._lo = self._scale = np.zeros((0, 1), np.float32)
        self._table = np.zeros((0, 1), np.intp)  # colour table per row
        self._rgba = np.zeros((0, 0, 4), np.uint8)
        self._placed: tuple = ()
        self._rect: tuple = ()
        self.dividers = [
            pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#333333", width=2))
            for _ in range(2)
        ]
        self.marker = pg.ScatterPlotItem(
            symbol="star", size=16, pen=pg.mkPen("k"), brush=pg.mkBrush(ps.HIT_COLOR)
        )
        self.marker.setToolTip("first divergence (|Δ| > tolerance)")
        self.marker.setZValue(20)  # above the rows added later
        for line in self.dividers:
            line.setZValue(15)
        for item in (*self.dividers, self.marker):
            item.setVisible(False)
            view.states.addItem(item)
        self.active = False  # B's and Δ's rows laid out in the view
        self.shown = True  # the Compare dock's "B and Δ in the debugger" box
        self.message = ""
        self.title = ""  # the states plot's title in compare mode (shown elided)
        self._key: tuple = ()
        self._dd: DirectionDelta | None = None
        #: per row, looked up once per direction: (name, A array, B array, B levels, Δ levels)
        self._arrays: list[tuple[str, np.ndarray, np.ndarray, tuple, tuple]] = []
        self._base_b = self._base_d = 0
        self._div: tuple[int, int, float] | None = None  # (step, unit, y) in this direction
        workspace.subscribe((Change.TRACE, Change.SELECTION), self._on_selection)
        workspace.subscribe(Change.STEP, self._on_step)
        session.subscribe(self._on_session)
        view.scene().sigMouseMoved.connect(self._on_scene_moved)

    # -- events ----------------------------------------------------------------------------------
    def _on_session(self, what: str) -> None:
        if what in ("comparison", "busy"):
            self._key = ()  # a new B, a re-pairing or a job: lay out again
            self._on_selection(None)

    def _on_selection(self, _event: Event | None) -> None:
        ws = self.workspace
        if not self.shown or (self.session.model_b is None and not self.session.busy):
            self.leave()
            return
        trace = ws.trace
        if trace is None:  # A computes: the step view says so, and B's rows stay empty
            self._clear("")
            self._key = ()
            return
        s = ws.selection
        dt = trace.layers[s.layer].directions[s.direction]
        found = paired(ws, self.session)
        key = (dt, found if isinstance(found, str) else id(found), self.session.comparison)
        if key != self._key:
            self._key = key
            self._layout(dt, found)
        self.show_step(ws.step)

    def _on_step(self, _event: Event) -> None:
        # also behind another tab (no paint then, ~0.3 ms): shown again, it is never stale
        if self.active:
            self.show_step(self.workspace.step)

    def set_shown(self, shown: bool) -> None:
        """Show B's and Δ's rows in compare mode (True) or only A's, as outside it."""
        if shown != self.shown:
            self.shown = shown
            self._key = ()
            self._on_selection(None)

    # -- layout ----------------------------------------------------------------------------------
    def _layout(self, dt, found: DirectionDelta | str) -> None:
        """Rows, ticks, scales and the first-divergence marker for one direction (or empty
        rows and a title saying why there is nothing to show)."""
        view = self.view
        rows = cell_rows.rows(dt)
        n = len(rows)
        p = int(cell_rows.projected(dt))
        self._base_b, self._base_d = n + p, 2 * n + p
        self._dd = found if isinstance(found, DirectionDelta) else None
        self.message = found if isinstance(found, str) else ""
        levels = cell_rows.run_levels(dt)[0]
        tol = self.session.comparison.tol if self.session.comparison is not None else 0.0
        self._arrays = []
        lo, hi, table = [0.0] * (2 * n), [1.0] * (2 * n), [1] * (2 * n)
        ticks = [(r + 0.5, f"A {row.label}") for r, row in enumerate(rows)]
        if p:
            ticks.append((n + 0.5, f"A {cell_rows.projection_label(dt)}"))
        for r, row in enumerate(rows):
            lim = 1.0
            if self._dd is not None:
                a, b = getattr(self._dd.a, row.attr), getattr(self._dd.b, row.attr)
                lim = delta_limit(self._dd, row.attr, tol)
                self._arrays.append((row.name, a, b, levels[row.name], (-lim, lim)))
            lo[r], hi[r] = levels[row.name]  # B on A's scale: the same colour, the same value
            table[r] = 0 if row.kind == "gate" else 1
            lo[n + r], hi[n + r] = -lim, lim
            ticks.append((self._base_b + r + 0.5, f"B {row.name}"))
            ticks.append((self._base_d + r + 0.5, f"Δ {row.name} ±{lim:.2g}"))
        H = cell_rows.hidden_size(dt)
        self._names = tuple(row.name for row in rows)
        self._lo = np.array(lo, np.float32)[:, None]
        span = np.maximum(np.array(hi, np.float32) - self._lo[:, 0], 1e-30)
        self._scale = ((len(self._luts[0]) - 1) / span).astype(np.float32)[:, None]
        self._table = np.array(table, np.intp)[:, None]
        self.values = np.full((2 * n, H), np.nan, np.float32)
        self._rgba = np.zeros((2 * n, H, 4), np.uint8)
        self._rect = (self._base_b, H, 2 * n)
        self.image.setVisible(True)
        self.image.clear()
        for line, y in zip(self.dividers, (self._base_b, self._base_d), strict=True):
            line.setValue(y)
            line.setVisible(True)
        view.states.getAxis("left").setTicks([ticks])
        view.fit_label_width()  # "Δ act_c ±1e-05" whole, not squeezed into 130 px
        view.states.setYRange(-0.7, 3 * n + p, padding=0)
        view.ci.layout.setRowStretchFactor(1, STRETCH_COMPARE)
        view.ci.layout.setRowStretchFactor(2, TERMS_COMPARE)
        self._div = None
        c = self.session.comparison
        div = c.first_divergence if c is not None and self._dd is not None else None
        note = ""
        if div is not None and (div.layer, div.direction) == (self._dd.layer_a, self._dd.direction):
            hit = self._dd.first(c.tol)
            q = hit[2] if hit is not None else rows[-1].name
            r = next((k for k, row in enumerate(rows) if q in (row.name, row.attr)), n - 1)
            self._div = (div.step, div.unit, self._base_d + r + 0.5)
            note = f"★ first divergence: step {div.step}, unit {div.unit}, {q} · "
        elif div is not None:
            note = f"first divergence in layer {div.layer}, direction {div.direction} · "
        # what matters first (an elided title keeps its start): the divergence, or the reason
        # B's rows are empty
        # (short: the column is narrow beside the Compare dock; "rows A, B (its layer 0), Δ…"
        # was cut before Δ was explained)
        if self._dd is not None:
            title = f"{note}A · B (layer {self._dd.layer_b}) · Δ = B − A"
        else:
            title = self.message
        self.title = title
        short = "A · B · Δ = B − A" if self._dd is not None and not note else ""
        ps.fit_title(view.states, title, size="9pt", short=short)
        self.active = True
        if self._dd is None:
            self._clear(self.message)

    def _clear(self, message: str) -> None:
        self.image.clear()
        self.values[:] = np.nan
        self.marker.setData(x=[], y=[])
        self._arrays = []
        self.message = message

    def leave(self) -> None:
        """Back to the single-model step view, laid out by the step view itself."""
        if not self.active:
            return
        self.active = False
        self._key = ()
        self._dd = None
        self._clear("")
        self.image.setVisible(False)
        for line in self.dividers:
            line.setVisible(False)
        self.marker.setVisible(False)
        view, ws = self.view, self.workspace
        view.ci.layout.setRowStretchFactor(1, STRETCH_SINGLE)
        view.ci.layout.setRowStretchFactor(2, TERMS_SINGLE)
        trace, s = ws.trace, ws.selection
        if trace is not None:
            dt = trace.layers[s.layer].directions[s.direction]
            view.set_direction(dt, direction_caption(trace, s.layer, s.direction))
            view.set_unit(s.unit)

    # -- per step --------------------------------------------------------------------------------
    def show_step(self, t: int) -> None:
        """B's row and Δ = B − A of every row at step ``t``: data swapped, nothing created."""
        if not self._arrays:
            return
        t = min(max(t, 0), self._arrays[0][1].shape[0] - 1)
        n, vals = len(self._arrays), self.values
        for r, (_, a, b, _, _) in enumerate(self._arrays):
            vals[r] = b[t]
            np.subtract(vals[r], a[t], out=vals[n + r])
        # colour by each row's scale and table (what setImage's levels and LUT did per item)
        idx = (vals - self._lo) * self._scale
        np.nan_to_num(idx, copy=False, nan=0.0)
        np.clip(idx, 0, self._scale.dtype.type(len(self._luts[0]) - 1), out=idx)
        self._rgba[...] = self._luts[self._table, idx.astype(np.intp)]
        self.image.setImage(self._rgba, autoLevels=False)
        if self._placed != self._rect:  # after the image: setRect scales by its size
            y, width, height = self._rect
            self.image.setRect(-0.5, y, width, height)
            self._placed = self._rect
        div = self._div
        at = div is not None and div[0] == t
        self.marker.setVisible(at)
        if at:
            self.marker.setData(x=[div[1]], y=[div[2]])

    def delta_row(self, name: str) -> np.ndarray | None:
        """The Δ = B − A values shown in row ``name`` (``(1, H)``); None while not shown."""
        return self._shown(name, len(self._names))

    def b_row(self, name: str) -> np.ndarray | None:
        """B's values shown in row ``name`` (``(1, H)``); None while not shown."""
        return self._shown(name, 0)

    def _shown(self, name: str, offset: int) -> np.ndarray | None:
        if not self._arrays or self.image.image is None or name not in self._names:
            return None
        r = offset + self._names.index(name)
        return self.values[r : r + 1]

    # -- hover -----------------------------------------------------------------------------------
    def _on_scene_moved(self, pos) -> None:
        """Over a B or Δ row: A's, B's and Δ's value of that unit (after the step view's own
        hover text, which knows only A's rows)."""
        view = self.view
        if not self._arrays or not view.states.vb.sceneBoundingRect().contains(pos):
            return
        p = view.states.vb.mapSceneToView(pos)
        u, y = int(np.floor(p.x() + 0.5)), int(np.floor(p.y()))
        r = y - self._base_b if y < self._base_d else y - self._base_d
        if y < self._base_b or not 0 <= r < len(self._arrays):
            return
        name, a, b, _, _ = self._arrays[r]
        if not 0 <= u < a.shape[1]:
            return
        t = min(self.workspace.step, a.shape[0] - 1)
        va, vb = float(a[t, u]), float(b[t, u])
        view.hover.setText(
            f"unit {u}: {name}  A = {va:.4g}, B = {vb:.4g}, Δ = B − A = {vb - va:+.3g}"
        )


def _rgba(lut: np.ndarray) -> np.ndarray:
    """A colour table as RGBA rows (opaque)."""
    if lut.shape[1] == 4:
        return lut.astype(np.uint8)
    return np.concatenate([lut, np.full((len(lut), 1), 255, lut.dtype)], axis=1).astype(np.uint8)


def attach(panel, workspace: Workspace, session: CompareSession) -> tuple:
    """Give a debugger panel's step view and unit inspector their compare companions (once)."""
    from lstmviz.gui.compare_inspector import CompareInspector  # it imports this module

    found = getattr(panel, "_compare_debugger", None)
    if found is None:
        found = (
            CompareStepRows(panel.step_view, workspace, session),
            CompareInspector(panel.unit_inspector, workspace, session),
        )
        panel._compare_debugger = found
    return found
