"""Select & Match in the window: select on a span, match over a corpus in the background,
list and jump, annotations and hit rates, cancel, and what a new model does to it all.

The expected answers come from the Qt-free API called directly (``run_corpus``, ``select``,
``match``), so the window must show exactly what a notebook gets."""

from __future__ import annotations

import numpy as np
import pytest
from model_factories import keras_like

from lstmviz.explore import Corpus, UnitSet, Vocabulary, match, run_corpus, select

ALPHABET = "ab()c"


def make_corpus(n_docs: int, seed: int = 3, length: tuple[int, int] = (12, 30)) -> Corpus:
    rng = np.random.default_rng(seed)
    lines = ["".join(rng.choice(list(ALPHABET), int(rng.integers(*length)))) for _ in range(n_docs)]
    return Corpus.from_string("\n".join(lines), Vocabulary.characters(ALPHABET), source="t")


@pytest.fixture
def explore_window(make_main_window):
    window = make_main_window()
    model = keras_like(D=len(ALPHABET), H=8, seed=2)[0]
    window.set_model(model)
    window.explore.set_vocabulary(Vocabulary.characters(ALPHABET), "chars")
    corpus = make_corpus(60)
    window.explore.set_corpus(corpus, "test corpus")
    window.text_dock.show()
    window.explore_dock.show()
    return window, model, corpus


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.workspace.jobs and window.runner.idle, timeout=20000)


def test_select_match_list_and_jump(explore_window, qtbot, tmp_path):
    window, model, corpus = explore_window
    session, panel, ws = window.explore, window.explore_panel, window.workspace
    assert session.open_document(3)
    ws.ensure_trace(wait=True)
    doc = corpus.documents[3]
    assert window.text_view.canvas.labels == list(doc.tokens)
    # select: the units on throughout steps 2..5 of what is shown
    x = doc.inputs(model, len(ALPHABET))
    panel.threshold_slider.setValue(-10)
    session.selection.set_span(2, 6)
    panel.select_button.click()
    wait_idle(qtbot, window)
    direct = run_corpus(model, Corpus.from_arrays([x]), layer=0, direction=0)
    expected = select(direct, 2, 6, -0.1)
    assert len(expected.units) > 0
    assert session.selection.units == tuple(expected.units.tolist())
    assert [i.isSelected() for i in map(panel.unit_list.item, range(8))] == [
        u in expected.units for u in range(8)
    ]
    # match over the corpus: in a job, then the list
    panel.match_button.click()
    wait_idle(qtbot, window)
    states = run_corpus(model, corpus, layer=0, direction=0)
    start = corpus.position(3, 2)
    want = match(states, UnitSet(expected.units, start, start + 4, -0.1), top=20)
    got = session.matches
    assert [(m.start, m.stop) for m in got] == [(m.start, m.stop) for m in want]
    assert [m.score for m in got] == pytest.approx([m.score for m in want])
    assert panel.matches.tree.topLevelItemCount() == len(want) > 1
    # the corpus run is kept for the next query (and the sequence's for the next Select)
    assert session.cached_states(corpus, 0, 0, "h") is not None
    m = got[1]
    row = panel.matches.row_text(1)
    highlighted = row.split('font-weight:bold;">')[1].split("</span>")[0]
    assert highlighted == "".join(corpus.documents[m.document].tokens[m.doc_start : m.doc_stop])
    assert f"{m.score:.3f}" == panel.matches.tree.topLevelItem(1).text(0)
    # double-click jumps: that document, that step, that span
    item = panel.matches.tree.topLevelItem(1)
    panel.matches.tree.itemDoubleClicked.emit(item, 0)
    wait_idle(qtbot, window)
    assert session.document == m.document
    np.testing.assert_array_equal(ws.sequence, corpus.documents[m.document].inputs(model, 5))
    assert ws.step == m.doc_start
    assert session.selection.span == (m.doc_start, m.doc_stop)
    assert window.text_view.canvas.labels == list(corpus.documents[m.document].tokens)
    assert window.text_view.values is not None  # coloured by the new document's run
    # annotations: one line per document, a digit per character; a track and hit rates
    path = tmp_path / "brackets.txt"
    path.write_text(
        "\n".join("".join("1" if c in "()" else "0" for c in d.tokens) for d in corpus.documents)
    )
    session.load_annotations(path, wait=True)
    tracks = window.text_view.canvas.tracks
    assert len(tracks) == 1
    names = session.track_labels(tracks[0][0])
    assert [names[c] for c in tracks[0][1]] == [
        "1" if c in "()" else "0" for c in corpus.documents[m.document].tokens
    ]
    rates = session.annotations.hit_rates(got)
    text = panel.matches.hit_rates.text()
    assert text.startswith("hit rate") and all(f"{k}: {v:.0%}" in text for k, v in rates.items())


