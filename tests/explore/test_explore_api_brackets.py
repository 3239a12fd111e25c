"""The bundled bracket example: select inside brackets, match, check against its annotations."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lstmviz
from lstmviz import explore
from lstmviz.cli import main as cli_main
from lstmviz.resources import example

BRACKETS = example("brackets")


@pytest.fixture(scope="module")
def bracket_states():
    model = lstmviz.load_model(BRACKETS.model)
    vocab = explore.Vocabulary.from_file(BRACKETS.vocabulary)
    corpus = explore.Corpus.from_text(BRACKETS.corpus, vocab)
    notes = explore.Annotations.from_file(BRACKETS.annotations, corpus)
    return explore.run_corpus(model, corpus, layer=0), notes


def _selections(corpus, n=12):
    """Ranges of 3 letters just after an opening bracket, in the first documents."""
    out = []
    for d, doc in enumerate(corpus.documents):
        found = re.search(r"\(([abcd]{3})", "".join(doc.tokens))
        if found:
            start = corpus.position(d, found.start(1))
            out.append((start, start + 3))
        if len(out) == n:
            break
    return out


def test_matches_of_an_inside_selection_are_inside_brackets(bracket_states):
    states, notes = bracket_states
    inside = [name for name in notes.names if name != "0"]
    assert set(notes.names) == {"0", "1", "2", "3", "4"}
    selections = _selections(states.corpus)
    assert len(selections) == 12
    for start, stop in selections:
        units = explore.select(states, start, stop, threshold=0.3)
        assert len(units) > 0
        matches = explore.match(states, units, top=20)
        assert len(matches) == 20
        precision = notes.hit_rate(matches, inside, whole=True)
        assert precision >= 0.8, (start, units.units, precision)
    # and outside: the same selection made at depth 0 does not find bracketed ranges
    rates = notes.hit_rates(matches)
    assert sum(rates.values()) == pytest.approx(1.0) and rates.get("0", 0) < 0.2


def test_depth_unit_is_found_by_selection_outside(bracket_states):
    """Selecting at depth 0 (letters before any bracket) gives units on outside brackets."""
    states, notes = bracket_states
    corpus = states.corpus
    d = next(
        d for d, doc in enumerate(corpus.documents) if re.match(r"[abcd]{3}", "".join(doc.tokens))
    )
    units = explore.select(states, corpus.position(d, 0), corpus.position(d, 3), threshold=0.3)
    matches = explore.match(states, units, top=20)
    assert notes.hit_rate(matches, "0", whole=True) >= 0.8


def test_annotation_formats_agree(bracket_states, tmp_path):
    states, notes = bracket_states
    corpus = states.corpus
    depth = notes.labels(0, corpus.n_tokens)
    spaced = tmp_path / "spaced.txt"
    spaced.write_text(" ".join(depth), encoding="utf-8")
    rows = tmp_path / "rows.csv"
    lines = ["doc,t,label"]
    for pos in range(0, corpus.n_tokens, 7):
        d, t = corpus.locate(pos)
        lines.append(f"{d},{t},{depth[pos]}")
    rows.write_text("\n".join(lines), encoding="utf-8")
    a = explore.Annotations.from_file(spaced, corpus)
    assert a.labels(0, corpus.n_tokens) == depth
    b = explore.Annotations.from_file(rows, corpus)
    sparse = b.labels(0, corpus.n_tokens)
    assert sparse[::7] == depth[::7] and sparse[1] is None
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="3 labels for 5,126 tokens, and 2 non-empty lines"):
        explore.Annotations.from_file(bad, corpus)
    bad.write_text("doc,t,label\n999,0,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="document 999, step 0 is outside"):
        explore.Annotations.from_file(bad, corpus)
    assert notes.hit_rate([], "1") == 0.0 and notes.hit_rates([]) == {}


def test_example_opens_from_the_command_line(capsys):
    assert cli_main(["--example", "brackets", "--info"]) == 0
    assert "brackets_lstm.pt" in capsys.readouterr().out
    assert cli_main(["--example", "nope", "--info"]) == 2
    assert "examples: sine, brackets" in capsys.readouterr().err


def test_example_sequence_is_the_corpus_start():
    from lstmviz.core.sequence import load_sequence

    model = lstmviz.load_model(BRACKETS.model)
    x = load_sequence(BRACKETS.sequence, model.input_size, embedding=model.embedding)
    vocab = explore.Vocabulary.from_file(BRACKETS.vocabulary)
    corpus = explore.Corpus.from_text(BRACKETS.corpus, vocab)
    ids = np.concatenate([doc.ids for doc in corpus.documents[:5]])
    np.testing.assert_array_equal(x, model.embedding[ids])


def test_annotations_far_larger_than_the_corpus_are_refused(tmp_path):
    corpus = explore.Corpus.from_string("ab\nba", explore.Vocabulary.characters("ab"))
    p = tmp_path / "labels.txt"
    p.write_text("x " * 10_000, encoding="utf-8")
    with pytest.raises(ValueError, match="20,000 characters of labels for 4 tokens"):
        explore.Annotations.from_file(p, corpus)
    p.write_text("0 1\n1 0\n", encoding="utf-8")
    assert explore.Annotations.from_file(p, corpus).labels(0, 4) == ["0", "1", "1", "0"]
