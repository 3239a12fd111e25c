"""Reading vocabulary files: the formats of ``vocabulary``'s docstring, sniffed from the content.

Each reader returns a ``Vocabulary`` or raises ValueError naming the file, what is wrong and what
would work; ``Vocabulary.from_file`` makes that one printable line.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from lstmviz.core.sequence_files import open_regular
from lstmviz.explore.vocabulary import (
    MAX_VOCAB_BYTES,
    MAX_VOCAB_SIZE,
    Vocabulary,
    _replace,
)

_KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def read_text(p: Path) -> str:
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


def parse(p: Path, text: str) -> Vocabulary:
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
    single = False
    for t in tokens:  # type: ignore[attr-defined]
        if len(t) == 1:
            single = True
        elif not _SPECIAL.fullmatch(t):
            return False  # a word vocabulary stops at its first word
    return single


def _guess_unknown(tokens: object) -> str | None:
    if not isinstance(tokens, dict | set):
        tokens = set(tokens)  # type: ignore[call-overload]
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
    options.setdefault("unknown", _guess_unknown(mapping))
    options.setdefault("char_level", _single_characters(mapping))
    return Vocabulary(tuple(tokens), kind=kind, source=name, _index=mapping, **options)  # type: ignore[arg-type]


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
