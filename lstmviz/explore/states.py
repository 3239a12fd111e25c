"""Run a model over a whole corpus and keep only what selecting and matching need.

``run`` records every gate of every step (7H floats per step); a million tokens at H = 512 would
be 14 GB. ``run_corpus`` runs one document (or one chunk of a long one) at a time, copies the one
quantity asked for (h by default) of one layer into a preallocated ``(N, units)`` array and drops
the trace. Long documents are cut into chunks of ``CHUNK`` steps, the final h and c of each chunk
being the next one's initial state, which is exactly the uncut run for layers that read forwards;
a layer reading backwards needs the whole document at once (it is run whole, up to
``MAX_WHOLE_STEPS``).

Storage is float32 unless that would exceed ``MAX_FLOAT32_BYTES``; then float16 (a 1M × 512
corpus: 1 GB instead of 2): thresholds of 0.1-0.5 and cosines lose nothing visible at float16's
3 significant digits, and the whole run stays within 2 GiB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lstmviz.core.compute import run
from lstmviz.core.model import LSTMModel
from lstmviz.core.trace import Trace
from lstmviz.explore.corpus import Corpus
from lstmviz.explore.index import OnIndex
from lstmviz.explore.select import DEFAULT_THRESHOLD

#: What an LSTM layer records per step; a GRU layer has h, r, z, n, a plain RNN layer h.
QUANTITIES = ("h", "c", "i", "f", "g", "o")
CHUNK = 512  # steps per run call: cancel answers within one chunk (~0.15 s at H = 512)
MAX_WHOLE_STEPS = 200_000
MAX_FLOAT32_BYTES = 1 << 30
ENGINES = ("auto", "numpy", "numba")  # ``lstmviz.run``'s


class Cancelled(Exception):
    """``run_corpus`` was cancelled through its ``cancel`` event."""


class EventLike(Protocol):
    def is_set(self) -> bool: ...


@dataclass(eq=False)
class CorpusStates:
    """One layer's states over a corpus: ``values(q) (N, units)`` per recorded quantity.

    ``direction`` None: ``h`` is the layer's output as the framework gives it
    (``trace.layers[k].output``: both directions concatenated for a bidirectional layer with
    merge_mode concat), and c / gates are the directions' arrays concatenated in the same order
    (units ``0..H-1`` the first direction). ``direction`` 0 or 1: that direction's own arrays.
    ``complete`` is False when the run was cancelled (positions past ``n_done`` are zero).
    """

    corpus: Corpus
    layer: int
    direction: int | None
    arrays: dict[str, np.ndarray]
    n_done: int = 0
    _indexes: dict[tuple[str, float], OnIndex] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return self.n_done == self.corpus.n_tokens

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    @property
    def n_units(self) -> int:
        return next(iter(self.arrays.values())).shape[1]

    def values(self, quantity: str = "h") -> np.ndarray:
        """``(N, units)`` of ``quantity`` (float32, or float16 for very large corpora)."""
        try:
            return self.arrays[quantity]
        except KeyError:
            raise ValueError(
                f"{quantity!r} was not recorded (recorded: {', '.join(self.arrays)}); run "
                f"run_corpus(..., quantities=({quantity!r},))"
            ) from None

    def index(self, threshold: float, quantity: str = "h") -> OnIndex:
        """The packed on-bits ``values >= threshold`` (built once per threshold, ~1 s for
        1M × 512), what ``select``/``match`` query."""
        key = (quantity, float(threshold))
        if key not in self._indexes:
            if len(self._indexes) >= 4:  # a few thresholds at 64 MB each
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[key] = OnIndex.build(self.values(quantity), threshold, self.corpus)
        return self._indexes[key]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values()) + sum(
            i.nbytes for i in self._indexes.values()
        )

    @classmethod
    def from_trace(
        cls,
        trace: Trace,
        layer: int = 0,
        *,
        corpus: Corpus | None = None,
        direction: int | None = None,
        quantities: tuple[str, ...] = ("h",),
    ) -> CorpusStates:
        """The states of a run already made (``lstmviz.run(model, x)``, the debugger's), as a
        one-document corpus: selecting on the sequence the debugger shows reuses its run
        instead of running it again. Equal to ``run_corpus(trace.model, corpus, layer)`` when
        the run started from zero states (float32, as ``run_corpus`` stores it).
        ``corpus``: the one document ``trace.x`` (with its tokens), default
        ``Corpus.from_arrays([trace.x])``. A bounded trace (a run too long to record whole)
        keeps no per-step arrays: use ``run_corpus``."""
        if not isinstance(trace, Trace):
            raise ValueError(
                f"a full trace is needed (lstmviz.run(..., trace='full')), got "
                f"{type(trace).__name__}: run the sequence with run_corpus instead"
            )
        _check(trace.model, layer, quantities, direction)
        if corpus is None:
            corpus = Corpus.from_arrays([trace.x])
        T = len(trace.x)
        if corpus.n_tokens != T:
            raise ValueError(f"the corpus has {corpus.n_tokens:,} tokens, the run {T:,} steps")
        tl = trace.layers[layer]
        arrays = {q: np.array(_pick(tl, q, direction), dtype=np.float32) for q in quantities}
        return cls(corpus, layer, direction, arrays, n_done=T)


def _width(model: LSTMModel, layer: int, quantity: str, direction: int | None) -> int:
    lay = model.layers[layer]
    if quantity == "h":
        return lay.output_size if direction is None else lay.directions[direction].output_size
    per = lay.hidden_size
    return per * (len(lay.directions) if direction is None else 1)


def _pick(trace_layer, quantity: str, direction: int | None) -> np.ndarray:
    if quantity == "h" and direction is None:
        return trace_layer.output
    dirs = trace_layer.directions if direction is None else (trace_layer.directions[direction],)
    arrays = [getattr(d, quantity) for d in dirs]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)


def _check(
    model: LSTMModel, layer: int, quantities: tuple[str, ...], direction: int | None
) -> None:
    """ValueError unless ``layer``, ``quantities`` and ``direction`` exist in ``model``."""
    n_layers = len(model.layers)
    if not 0 <= layer < n_layers:
        kinds = {lay.cell.name for lay in model.layers}  # "LSTM", "GRU": what it holds
        word = kinds.pop() if len(kinds) == 1 else "recurrent"
        raise ValueError(
            f"layer {layer}: the model has {n_layers} {word} layers (0..{n_layers - 1})"
        )
    lay = model.layers[layer]
    cell = getattr(lay, "cell", None)  # LSTM, GRU (r, z, n) or plain RNN layers
    known = (*cell.gate_names, *cell.state_names) if cell is not None else QUANTITIES
    bad = [q for q in quantities if q not in known]
    if bad or not quantities:
        raise ValueError(
            f"quantities must be some of {', '.join(known)} for layer {layer}, got {quantities!r}"
        )
    if direction is not None and not 0 <= direction < len(lay.directions):
        raise ValueError(f"direction {direction}: layer {layer} has {len(lay.directions)}")


def run_corpus(
    model: LSTMModel,
    corpus: Corpus,
    layer: int = 0,
    *,
    quantities: tuple[str, ...] = ("h",),
    direction: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    cancel: EventLike | None = None,
    dtype: np.dtype | type | None = None,
    thresholds: tuple[float, ...] = (DEFAULT_THRESHOLD,),
    engine: str = "auto",
) -> CorpusStates:
    """Run ``model`` (layers ``0..layer``: LSTM, GRU or RNN) over every document of ``corpus``.

    ``progress(done, total)`` is called after each chunk with token counts; ``cancel.is_set()``
    is checked between chunks and raises ``Cancelled`` (the partial states are on the exception's
    ``states``). ``dtype``: storage precision (None: float32, float16 past 1 GiB).
    ``thresholds``: on-bit indexes to build now, in the caller's (background) thread, so the
    first ``match`` at that threshold answers at once (others are built on first use, ~0.4 s for
    1M × 512).
    ``engine``: passed to ``lstmviz.run`` ("auto", "numpy" or "numba"). A GUI passes "numpy"
    until ``lstmviz.core.compiled.ready()``: "auto"'s first call loads or compiles the numba
    kernels in the calling thread and holds the GIL 0.15-0.35 s (seconds on a first-ever
    compile), which would freeze the window.
    Document ``doc`` of a text corpus goes in as ``doc.inputs(model, len(corpus.vocab))``.
    """
    _check(model, layer, quantities, direction)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    sub = model.replace(layers=model.layers[: layer + 1], head=())
    N = corpus.n_tokens
    widths = {q: _width(model, layer, q, direction) for q in quantities}
    if dtype is None:
        total = sum(N * w * 4 for w in widths.values())
        dtype = np.float32 if total <= MAX_FLOAT32_BYTES else np.float16
    arrays = {q: np.zeros((N, w), dtype=dtype) for q, w in widths.items()}
    states = CorpusStates(corpus, layer, direction, arrays)
    forward_only = all(not d.reverse for lay_ in sub.layers for d in lay_.directions)
    vocab_size = len(corpus.vocab) if corpus.vocab is not None else None
    done = reported = 0
    for d, doc in enumerate(corpus.documents):
        x = doc.inputs(sub, vocab_size)
        T = len(x)
        step = CHUNK if forward_only else T
        if not forward_only and T > MAX_WHOLE_STEPS:
            raise ValueError(
                f"document {d} has {T:,} steps; a layer reading backwards needs a document whole, "
                f"at most {MAX_WHOLE_STEPS:,} steps (split the corpus into documents)"
            )
        h0 = c0 = None
        base = int(corpus.doc_starts[d])
        for t0 in range(0, T, step):
            if cancel is not None and cancel.is_set():
                states.n_done = done
                exc = Cancelled(f"cancelled after {done:,} of {N:,} tokens")
                exc.states = states  # type: ignore[attr-defined]
                raise exc
            trace = run(sub, x[t0 : t0 + step], h0, c0, engine=engine)  # type: ignore[arg-type]
            tl = trace.layers[layer]
            for q, arr in arrays.items():
                arr[base + t0 : base + t0 + len(tl.output)] = _pick(tl, q, direction)
            if forward_only:
                h0 = [[dt.h[-1] for dt in lt.directions] for lt in trace.layers]
                # c is read for LSTM layers only; a GRU/RNN layer's entry is ignored
                c0 = [[getattr(dt, "c", dt.h)[-1] for dt in lt.directions] for lt in trace.layers]
            done += len(tl.output)
            del trace, tl
            if progress is not None and (done - reported >= CHUNK or done == N):
                progress(done, N)
                reported = done
    states.n_done = done
    for thr in thresholds:
        for q in quantities:
            states.index(thr, q)
    return states


def states_from_arrays(
    corpus: Corpus, values: np.ndarray, *, quantity: str = "h", layer: int = 0
) -> CorpusStates:
    """``CorpusStates`` from precomputed ``values (N, units)`` (states a framework recorded, or
    a test's synthetic ones)."""
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] != corpus.n_tokens:
        raise ValueError(f"values must be ({corpus.n_tokens}, units), got {arr.shape}")
    if arr.dtype not in (np.float16, np.float32):
        arr = arr.astype(np.float32)
    return CorpusStates(corpus, layer, None, {quantity: arr}, n_done=corpus.n_tokens)
