"""The window's explore runs: the compiled engine only once it is ready, Select reusing the
debugger's run only while it is current, Open corpus as lines or one stream, the default
threshold. Expected units come from the Qt-free API on a fresh run_corpus."""

from __future__ import annotations

import numpy as np
import pytest
from model_factories import keras_like

from lstmviz import explore
from lstmviz.core import compiled
from lstmviz.explore import Corpus, Vocabulary, run_corpus, select
from lstmviz.gui import explore_dock

ALPHABET = "ab()c"


@pytest.fixture
def spied(monkeypatch):
    """Every run_corpus call the session makes: its engine (the real run still happens)."""
    calls: list[str] = []
    real = explore.run_corpus

    def spy(*args, **kwargs):
        calls.append(kwargs.get("engine", "auto"))
        return real(*args, **kwargs)

    monkeypatch.setattr(explore, "run_corpus", spy)
    return calls


def _window(make_main_window, seed=4, T=120):
    window = make_main_window()
    model = keras_like(D=3, H=6, seed=seed)[0]
    window.set_model(model)
    x = np.random.default_rng(seed).normal(size=(T, 3))
    window.set_sequence(x)
    return window, model, x


def _expected(model, x, start, stop, thr):
    return select(run_corpus(model, Corpus.from_arrays([x]), direction=0), start, stop, thr)


def test_select_reuses_the_debuggers_current_run(make_main_window, spied):
    window, model, x = _window(make_main_window)
    ws, session = window.workspace, window.explore
    ws.ensure_trace(wait=True)
    assert session.select_units(30, 36, 0.0, wait=True) is not None
    assert spied == []  # no second run of what the debugger already ran
    want = _expected(model, x, 30, 36, 0.0)
    assert len(want.units) and session.selection.units == tuple(want.units.tolist())
    assert session.unit_set == want


def test_select_never_uses_a_stale_or_different_run(make_main_window, spied, monkeypatch):
    window, model, _x = _window(make_main_window)
    ws, session = window.workspace, window.explore
    ws.ensure_trace(wait=True)
    old_trace = ws.trace
    # a new sequence whose run has not arrived: the old run is not this sequence's
    y = np.random.default_rng(9).normal(size=(80, 3))
    window.set_sequence(y)
    ws._trace = old_trace  # the old run still held (as while the new one computes)
    session.select_units(10, 15, 0.0, wait=True)
    assert len(spied) == 1
    want = _expected(model, y, 10, 15, 0.0)
    assert session.selection.units == tuple(want.units.tolist())
    # initial states the corpus run does not use: the debugger's run is not reused
    ws._trace = None
    ws.ensure_trace(wait=True)
    monkeypatch.setattr(ws, "states", {(0, 0): (np.full(6, 0.5), np.zeros(6))})
    assert session.debugger_run(session.sequence_corpus()) is None
    monkeypatch.setattr(ws, "states", {})
    assert session.debugger_run(session.sequence_corpus()) is ws.trace
    # a run of another model is not this model's
    other = keras_like(D=3, H=6, seed=11)[0]
    monkeypatch.setattr(ws, "model", other)
    assert session.debugger_run(session.sequence_corpus()) is None


@pytest.mark.parametrize("ready", [False, True])
def test_corpus_runs_wait_for_the_compiled_engine(make_main_window, spied, monkeypatch, ready):
    window = make_main_window()
    model = keras_like(D=len(ALPHABET), H=5, seed=2)[0]
    window.set_model(model)
    corpus = Corpus.from_string("ab(c)\n(a)b\nc(ab)", Vocabulary.characters(ALPHABET))
    window.explore.set_corpus(corpus, "three")
    monkeypatch.setattr(compiled, "ready", lambda: ready)
    window.explore.selection.set_span(0, 2)
    window.explore.run_query([0, 1], threshold=0.0, wait=True)
    assert spied == ["auto" if ready else "numpy"]
    assert window.explore.matches


def test_open_corpus_as_lines_or_one_stream(make_main_window, tmp_path, monkeypatch):
    window = make_main_window()
    window.set_model(keras_like(D=len(ALPHABET), H=4)[0])
    session = window.explore
    session.set_vocabulary(Vocabulary.characters(ALPHABET + "\n"), "chars")
    text = tmp_path / "corpus.txt"
    text.write_text("ab(c)\n(a)b\n")
    asked: list[str] = []
    monkeypatch.setattr(explore_dock, "_ask", lambda *a: str(text))

    def choose(mode):
        def ask(_window):
            asked.append(mode)
            return mode

        return ask

    opened: list[tuple] = []
    real_open = session.open_corpus
    monkeypatch.setattr(
        session,
        "open_corpus",
        lambda p, **kw: opened.append((p, kw)) or real_open(p, **kw, wait=True),
    )
    monkeypatch.setattr(explore_dock, "ask_documents", choose("stream"))
    explore_dock.ask_corpus(window)
    assert asked == ["stream"] and opened[-1][1] == {"documents": "stream"}
    assert [d.tokens for d in session.corpus.documents] == [list("ab(c)\n(a)b\n")]
    monkeypatch.setattr(explore_dock, "ask_documents", choose("lines"))
    explore_dock.ask_corpus(window)
    assert [d.tokens for d in session.corpus.documents] == [list("ab(c)"), list("(a)b")]
    monkeypatch.setattr(explore_dock, "ask_documents", lambda _w: None)  # cancelled
    n = len(opened)
    explore_dock.ask_corpus(window)
    assert len(opened) == n
    # numbers are not text: no question asked
    numbers = tmp_path / "numbers.npy"
    np.save(numbers, np.zeros((5, len(ALPHABET) + 1)))
    monkeypatch.setattr(explore_dock, "_ask", lambda *a: str(numbers))
    monkeypatch.setattr(explore_dock, "ask_documents", lambda _w: pytest.fail("asked"))
    explore_dock.ask_corpus(window)
    assert opened[-1][1] == {"documents": "lines"}
    with pytest.raises(ValueError, match="documents must be one of lines, stream"):
        real_open(text, documents="pages")


def test_threshold_slider_starts_at_the_default(make_main_window):
    window = make_main_window()
    window.explore_dock.show()
    assert window.explore_panel.threshold == pytest.approx(explore.DEFAULT_THRESHOLD)