def test_match_in_the_sequence_alone_without_a_corpus(make_main_window, qtbot):
    window = make_main_window()
    model = keras_like(D=3, H=6, seed=4)[0]
    window.set_model(model)
    x = np.random.default_rng(0).normal(size=(200, 3))
    window.set_sequence(x)
    window.workspace.ensure_trace(wait=True)
    session = window.explore
    assert window._explore_panel is None  # built on first use
    window.explore_dock.show()
    session.selection.set_span(50, 55)
    session.selection.set_units([0, 2, 3])
    session.run_query(session.selection.units, threshold=0.0)
    qtbot.waitUntil(lambda: bool(session.matches), timeout=20000)
    states = run_corpus(model, Corpus.from_arrays([x]), layer=0, direction=0)
    want = match(states, UnitSet([0, 2, 3], 50, 55, 0.0), top=20)
    assert [(m.start, m.score) for m in session.matches] == [(m.start, m.score) for m in want]
    window.explore_panel.matches.open_match(0)
    assert window.workspace.step == want[0].doc_start


def test_cancel_stops_the_corpus_run_and_keeps_nothing(explore_window, qtbot):
    window, _model, _corpus = explore_window
    session, panel = window.explore, window.explore_panel
    big = make_corpus(4000, seed=9, length=(60, 120))
    session.set_corpus(big, "big")
    session.open_document(0)
    session.selection.set_span(1, 4)
    session.selection.set_units([0, 1])
    panel.match_button.click()
    qtbot.waitUntil(lambda: (session.progress or 0) > 0, timeout=20000)
    assert panel.progress.isVisible() and panel.cancel_button.isVisible()
    assert not panel.match_button.isEnabled()
    panel.cancel_button.click()
    wait_idle(qtbot, window)
    assert session.progress is None and session.matches == []
    assert not panel.progress.isVisible() and panel.match_button.isEnabled()
    assert session.cached_states(big, 0, 0, "h") is None


def test_new_model_clears_matches_and_units_it_lacks(explore_window, qtbot):
    window, _model, _corpus = explore_window
    session, panel = window.explore, window.explore_panel
    session.open_document(0)
    session.selection.set_span(0, 3)
    session.selection.set_units([1, 7])
    session.run_query([1, 7], threshold=-1.0)
    wait_idle(qtbot, window)
    assert session.matches
    window.set_model(keras_like(D=len(ALPHABET), H=4, seed=8)[0])
    assert session.matches == [] and panel.matches.tree.topLevelItemCount() == 0
    assert session.selection.units == (1,)
    assert panel.unit_list.count() == 4
    window.workspace.ensure_trace(wait=True)
    assert window.text_view.values is not None
    assert len(window.text_view.values) == len(window.workspace.sequence)


def test_corpus_files_text_with_vocabulary_numbers_without(make_main_window, tmp_path):
    window = make_main_window()
    window.set_model(keras_like(D=len(ALPHABET), H=4)[0])
    session = window.explore
    text = tmp_path / "corpus.txt"
    text.write_text("ab(c)\n\n(a)b\n")
    session.open_corpus(text, wait=True)
    assert session.corpus is None and "needs a vocabulary" in session.message
    session.use_characters()
    session.set_vocabulary(Vocabulary.characters(ALPHABET), "chars")
    session.open_corpus(text, wait=True)
    assert [d.tokens for d in session.corpus.documents] == [list("ab(c)"), list("(a)b")]
    assert session.open_document(1, step=2)
    assert window.text_view.canvas.labels == list("(a)b")
    assert window.workspace.step == 2
    # numbers need no vocabulary; a new corpus forgets the document index of the old one
    numbers = tmp_path / "numbers.txt"
    np.savetxt(numbers, np.random.default_rng(0).normal(size=(7, len(ALPHABET))))
    session.open_corpus(numbers, wait=True)
    assert session.corpus.n_tokens == 7 and session.document is None
    assert session.current_document() is None
