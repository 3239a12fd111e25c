"""The text view's colours for a bounded trace: the tokens on screen, recomputed on demand.

A bounded trace (``core.checkpointed_trace``: a run of, say, a character model over a book,
10⁶ steps) keeps only checkpoints, so one unit's value at every step is a whole re-run
(minutes at H = 1024). A reader looks at a few hundred tokens at a time: ``LazyColours``
colours the blocks of ``BLOCK`` steps the view shows, recomputed from the checkpoints in
the window's worker (a job of kind ``KIND``, replaced when the view moves on), and keeps
what it has computed for this run, unit and quantity. Tokens not computed yet are grey
(``text_canvas.NO_VALUE``); the colour levels come from the trace's overview (the exact
min/max of the whole run), so a colour means the same value wherever it is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.gui.text_canvas import NO_VALUE
from lstmviz.gui.text_layout import colours
from lstmviz.workspace import Workspace
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.states import run_cost

#: Steps per recomputed block (a few chunks of the trace: ~0.1 s at H = 1024).
BLOCK = 256
#: Blocks one job computes at most (the rest when the view asks again).
MAX_BLOCKS = 16
KIND = "text colours"


class LazyColours:
    """Values, backgrounds and light-text flags of one unit over a bounded run, filled a
    block at a time as the view asks (``want``). ``on_filled`` is called on the window's
    thread when blocks arrive."""

    def __init__(self, workspace: Workspace, on_filled: Callable[[], None]) -> None:
        self.workspace = workspace
        self.on_filled = on_filled
        self.key: tuple[Any, ...] | None = None
        self.values = np.empty(0, np.float32)
        self.rgb = np.empty((0, 3), np.uint8)
        self.light = np.empty(0, bool)
        self.known = np.empty(0, bool)
        self.error = ""
        self._asked: list[int] = []  # the blocks the running job computes

    def reset(self, key: tuple[Any, ...], column: Any, n_steps: int,
              levels: tuple[float, float], lut: npt.NDArray) -> None:  # fmt: skip
        """A new run, unit or quantity (``key``): nothing computed yet. ``column``: the
        unit's step array, ``column[a:b]`` recomputes ``(b - a, 1)`` values."""
        if key == self.key:
            return
        self.workspace.cancel(KIND)
        self.key, self.column, self.levels, self.lut = key, column, levels, lut
        self.values = np.full(n_steps, np.nan, np.float32)
        self.rgb = np.empty((n_steps, 3), np.uint8)
        self.rgb[:] = NO_VALUE.red(), NO_VALUE.green(), NO_VALUE.blue()
        self.light = np.zeros(n_steps, bool)
        self.known = np.zeros(-(-n_steps // BLOCK), bool)
        self.error = ""

    def clear(self) -> None:
        if self.key is not None:
            self.workspace.cancel(KIND)
        self.key = None

    @property
    def computing(self) -> bool:
        return KIND in self.workspace.jobs

    def is_known(self, t: int) -> bool:
        return self.key is not None and bool(self.known[t // BLOCK])

    def want(self, t0: int, t1: int) -> None:
        """Steps [t0, t1) are on screen: compute the blocks of them not known yet (one job,
        replacing the previous one: the view moved on)."""
        if self.key is None or self.error:
            return
        b0, b1 = max(0, t0 // BLOCK), min(len(self.known), -(-t1 // BLOCK))
        missing = [b for b in range(b0, b1) if not self.known[b]][:MAX_BLOCKS]
        if not missing:
            return
        if self.computing and self._asked == missing:
            return  # already on it
        key, column, n = self.key, self.column, len(self.values)
        model = self.workspace.model

        def work(j: Job) -> list[tuple[int, np.ndarray]]:
            out = []
            for k, b in enumerate(missing):
                j.report(k / len(missing))  # raises when the view moved on (cancelled)
                a = b * BLOCK
                out.append((a, np.asarray(column[a : min(n, a + BLOCK)])[:, 0]))
            return out

        def done(result: list[tuple[int, np.ndarray]] | None, error: BaseException | None) -> None:
            if self.key != key:
                return  # another run, unit or quantity since
            if error is not None:
                self.error = str(error)
            else:
                for a, vals in result or []:
                    self._fill(a, vals)
            self.on_filled()

        cost = 0.0 if model is None else run_cost(model, len(missing) * BLOCK)
        self._asked = missing
        self.workspace.submit(KIND, "colouring the text", work, done, cost=cost)

    def _fill(self, a: int, vals: np.ndarray) -> None:
        b = a + len(vals)
        self.values[a:b] = vals
        self.rgb[a:b], self.light[a:b] = colours(vals, self.levels, self.lut)
        self.known[a // BLOCK] = True
