"""A corpus: the documents a model is run on, as one global token axis.

Matching ranks ranges anywhere in the corpus, so every token has a global position ``pos``
(documents laid end to end, ``doc_starts[d]`` the first position of document ``d``); a range never
crosses a document boundary. Text documents keep their token ids and are turned into the model's
input by ``Document.inputs(model)`` (an Embedding table lookup, or one-hot when the model's input
width is the vocabulary size), so one corpus serves any model of that vocabulary; numeric
documents keep ``x (T, D)`` as ``run`` takes it.

Corpus files are untrusted input: sizes are checked before reading, the number of tokens is bounded,
and every failure is one ``ValueError`` line.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.sequence import load_sequence, validate
from lstmviz.core.sequence_files import MAX_NPZ_MEMBERS, MAX_NPZ_RATIO, one_line, open_regular
from lstmviz.explore.vocabulary import Vocabulary

#: A text corpus is read up to this size (1,000,000 words are ~6 MB).
MAX_CORPUS_BYTES = 64 << 20
#: Tokens of a whole corpus (the states of 10 M tokens at H = 512 would be 10 GB as float16).
MAX_TOKENS = 10_000_000
#: Values of the numeric documents together (float32 in memory: 1 GB).
MAX_CORPUS_VALUES = 256_000_000
SEQUENCE_SUFFIXES = (".csv", ".txt", ".tsv", ".npy", ".npz")


@dataclass(frozen=True, eq=False)
class Document:
    """One sequence the model reads from its initial state.

    ``x (T, D)``: the model's input, for numeric documents (None for text). ``ids (T,)``: token
    ids, for text documents. ``tokens``: the text of each step (None: numeric, shown as step
    numbers). ``name``: the file or line it came from.
    """

    x: np.ndarray | None = None
    tokens: list[str] | None = None
    ids: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.x is None and self.ids is None:
            raise ValueError("a document needs x (T, D) or token ids")

    def __len__(self) -> int:
        return len(self.ids) if self.x is None else len(self.x)  # type: ignore[arg-type]

    def inputs(self, model: object, vocab_size: int | None = None) -> np.ndarray:
        """``x (T, D)`` as ``run(model, x)`` takes it: ``x`` itself, or the ids looked up in
        ``model.embedding``, or one-hot when the model's input width is ``vocab_size``."""
        width = model.input_size  # type: ignore[attr-defined]
        if self.x is not None:
            if self.x.shape[1] != width:
                raise ValueError(
                    f"{self.name or 'document'}: {self.x.shape[1]} values per step, but the "
                    f"model's first layer expects {width}"
                )
            return self.x
        ids = self.ids
        assert ids is not None
        table = getattr(model, "embedding", None)
        if table is not None:
            if ids.size and int(ids.max()) >= table.shape[0]:
                raise ValueError(
                    f"{self.name or 'document'}: token id {int(ids.max())} is outside the model's "
                    f"embedding of {table.shape[0]} tokens; is this the model's vocabulary?"
                )
            return table[ids]
        top = int(ids.max()) + 1 if ids.size else 0
        if (vocab_size is not None and vocab_size != width) or top > width:
            raise ValueError(
                f"the model reads {width} values per step and has no Embedding table; token ids "
                f"need an embedding or a one-hot input of the vocabulary size ({vocab_size or top})"
            )
        x = np.zeros((len(ids), width), dtype=np.float32)
        x[np.arange(len(ids)), ids] = 1.0
        return x


