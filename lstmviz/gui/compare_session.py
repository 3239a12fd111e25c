"""Compare mode's state: model B beside the workspace's model A, and their ``Comparison``.

Qt-free, like the workspace it follows: loading B and running both models are jobs on the
workspace's runner (a thread-pool worker in the window, inline in scripts), of one kind
"compare", so a newer request cancels an older one and a stale result never reaches a view.
When A or the sequence changes the comparison is recomputed on the new pair; B stays.
Views subscribe with ``subscribe(listener)`` and hear "comparison", "busy" or "error".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lstmviz.comparison import Comparison, compare
from lstmviz.core.model import LSTMModel
from lstmviz.workspace import Change, Event, Workspace
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.states import has_stored_states, initial_states, run_cost

logger = logging.getLogger(__name__)

#: Values of B's derived pre-activation arrays computed ahead in the worker (64 MB).
MATERIALIZE_LIMIT = 16_000_000

#: Loading a file always runs in a worker (its cost is unknown until it is read).
LOAD_COST = 1e12

Listener = Callable[[str], None]


def prepared(c: Comparison, job: Job) -> Comparison:
    """Compute in the worker what the view draws first (every paired direction's max |Δ|
    per step, each quantity's and all together), so the GUI thread only sets the data."""
    for dd in c.deltas:
        job.check()
        for q in (None, *dd.quantities):
            dd.max_per_step(q)
    # B's equations, and the inspector's terms that differ between A and B, read both runs'
    # pre-activation terms (4 arrays of T × 4H each): derived here while they are small (A's
    # took 0.14 s on the GUI thread at 3 × 1024 units, T = 102); a long run derives them when
    # the equations are first shown
    size = sum(2 * dd.b.h.shape[0] * dd.b.weights.W_x.shape[0] * 4 for dd in c.deltas)
    if size <= 2 * MATERIALIZE_LIMIT:
        for dd in c.deltas:
            for trace in (dd.b, dd.a):
                job.check()
                trace.materialize()
    return c


class CompareSession:
    """Model B, the comparison and the hand-made pairing, for one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path_b: str | None = None
        self.model_b: LSTMModel | None = None
        self.options_b: dict[str, Any] = {}
        self.comparison: Comparison | None = None
        self.pairs: tuple[tuple[int, int], ...] | None = None  # None: by shape and order
        self.message = ""
        self._listeners: list[Listener] = []
        workspace.subscribe((Change.MODEL, Change.SEQUENCE, Change.STATES), self._on_inputs)

    # -- listeners -------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, what: str) -> None:
        for listener in tuple(self._listeners):
            listener(what)

    @property
    def active(self) -> bool:
        return self.model_b is not None or "compare" in self.workspace.jobs

    @property
    def busy(self) -> bool:
        return "compare" in self.workspace.jobs

    # -- requests --------------------------------------------------------------------------------
    def open(self, path: str | Path | LSTMModel, wait: bool = False, **options: Any) -> bool:
        """Load ``path`` as model B (or take a model already loaded) and compare it with the
        open model. With ``wait`` in this thread (True if it worked); else in a worker,
        ending with a "comparison" or "error"."""
        a = self.workspace.model
        if a is None:
            return self._fail("Open a model first, then compare another one with it")
        given = path if isinstance(path, LSTMModel) else None
        path = (given.source_path or "model B") if given is not None else str(path)
        x = self._sequence()

        def work(job: Job) -> tuple[LSTMModel, Comparison]:
            from lstmviz.io import load_model

            b = given if given is not None else load_model(path, **options)
            job.report(0.5)
            return b, prepared(compare(a, b, x, **self._states(a, b)), job)

        ok: list[bool] = []

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None or result is None:
                self._fail(f"{Path(path).name}: {error}" if error else f"{path}: cancelled")
                return
            self.path_b, self.options_b = path, dict(options)
            self.model_b, self.comparison = result
            self.pairs = None
            self.message = ""
            ok.append(True)
            self._notify("comparison")

        label = f"comparing with {Path(path).name}"
        self.workspace.submit("compare", label, work, done, LOAD_COST, wait)
        if "compare" in self.workspace.jobs:
            self._notify("busy")
        return bool(ok) if wait else True

    def set_pairs(self, pairs: Iterable[tuple[int, int]] | None, wait: bool = False) -> bool:
        """Re-pair the layers by hand (None: back to shape and order) and recompute."""
        if self.model_b is None or self.workspace.model is None:
            return False
        new = None if pairs is None else tuple((int(i), int(j)) for i, j in pairs)
        from lstmviz.comparison.pairing import check_pairs

        if new is not None:
            try:
                check_pairs(self.workspace.model, self.model_b, new)
            except ValueError as exc:
                return self._fail(str(exc))
        self.pairs = new
        return self.recompute(wait)

    def recompute(self, wait: bool = False) -> bool:
        """Compare again (new A, sequence or pairs); cheap pairs inline, large ones in a worker."""
        a, b = self.workspace.model, self.model_b
        if a is None or b is None:
            return False
        x, pairs = self._sequence(), self.pairs

        states = self._states(a, b)

        def work(job: Job) -> Comparison:
            return prepared(compare(a, b, x, pairs=pairs, **states), job)

        ok: list[bool] = []

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None or result is None:
                self._fail(f"comparing with {Path(self.path_b or '').name}: {error}")
                return
            self.comparison = result
            self.message = ""
            ok.append(True)
            self._notify("comparison")

        steps = 64 if x is None else x.shape[0]
        cost = run_cost(a, steps) + run_cost(b, steps)
        self.workspace.submit("compare", "comparing the two models", work, done, cost, wait)
        if "compare" in self.workspace.jobs:
            self._notify("busy")
        return bool(ok) or not wait

    def close(self) -> None:
        """Leave compare mode."""
        self.workspace.cancel("compare")
        self.path_b = self.model_b = self.comparison = None
        self.pairs = None
        self._notify("comparison")

    # -- helpers ---------------------------------------------------------------------------------
    def _states(self, a: LSTMModel, b: LSTMModel) -> dict[str, Any]:
        """The initial states the debugger runs A from (typed in its h0/c0 tab, else the
        file's), for both models, so the compare readout shows the debugger's numbers for A.
        Zeros (compare's default) when A starts from zeros or B's layers differ in shape."""
        try:
            return self._same_states(a, b)
        except (AttributeError, ValueError):  # a cell without a c state, a typed bad shape
            return {}

    def _same_states(self, a: LSTMModel, b: LSTMModel) -> dict[str, Any]:
        states = self.workspace.states
        if not states and not has_stored_states(a):
            return {}
        if [
            (len(la.directions), la.directions[0].output_size, la.hidden_size) for la in a.layers
        ] != [
            (len(lb.directions), lb.directions[0].output_size, lb.hidden_size) for lb in b.layers
        ]:
            return {}
        h0, c0 = initial_states(a, states or {(0, 0): _stored(a.layers[0].directions[0])})
        return {} if h0 is None else {"h0": h0, "c0": c0}

    def _sequence(self) -> np.ndarray | None:
        x = self.workspace.sequence
        model = self.workspace.model
        if x is None or model is None or x.shape[1] != model.input_size:
            return None
        return np.asarray(x, dtype=np.float32)

    def _fail(self, message: str) -> bool:
        self.message = message
        logger.debug("compare: %s", message)
        self._notify("error")
        return False

    def _on_inputs(self, event: Event) -> None:
        if self.model_b is None:
            return
        if event.change is Change.MODEL:
            self.pairs = None  # the old pairing may not fit the new model
        self.recompute()


def _stored(w) -> tuple[np.ndarray, np.ndarray]:
    """A direction's stored initial states (zeros where the file has none)."""
    h0 = np.zeros(w.output_size) if w.h0 is None else np.asarray(w.h0)
    c0 = np.zeros(w.hidden_size) if getattr(w, "c0", None) is None else np.asarray(w.c0)
    return h0, c0
