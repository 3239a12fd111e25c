"""Select and match as workspace jobs: the corpus states kept per (model, corpus, layer,
direction, quantity), ``select`` on the current sequence, ``match`` over a corpus with its
progress and cancel (a mixin of ``ExploreSession``, so the session module stays about state).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lstmviz.core import compiled
from lstmviz.core.trace import Trace
from lstmviz.workspace.events import Event
from lstmviz.workspace.jobs import Job

FILE_COST = float("inf")  # reading a file or a corpus run never runs inline on the GUI thread
MATCH_KIND = "explore"  # the corpus run and match job (a newer query cancels the older one)
SELECT_KIND = "explore-select"
KEPT_STATES = 2  # corpus runs kept (the current sequence's and the corpus')


class Topic(enum.Enum):
    """What changed in the session (one event per kind, only on change)."""

    VOCABULARY = "vocabulary"
    CORPUS = "corpus"
    ANNOTATIONS = "annotations"
    LABELS = "labels"  # the current sequence's tokens as text (or None: step numbers)
    MATCHES = "matches"  # a finished query (or cleared: new model, corpus or layer)
    PROGRESS = "progress"  # the corpus run started, progressed, finished or was cancelled
    ERROR = "error"  # a file or a run failed: ``message``; the previous state stays


def explore_api():  # imported on first use: a window that never explores never loads it
    import lstmviz.explore as explore

    return explore


class ExploreQueries:
    """``select_units``, ``run_query``, ``cancel_query`` of an ``ExploreSession``."""

    workspace: Any
    selection: Any
    corpus: Any
    corpus_name: str
    document: int | None
    unit_set: Any
    matches: list[Any]
    matched_in: Any
    progress: float | None
    _states: dict[tuple, Any]
    _sequence_corpus: tuple[tuple[int, int], Any] | None

    def _emit(self, topic: Topic) -> None: ...  # the session's
    def fail(self, message: str) -> None: ...
    def sequence_corpus(self) -> Any: ...
    def corpus_start(self) -> int | None: ...

    def _keep(self, key: tuple, states: Any) -> None:
        """Keep ``states`` for the next query; only the last ``KEPT_STATES`` (a 1M-token
        corpus at H = 512 is 1 GB of float16: a few layers or quantities would not fit)."""
        self._states.pop(key, None)
        self._states[key] = states
        while len(self._states) > KEPT_STATES:
            self._states.pop(next(iter(self._states)))

    def cached_states(self, corpus: Any, layer: int, direction: int, quantity: str) -> Any:
        return self._states.get(self._key(corpus, layer, direction, quantity))

    def _key(self, corpus: Any, layer: int, direction: int, quantity: str) -> tuple:
        return (id(self.workspace.model), id(corpus), int(layer), int(direction), quantity)

    def _states_work(
        self, corpus: Any, layer: int, direction: int, quantity: str
    ) -> Callable[[Job], Any]:
        """A job's work: the kept states of ``corpus``, else ``run_corpus`` with the job's
        progress and cancel (a cancelled run raises; nothing partial is kept)."""
        model, kept = self.workspace.model, self.cached_states(corpus, layer, direction, quantity)
        trace = self.debugger_run(corpus)

        def work(job: Job) -> Any:
            if kept is not None:
                return kept
            if trace is not None:  # the debugger's run of this very sequence: no second run
                return explore_api().CorpusStates.from_trace(
                    trace, layer, corpus=corpus, direction=direction, quantities=(quantity,)
                )
            # the compiled engine only once it is ready (the workspace's rule): its first
            # load or compile holds the GIL 0.15-0.35 s (seconds on a first-ever compile)
            engine = "auto" if compiled.ready() else "numpy"
            return explore_api().run_corpus(
                model, corpus, layer=layer, quantities=(quantity,), direction=direction,
                progress=lambda done, total: job.report(done / max(total, 1)),
                cancel=job._cancel, engine=engine,
            )  # fmt: skip

        return work

    def debugger_run(self, corpus: Any) -> Trace | None:
        """The debugger's run when it is the run of ``corpus`` (the current sequence as a
        corpus): the current model's, of the current sequence, from zero initial states
        (as ``run_corpus`` starts), recorded whole, with no newer run under way. Else None
        (the caller runs the sequence itself: never a stale run)."""
        ws = self.workspace
        own = self._sequence_corpus
        if own is None or corpus is not own[1] or ws.states or "run" in ws.jobs:
            return None
        trace, x = ws.trace, ws.sequence
        if not isinstance(trace, Trace) or trace.model is not ws.model or x is None:
            return None
        if trace.x.shape != x.shape or corpus.n_tokens != len(x):
            return None
        if trace.x is x or np.array_equal(trace.x, np.asarray(x).astype(trace.x.dtype)):
            return trace
        return None

    def select_units(
        self,
        start: int,
        stop: int,
        threshold: float,
        *,
        off_before: int = 0,
        off_after: int = 0,
        wait: bool = False,
    ) -> Job | None:
        """``select`` on the current sequence's ``[start, stop)``, for the selected layer and
        direction and the unit set's quantity; the units found become the unit set."""
        ws = self.workspace
        corpus = self.sequence_corpus()
        if ws.model is None or corpus is None:
            self.fail("Open a model and a sequence before selecting units")
            return None
        s, q, model = ws.selection, self.selection.quantity, ws.model
        states_of = self._states_work(corpus, s.layer, s.direction, q)
        key = self._key(corpus, s.layer, s.direction, q)

        def work(job: Job) -> tuple[Any, Any]:
            states = states_of(job)
            found = explore_api().select(
                states, start, stop, threshold, off_before=off_before, off_after=off_after,
                quantity=q,
            )  # fmt: skip
            return states, found

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None or result is None:
                if error is not None and "Cancelled" not in type(error).__name__:
                    self.fail(f"Selecting failed: {error}")
                return
            if ws.model is model:
                self._keep(key, result[0])
                self.unit_set = result[1]
                self.selection.set_units(result[1].units)

        label = f"selecting units in steps {start}-{stop - 1}"
        return ws.submit(SELECT_KIND, label, work, done, FILE_COST, wait)

    def run_query(
        self,
        units: Sequence[int],
        *,
        corpus: Any = None,
        method: str = "overlap",
        top: int = 20,
        threshold: float | None = None,
        wait: bool = False,
    ) -> Job | None:
        """Run the model over ``corpus`` (default: the open corpus, else the current sequence)
        in a job unless its states are kept, then ``match`` the unit set (with the threshold
        of the last Select); MATCHES when it is done."""
        ws = self.workspace
        model = ws.model
        if corpus is None:
            corpus = self.corpus if self.corpus is not None else self.sequence_corpus()
        if model is None or corpus is None:
            self.fail("Open a model (and a corpus or a sequence) before matching")
            return None
        if not units:
            self.fail("The unit set is empty: select a range and press Select, or pick units")
            return None
        s, q = ws.selection, self.selection.quantity
        query, exclude = self._query(units, corpus, threshold, q)
        if query is None:
            self.fail("Select a range first (drag over the text): it sets the match length")
            return None
        states_of = self._states_work(corpus, s.layer, s.direction, q)
        key = self._key(corpus, s.layer, s.direction, q)

        def work(job: Job) -> tuple[Any, list[Any]]:
            states = states_of(job)
            job.check()
            found = explore_api().match(
                states, query, top=top, method=method, exclude_query=exclude
            )
            return states, list(found)

        def done(result: Any, error: BaseException | None) -> None:
            self._set_progress(None)
            if error is not None or result is None:
                if error is not None and "Cancelled" not in type(error).__name__:
                    self.fail(f"Matching failed: {error}")
                return
            states, matches = result
            if ws.model is model:
                self._keep(key, states)
                self.matches, self.matched_in = matches, corpus
                self._emit(Topic.MATCHES)

        self._set_progress(0.0)
        what = self.corpus_name if corpus is self.corpus else "the current sequence"
        return ws.submit(MATCH_KIND, f"matching in {what}", work, done, FILE_COST, wait)

    def _query(
        self, units: Sequence[int], corpus: Any, threshold: float | None, quantity: str
    ) -> tuple[Any, bool]:
        """The ``UnitSet`` to match: the last Select's with the edited units (its range and
        threshold), else one made from the span; its range in ``corpus`` positions, and
        whether that range lies in ``corpus`` (then it is left out of the matches)."""
        explore = explore_api()
        last, span = self.unit_set, self.selection.span
        if last is not None and last.quantity == quantity and span == (last.start, last.stop):
            base = last.with_units(units) if threshold is None else last
        elif span is not None:
            thr = explore.DEFAULT_THRESHOLD if threshold is None else threshold
            base = explore.UnitSet(units, span[0], span[1], float(thr), quantity=quantity)
        else:
            return None, False
        base = base.with_units(units) if not np.array_equal(base.units, units) else base
        offset = self.corpus_start() if corpus is self.corpus else None
        if offset is not None:
            start = offset + base.start
            return dataclasses.replace(base, start=start, stop=start + base.length), True
        return base, corpus is not self.corpus

    def _on_busy(self, _event: Event) -> None:
        """The corpus run's progress, read on the GUI thread from the workspace's job."""
        job = self.workspace.jobs.get(MATCH_KIND)
        if job is not None:
            self._set_progress(job.progress)

    def cancel_query(self) -> None:
        self.workspace.cancel(MATCH_KIND)
        self._set_progress(None)

    def _set_progress(self, value: float | None) -> None:
        if value != self.progress:
            self.progress = value
            self._emit(Topic.PROGRESS)

    def clear_matches(self) -> None:
        if self.matches or self.matched_in is not None:
            self.matches, self.matched_in = [], None
            self._emit(Topic.MATCHES)