@dataclass(frozen=True, eq=False)
class Corpus:
    """Documents on one global token axis (positions ``0 .. n_tokens``)."""

    documents: tuple[Document, ...]
    vocab: Vocabulary | None = None
    notes: tuple[str, ...] = ()
    source: str = ""
    doc_starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.documents:
            raise ValueError(f"{self.source or 'corpus'}: no documents")
        lengths = np.fromiter((len(d) for d in self.documents), np.int64, len(self.documents))
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        starts.flags.writeable = False
        object.__setattr__(self, "doc_starts", starts)
        if starts[-1] == 0:
            raise ValueError(f"{self.source or 'corpus'}: no tokens")

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_text(
        cls,
        path: str | os.PathLike[str],
        vocab: Vocabulary,
        *,
        documents: str = "lines",
        unknown: str = "unknown",
    ) -> Corpus:
        """A UTF-8 text file tokenized with ``vocab``: ``documents="lines"`` makes each non-empty
        line a document (a model reading sentences), ``"stream"`` the whole file one document
        (a char-RNN reading a book; newlines are characters of it). ``unknown``: see
        ``Vocabulary.encode``."""
        p = Path(path)
        try:
            return cls.from_string(
                _read(p), vocab, documents=documents, unknown=unknown, source=p.name
            )
        except ValueError as exc:
            raise ValueError(one_line(str(exc))) from exc

    @classmethod
    def from_string(
        cls,
        text: str,
        vocab: Vocabulary,
        *,
        documents: str = "lines",
        unknown: str = "unknown",
        source: str = "text",
    ) -> Corpus:
        """As ``from_text`` for text in memory."""
        if documents not in ("lines", "stream"):
            raise ValueError(f"documents must be 'lines' or 'stream', not {documents!r}")
        text = text.replace("\r\n", "\n")
        parts = text.split("\n") if documents == "lines" else [text]
        docs: list[Document] = []
        empty = total = 0
        for k, line in enumerate(parts):
            if not line.strip():
                empty += 1
                continue
            where = f"{source} line {k + 1}: " if documents == "lines" else f"{source}: "
            try:
                pieces = vocab.split_text(line, limit=MAX_TOKENS - total)
            except ValueError:
                raise ValueError(
                    f"{source}: more than {MAX_TOKENS:,} tokens; split the corpus"
                ) from None
            ids, pieces = vocab.lookup(pieces, unknown=unknown, where=where)
            if len(ids) == 0:
                empty += 1
                continue
            total += len(ids)
            if total > MAX_TOKENS:
                raise ValueError(f"{source}: more than {MAX_TOKENS:,} tokens; split the corpus")
            docs.append(
                Document(
                    tokens=pieces, ids=ids, name=f"line {k + 1}" if documents == "lines" else source
                )
            )
        if not docs:
            raise ValueError(f"{source}: no tokens ({len(parts):,} empty lines)")
        notes = (f"{empty:,} empty lines skipped",) if empty and documents == "lines" else ()
        return cls(tuple(docs), vocab=vocab, notes=notes, source=source)

    @classmethod
    def from_ids(cls, ids: Sequence[npt.ArrayLike], vocab: Vocabulary | None = None) -> Corpus:
        """Documents of token ids (e.g. from a subword tokenizer); tokens decoded by ``vocab``."""
        docs = []
        for k, seq in enumerate(ids):
            arr = np.asarray(seq)
            if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and arr.min() < 0):
                raise ValueError(f"document {k}: ids must be a 1-D array of ids >= 0")
            if arr.size:
                docs.append(
                    Document(
                        ids=arr.astype(np.int64),
                        name=f"document {k}",
                        tokens=vocab.decode(arr) if vocab is not None else None,
                    )
                )
        return cls(tuple(docs), vocab=vocab, source="ids")

    @classmethod
    def from_arrays(
        cls, xs: Sequence[npt.ArrayLike], tokens: Sequence[Sequence[str] | None] | None = None
    ) -> Corpus:
        """Numeric documents, each ``(T, D)`` as ``run`` takes it (one ``D`` for all)."""
        xs = list(xs)
        if not xs:
            raise ValueError("no documents")
        width = np.asarray(xs[0]).reshape(len(xs[0]), -1).shape[1] if len(xs[0]) else 1
        docs, total = [], 0
        for k, x in enumerate(xs):
            arr = validate(x, width, f"document {k}").astype(np.float32)
            total += arr.size
            if total > MAX_CORPUS_VALUES:
                raise ValueError(f"more than {MAX_CORPUS_VALUES:,} values; split the corpus")
            toks = None if tokens is None or tokens[k] is None else list(tokens[k])  # type: ignore[arg-type]
            if toks is not None and len(toks) != len(arr):
                raise ValueError(f"document {k}: {len(toks)} tokens for {len(arr)} steps")
            docs.append(Document(x=arr, tokens=toks, name=f"document {k}"))
        return cls(tuple(docs), source="arrays")

    @classmethod
    def from_sequences(
        cls, path: str | os.PathLike[str], width: int, embedding: npt.ArrayLike | None = None
    ) -> Corpus:
        """A folder of sequence files (``.csv``, ``.txt``, ``.npy``, ``.npz``; sorted by name,
        each a document), or one ``.npz`` whose arrays are the documents, or one sequence file.
        Each is read by ``lstmviz.core.sequence.load_sequence`` (ids of an embedding model too)."""
        p = Path(path)
        try:
            if p.is_dir():
                files = sorted(
                    f for f in p.iterdir() if f.suffix.lower() in SEQUENCE_SUFFIXES and f.is_file()
                )
                if not files:
                    raise ValueError(f"{p.name}: no {', '.join(SEQUENCE_SUFFIXES)} files")
                if len(files) > 100_000:
                    raise ValueError(f"{p.name}: {len(files):,} files; at most 100,000 documents")
                named = [(f.name, load_sequence(f, width, embedding)) for f in files]
            elif p.suffix.lower() == ".npz":
                named = _npz_documents(p, width)
            else:
                named = [(p.name, load_sequence(p, width, embedding))]
            corpus = cls.from_arrays([x for _, x in named])
        except ValueError as exc:
            raise ValueError(one_line(str(exc))) from exc
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ValueError(one_line(f"{p.name}: cannot read ({exc})")) from exc
        docs = tuple(
            Document(x=d.x, name=n) for d, (n, _) in zip(corpus.documents, named, strict=True)
        )
        return cls(docs, source=p.name)

    # --- queries ---------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return int(self.doc_starts[-1])

    def __len__(self) -> int:
        return self.n_tokens

    def locate(self, pos: int) -> tuple[int, int]:
        """``(document, step in it)`` of global position ``pos``."""
        if not 0 <= pos < self.n_tokens:
            raise IndexError(f"position {pos} outside the corpus of {self.n_tokens:,} tokens")
        d = int(np.searchsorted(self.doc_starts, pos, side="right")) - 1
        return d, int(pos - self.doc_starts[d])

    def position(self, doc: int, t: int) -> int:
        """Global position of step ``t`` of document ``doc``."""
        return int(self.doc_starts[doc] + t)

    def doc_ids(self) -> np.ndarray:
        """``(n_tokens,)`` int32: the document of every position."""
        lengths = np.diff(self.doc_starts)
        return np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)

    def tokens(self, start: int, stop: int) -> list[str]:
        """Text of positions ``[start, stop)`` (numeric documents: the step numbers)."""
        start, stop = max(0, start), min(self.n_tokens, stop)
        out: list[str] = []
        pos = start
        while pos < stop:
            d, t = self.locate(pos)
            doc = self.documents[d]
            n = min(len(doc) - t, stop - pos)
            out.extend(
                doc.tokens[t : t + n]
                if doc.tokens is not None
                else [str(k) for k in range(t, t + n)]
            )
            pos += n
        return out

    def text(self, start: int, stop: int) -> str:
        """``tokens`` joined: without spaces for characters, with spaces otherwise."""
        sep = "" if self.vocab is not None and self.vocab.char_level else " "
        return sep.join(self.tokens(start, stop))


