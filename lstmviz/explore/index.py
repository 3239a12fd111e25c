"""Packed on-bits of every unit at every position: the index ``match`` answers from.

``words[w, t]`` holds bit ``j`` = "unit ``64w + j`` is at or above the threshold at position
``t``" (word-major, so one unit group over the whole corpus is one contiguous 8-byte-per-token
row). A million tokens at H = 512 is 8 words × 8 MB = 64 MB, against 1-2 GB of values: the count
of a selection's units that are on at each position is one AND + popcount per word over the corpus
(``np.bitwise_count``), ~5 ms a word, whatever the size of the selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROWS_PER_BLOCK = 65_536  # positions thresholded at once while building (bool temp: 32 MB at 512)
COUNT_BLOCK = 65_536  # positions counted at once (temporaries: 512 + 64 KB, in L2)


@dataclass(frozen=True, eq=False)
class OnIndex:
    """``words (W, N)`` uint64 on-bits; ``doc_end (N,)``: end position of each position's
    document (a range ``[a, a + L)`` is inside one document iff ``a + L <= doc_end[a]``);
    ``doc_start (N,)`` likewise; ``room (N,)`` int32 = ``doc_end - position``."""

    threshold: float
    n_units: int
    words: np.ndarray
    doc_start: np.ndarray
    doc_end: np.ndarray
    room: np.ndarray

    @classmethod
    def build(cls, values: np.ndarray, threshold: float, corpus: object) -> OnIndex:
        N, H = values.shape
        W = (H + 63) // 64
        words = np.zeros((W, N), dtype=np.uint64)
        for r0 in range(0, N, ROWS_PER_BLOCK):
            block = at_least(values[r0 : r0 + ROWS_PER_BLOCK], threshold)
            if H % 64:
                block = np.pad(block, ((0, 0), (0, W * 64 - H)))
            packed = np.packbits(block, axis=1, bitorder="little")  # (R, W*8) uint8
            words[:, r0 : r0 + len(block)] = packed.view("<u8").T
        starts = np.asarray(corpus.doc_starts)  # type: ignore[attr-defined]
        lengths = np.diff(starts)
        doc_start = np.repeat(starts[:-1], lengths)
        doc_end = np.repeat(starts[1:], lengths)
        room = (doc_end - np.arange(N)).astype(np.int32)
        return cls(float(threshold), H, words, doc_start, doc_end, room)

    @property
    def n_positions(self) -> int:
        return self.words.shape[1]

    @property
    def nbytes(self) -> int:
        return self.words.nbytes + self.doc_start.nbytes + self.doc_end.nbytes + self.room.nbytes

    def mask(self, units: np.ndarray) -> np.ndarray:
        """``(W,)`` uint64 with the bits of ``units`` set."""
        m = np.zeros(self.words.shape[0] * 64, dtype=bool)
        m[np.asarray(units, dtype=np.int64)] = True
        return np.packbits(m, bitorder="little").view("<u8").copy()

    def count(self, mask: np.ndarray) -> np.ndarray:
        """``(N,)`` uint16: how many of ``mask``'s units are on at each position. One AND and
        one popcount per word of the mask, ``COUNT_BLOCK`` positions at a time so the
        temporaries stay in cache: the words are read once from memory (64 MB at 1M × 512)."""
        words = np.flatnonzero(mask)
        N = self.n_positions
        out = np.zeros(N, dtype=np.uint16)
        tmp = np.empty(COUNT_BLOCK, dtype=np.uint64)
        bits = np.empty(COUNT_BLOCK, dtype=np.uint8)
        for r0 in range(0, N, COUNT_BLOCK):
            r1 = min(N, r0 + COUNT_BLOCK)
            t, b, o = tmp[: r1 - r0], bits[: r1 - r0], out[r0:r1]
            for w in words:
                np.bitwise_and(self.words[w, r0:r1], mask[w], out=t)
                np.bitwise_count(t, out=b)
                np.add(o, b, out=o)
        return out

    def on_throughout(self, starts: np.ndarray, length: int) -> np.ndarray:
        """``(W, M)``: units on at every position of ``[a, a + length)`` for each start ``a``.
        One gather of the ``(M, length)`` positions per word row, then an AND down the rows."""
        pos = starts[:, None] + np.arange(length)[None, :]
        acc = np.empty((self.words.shape[0], len(starts)), dtype=np.uint64)
        for w, row in enumerate(self.words):
            np.bitwise_and.reduce(row.take(pos), axis=1, out=acc[w])
        return acc

    def on_anywhere(
        self, starts: np.ndarray, length: int, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        """``(W, M)``: units on at some position of ``[a, a + length)`` for each start ``a``;
        positions outside ``[lo, hi)`` (the candidate's document) count as off, as the zero
        state before a document starts is off. ``length`` 0 gives no bits."""
        acc = np.zeros((self.words.shape[0], len(starts)), dtype=np.uint64)
        for k in range(length):
            pos = starts + k
            ok = (pos >= lo) & (pos < hi)
            acc[:, ok] |= self.words[:, pos[ok]]
        return acc


def at_least(values: np.ndarray, threshold: float) -> np.ndarray:
    """``values >= threshold`` as booleans. For a positive threshold on float16/float32 this
    compares the bit patterns as integers (positive floats order as their integer views, negative
    ones are negative integers): 15x faster than NumPy's float16 comparison, which converts."""
    ints = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32}.get(values.dtype)
    if ints is None or not threshold > 0:
        return values >= values.dtype.type(threshold)
    limit = np.array(threshold, dtype=values.dtype)
    if float(limit) < threshold:  # rounded down to the storage precision: the next one up
        limit = np.nextafter(limit, np.inf).astype(values.dtype)
    return values.view(ints) >= limit.view(ints)


def popcount(words: np.ndarray, axis: int = 0) -> np.ndarray:
    """Set bits summed over ``axis`` (the words of one unit set)."""
    return np.bitwise_count(words).sum(axis=axis, dtype=np.int64)
