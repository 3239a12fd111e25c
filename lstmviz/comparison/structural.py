"""Shape-preserving mistakes that move weights around inside W_x and W_h, and block matching.

A porting mistake shows in the canonical model as B's arrays being a transformed copy of
A's. The moves here are the ones a hand-written port makes: a ``[in, 4H]`` kernel reshaped
into a ``[4H, in]`` slot instead of transposed (or the reverse), each gate's square block
transposed, the x rows and h rows of a TF1 fused kernel swapped. Gate permutations are not
enumerated: after each move the four blocks of B are matched to A's blocks, which finds σ
directly (16 block comparisons instead of 24 permutations, a first-row check first so two
unrelated 1024-unit models cost a few rows, not a few copies).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmviz.core.model import LSTMDirection

Matrix = np.ndarray
Pair = tuple[Matrix, Matrix]  # (W_x, W_h)

IDENTITY = (0, 1, 2, 3)


def max_abs(x: np.ndarray, y: np.ndarray) -> float:
    """max |x − y|, NaN where both are NaN counting as equal, inf for a shape mismatch."""
    if x.shape != y.shape:
        return float("inf")
    if x.size == 0:
        return 0.0
    d = np.abs(np.subtract(x, y, dtype=np.result_type(x, y, np.float32)))
    m = float(d.max())
    if m != m:  # NaN somewhere
        both = np.isnan(x) & np.isnan(y)
        d[both] = 0.0
        m = float(np.nan_to_num(d, nan=np.inf).max())
    return m


def close(x: np.ndarray, y: np.ndarray, atol: float) -> bool:
    return max_abs(x, y) <= atol


def _block_t(m: Matrix) -> Matrix | None:
    """Each gate's square block transposed (needs ``in == H``)."""
    H = m.shape[0] // 4
    if m.shape[1] != H:
        return None
    return m.reshape(4, H, H).transpose(0, 2, 1).reshape(4 * H, H)


def _reshape_from_in_first(m: Matrix) -> Matrix:
    """What a ``[in, 4H]`` array (Keras, TF1) becomes when reshaped into a ``[4H, in]`` slot."""
    return m.T.reshape(m.shape)


def _reshape_to_in_first(m: Matrix) -> Matrix:
    """What a ``[4H, in]`` array (PyTorch, ONNX) becomes when reshaped into a ``[in, 4H]``
    slot and read back transposed (the inverse of ``_reshape_from_in_first``)."""
    return m.reshape(m.shape[1], m.shape[0]).T


