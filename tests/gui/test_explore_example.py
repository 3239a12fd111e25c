"""The bracket example in the window: ``--example brackets`` brings its vocabulary, corpus and
depth annotations; a range inside brackets, Select, Match → bracketed matches. Saves the
screenshot the README shows (tests/_artifacts/explore.png; docs/explore.png is a copy)."""

from __future__ import annotations

import argparse

import numpy as np

from lstmviz.explore import Annotations, Corpus, Vocabulary
from lstmviz.resources import example


def test_bracket_example_select_and_match(make_main_window, qtbot, save_artifact):
    from lstmviz.gui.app import open_from_args

    window = make_main_window(size=(1400, 900))
    args = argparse.Namespace(path=None, sequence=None, layer=None, step=None, example="brackets")
    assert open_from_args(window, args, {})
    session, ws, panel = window.explore, window.workspace, window.explore_panel
    ex = example("brackets")
    assert session.vocabulary is not None and session.corpus is not None
    assert session.annotations is not None
    assert window.text_dock.isVisible() and window.explore_dock.isVisible()
    window.tabs.setCurrentIndex(1)
    ws.ensure_trace(wait=True)
    # the sequence is token ids looked up in the model's embedding: read back as characters
    vocab = Vocabulary.from_file(ex.vocabulary)
    corpus = Corpus.from_text(ex.corpus, vocab)
    first = "".join("".join(d.tokens) for d in corpus.documents[:5])
    assert "".join(window.text_view.canvas.labels) == first
    ws.select(unit=11)  # the unit that follows the depth
    ws.go_to_step(12)
    # steps 10-14 of the first line, "dba)b", are three brackets deep
    session.selection.set_span(10, 15)
    panel.threshold_slider.setValue(30)
    panel.select_button.click()
    qtbot.waitUntil(lambda: bool(session.selection.units) and not ws.jobs, timeout=20000)
    panel.match_button.click()
    qtbot.waitUntil(lambda: bool(session.matches) and not ws.jobs, timeout=30000)
    matches = session.matches
    assert len(matches) == 20
    depth = Annotations.from_file(ex.annotations, corpus)
    inside = [n for n in depth.names if n != "0"]
    # precision: matches whose every token is inside brackets
    precision = depth.hit_rate(matches, inside, whole=True)
    assert precision >= 0.8, precision
    assert panel.matches.tree.topLevelItemCount() == 20
    assert "hit rate" in panel.matches.hit_rates.text()
    # the sequence is the corpus' first lines: the depth track lies under its tokens
    assert session.corpus_start() == 0
    ((name, codes),) = window.text_view.canvas.tracks
    assert name == "brackets_depth.txt"
    assert [session.track_labels(name)[c] for c in codes] == depth.labels(0, len(first))
    panel.matches.tree.setCurrentItem(panel.matches.tree.topLevelItem(0))
    save_artifact(window, "explore")
    assert np.isfinite(window.text_view.values).all()
