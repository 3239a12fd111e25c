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

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.sequence_files import one_line, open_regular

#: A vocabulary file is read up to this size (a 250,000-token Unigram tokenizer.json is ~17 MB;
#: parsing JSON costs several times the file's size in memory).
MAX_VOCAB_BYTES = 32 << 20
#: Entries of a vocabulary (ids are at most this large too, so an id table stays small).
MAX_VOCAB_SIZE = 2_000_000

#: The Hugging Face ``Whitespace`` pre-tokenizer's pattern; also lstmviz's word splitting when a
#: file does not say otherwise (words, and runs of punctuation, each a token).
_WORDS = re.compile(r"\w+|[^\w\s]+")
_KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

UNKNOWN_MODES = ("error", "unknown", "skip")


@dataclass(frozen=True)
class Vocabulary:
    """``id → token`` and back, plus how text is split into tokens.

    ``tokens[i]`` is the text of id ``i`` (``None`` where a file leaves an id unused, e.g. Keras'
    padding id 0). ``char_level``: text is split into characters; else into words by ``split``
    (``"words"``: ``\\w+`` and punctuation runs, ``"whitespace"``, or a Keras separator string).
    ``unknown``: the token unknown text maps to (``[UNK]``, Keras' ``oov_token``), or None.
    ``subword``: a BPE/WordPiece/Unigram model: ids decode, but text must be tokenized by its own
    library (``Corpus.from_ids``).
    """

    tokens: tuple[str | None, ...]
    char_level: bool = False
    unknown: str | None = None
    split: str = "words"
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
        p = Path(path)
        try:
            vocab = _parse(p, _read_text(p))
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
            sep = self.split if self.split not in ("words", "whitespace") else " "
            text = text.translate({ord(c): sep for c in self.filters})
        if self.char_level:
            if limit is not None and len(text) > limit:
                raise ValueError(f"more than {limit:,} tokens")
            return list(text)
        if self.split == "words":
            if limit is None or len(text) <= limit:  # no more tokens than characters
                return _WORDS.findall(text)
            out = []
            for k, m in enumerate(_WORDS.finditer(text)):
                if k >= limit:
                    raise ValueError(f"more than {limit:,} tokens")
                out.append(m.group())
            return out
        n = -1 if limit is None else limit
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


def _replace(vocab: Vocabulary, **changes: object) -> Vocabulary:
    from dataclasses import replace

    return replace(vocab, **changes)  # type: ignore[arg-type]


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --- reading -------------------------------------------------------------------------------------
def _read_text(p: Path) -> str:
    try:
        st = p.stat()
    except OSError:
        raise ValueError(f"{p.name}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p.name}: not a regular file; expected a vocabulary file")
    if st.st_size > MAX_VOCAB_BYTES:
        raise ValueError(
            f"{p.name}: {st.st_size:,} bytes; vocabulary files are read up to "
            f"{MAX_VOCAB_BYTES >> 20} MB"
        )
    if st.st_size == 0:
        raise ValueError(f"{p.name}: empty file; expected one token per line or a JSON vocabulary")
    with open_regular(p) as fh:
        raw = fh.read(MAX_VOCAB_BYTES + 1)
    if b"\x00" in raw[:4096]:
        raise ValueError(f"{p.name}: binary data, not a vocabulary (text or JSON expected)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{p.name}: not UTF-8 text (byte {exc.start}); expected a vocabulary"
        ) from None


def _parse(p: Path, text: str) -> Vocabulary:
    name = p.name
    head = text.lstrip()[:1]
    if head in "{[" and head:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if head == "{":
                raise ValueError(f"{name}: broken JSON ({exc.msg} at line {exc.lineno})") from None
            data = None  # a token list whose first token starts with '['
        if data is not None:
            return _from_json(name, data)
    return _from_lines(name, text)


def _from_lines(name: str, text: str) -> Vocabulary:
    n_lines = text.count("\n")
    if n_lines > MAX_VOCAB_SIZE:  # counted before 2 million strings are made
        raise ValueError(f"{name}: {n_lines:,} lines; at most {MAX_VOCAB_SIZE:,} tokens")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pairs = _pairs(lines)
    if pairs is not None:
        return _from_mapping(name, pairs, kind="token id pairs")
    if all(len(t) == 1 for t in lines if t):
        # one character per line: a char model's alphabet ("" is a line holding the newline)
        tokens = tuple(t if t else "\n" for t in lines)
        return Vocabulary(tokens, char_level=True, kind="characters, one per line", source=name)
    return Vocabulary(
        tuple(lines), kind="one token per line", source=name, unknown=_guess_unknown(lines)
    )