def _rows_block_t(m: Matrix, rows: list[int]) -> Matrix | None:
    """``_block_t(m)[rows]`` without transposing the whole matrix."""
    H = m.shape[0] // 4
    if m.shape[1] != H:
        return None
    return np.stack([m[(r // H) * H : (r // H + 1) * H, r % H] for r in rows])


def _rows_from_in_first(m: Matrix, rows: list[int]) -> Matrix:
    """``_reshape_from_in_first(m)[rows]``: row r holds ``m.T``'s flat values r·n … r·n+n−1."""
    n4, n = m.shape
    p = np.asarray(rows)[:, None] * n + np.arange(n)
    return m[p % n4, p // n4]


def _rows_to_in_first(m: Matrix, rows: list[int]) -> Matrix:
    """``_reshape_to_in_first(m)[rows]``: row r holds m's flat values r, r + 4H, r + 8H …"""
    n4, n = m.shape
    flat = m.reshape(-1)
    return flat[np.arange(n)[None, :] * n4 + np.asarray(rows)[:, None]]


def _full_t(m: Matrix) -> Matrix | None:
    """The whole matrix transposed: only a square one keeps its shape (a Keras kernel
    [D, 4H] with D = 4H written the wrong way round still loads)."""
    return m.T if m.shape[0] == m.shape[1] else None


def _rows_full_t(m: Matrix, rows: list[int]) -> Matrix | None:
    return m[:, rows].T if m.shape[0] == m.shape[1] else None


def _fused_t(wx: Matrix, wh: Matrix) -> Pair | None:
    """A TF1 kernel [x; h] of (D + H) × 4H that is square, stored transposed as a whole."""
    D = wx.shape[1]
    k = np.concatenate([wx, wh], axis=1)
    if k.shape[0] != k.shape[1]:
        return None
    return k.T[:, :D], k.T[:, D:]


def _fused_t_rows(wx: Matrix, wh: Matrix, rows: list[int]) -> Pair | None:
    D = wx.shape[1]
    if wx.shape[0] != D + wh.shape[1]:
        return None
    cols = np.stack([wx[:, r] if r < D else wh[:, r - D] for r in rows])  # rows of k.T
    return cols[:, :D], cols[:, D:]


_ROWS = {
    _full_t: _rows_full_t,
    _block_t: _rows_block_t,
    _reshape_from_in_first: _rows_from_in_first,
    _reshape_to_in_first: _rows_to_in_first,
}

Probe = Callable[[Matrix, Matrix, list[int]], Pair | None]


@dataclass(frozen=True)
class Move:
    """One structural mistake. ``on_b``: the inverse is applied to B instead of the move to A
    (B = move(σ A) rather than σ(move A); the two differ for moves that mix gate blocks)."""

    kind: str  # "transposed" | "fused_rows_swapped"
    detail: str
    fix: str
    apply: Callable[[Matrix, Matrix], Pair | None]
    on_b: bool = False
    #: ``apply(...)`` restricted to some rows, without moving the whole arrays: a cheap first
    #: check (two unrelated 1024-unit models are told apart from four rows per move).
    rows: Probe | None = None


def _on(
    which: str, fn: Callable[[Matrix], Matrix | None]
) -> Callable[[Matrix, Matrix], Pair | None]:
    def run(wx: Matrix, wh: Matrix) -> Pair | None:
        nx = fn(wx) if which in ("W_x", "W_x and W_h") else wx
        nh = fn(wh) if which in ("W_h", "W_x and W_h") else wh
        if nx is None or nh is None:
            return None
        return nx, nh

    return run


def _on_rows(which: str, fn: Callable[[Matrix], Matrix | None]) -> Probe:
    probe = _ROWS[fn]

    def run(wx: Matrix, wh: Matrix, rows: list[int]) -> Pair | None:
        nx = probe(wx, rows) if which in ("W_x", "W_x and W_h") else wx[rows]
        nh = probe(wh, rows) if which in ("W_h", "W_x and W_h") else wh[rows]
        if nx is None or nh is None:
            return None
        return nx, nh

    return run


def _fused_rows(x_first_written: bool) -> Probe:
    """The fused-kernel split moves columns only: its rows come from the same rows."""
    fn = _fused(x_first_written)
    return lambda wx, wh, rows: fn(wx[rows], wh[rows])


def _fused(x_first_written: bool) -> Callable[[Matrix, Matrix], Pair | None]:
    """TF1 keeps ``[x; h]`` rows in one kernel: a port that splits it at the wrong place.
    ``x_first_written``: the kernel was ``[x; h]`` and read as ``[h; x]``; else written as
    ``[h; x]`` and read as ``[x; h]``."""

    def run(wx: Matrix, wh: Matrix) -> Pair | None:
        D, P = wx.shape[1], wh.shape[1]
        if x_first_written:
            k = np.concatenate([wx, wh], axis=1)
            return k[:, P:], k[:, :P]
        k = np.concatenate([wh, wx], axis=1)
        return k[:, :D], k[:, D:]

    return run


def moves(a: LSTMDirection) -> list[Move]:
    """Every structural mistake that fits A's shapes, the block-local ones first."""
    out: list[Move] = []
    square_x = a.input_size == a.hidden_size
    square_h = a.output_size == a.hidden_size
    for which in ("W_x and W_h", "W_h", "W_x"):
        if (which != "W_h" and not square_x) or (which != "W_x" and not square_h):
            continue
        out.append(
            Move(
                "transposed",
                f"B's {which} hold A's gate blocks transposed (each H×H block Uᵀ, not U)",
                "transpose each gate block back (the port wrote Uᵀ where the framework wants U)",
                _on(which, _block_t),
                rows=_on_rows(which, _block_t),
            )
        )
    # a whole square matrix transposed: before the reshapes, which equal it there
    if a.input_size == 4 * a.hidden_size:
        out.append(
            Move(
                "transposed",
                "B's W_x is A's transposed as a whole (a square [D, 4H] kernel written the "
                "wrong way round)",
                "transpose the kernel: Keras/TF keep [D, 4H], PyTorch/ONNX [4H, D]; a square "
                "one loads either way, so the shape cannot catch it",
                _on("W_x", _full_t),
                rows=_on_rows("W_x", _full_t),
            )
        )
    if a.input_size + a.output_size == 4 * a.hidden_size:
        out.append(
            Move(
                "transposed",
                "B's fused TF1 kernel [x; h] is A's transposed as a whole (square (D + H) × 4H)",
                "store the fused kernel as [D + H, 4H]: x rows, then h rows, one column per "
                "gate unit",
                _fused_t,
                rows=_fused_t_rows,
            )
        )
    for which in ("W_x and W_h", "W_h", "W_x"):
        keras, torch = "a Keras/TF [in, 4H] kernel", "a PyTorch/ONNX [4H, in] weight"
        for fn, shapes, fix in (
            (_reshape_to_in_first, ("[in, 4H]", "[4H, in]"), f"{keras} into {torch}"),
            (_reshape_from_in_first, ("[4H, in]", "[in, 4H]"), f"{torch} into {keras}"),
        ):
            out.append(
                Move(
                    "transposed",
                    f"B's {which} are A's {shapes[0]} arrays reshaped to {shapes[1]} instead of "
                    "transposed",
                    f"use .T, not .reshape, to move {fix}",
                    _on(which, fn),
                    on_b=True,
                    rows=_on_rows(which, fn),
                )
            )
        for fn, text in (
            (_reshape_from_in_first, "[in, 4H] arrays reshaped to [4H, in]"),
            (_reshape_to_in_first, "[4H, in] arrays reshaped to [in, 4H]"),
        ):
            out.append(
                Move(
                    "transposed",
                    f"B's {which} are A's {text} instead of transposed (then gates reordered)",
                    "use .T, not .reshape, when moving a kernel between [in, 4H] and [4H, in]",
                    _on(which, fn),
                    rows=_on_rows(which, fn),
                )
            )
    fix = "split the fused TF1 kernel with the x rows first: kernel[:D] is W_x, kernel[D:] W_h"
    if a.input_size == a.output_size:
        out.append(
            Move(
                "fused_rows_swapped",
                "B's W_x and W_h are swapped: the x rows and h rows of the fused TF1 kernel "
                "[x; h] were exchanged",
                fix,
                _fused(True),
                rows=_fused_rows(True),
            )
        )
    else:
        out.append(
            Move(
                "fused_rows_swapped",
                "B read the fused TF1 kernel [x; h] as [h; x] (h rows first)",
                fix,
                _fused(True),
                rows=_fused_rows(True),
            )
        )
        out.append(
            Move(
                "fused_rows_swapped",
                "B's fused TF1 kernel was written as [h; x] and read as [x; h]",
                fix,
                _fused(False),
                rows=_fused_rows(False),
            )
        )
    return out


def _blocks(m: Matrix, n: int) -> list[Matrix]:
    H = m.shape[0] // n
    return [m[k * H : (k + 1) * H] for k in range(n)]


def match_blocks(a: Pair, b: Pair, atol: float, n: int = 4) -> list[tuple[int, ...]]:
    """Every σ with ``B[k] = A[σ(k)]`` for W_x and W_h at once (``n`` gate blocks), the
    identity first and then by how few blocks move (equal blocks, e.g. all-zero ones, allow
    several)."""
    if any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return []
    ablocks = [_blocks(m, n) for m in a]
    bblocks = [_blocks(m, n) for m in b]
    cands: list[list[int]] = []
    for k in range(n):
        row = []
        for j in range(n):
            pairs = [(ab[j], bb[k]) for ab, bb in zip(ablocks, bblocks, strict=True)]
            if all(close(x[:1], y[:1], atol) for x, y in pairs) and all(
                close(x, y, atol) for x, y in pairs
            ):
                row.append(j)
        if not row:
            return []
        cands.append(row)
    found = [s for s in itertools.product(*cands) if len(set(s)) == n]
    return sorted(found, key=lambda s: sum(i != k for k, i in enumerate(s)))


def permute(v: np.ndarray, sigma: tuple[int, ...]) -> np.ndarray:
    """Blocks of a ``(nH, ...)`` array rearranged so that block k is block ``σ(k)``."""
    H = v.shape[0] // len(sigma)
    return np.concatenate([v[s * H : (s + 1) * H] for s in sigma])


def rows_match(a: Pair, b: Pair, atol: float) -> bool:
    """Whether every row of B's probe rows equals some row of A's (W_x and W_h at once):
    necessary for any σ to explain B."""
    for k in range(a[0].shape[0]):
        if not any(
            close(a[0][j], b[0][k], atol) and close(a[1][j], b[1][k], atol)
            for j in range(a[0].shape[0])
        ):
            return False
    return True
