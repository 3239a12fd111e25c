"""Vocabulary files of every supported format, checked against what the real libraries encode
(fixtures and ``expected.json`` made by ``fixtures/make_vocab_fixtures.py``), and hostile files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from lstmviz.explore import Vocabulary

FIX = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIX / "expected.json").read_text(encoding="utf-8"))


def test_keras_tokenizer_word_level_matches_keras():
    v = Vocabulary.from_file(FIX / "keras_tokenizer.json")
    assert v.kind == "Keras Tokenizer" and v.unknown == "<OOV>" and not v.char_level
    # lower-cased, punctuation filtered, words past num_words=12 and unseen ones -> <OOV> (id 1)
    assert v.encode(EXPECTED["sentence"]).tolist() == EXPECTED["keras_tokenizer.json"]
    assert v.decode([2, 1]) == ["the", "<OOV>"]
    assert v.tokens[0] is None  # Keras reserves id 0 for padding
    assert v.decode([0]) == ["<0>"]


def test_keras_tokenizer_char_level_matches_keras():
    v = Vocabulary.from_file(FIX / "keras_char_tokenizer.json")
    assert v.char_level and v.unknown is None
    assert v.encode(EXPECTED["char_text"]).tolist() == EXPECTED["keras_char_tokenizer.json"]


def test_hugging_face_word_level_matches_tokenizers():
    v = Vocabulary.from_file(FIX / "hf_wordlevel.json")
    assert v.kind == "Hugging Face WordLevel" and v.unknown == "[UNK]" and v.lower
    assert v.encode(EXPECTED["sentence"]).tolist() == EXPECTED["hf_wordlevel.json"]


def test_hugging_face_char_vocab_matches_tokenizers():
    v = Vocabulary.from_file(FIX / "hf_chars.json")
    assert v.char_level and not v.subword
    assert v.encode(EXPECTED["char_text"]).tolist() == EXPECTED["hf_chars.json"]


def test_hugging_face_bpe_decodes_but_refuses_to_tokenize():
    v = Vocabulary.from_file(FIX / "hf_bpe.json")
    want = EXPECTED["hf_bpe.json"]
    assert v.subword and v.decode(want["ids"]) == want["tokens"]
    with pytest.raises(ValueError, match=r"Corpus\.from_ids"):
        v.encode("the cat")


@pytest.mark.parametrize(
    ("text", "kind", "tokens"),
    [
        ("the\ncat\n[UNK]\n", "one token per line", ("the", "cat", "[UNK]")),
        ("the 2\ncat 0\nsat 1\n", "token id pairs", ("cat", "sat", "the")),
        ('{"the": 1, "cat": 0}', "JSON {token: id}", ("cat", "the")),
        ('{"0": "cat", "1": "the"}', "JSON {id: token}", ("cat", "the")),
        ('["cat", "the"]', "JSON token list", ("cat", "the")),
        ("a\nb\n(\n)\n", "characters, one per line", ("a", "b", "(", ")")),
    ],
)
def test_plain_formats(tmp_path, text, kind, tokens):
    p = tmp_path / "vocab"
    p.write_text(text, encoding="utf-8")
    v = Vocabulary.from_file(p)
    assert v.kind == kind and v.tokens == tokens
    assert v.decode(range(len(tokens))) == list(tokens)
    assert v.id_of(tokens[-1]) == len(tokens) - 1


def test_one_token_per_line_guesses_unknown_and_splits_words(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("[UNK]\nthe\ncat\n,\n", encoding="utf-8")
    v = Vocabulary.from_file(p)
    assert v.unknown == "[UNK]"
    assert v.encode("the cat, the dog").tolist() == [1, 2, 3, 1, 0]
    assert v.encode("the dog", unknown="skip").tolist() == [1]
    with pytest.raises(ValueError, match=r"'dog' \(token 2\) is not in the vocabulary of 4"):
        v.encode("the dog", unknown="error")


def test_characters():
    v = Vocabulary.characters("ab()")
    assert v.char_level and v.encode("a(b)").tolist() == [0, 2, 1, 3]
    with pytest.raises(ValueError, match=r"'x' \(token 2\) and 1 more are not in the vocabulary"):
        v.encode("axbx")
    assert Vocabulary.characters().encode("Az").tolist() == [65, 122]
    with pytest.raises(ValueError, match="twice"):
        Vocabulary.characters("aba")
    assert Vocabulary.from_file(FIX / "hf_chars.json", char_level=False).char_level is False


def _refused(path: Path, needle: str) -> str:
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as info:
        Vocabulary.from_file(path)
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and len(msg) <= 300 and msg.isprintable(), msg
    return msg


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
        (b"\xff\xfe a \xff", "not UTF-8"),
        (b'{"a": 1,', "broken JSON"),
        (b"[" * 200_000, "nested too deeply"),
        (b'{"a": -1}', "negative id"),
        (b'{"a": 99999999}', "lstmviz reads vocabularies of up to"),
        (b'{"x": {"y": [1]}, "n": 3}', "is not a vocabulary"),
        (b'{"class_name": "Tokenizer", "config": {"word_index": "[1, 2]"}}', "word_index"),
        (b'{"version": "1.0", "model": {"type": "WordLevel"}}', "has no vocab"),
    ],
)
def test_hostile_files_are_one_line(tmp_path, content, needle):
    p = tmp_path / "vocab.json"
    p.write_bytes(content)
    _refused(p, needle)


def test_huge_file_refused_before_reading(tmp_path):
    p = tmp_path / "huge.txt"
    with open(p, "wb") as fh:  # sparse: 1 GB on paper, nothing on disk
        fh.truncate(1 << 30)
    _refused(p, "vocabulary files are read up to")


def test_folder_and_missing_file(tmp_path):
    _refused(tmp_path, "not a regular file")
    _refused(tmp_path / "nope.txt", "no such file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_does_not_block(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    _refused(p, "not a regular file")


def test_decode_outside_the_vocabulary():
    v = Vocabulary.from_tokens(["a", "b"])
    assert v.decode(np.array([1, 5, -1])) == ["b", "<5>", "<-1>"]


@pytest.mark.parametrize(
    ("content", "kind", "char_level"),
    [
        # the shape of arabic_name_romanizer's resources/vocab.json (PyPI), a char seq2seq model
        ({"tokens": ["<PAD>", "<UNK>", "<ROLE_GIVEN>", " ", "A", "B"]}, "'tokens'", True),
        # the shape of khmer_ocr_ocm's assets/vocab.json (PyPI): both directions stored
        ({"char2idx": {"a": 1, "b": 2}, "idx2char": {"1": "a", "2": "b"}}, "'char2idx'", True),
        (
            {"itos": ["<unk>", "the", "cat"], "stoi": {"<unk>": 0, "the": 1, "cat": 2}},
            "'stoi'",
            False,
        ),
        ({"idx2word": {"0": "<unk>", "1": "the"}}, "'idx2word'", False),
    ],
)
def test_vocabularies_one_level_down(tmp_path, content, kind, char_level):
    p = tmp_path / "vocab.json"
    p.write_text(json.dumps(content), encoding="utf-8")
    v = Vocabulary.from_file(p)
    assert kind in v.kind and v.char_level is char_level
    first = next(t for t in v.tokens if t is not None and not t.startswith("<"))
    assert v.decode([v.id_of(first)]) == [first]


def test_plain_vocabularies_keep_their_own_tokens_whole(tmp_path):
    """PTB-style text: ``<unk>`` and ``N`` are tokens of the vocabulary, punctuation may be
    attached to a word."""
    p = tmp_path / "ptb.vocab"
    p.write_text("<unk>\nthe\ncat\n,\nN\ncan't\n", encoding="utf-8")
    v = Vocabulary.from_file(p)
    assert v.split == "auto"
    assert v.split_text("the <unk> cat, N can't") == ["the", "<unk>", "cat", ",", "N", "can't"]
    assert v.encode("the <unk> cat, dog").tolist() == [1, 0, 2, 3, 0]
    hf = Vocabulary.from_file(FIX / "hf_wordlevel.json")
    assert hf.split == "words" and hf.split_text("cat, can't") == ["cat", ",", "can", "'", "t"]
