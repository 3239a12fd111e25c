"""Corpora: positions across documents, text and numeric sources, edge cases and hostile files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lstmviz.explore import Corpus, Vocabulary

CHARS = Vocabulary.characters("ab()")


def test_lines_positions_and_text():
    c = Corpus.from_string("a(b)\n\n  \nab\n(a)b", CHARS, source="t")
    assert [len(d) for d in c.documents] == [4, 2, 4]
    assert c.doc_starts.tolist() == [0, 4, 6, 10] and c.n_tokens == 10
    assert c.notes == ("2 empty lines skipped",)
    assert [d.name for d in c.documents] == ["line 1", "line 4", "line 5"]
    assert c.locate(0) == (0, 0) and c.locate(4) == (1, 0) and c.locate(9) == (2, 3)
    assert c.position(2, 1) == 7
    assert c.tokens(3, 7) == [")", "a", "b", "("] and c.text(3, 7) == ")ab("
    assert c.doc_ids().tolist() == [0] * 4 + [1] * 2 + [2] * 4
    assert c.documents[0].ids.tolist() == [0, 2, 1, 3]
    with pytest.raises(IndexError):
        c.locate(10)


def test_stream_keeps_newlines_as_characters():
    v = Vocabulary.characters("ab\n")
    c = Corpus.from_string("ab\nba\n", v, documents="stream")
    assert len(c.documents) == 1 and c.n_tokens == 6
    with pytest.raises(ValueError, match=r"stream: '\\n' \(token 3\)"):
        Corpus.from_string("ab\nba", CHARS, documents="stream", source="stream")


def test_words_and_unknown_tokens():
    v = Vocabulary.from_tokens(["<unk>", "the", "cat", "sat"], unknown="<unk>")
    c = Corpus.from_string("the cat sat\nthe dog sat", v)
    assert c.documents[1].ids.tolist() == [1, 0, 3]
    assert c.documents[1].tokens == ["the", "dog", "sat"]  # shown as written
    assert c.text(3, 6) == "the dog sat"
    with pytest.raises(ValueError, match=r"text line 2: 'dog' \(token 2\) is not in the voc"):
        Corpus.from_string("the cat sat\nthe dog sat", v, unknown="error")
    skipped = Corpus.from_string("the cat sat\nthe dog sat", v, unknown="skip")
    assert skipped.n_tokens == 5


def test_nothing_to_read():
    with pytest.raises(ValueError, match="no tokens"):
        Corpus.from_string("\n\n  \n", CHARS)
    with pytest.raises(ValueError, match="documents must be"):
        Corpus.from_string("ab", CHARS, documents="paragraphs")


def _refused(call, needle: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as info:
        call()
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and len(msg) <= 300, msg


def test_hostile_text_files(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as fh:
        fh.truncate(4 << 30)  # sparse
    _refused(lambda: Corpus.from_text(huge, CHARS), "text corpora are read up to")
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"PK\x03\x04" + bytes(100))
    _refused(lambda: Corpus.from_text(binary, CHARS), "binary data, not a text corpus")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ab\xe9".encode("latin-1"))
    _refused(lambda: Corpus.from_text(latin, CHARS), "not UTF-8 text (byte 2)")
    _refused(lambda: Corpus.from_text(tmp_path, CHARS), "not a regular file")
    long_unknown = tmp_path / "long.txt"
    long_unknown.write_text("x" * 5000 + "\n", encoding="utf-8")
    _refused(lambda: Corpus.from_text(long_unknown, CHARS), "and 4,999 more")


def test_from_text_reads_a_file(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("\ufeffab\r\n(a)\r\n", encoding="utf-8")
    c = Corpus.from_text(p, CHARS)
    assert c.text(0, 5) == "ab(a)" and c.source == "c.txt"


def test_arrays_and_inputs():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((5, 3)), rng.standard_normal((2, 3))]
    c = Corpus.from_arrays(xs, tokens=[list("abcde"), None])
    assert c.n_tokens == 7 and c.tokens(3, 7) == ["d", "e", "0", "1"]
    assert c.documents[0].x.dtype == np.float32

    class Model:
        input_size = 3
        embedding = None

    np.testing.assert_allclose(c.documents[1].inputs(Model()), xs[1], rtol=1e-6)
    Model.input_size = 4
    with pytest.raises(ValueError, match="3 values per step, but the model's first layer"):
        c.documents[0].inputs(Model())
    with pytest.raises(ValueError, match="document 1"):
        Corpus.from_arrays([np.zeros((3, 2)), np.zeros((3, 5))])
    with pytest.raises(ValueError, match="2 tokens for 5 steps"):
        Corpus.from_arrays(xs[:1], tokens=[["a", "b"]])
    with pytest.raises(ValueError, match="NaN"):
        Corpus.from_arrays([np.array([[0.0], [np.nan]])])


def test_token_ids_go_in_through_the_embedding_or_one_hot():
    c = Corpus.from_string("a(b)", CHARS)
    doc = c.documents[0]

    class Embedded:
        input_size = 2
        embedding = np.arange(8.0).reshape(4, 2)

    np.testing.assert_array_equal(doc.inputs(Embedded(), 4), Embedded.embedding[[0, 2, 1, 3]])

    class OneHot:
        input_size = 4
        embedding = None

    np.testing.assert_array_equal(doc.inputs(OneHot(), 4), np.eye(4)[[0, 2, 1, 3]])
    OneHot.input_size = 3
    with pytest.raises(ValueError, match="no Embedding table"):
        doc.inputs(OneHot(), 4)
    Embedded.embedding = np.zeros((2, 2))
    with pytest.raises(ValueError, match="outside the model's embedding of 2 tokens"):
        doc.inputs(Embedded(), 4)


def test_ids_corpus():
    c = Corpus.from_ids([np.array([0, 1, 2]), np.array([], dtype=int), [3]], CHARS)
    assert len(c.documents) == 2 and c.text(0, 4) == "ab()"
    with pytest.raises(ValueError, match="ids must be a 1-D array"):
        Corpus.from_ids([np.array([0.5])])


def test_sequence_folder_npz_and_csv(tmp_path: Path):
    folder = tmp_path / "seqs"
    folder.mkdir()
    np.save(folder / "b.npy", np.ones((4, 2)))
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    c = Corpus.from_sequences(folder, width=2)
    assert [d.name for d in c.documents] == ["a.csv", "b.npy"] and c.n_tokens == 6
    np.testing.assert_array_equal(c.documents[0].x, [[1, 2], [3, 4]])
    np.savez(tmp_path / "docs.npz", first=np.zeros((3, 2)), second=np.ones((5, 2)))
    z = Corpus.from_sequences(tmp_path / "docs.npz", width=2)
    assert [d.name for d in z.documents] == ["first", "second"] and z.n_tokens == 8
    _refused(lambda: Corpus.from_sequences(folder, width=3), "a.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(lambda: Corpus.from_sequences(empty, width=2), "no .csv")


def test_hostile_npz(tmp_path: Path):
    import zipfile

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    _refused(lambda: Corpus.from_sequences(bad, width=2), "bad.npz")
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3000000, 2), }"
        header = b"\x93NUMPY\x01\x00v\x00" + header.ljust(0x76 - 1) + b"\n"
        zf.writestr("x.npy", header + bytes(48_000_000))
    _refused(lambda: Corpus.from_sequences(bomb, width=2), "zip bomb")


def test_too_many_tokens_refused_before_splitting(monkeypatch):
    import lstmviz.explore.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_TOKENS", 1000)
    words = Vocabulary.from_tokens(["a", ","], unknown="a")
    for vocab, text in ((CHARS, "ab" * 600), (words, "a," * 600), (words, "a " * 1001)):
        _refused(lambda v=vocab, t=text: Corpus.from_string(t, v), "more than 1,000 tokens")
    assert Corpus.from_string("a " * 1000, words).n_tokens == 1000
    assert Corpus.from_string("a\n" * 1000, CHARS).n_tokens == 1000


def test_a_million_token_text_corpus_is_read_quickly(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text(("ab(ba)" * 20 + "\n") * 8400, encoding="utf-8")  # 1,008,000 characters
    t0 = time.perf_counter()
    c = Corpus.from_text(p, CHARS)
    assert c.n_tokens == 1_008_000 and time.perf_counter() - t0 < 5.0


def test_token_budget_in_auto_split(monkeypatch):
    import lstmviz.explore.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "MAX_TOKENS", 1000)
    v = Vocabulary.from_tokens(["a", ","])
    assert v.split == "auto"
    for text in ("a," * 600, "a " * 1001, "x a " * 400 + "a," * 300):
        _refused(lambda t=text: Corpus.from_string(t, v, unknown="skip"), "more than 1,000 tokens")
