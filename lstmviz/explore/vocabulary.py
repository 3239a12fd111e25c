"""Vocabularies: token ids ↔ text, read from the files tokenizers leave behind.

A text model sees ids; a person reads words. ``Vocabulary.from_file`` sniffs the content (never the
name) of the formats such models ship with:

- one token per line (id = line number, as BERT's ``vocab.txt``), or ``token id`` pairs per line
  (LSTMVis' ``.dict``);
- a JSON object ``{token: id}`` (GPT-2's ``vocab.json``) or ``{id: token}``;
- a Keras ``Tokenizer.to_json()`` (``word_index`` is itself a JSON string, 1-based: 0 is padding);
- a Hugging Face ``tokenizer.json`` (``model.vocab``: a dict for WordLevel/BPE/WordPiece, a list of
  ``[token, score]`` for Unigram; ``added_tokens`` too).

Vocabulary files are untrusted input: the size is checked before reading, the JSON depth is bounded
by Python's parser, and every failure is one ``ValueError`` line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.sequence_files import one_line

#: A vocabulary file is read up to this size (a 250,000-token Unigram tokenizer.json is ~17 MB;
#: parsing JSON costs several times the file's size in memory).
MAX_VOCAB_BYTES = 32 << 20
#: Entries of a vocabulary (ids are at most this large too, so an id table stays small).
MAX_VOCAB_SIZE = 2_000_000

#: The Hugging Face ``Whitespace`` pre-tokenizer's pattern; also lstmviz's word splitting when a
#: file does not say otherwise (words, and runs of punctuation, each a token).
_WORDS = re.compile(r"\w+|[^\w\s]+")

UNKNOWN_MODES = ("error", "unknown", "skip")


@dataclass(frozen=True)
class Vocabulary:
    """``id → token`` and back, plus how text is split into tokens.

    ``tokens[i]`` is the text of id ``i`` (``None`` where a file leaves an id unused, e.g. Keras'
    padding id 0). ``char_level``: text is split into characters; else into words by ``split``
    (``"auto"``: at whitespace, and a piece the vocabulary lacks again into ``\\w+`` and
    punctuation runs, so ``<unk>`` stays whole and ``cat,`` becomes ``cat`` ``,``; ``"words"``:
    ``\\w+`` and punctuation runs, as Hugging Face's Whitespace; ``"whitespace"``; or a Keras
    separator string).
    ``unknown``: the token unknown text maps to (``[UNK]``, Keras' ``oov_token``), or None.
    ``subword``: a BPE/WordPiece/Unigram model: ids decode, but text must be tokenized by its own
    library (``Corpus.from_ids``).
    """

    tokens: tuple[str | None, ...]
    char_level: bool = False
    unknown: str | None = None
    split: str = "auto"
    lower: bool = False
    filters: str = ""
    kind: str = "token list"
    subword: bool = False
    source: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ValueError(f"{self.source or 'vocabulary'}: no tokens")
        if not self._index:
            index: dict[str, int] = {}
            for i, tok in enumerate(self.tokens):
                if tok is not None:
                    index.setdefault(tok, i)
            self._index.update(index)
        if self.unknown is not None and self.unknown not in self._index:
            raise ValueError(
                f"{self.source or 'vocabulary'}: unknown token {self.unknown!r} has no id"
            )

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def characters(cls, alphabet: str | None = None, *, unknown: str | None = None) -> Vocabulary:
        """A character vocabulary: id = position in ``alphabet``; None = the code points 0-255
        (id = ``ord(c)``, what byte-level char-RNNs use)."""
        chars = alphabet if alphabet is not None else "".join(map(chr, range(256)))
        if len(set(chars)) != len(chars):
            twice = next(c for c in chars if chars.count(c) > 1)
            raise ValueError(f"alphabet lists {twice!r} twice; every character needs one id")
        return cls(tuple(chars), char_level=True, unknown=unknown, kind="characters")

    @classmethod
    def from_tokens(cls, tokens: list[str], **options: object) -> Vocabulary:
        """id = position in ``tokens``."""
        return cls(tuple(tokens), **options)  # type: ignore[arg-type]

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, char_level: bool | None = None
    ) -> Vocabulary:
        """Read any format of the module docstring, sniffed from the content. ``char_level``
        overrides what the file says (a token list of single characters is char-level by
        default). Raises ValueError (one line) for anything else."""
        from lstmviz.explore.vocabulary_files import parse, read_text

        p = Path(path)
        try:
            vocab = parse(p, read_text(p))
        except ValueError as exc:
            raise ValueError(one_line(str(exc))) from exc
        except RecursionError as exc:
            raise ValueError(f"{p.name}: JSON nested too deeply; not a vocabulary") from exc
        except MemoryError as exc:
            raise ValueError(f"{p.name}: too large to read as a vocabulary") from exc
        if char_level is not None and char_level != vocab.char_level:
            vocab = _replace(vocab, char_level=char_level)
        return vocab

    # --- use --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def id_of(self, token: str) -> int | None:
        return self._index.get(token)

    def decode(self, ids: npt.ArrayLike) -> list[str]:
        """The text of each id; an id outside the vocabulary or unused shows as ``<id>``."""
        out = []
        n = len(self.tokens)
        for i in np.asarray(ids).ravel().tolist():
            tok = self.tokens[i] if 0 <= i < n else None
            out.append(f"<{i}>" if tok is None else tok)
        return out

    def split_text(self, text: str, limit: int | None = None) -> list[str]:
        """``text`` cut into tokens the way this vocabulary's tokenizer does (before lookup).
        ``limit``: ValueError as soon as there would be more tokens (a huge line must not
        become tens of millions of strings before it is refused)."""
        if self.lower:
            text = text.lower()
        if self.filters:  # Keras: filtered characters become the separator
            sep = self.split if self.split not in ("auto", "words", "whitespace") else " "
            text = text.translate({ord(c): sep for c in self.filters})
        if self.char_level:
            if limit is not None and len(text) > limit:
                raise ValueError(f"more than {limit:,} tokens")
            return list(text)
        if self.split == "words":
            return _words(text, limit)
        n = -1 if limit is None else limit
        if self.split == "auto":
            out: list[str] = []
            pieces = text.split(None, n)
            if limit is not None and len(pieces) > limit:
                raise ValueError(f"more than {limit:,} tokens")
            for piece in pieces:
                if piece in self._index:
                    out.append(piece)
                else:
                    out.extend(_words(piece, None if limit is None else limit - len(out)))
            return out
        pieces = text.split(None, n) if self.split == "whitespace" else text.split(self.split, n)
        if limit is not None and len(pieces) > limit and pieces[-1].strip():
            raise ValueError(f"more than {limit:,} tokens")
        return [w for w in pieces if w] if self.split != "whitespace" else pieces

    def encode(self, text: str, *, unknown: str = "unknown", where: str = "") -> np.ndarray:
        """Ids ``(T,)`` int64 of ``text``. ``unknown``: ``"unknown"`` maps unknown tokens to the
        vocabulary's unknown token (an error when it has none), ``"skip"`` drops them,
        ``"error"`` refuses them."""
        return self.lookup(self.split_text(text), unknown=unknown, where=where)[0]

    def lookup(
        self, pieces: list[str], *, unknown: str = "unknown", where: str = ""
    ) -> tuple[np.ndarray, list[str]]:
        """Ids of ``pieces`` and the pieces kept (``skip`` drops unknown ones from both)."""
        if unknown not in UNKNOWN_MODES:
            raise ValueError(f"unknown= must be one of {UNKNOWN_MODES}, not {unknown!r}")
        if self.subword:
            raise ValueError(
                f"{self.kind} vocabulary: lstmviz splits text into words or characters only; "
                "tokenize with the model's own tokenizer and use Corpus.from_ids"
            )
        get = self._index.get
        ids = [get(p, -1) for p in pieces]
        if -1 not in ids:
            return np.asarray(ids, dtype=np.int64), pieces
        first = ids.index(-1)
        count = ids.count(-1)
        if unknown == "skip":
            kept = [(i, p) for i, p in zip(ids, pieces, strict=True) if i >= 0]
            return (np.asarray([i for i, _ in kept], dtype=np.int64), [p for _, p in kept])
        unk = self._index.get(self.unknown) if self.unknown is not None else None
        if unknown == "error" or unk is None:
            fix = (
                "pass unknown='skip' to drop them"
                if unk is None
                else "pass unknown='unknown' to map them to " + repr(self.unknown)
            )
            raise ValueError(
                f"{where}{_quote(pieces[first])} (token {first + 1}) and {count - 1:,} more are "
                f"not in the vocabulary of {len(self):,} tokens; {fix}"
                if count > 1
                else f"{where}{_quote(pieces[first])} (token {first + 1}) is not in the vocabulary "
                f"of {len(self):,} tokens; {fix}"
            )
        return np.asarray([i if i >= 0 else unk for i in ids], dtype=np.int64), pieces


def _words(text: str, limit: int | None) -> list[str]:
    """``\\w+`` and punctuation runs of ``text``; ValueError past ``limit`` tokens, found before
    they are all made."""
    if limit is None or len(text) <= limit:  # no more tokens than characters
        return _WORDS.findall(text)
    out = []
    for k, m in enumerate(_WORDS.finditer(text)):
        if k >= limit:
            raise ValueError(f"more than {limit:,} tokens")
        out.append(m.group())
    return out


def _replace(vocab: Vocabulary, **changes: object) -> Vocabulary:
    from dataclasses import replace

    return replace(vocab, **changes)  # type: ignore[arg-type]


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