def _pairs(lines: list[str]) -> dict[str, int] | None:
    """``token<space>id`` on every line with distinct ids (LSTMVis' ``.dict``), else None."""
    out: dict[str, int] = {}
    for line in lines:
        tok, sep, num = line.rpartition(" ") if " " in line else line.rpartition("\t")
        if not sep or not tok or not num.isdigit():
            return None
        out[tok] = int(num)
    if len(set(out.values())) != len(out) or not out:
        return None
    return out


_SPECIAL = re.compile(r"<[^<>\s]+>|\[[A-Za-z_]+\]")


def _single_characters(tokens: object) -> bool:
    """Every token one character, besides special ones (``<PAD>``, ``[UNK]``): a char model."""
    regular = [t for t in tokens if not _SPECIAL.fullmatch(t)]  # type: ignore[attr-defined]
    return bool(regular) and all(len(t) == 1 for t in regular)


def _guess_unknown(tokens: list[str] | tuple[str | None, ...]) -> str | None:
    for cand in ("[UNK]", "<unk>", "<UNK>", "UNK", "<oov>", "<OOV>"):
        if cand in tokens:
            return cand
    return None


def _from_json(name: str, data: object) -> Vocabulary:
    if isinstance(data, list):
        if all(isinstance(t, str) for t in data):
            return Vocabulary(
                tuple(data),
                kind="JSON token list",
                source=name,
                char_level=_single_characters(data),
                unknown=_guess_unknown(data),
            )
        raise ValueError(f"{name}: a JSON list that is not a list of tokens")
    if not isinstance(data, dict):
        raise ValueError(f"{name}: JSON {type(data).__name__}, not a vocabulary")
    if data.get("class_name") == "Tokenizer" and isinstance(data.get("config"), dict):
        return _keras(name, data["config"])
    if isinstance(data.get("model"), dict) and ("added_tokens" in data or "version" in data):
        return _hugging_face(name, data)
    if data and all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        return _from_mapping(name, data, kind="JSON {token: id}")
    if (
        data
        and all(isinstance(v, str) for v in data.values())
        and all(k.lstrip("-").isdigit() for k in data)
    ):
        return _from_mapping(name, {v: int(k) for k, v in data.items()}, kind="JSON {id: token}")
    inner = _wrapped(data)
    if inner is not None:
        key, value = inner
        vocab = _from_json(name, value)
        return _replace(vocab, kind=f"JSON {{{key!r}: {vocab.kind.removeprefix('JSON ')}}}")
    keys = ", ".join(list(map(str, data))[:4])
    raise ValueError(
        f"{name}: JSON with keys {keys[:80]} is not a vocabulary; expected {{token: id}}, "
        "{id: token}, a Keras Tokenizer JSON or a Hugging Face tokenizer.json"
    )


