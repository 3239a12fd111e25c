"""Annotations: a label per token from the user's domain (part of speech, nesting depth, chord),
aligned with a corpus, to see what the matches of a hypothesis have in common.

A file is read as the first of these that fits the corpus:

- CSV rows ``doc,t,label`` (a header row allowed; unlisted tokens are unlabelled);
- whitespace-separated labels, as many as the corpus has tokens (line breaks anywhere);
- one line per document, each either that document's labels separated by whitespace or, for a
  character corpus, one character per token (``0011221100`` for a nesting depth below 10).

Annotation files are untrusted input: the size is checked before reading and a mismatch is one
``ValueError`` line naming the first document or row that does not fit.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmviz.core.sequence_files import one_line
from lstmviz.explore.corpus import Corpus, _read

MAX_LABELS = 100_000  # distinct labels
MAX_LABEL_CHARS = 64  # per token, with its separator (CSV rows: "doc,t,label")


@dataclass(frozen=True, eq=False)
class Annotations:
    """``codes (N,)`` int32 per corpus position (-1 unlabelled), ``names[code]`` the label."""

    corpus: Corpus
    codes: np.ndarray
    names: tuple[str, ...]
    source: str = ""

    @classmethod
    def from_labels(
        cls, corpus: Corpus, labels: Sequence[str | None], source: str = ""
    ) -> Annotations:
        if len(labels) != corpus.n_tokens:
            raise ValueError(f"{len(labels):,} labels for {corpus.n_tokens:,} tokens")
        names: dict[str, int] = {}
        codes = np.fromiter(
            (-1 if lab is None else names.setdefault(lab, len(names)) for lab in labels),
            dtype=np.int32,
            count=len(labels),
        )
        if len(names) > MAX_LABELS:
            raise ValueError(f"{len(names):,} distinct labels; at most {MAX_LABELS:,}")
        return cls(corpus, codes, tuple(names), source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], corpus: Corpus) -> Annotations:
        p = Path(path)
        try:
            labels = _parse(p.name, _read(p), corpus)
            return cls.from_labels(corpus, labels, p.name)
        except ValueError as exc:
            raise ValueError(one_line(str(exc))) from exc

    def labels(self, start: int, stop: int) -> list[str | None]:
        return [self.names[c] if c >= 0 else None for c in self.codes[start:stop].tolist()]

    def _codes_of(self, label: str | Collection[str]) -> np.ndarray:
        wanted = {label} if isinstance(label, str) else set(label)
        return np.asarray([k for k, n in enumerate(self.names) if n in wanted], dtype=np.int32)

    def hit_rate(
        self, matches: Sequence[object], label: str | Collection[str], *, whole: bool = False
    ) -> float:
        """Fraction of the matched tokens carrying ``label`` (or any of several labels); with
        ``whole``, the fraction of matches whose every token carries it. 0 for no matches."""
        if not matches:
            return 0.0
        codes = self._codes_of(label)
        hits = []
        for m in matches:
            inside = np.isin(self.codes[m.start : m.stop], codes)  # type: ignore[attr-defined]
            hits.append(inside.all() if whole else inside.mean())
        return float(np.mean(hits))

    def hit_rates(self, matches: Sequence[object]) -> dict[str, float]:
        """Per label: the fraction of matched tokens carrying it, most frequent first."""
        if not matches:
            return {}
        pos = np.concatenate([np.arange(m.start, m.stop) for m in matches])  # type: ignore[attr-defined]
        codes = self.codes[pos]
        counts = np.bincount(codes[codes >= 0], minlength=len(self.names))
        order = np.argsort(-counts, kind="stable")
        return {self.names[k]: float(counts[k] / len(pos)) for k in order if counts[k]}


def _parse(name: str, text: str, corpus: Corpus) -> list[str | None]:
    limit = MAX_LABEL_CHARS * corpus.n_tokens + 4096
    if len(text) > limit:  # checked before millions of label strings are made
        raise ValueError(
            f"{name}: {len(text):,} characters of labels for {corpus.n_tokens:,} tokens; "
            f"labels are at most {MAX_LABEL_CHARS} characters (is this the corpus' annotation?)"
        )
    lines = text.replace("\r\n", "\n").split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if first.count(",") >= 2 and _is_csv(lines):
        return _csv(name, lines, corpus)
    words = text.split()
    if len(words) == corpus.n_tokens:
        return words  # type: ignore[return-value]
    rows = [ln for ln in lines if ln.strip()]
    if len(rows) != len(corpus.documents):
        raise ValueError(
            f"{name}: {len(words):,} labels for {corpus.n_tokens:,} tokens, and {len(rows):,} "
            f"non-empty lines for {len(corpus.documents):,} documents; expected one label per "
            "token, one line per document, or CSV doc,t,label"
        )
    out: list[str | None] = []
    for d, (row, doc) in enumerate(zip(rows, corpus.documents, strict=True)):
        cells = row.split()
        if len(cells) == len(doc):
            out.extend(cells)
        elif len(row) == len(doc):
            out.extend(row)
        else:
            raise ValueError(
                f"{name}: line {d + 1} has {len(cells):,} labels ({len(row):,} characters) for "
                f"document {d} of {len(doc):,} tokens"
            )
    return out


def _is_csv(lines: list[str]) -> bool:
    rows = [ln for ln in lines[:5] if ln.strip()]
    data = rows[1:] if rows and not rows[0].split(",")[0].strip().isdigit() else rows
    return bool(data) and all(
        len(c := r.split(",", 2)) == 3 and c[0].strip().isdigit() and c[1].strip().isdigit()
        for r in data
    )


def _csv(name: str, lines: list[str], corpus: Corpus) -> list[str | None]:
    out: list[str | None] = [None] * corpus.n_tokens
    n_docs = len(corpus.documents)
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        cells = line.split(",", 2)
        if k == 0 and not cells[0].strip().isdigit():
            continue  # header
        if len(cells) != 3 or not cells[0].strip().isdigit() or not cells[1].strip().isdigit():
            raise ValueError(f"{name}: line {k + 1} is not doc,t,label")
        d, t, label = int(cells[0]), int(cells[1]), cells[2].strip()
        if d >= n_docs or t >= len(corpus.documents[d]):
            raise ValueError(
                f"{name}: line {k + 1}: document {d}, step {t} is outside the corpus "
                f"({n_docs:,} documents)"
            )
        out[corpus.position(d, t)] = label
    return out