def _read(p: Path) -> str:
    try:
        st = p.stat()
    except OSError:
        raise ValueError(f"{p.name}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{p.name}: not a regular file; expected a UTF-8 text corpus")
    if st.st_size > MAX_CORPUS_BYTES:
        raise ValueError(
            f"{p.name}: {st.st_size:,} bytes; text corpora are read up to "
            f"{MAX_CORPUS_BYTES >> 20} MB (split it into several files)"
        )
    with open_regular(p) as fh:
        raw = fh.read(MAX_CORPUS_BYTES + 1)
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{p.name}: binary data, not a text corpus")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p.name}: not UTF-8 text (byte {exc.start:,})") from None


def _npz_documents(p: Path, width: int) -> list[tuple[str, np.ndarray]]:
    """Every array of an ``.npz`` a document, in stored order, each bounded as
    ``sequence_files.read_npz`` bounds one."""
    from lstmviz.core.sequence_files import MAX_NPY_HEADER, MAX_VALUES, read_npy

    size = p.stat().st_size
    out = []
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise ValueError(f"{p.name}: {len(infos):,} members; at most {MAX_NPZ_MEMBERS:,}")
        inflated = 0
        for info in infos:
            label = f"{p.name}[{info.filename[:60]}]"
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{label}: not a .npy array; expected an archive of np.savez")
            inflated += info.file_size
            if info.file_size > MAX_VALUES * 16 + MAX_NPY_HEADER or inflated > max(
                size, 1
            ) * MAX_NPZ_RATIO + (1 << 20):
                raise ValueError(
                    f"{label}: declares {info.file_size:,} bytes inflated from a "
                    f"{size:,}-byte file; refused as a possible zip bomb"
                )
            with zf.open(info) as fh:
                out.append(
                    (
                        info.filename[:-4],
                        validate(read_npy(fh, info.file_size, label, width), width, label),
                    )
                )
    if not out:
        raise ValueError(f"{p.name}: empty .npz")
    return out