def _wrapped(data: dict) -> tuple[str, object] | None:
    """A vocabulary one level down, as scripts save them: ``{"tokens": [...]}``,
    ``{"char2idx": {...}, "idx2char": {...}}``, torchtext's ``{"stoi": ..., "itos": [...]}``.
    A ``{token: id}`` member wins over ``{id: token}``, which wins over a list."""
    found: dict[int, tuple[str, object]] = {}
    for key, value in data.items():
        if not value:
            continue
        if isinstance(value, dict):
            values = value.values()
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                found.setdefault(0, (key, value))
            elif all(isinstance(v, str) for v in values) and all(
                str(k).lstrip("-").isdigit() for k in value
            ):
                found.setdefault(1, (key, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.setdefault(2, (key, value))
    return found[min(found)] if found else None


def _from_mapping(
    name: str, mapping: dict[str, int], *, kind: str, **options: object
) -> Vocabulary:
    if not mapping:
        raise ValueError(f"{name}: no tokens")
    ids = list(mapping.values())
    lo, hi = min(ids), max(ids)
    if lo < 0:
        raise ValueError(f"{name}: negative id {lo}; ids count from 0")
    if hi >= MAX_VOCAB_SIZE:
        raise ValueError(
            f"{name}: id {hi:,}; lstmviz reads vocabularies of up to {MAX_VOCAB_SIZE:,} ids"
        )
    tokens: list[str | None] = [None] * (hi + 1)
    for tok, i in mapping.items():
        if tokens[i] is None:
            tokens[i] = tok
    options.setdefault("unknown", _guess_unknown(list(mapping)))
    options.setdefault("char_level", _single_characters(mapping))
    return Vocabulary(tuple(tokens), kind=kind, source=name, **options)  # type: ignore[arg-type]


def _keras(name: str, config: dict) -> Vocabulary:
    """``Tokenizer.to_json()``: ``word_index`` is a JSON string (1-based; 0 = padding).
    ``num_words`` keeps ids below it; others become ``oov_token`` (Tokenizer.texts_to_sequences)."""
    raw = config.get("word_index")
    index = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(index, dict) or not all(isinstance(v, int) for v in index.values()):
        raise ValueError(f"{name}: Keras Tokenizer JSON without a word_index of ids")
    num_words = config.get("num_words")
    if isinstance(num_words, int) and num_words > 0:
        oov = config.get("oov_token")
        index = {w: i for w, i in index.items() if i < num_words or w == oov}
    split = config.get("split", " ")
    return _from_mapping(
        name,
        index,
        kind="Keras Tokenizer",
        char_level=bool(config.get("char_level", False)),
        unknown=config.get("oov_token"),
        lower=bool(config.get("lower", True)),
        # char_level Tokenizers keep every character (texts_to_sequences skips the filters)
        filters=""
        if config.get("char_level")
        else str(config.get("filters", _KERAS_FILTERS) or ""),
        split=split if isinstance(split, str) and split else " ",
    )


def _hugging_face(name: str, data: dict) -> Vocabulary:
    model = data["model"]
    kind = str(model.get("type") or ("Unigram" if isinstance(model.get("vocab"), list) else "BPE"))
    vocab = model.get("vocab")
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...]
        mapping = {}
        for i, item in enumerate(vocab):
            if not (isinstance(item, list) and item and isinstance(item[0], str)):
                raise ValueError(f"{name}: Unigram vocab entry {i} is not [token, score]")
            mapping.setdefault(item[0], i)
    elif isinstance(vocab, dict):
        mapping = dict(vocab)
    else:
        raise ValueError(f"{name}: tokenizer.json model {kind} has no vocab")
    for tok in data.get("added_tokens") or []:
        if (
            isinstance(tok, dict)
            and isinstance(tok.get("content"), str)
            and isinstance(tok.get("id"), int)
        ):
            mapping.setdefault(tok["content"], tok["id"])
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in mapping.values()):
        raise ValueError(f"{name}: tokenizer.json vocab ids must be integers")
    unk = model.get("unk_token")
    if isinstance(model.get("unk_id"), int) and isinstance(vocab, list):
        unk = vocab[model["unk_id"]][0] if 0 <= model["unk_id"] < len(vocab) else None
    regular = [t for t in mapping if not _is_added(t, data)]
    char_level = bool(regular) and all(len(t) == 1 for t in regular)
    lower = _lowercases(data.get("normalizer"))
    split = _split_of(data.get("pre_tokenizer"))
    return _from_mapping(
        name,
        mapping,
        kind=f"Hugging Face {kind}",
        char_level=char_level,
        unknown=unk if isinstance(unk, str) and unk in mapping else None,
        subword=kind in ("BPE", "WordPiece", "Unigram") and not char_level,
        lower=lower,
        split=split,
    )


def _is_added(token: str, data: dict) -> bool:
    return any(
        isinstance(t, dict) and t.get("content") == token for t in data.get("added_tokens") or []
    )


def _lowercases(normalizer: object) -> bool:
    if not isinstance(normalizer, dict):
        return False
    if normalizer.get("type") == "Lowercase" or normalizer.get("lowercase") is True:
        return True
    return any(_lowercases(n) for n in normalizer.get("normalizers") or [])


def _split_of(pre: object) -> str:
    """``words`` for HF Whitespace (``\\w+|[^\\w\\s]+``), ``whitespace`` for WhitespaceSplit."""
    if isinstance(pre, dict):
        if pre.get("type") == "WhitespaceSplit":
            return "whitespace"
        if pre.get("type") == "Sequence":
            inner = [_split_of(p) for p in pre.get("pretokenizers") or []]
            return "whitespace" if inner == ["whitespace"] else "words"
    return "words"
