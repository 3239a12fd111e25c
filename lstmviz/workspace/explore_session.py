"""The explore state of one window, Qt-free: vocabulary, corpus, annotations, the current
sequence's tokens as text, the unit set, and the corpus run with its matches.

It is a view on the ``Workspace`` (it listens to MODEL and SEQUENCE, and loads documents
through ``set_sequence``), and talks to ``lstmviz.explore`` only through its public names
(``Vocabulary``, ``Corpus``, ``run_corpus``, ``select``, ``match``, ``Annotations``). Files
and corpus runs are workspace jobs (off the GUI thread, cancellable, stale results dropped);
the corpus states are kept per (model, corpus, layer, quantity), so a second query on the
same corpus answers without rerunning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.workspace.events import Change, Event, Subscribers
from lstmviz.workspace.explore_queries import (
    FILE_COST,
    MATCH_KIND,
    SELECT_KIND,
    ExploreQueries,
    Topic,
    explore_api,
)
from lstmviz.workspace.jobs import Job
from lstmviz.workspace.unit_selection import UnitSelection

FILE_KIND = "explore-file"
DOCUMENT_MODES = ("lines", "stream")  # a text corpus: one document per line, or one stream


#: Rows ``infer_ids`` checks first: a sequence whose first rows are not token ids is not a
#: token sequence, and the whole check of 10⁶ rows × 16 took 0.3 s on the GUI thread.
PROBE_ROWS = 256


def infer_ids(x: npt.NDArray, embedding: npt.NDArray | None) -> npt.NDArray | None:
    """Token ids of a sequence when its rows say them: rows of the model's embedding
    table, or one-hot rows (a character model's input); None for other numbers. The first
    ``PROBE_ROWS`` rows are checked first, so other numbers are told apart at once."""
    if x.ndim != 2 or not len(x):
        return None
    if len(x) > PROBE_ROWS and _ids_of_rows(x[:PROBE_ROWS], embedding) is None:
        return None
    return _ids_of_rows(x, embedding)


def _ids_of_rows(x: npt.NDArray, embedding: npt.NDArray | None) -> npt.NDArray | None:
    if embedding is not None and embedding.shape[1] == x.shape[1]:
        table = {row.tobytes(): k for k, row in enumerate(np.asarray(embedding, np.float64))}
        ids = [table.get(row.tobytes()) for row in np.asarray(x, np.float64)]
        return None if any(i is None for i in ids) else np.asarray(ids, dtype=np.int64)
    if x.shape[1] > 1 and np.all((x == 0) | (x == 1)) and np.all(x.sum(axis=1) == 1):
        return np.argmax(x, axis=1).astype(np.int64)
    return None


class ExploreSession(ExploreQueries):
    """``vocabulary``, ``corpus``, ``annotations``, ``labels`` (per step of the current
    sequence, or None), ``document`` (the corpus document shown, or None), ``selection``
    (the unit set), ``matches``, ``progress``; ``subscribe(topic, listener)``."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace
        self.selection = UnitSelection()
        self.vocabulary: Any = None
        self.vocabulary_name = ""
        self.corpus: Any = None
        self.corpus_name = ""
        self.annotations: Any = None
        self.annotations_name = ""
        self.labels: list[str] | None = None
        self.ids: npt.NDArray | None = None
        self.document: int | None = None
        self.matches: list[Any] = []
        self.matched_in: Any = None  # the corpus the matches index
        self.unit_set: Any = None  # the last ``select`` result (its range and threshold)
        self.progress: float | None = None  # None: no corpus run going
        self.message = ""
        self._states: dict[tuple, Any] = {}
        self._sequence_corpus: tuple[tuple[int, int], Any] | None = None
        self._start_for: tuple[tuple[int, int] | None, int | None] = (None, None)
        self._incoming: tuple[int, Any] | None = None  # (document, its x) being loaded
        self._listeners: Subscribers[Topic, Topic] = Subscribers(Topic)
        workspace.subscribe(Change.MODEL, self._on_model)
        workspace.subscribe(Change.SEQUENCE, self._on_sequence)
        workspace.subscribe(Change.BUSY, self._on_busy)
        workspace.subscribe(Change.SELECTION, self._on_layer)

    # -- events --------------------------------------------------------------------------------
    def subscribe(
        self, topics: Topic | tuple[Topic, ...], listener: Callable[[Topic], None]
    ) -> Callable[[], None]:
        """``listener(topic)`` on each change of those topics; returns the unsubscriber."""
        return self._listeners.subscribe(topics, listener)

    def _emit(self, topic: Topic) -> None:
        """At once, not queued as the workspace's events: a session listener that causes
        another topic hears it before the others hear the first (as it always did)."""
        for listener in self._listeners.of(topic):
            listener(topic)

    def fail(self, message: str) -> None:
        self.message = message
        self._emit(Topic.ERROR)

    # -- workspace events ----------------------------------------------------------------------
    def _on_model(self, _event: Event) -> None:
        self.workspace.cancel(MATCH_KIND)
        self.workspace.cancel(SELECT_KIND)
        self.unit_set = None
        self._states.clear()
        self._set_progress(None)
        self.clear_matches()
        model = self.workspace.model
        if model is not None:
            self.selection.clamp(max(w.hidden_size for lt in model.layers for w in lt.directions))
        self._on_layer(_event)

    def _on_layer(self, _event: Event) -> None:
        """A quantity the selected layer's cell lacks (``c`` on a GRU layer) becomes ``h``,
        before any view reads it (the session subscribes to the workspace before them)."""
        model = self.workspace.model
        if model is not None:
            s = self.workspace.selection
            self.selection.fit(model.layers[s.layer].directions[s.direction].cell)

    def _on_sequence(self, _event: Event) -> None:
        x = self.workspace.sequence
        incoming, self._incoming = self._incoming, None
        if incoming is not None and x is not None and np.shape(incoming[1]) == x.shape:
            self.document = incoming[0]
        else:
            self.document = None
        self.relabel()

    # -- tokens as text ------------------------------------------------------------------------
    def relabel(self) -> None:
        """Work out the current sequence's tokens and their text; LABELS if they changed."""
        ws = self.workspace
        x = ws.sequence
        ids: npt.NDArray | None = None
        labels: list[str] | None = None
        doc = self.current_document()
        if x is not None and doc is not None:
            ids = None if doc.ids is None else np.asarray(doc.ids)
            labels = None if doc.tokens is None else _as_text(doc.tokens)
        elif x is not None and ws.model is not None:
            ids = infer_ids(x, ws.model.embedding)
        if labels is None and ids is not None:
            labels = self._decode(ids)
        changed = labels != self.labels or not _same(ids, self.ids)
        self.ids, self.labels = ids, labels
        if changed:
            self._emit(Topic.LABELS)

    def current_document(self) -> Any:
        """The corpus document the debugger shows, or None (a sequence of its own)."""
        if self.corpus is None or self.document is None:
            return None
        return self.corpus.documents[self.document]

    def _decode(self, ids: npt.NDArray) -> list[str]:
        """One text per token: the vocabulary's (``<id>`` outside it), else the id itself."""
        if self.vocabulary is None:
            return [str(i) for i in ids.tolist()]
        return [str(t) for t in self.vocabulary.decode(ids)]

    def set_vocabulary(self, vocabulary: Any, name: str = "") -> None:
        self.vocabulary, self.vocabulary_name = vocabulary, name
        self._emit(Topic.VOCABULARY)
        self.relabel()

    def use_characters(self) -> None:
        """The characters mode: each id is a character (a character model without a file)."""
        self.set_vocabulary(explore_api().Vocabulary.characters(), "characters")

    def load_vocabulary(self, path: str | os.PathLike[str], wait: bool = False) -> Job:
        name = Path(path).name
        return self._read(
            f"reading {name}",
            lambda: explore_api().Vocabulary.from_file(path),
            lambda v: self.set_vocabulary(v, name),
            wait,
        )

    # -- corpus and annotations ----------------------------------------------------------------
    def set_corpus(self, corpus: Any, name: str = "") -> None:
        """Use ``corpus`` (its annotations and matches go; the sequence shown stays, now
        outside the corpus unless its tokens begin it)."""
        self.corpus, self.corpus_name = corpus, name
        self.document = None
        self.annotations, self.annotations_name = None, ""
        self.workspace.cancel(MATCH_KIND)
        self._set_progress(None)
        self.clear_matches()
        self._emit(Topic.CORPUS)
        self._emit(Topic.ANNOTATIONS)
        self.relabel()

    def open_corpus(
        self, path: str | os.PathLike[str], wait: bool = False, documents: str = "lines"
    ) -> Job | None:
        """A text corpus needs the vocabulary first; a folder/NPZ/CSV of arrays does not.
        ``documents`` (a text corpus): "lines", each non-empty line a document, or "stream",
        the whole file one document (a char-RNN reading a book: newlines are tokens)."""
        if documents not in DOCUMENT_MODES:
            raise ValueError(f"documents must be one of {', '.join(DOCUMENT_MODES)}")
        name, vocab, model = Path(path).name, self.vocabulary, self.workspace.model

        def read() -> Any:
            """Text with the vocabulary, else numbers; a .txt that is neither says the
            text reader's reason (or that a vocabulary is missing)."""
            explore = explore_api()
            text = Path(path).suffix.lower() in (".txt", ".text", "") and Path(path).is_file()
            text_error: ValueError | None = None
            if text and vocab is not None:
                try:
                    return explore.Corpus.from_text(path, vocab, documents=documents)
                except ValueError as exc:
                    text_error = exc
            if model is None:
                raise text_error or ValueError(
                    f"{name}: open a model first (its input width reads the arrays)"
                )
            try:
                return explore.Corpus.from_sequences(path, model.input_size, model.embedding)
            except ValueError:
                if not text:
                    raise
                if text_error is not None:
                    raise text_error from None
                raise ValueError(
                    f"{name}: not numbers; a text corpus needs a vocabulary: load one first "
                    "(File ▸ Load vocabulary…) or choose Characters as tokens"
                ) from None

        return self._read(f"reading {name}", read, lambda c: self.set_corpus(c, name), wait)

    def load_annotations(self, path: str | os.PathLike[str], wait: bool = False) -> Job | None:
        corpus, name = self.corpus, Path(path).name
        if corpus is None:
            self.fail("Open a corpus before its annotations (File ▸ Open corpus…)")
            return None

        def use(annotations: Any) -> None:
            if self.corpus is corpus:
                self.annotations, self.annotations_name = annotations, name
                self._emit(Topic.ANNOTATIONS)

        return self._read(
            f"reading {name}", lambda: explore_api().Annotations.from_file(path, corpus), use, wait
        )

    def _read(self, label: str, read: Callable[[], Any], use: Callable[[Any], None], wait: bool):
        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.fail(str(error) or type(error).__name__)
            else:
                use(result)

        return self.workspace.submit(FILE_KIND, label, lambda job: read(), done, FILE_COST, wait)

    # -- documents -----------------------------------------------------------------------------
    def open_document(self, document: int, step: int | None = None) -> bool:
        """Make corpus document ``document`` the debugger's sequence (and go to ``step``)."""
        corpus = self.corpus
        if corpus is None or not 0 <= document < len(corpus.documents):
            return False
        ws = self.workspace
        if ws.model is None:
            return False
        vocab_size = len(corpus.vocab) if corpus.vocab is not None else None
        try:
            x = np.asarray(corpus.documents[document].inputs(ws.model, vocab_size), np.float64)
        except ValueError as exc:
            self.fail(str(exc))
            return False
        if self.document != document:
            self._incoming = (document, x)
            name = self.corpus_name or "corpus"
            if not ws.set_sequence(x, f"{name}, document {document}"):
                self._incoming = None
                return False
        if step is not None:
            ws.go_to_step(step)
        return True

    def open_match(self, match: Any) -> bool:
        """Show ``match``: its document as the sequence (unless shown), the debugger at its
        first step, its range as the span."""
        corpus = self.matched_in
        if corpus is None:
            return False
        if corpus is self.corpus:
            if not self.open_document(match.document, match.doc_start):
                return False
        else:  # matched in the current sequence alone
            self.workspace.go_to_step(match.doc_start)
        self.selection.set_span(match.doc_start, match.doc_stop)
        return True

    # -- corpus run and match ------------------------------------------------------------------
    def sequence_corpus(self) -> Any:
        """The current sequence alone as a one-document corpus (matching without a corpus)."""
        x = self.workspace.sequence
        if x is None:
            return None
        key = (id(x), id(self.labels))
        if self._sequence_corpus is None or self._sequence_corpus[0] != key:
            corpus = explore_api().Corpus.from_arrays([x], tokens=[self.labels])
            self._sequence_corpus = (key, corpus)
        return self._sequence_corpus[1]

    # -- annotations of what is shown ----------------------------------------------------------
    def tracks(self) -> list[tuple[str, npt.NDArray[np.int64]]]:
        """Annotation tracks of the document shown: ``(name, label index per step, -1 for
        none)`` (see ``track_labels``); empty for a sequence outside the corpus."""
        start, x = self.corpus_start(), self.workspace.sequence
        if self.annotations is None or start is None or x is None:
            return []
        stop = start + len(x)
        return [(name, codes[start:stop]) for name, codes in _track_codes(self.annotations)]

    def corpus_start(self) -> int | None:
        """The corpus position of the sequence's step 0: its document's start, or 0 when its
        tokens are the corpus' first tokens (an example's sequence: its first lines as one
        stream); None for a sequence that is not in the corpus."""
        corpus = self.corpus
        if corpus is None:
            return None
        if self.document is not None:
            return corpus.position(self.document, 0)
        ids = self.ids
        if ids is None or not len(ids) or len(ids) > corpus.n_tokens:
            return None
        key = (id(corpus), id(ids))
        if self._start_for[0] != key:
            head, n = [], 0
            for doc in corpus.documents:
                if doc.ids is None or n >= len(ids):
                    break
                head.append(np.asarray(doc.ids[: len(ids) - n]))
                n += len(head[-1])
            same = n == len(ids) and np.array_equal(np.concatenate(head), ids)
            self._start_for = (key, 0 if same else None)
        return self._start_for[1]

    def annotation_labels(self) -> list[str]:
        """Every label the annotations use (the hit rates' rows)."""
        return _labels(self.annotations) if self.annotations is not None else []

    def track_labels(self, name: str) -> list[str]:
        """The label names of track ``name`` (index = the codes of ``tracks``)."""
        return _track_names(self.annotations, name) if self.annotations is not None else []


def _as_text(tokens: Any) -> list[str]:
    """``tokens`` as a list of str: a C-speed copy when they are str already (a
    1,000,000-token document: ~5 ms instead of ~80 ms of ``str`` per token on the GUI thread)."""
    labels = list(tokens)
    return labels if set(map(type, labels)) <= {str} else [str(t) for t in labels]


def _same(a: npt.NDArray | None, b: npt.NDArray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _track_codes(annotations: Any) -> list[tuple[str, npt.NDArray[np.int64]]]:
    """``(name, code per corpus position)`` of every track of ``annotations`` (one file is
    one track, named after it)."""
    return [(annotations.source or "labels", np.asarray(annotations.codes))]


def _track_names(annotations: Any, name: str) -> list[str]:
    return list(annotations.names)


def _labels(annotations: Any) -> list[str]:
    return list(annotations.names)
