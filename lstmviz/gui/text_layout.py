"""Where each token of a sequence goes when laid out as wrapped text, and what colour it gets.

Kept apart from the widget so both are cheap: the layout is a pass over token widths (one
per distinct token, measured once), the colours a lookup-table index with NumPy. A new unit
or quantity recolours (one array op), a new width re-wraps, nothing creates items per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import registered

#: What a whitespace token is drawn as (its colour must stay visible and clickable).
VISIBLE = {"\n": "↵", "\r": "␍", "\t": "⇥", "": "∅"}
MAX_CHARS = 24  # a longer token (a URL in a word vocabulary) is elided with …


def display(label: str) -> str:
    """The text drawn for a token: whitespace made visible, very long tokens elided."""
    if label in VISIBLE:
        return VISIBLE[label]
    label = label.replace("\n", "↵").replace("\t", "⇥")
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


@dataclass(frozen=True)
class TokenLayout:
    """``x (T,)`` left edge and ``width (T,)`` in pixels, ``row (T,)`` line of each token;
    ``row_start (rows + 1,)``: first token of each line (tokens of line r are
    ``row_start[r]:row_start[r + 1]``)."""

    x: npt.NDArray[np.int32]
    width: npt.NDArray[np.int32]
    row: npt.NDArray[np.int32]
    row_start: npt.NDArray[np.int64]

    @property
    def rows(self) -> int:
        return len(self.row_start) - 1

    def token_at(self, row: int, x: float) -> int | None:
        """The token under pixel ``x`` of line ``row``, None between or past tokens."""
        if not 0 <= row < self.rows:
            return None
        lo, hi = int(self.row_start[row]), int(self.row_start[row + 1])
        k = lo + int(np.searchsorted(self.x[lo:hi], x, side="right")) - 1
        if lo <= k < hi and x < self.x[k] + self.width[k]:
            return k
        return None


WRAP_VECTOR_ROWS = 20_000  # wrapped lines past which one searchsorted for all beats a loop


def _next_at_or_after(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """For each t, the first index >= t where ``mask`` holds (len(mask) if none)."""
    T = len(mask)
    where = np.where(mask, np.arange(T, dtype=np.int64), T)
    return np.minimum.accumulate(where[::-1])[::-1]


def wrap(widths: npt.ArrayLike, breaks: npt.ArrayLike, available: int) -> TokenLayout:
    """Greedy wrap of tokens of ``widths`` into lines of ``available`` pixels; a token with
    ``breaks[t]`` (a newline) ends its line. A token wider than the line gets a line alone.

    Vectorised: a 1,000,000-token document lays out in tens of ms (the per-token Python loop
    it replaces took 300-400 ms, a GUI stall). Lines after a newline start where it says;
    a paragraph wider than the line is wrapped line by line with a ``searchsorted`` on the
    cumulative widths (one per wrapped line), or with one ``searchsorted`` for every token
    when there are very many wrapped lines."""
    w = np.asarray(widths, dtype=np.int32)
    brk = np.asarray(breaks, dtype=bool)
    T, avail = len(w), max(int(available), 0)
    if not T:
        empty = np.zeros(0, np.int32)
        return TokenLayout(empty, w, empty.copy(), np.zeros(1, dtype=np.int64))
    cum = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(w, out=cum[1:])
    # paragraphs: a line starts at 0 and after each break
    par_start = np.concatenate(([0], np.flatnonzero(brk[:-1]) + 1)).astype(np.int64)
    par_stop = np.append(par_start[1:], T)
    wide = np.flatnonzero(cum[par_stop] - cum[par_start] > avail)  # paragraphs that wrap
    extra: list[int] = []
    if wide.size:
        # a line holds its first token of nonzero width (and any zero-width ones before it)
        first_shown = _next_at_or_after(w > 0) if int(w.min()) <= 0 else None
        n_wrapped = int(((cum[par_stop[wide]] - cum[par_start[wide]]) // max(avail, 1)).sum())
        if n_wrapped > WRAP_VECTOR_ROWS:  # one searchsorted for every token
            nxt = np.searchsorted(cum, cum[:-1] + avail, side="right") - 1
            floor = np.arange(1, T + 1) if first_shown is None else np.minimum(first_shown + 1, T)
            nxt = np.maximum(nxt, floor).tolist()
            for a, b in zip(par_start[wide].tolist(), par_stop[wide].tolist(), strict=True):
                s = nxt[a]
                while s < b:
                    extra.append(s)
                    s = nxt[s]
        else:
            for a, b in zip(par_start[wide].tolist(), par_stop[wide].tolist(), strict=True):
                s = a
                while True:
                    e = int(cum.searchsorted(cum[s] + avail, side="right")) - 1
                    low = s + 1 if first_shown is None else min(int(first_shown[s]) + 1, T)
                    s = max(e, low)
                    if s >= b:
                        break
                    extra.append(s)
    starts = np.union1d(par_start, np.asarray(extra, dtype=np.int64)) if extra else par_start
    row_start = np.append(starts, T)
    lengths = np.diff(row_start)
    row = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    x = (cum[:-1] - np.repeat(cum[row_start[:-1]], lengths)).astype(np.int32)
    return TokenLayout(x, w, row, row_start)


def _roles() -> dict[str, str]:
    """Gate names of every registered cell to their role (the first cell's for a shared name)."""
    return {g.name: g.role for cell in reversed(registered()) for g in cell.gates}


def levels_for(quantity: str, values: npt.NDArray) -> tuple[float, float]:
    """Fixed colour levels: [0, 1] for the sigmoid-like gates (a cell description's role
    ``gate``: i f o, r z), ±1 for tanh-bounded h and candidates (g, n), ± the largest |c| of
    the whole run for any other state (so one colour means one value everywhere). A bounded
    trace's step array gives its largest |value| from its overview (exact, nothing rerun)."""
    role = _roles().get(quantity)
    if role == "gate":
        return 0.0, 1.0
    if hasattr(values, "symmetric_limit"):
        lim = float(values.symmetric_limit())
    else:
        finite = values[np.isfinite(values)] if values.size else values
        lim = float(np.abs(finite).max()) if finite.size else 0.0
    if quantity == "h" or role == "candidate":  # past 1: a projection or a linear act
        lim = max(1.0, lim)
    lim = lim if lim > 0 else 1.0
    return -lim, lim


def colours(
    values: npt.NDArray, levels: tuple[float, float], lut: npt.NDArray
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """``(T, 3)`` background RGB of each token from ``lut (n, 3)`` and whether its text is
    drawn light (on a dark background); NaN/Inf is grey."""
    lo, hi = levels
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    norm = np.clip((np.where(finite, v, lo) - lo) / (hi - lo or 1.0), 0.0, 1.0)
    idx = np.round(norm * (len(lut) - 1)).astype(np.intp)
    rgb = np.asarray(lut, dtype=np.uint8)[idx, :3].copy()
    rgb[~finite] = (160, 160, 160)
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    return rgb, luminance < 128
