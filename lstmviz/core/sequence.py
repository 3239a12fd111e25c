"""Input sequences for the debugger: typed or pasted text, files, generators, token embedding.

Every function returns a float64 array ``(T, width)`` (a file past ``MAX_VALUES`` values: a
read-only memory map, float32 for text) or raises ValueError with a one-line message that names
the expected width, so the GUI can show it next to the editor and keep the previous sequence.

Sequence files are untrusted input (issue 18): a first row counts as a header only when every
cell of it is a name, so a typo in row 1 is reported, never dropped; errors give the line as an
editor numbers it and the column; sizes are checked before anything is read or inflated (the
budgets in ``sequence_files``); text of any size is streamed a block at a time
(``sequence_text``); nothing is unpickled; and ``load_sequence`` lets no other exception out,
so a crafted file is one printable ``ValueError`` line at most 300 characters long.
"""

from __future__ import annotations

import enum
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core import sequence_text
from lstmviz.core.mapped_rows import release_rows
from lstmviz.core.sequence_files import one_line, open_regular, read_npy, read_npz
from lstmviz.core.sequence_text import is_float as _is_float
from lstmviz.core.sequence_text import lines_of, parse_rows
from lstmviz.core.sequence_text import quote as _quote

FloatArray = npt.NDArray[np.float64]

_SEPARATORS = re.compile(r"[,\s;]+")
_lines = lines_of


class SequenceKind(enum.Enum):
    """What ``generate_sequence`` can make."""

    ZEROS = "zeros"
    ONES = "ones"
    RANDOM = "random normal"
    SINE = "sine"
    ONE_HOT = "one-hot tokens"


def validate(x: npt.ArrayLike, width: int, source: str = "sequence") -> FloatArray:
    """Check ``x`` is finite, non-empty and ``(T, width)``; 1-D is one column when width is 1.
    A memory-mapped float array (a large ``.npy``) or one of more than ``LARGE_VALUES`` is
    checked a block of rows at a time and returned as it is, not copied to float64."""
    large = isinstance(x, np.ndarray) and (x.size > LARGE_VALUES or isinstance(x, np.memmap))
    if large and x.dtype.kind == "f":  # a mapped file stays mapped (read_npy maps past 4 M)
        return _validate_large(x, width, source)
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{source}: not numeric ({exc}); expected T rows of {width} numbers"
        ) from exc
    if arr.ndim == 1 and width == 1:
        arr = arr[:, None]
    elif arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]  # a batch of one, as frameworks save it
    if arr.ndim != 2:
        raise ValueError(
            f"{source}: shape {arr.shape}; expected (T, {width}), one row per timestep"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{source}: no timesteps; expected at least one row of {_numbers(width)}")
    if arr.shape[1] != width:
        raise ValueError(
            f"{source}: {arr.shape[1]} values per timestep, but the model's first layer expects "
            f"{width}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        t, d = np.argwhere(bad)[0]
        raise ValueError(
            f"{source}: NaN or Inf at step {t}, feature {d}; every value must be finite"
        )
    return arr


#: Float arrays past this many values are validated in place (``validate``).
LARGE_VALUES = 1 << 24


def _validate_large(x: np.ndarray, width: int, source: str) -> FloatArray:
    arr = x[:, None] if x.ndim == 1 and width == 1 else x
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    validate(np.asarray(arr[:1]), width, source)  # shape and width, with validate's messages
    rows = 1 << 16
    for a in range(0, arr.shape[0], rows):
        bad = ~np.isfinite(arr[a : a + rows])
        release_rows(arr, a, a + rows)  # checked: out of the resident set (mapped_rows)
        if bad.any():
            t, d = np.argwhere(bad)[0]
            raise ValueError(
                f"{source}: NaN or Inf at step {a + t}, feature {d}; every value must be finite"
            )
    return arr


def parse_sequence(text: str, width: int) -> FloatArray:
    """One timestep per line, values separated by commas, spaces, tabs or semicolons.

    Blank lines and ``#`` comments are skipped. Errors name the line and column, as users paste
    from spreadsheets where one bad cell is easy to miss.
    """
    x = _parse_lines(_lines(text), width)
    if not len(x):
        raise ValueError(f"no timesteps; type one row of {_numbers(width)} per timestep")
    return x


def _parse_lines(lines: Iterable[str], width: int, skip: int | None = None) -> FloatArray:
    """Rows of ``lines`` (numbered from 1, ``skip`` = index of a header line) → (T, width)."""
    return parse_rows(lines, width, skip)[0]


def format_sequence(x: npt.ArrayLike, precision: int = 6) -> str:
    """The text form ``parse_sequence`` reads back (one row per timestep, comma separated)."""
    arr = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return "\n".join(", ".join(f"{v:.{precision}g}" for v in row) for row in arr)


def load_sequence(
    path: str | os.PathLike[str],
    width: int,
    embedding: npt.ArrayLike | None = None,
    *,
    progress: Callable[[float], None] | None = None,
) -> FloatArray:
    """Read ``.csv``/``.txt`` (text rows), ``.npy`` or ``.npz`` (first array, or one named ``x``).

    With the model's ``embedding (vocab, width)``, a file of one column of whole numbers is
    token ids, looked up as the Embedding layer would (what a user of a text model has);
    anything else must have ``width`` columns. Nothing is unpickled, sizes are checked against
    the file before anything is read or inflated, and every failure (a file of any content,
    even a hostile one) is a ``ValueError`` with one printable line. A text file of any size
    is streamed; past ``MAX_VALUES`` values it comes back as a read-only float32 memory map of
    a temporary file (a float ``.npy`` is mapped as it is). ``progress(fraction)`` is called
    as a large file is read; whatever it raises (a job's ``Cancelled``) stops the read and
    reaches the caller unchanged.
    """
    hook = None if progress is None else _Hook(progress)
    try:
        return _load_sequence(path, width, embedding, hook)
    except _Stop as stop:
        raise stop.args[0] from None
    except ValueError as exc:
        raise ValueError(one_line(str(exc))) from exc
    except MemoryError as exc:
        raise ValueError(f"{_name(path)}: too large to load as a sequence") from exc
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(one_line(f"{_name(path)}: cannot read the file ({exc})")) from exc
    except Exception as exc:  # a file must never take the caller down with another exception
        detail = f"{type(exc).__name__}: {exc}"
        raise ValueError(one_line(f"{_name(path)}: unreadable sequence file ({detail})")) from exc


class _Stop(BaseException):
    """Carries what the caller's progress hook raised past ``load_sequence``'s catch-alls."""


class _Hook:
    def __init__(self, progress: Callable[[float], None]) -> None:
        self.progress = progress

    def __call__(self, fraction: float) -> None:
        try:
            self.progress(fraction)
        except Exception as exc:
            raise _Stop(exc) from exc


def _load_sequence(
    path: str | os.PathLike[str],
    width: int,
    embedding: npt.ArrayLike | None,
    progress: Callable[[float], None] | None = None,
) -> FloatArray:
    p = Path(path)
    if embedding is not None and width != 1:
        try:
            ids, cells = _read_sequence(p, 1, keep_cells=True, progress=progress)
        except ValueError:
            ids = None  # not one column: read it as embedded vectors below
        if ids is not None:
            try:
                return embed_tokens(ids, embedding, cells)
            except ValueError as exc:
                raise ValueError(
                    f"{p.name}: one column, read as token ids: {exc}; or give "
                    f"{width} values per row (the embedded vectors)"
                ) from exc
    return _read_sequence(p, width, progress=progress)[0]


def _read_sequence(
    p: Path,
    width: int,
    keep_cells: bool = False,
    progress: Callable[[float], None] | None = None,
) -> tuple[FloatArray, list[str] | None]:
    """The sequence, and with ``keep_cells`` the cells of a one-column text file as written
    (token ids quoted in messages, read back from the file when one is quoted)."""
    name = p.name
    try:
        st = p.stat()
    except OSError:
        raise ValueError(f"{name}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "a special file (FIFO, device, socket)"
        raise ValueError(f"{name}: {what}, not a sequence file; expected .csv, .txt, .npy, .npz")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        with open_regular(p) as fh:
            return validate(read_npy(fh, st.st_size, name, width, path=p), width, name), None
    if suffix == ".npz":
        data, name = read_npz(p, st.st_size, width, progress=progress)
        return validate(data, width, name), None
    x = sequence_text.read_text(p, st.st_size, width, progress)
    cells = sequence_text.WrittenCells(p) if keep_cells and width == 1 else None
    return x, cells  # type: ignore[return-value]


def _name(path: str | os.PathLike[str]) -> str:
    return Path(path).name or str(path)


def generate_sequence(
    kind: SequenceKind | str,
    T: int,
    width: int,
    seed: int = 0,
    period: float = 16.0,
    *,
    dtype: npt.DTypeLike = np.float64,
    progress: Callable[[float], None] | None = None,
    out: np.ndarray | None = None,
) -> FloatArray:
    """Standard test inputs: zeros, ones, N(0,1) with a seed, phase-shifted sines, one-hot tokens.

    One-hot tokens draw a random token per step (seeded) in ``range(width)``.

    ``dtype=np.float32`` (a long sequence: 10⁷ × 16 values are 640 MB instead of 1.3 GB) fills
    the array a block of rows at a time, each block computed in float64 as below and rounded,
    so the values are this function's float64 ones rounded to float32 (the random stream is
    drawn in the same order) and no float64 array of the whole sequence is ever made.
    ``progress(fraction)`` is called after each block; whatever it raises (a job's
    ``Cancelled``) stops the generation and reaches the caller. ``out``: a ``(T, width)``
    float array to fill (e.g. a memory map of a temporary file), returned; its dtype wins.
    """
    kind = SequenceKind(kind)
    if T < 1:
        raise ValueError(f"length must be at least 1, got {T}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    rng = np.random.default_rng(seed)
    if out is not None and (out.shape != (T, width) or out.dtype.kind != "f"):
        raise ValueError(f"out must be a ({T}, {width}) float array, got {out.shape} {out.dtype}")
    if np.dtype(dtype) != np.float64 or progress is not None or out is not None:
        if out is None:
            out = np.empty((T, width), dtype=dtype)
        return _generate_blocks(kind, out, rng, period, progress)
    if kind is SequenceKind.ZEROS:
        return np.zeros((T, width))
    if kind is SequenceKind.ONES:
        return np.ones((T, width))
    if kind is SequenceKind.RANDOM:
        return rng.standard_normal((T, width))
    if kind is SequenceKind.SINE:
        return _sine(0, T, width, period)
    tokens = rng.integers(0, width, size=T)
    return np.eye(width)[tokens]


#: Values per block of ``_generate_blocks`` (8 MB of float64 temporaries, ~15 ms a block).
_BLOCK_VALUES = 1 << 20


def _sine(t0: int, t1: int, width: int, period: float) -> FloatArray:
    t = np.arange(t0, t1)[:, None]
    phase = np.arange(width)[None, :] * (2 * np.pi / max(width, 1))
    return np.sin(2 * np.pi * t / period + phase)


def _generate_blocks(
    kind: SequenceKind,
    out: npt.NDArray[np.floating],
    rng: np.random.Generator,
    period: float,
    progress: Callable[[float], None] | None,
) -> npt.NDArray[np.floating]:
    """``generate_sequence`` into ``out (T, width)``, a block of rows at a time (the float64
    formulas of each kind, rounded per block)."""
    T, width = out.shape
    rows = max(1, _BLOCK_VALUES // width)
    tokens = rng.integers(0, width, size=T) if kind is SequenceKind.ONE_HOT else None
    for a in range(0, T, rows):
        b = min(T, a + rows)
        if kind is SequenceKind.ZEROS or kind is SequenceKind.ONES:
            out[a:b] = 0.0 if kind is SequenceKind.ZEROS else 1.0
        elif kind is SequenceKind.RANDOM:
            out[a:b] = rng.standard_normal((b - a, width))  # the stream in the same order
        elif kind is SequenceKind.SINE:
            out[a:b] = _sine(a, b, width, period)
        else:
            assert tokens is not None
            out[a:b] = 0.0
            out[np.arange(a, b), tokens[a:b]] = 1.0
        if progress is not None:
            progress(b / T)
    return out


def parse_token_ids(text: str, vocab: int) -> npt.NDArray[np.int64]:
    """Integers separated by commas/spaces/newlines, each in ``range(vocab)``."""
    cells = [c for c in _SEPARATORS.split(text.strip()) if c]
    if not cells:
        raise ValueError(f"no token ids; type integers from 0 to {vocab - 1}")
    ids = []
    for c in cells:
        try:
            ids.append(int(c))
        except ValueError:
            raise ValueError(
                f"{_quote(c)} is not a token id; expected integers 0..{vocab - 1}"
            ) from None
    return np.asarray(ids, dtype=np.int64)


def embed_tokens(
    ids: npt.ArrayLike, embedding: npt.ArrayLike | None, written: list[str] | None = None
) -> FloatArray:
    """Look up ``ids (T,)`` in ``embedding (vocab, D)``: what an Embedding layer feeds the LSTM.

    ``written``: the ids as the file wrote them, quoted in messages instead of the parsed
    number (an id ``1e300`` is reported as ``1e300``, never as a wrapped-around integer).
    """
    if embedding is None:
        raise ValueError("this model has no Embedding layer to look token ids up in")
    table = np.asarray(embedding, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"embedding must be (vocab, D), got shape {table.shape}")
    arr = np.asarray(ids)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"token ids must be a non-empty list, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("token ids must be whole numbers")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got {arr.dtype}")
    vocab = table.shape[0]
    bad = (arr < 0) | (arr >= vocab)  # compared before any cast, so 1e300 stays 1e300
    if bad.any():
        t = int(np.argmax(bad))
        shown = _as_written(arr[t], written[t] if written and t < len(written) else None)
        raise ValueError(f"token id {shown} at step {t} is outside the vocabulary 0..{vocab - 1}")
    return table[arr.astype(np.int64)]


def _as_written(value: object, text: str | None) -> str:
    if text is not None:
        return text if len(text) <= 40 else text[:40] + "…"
    v = float(value)  # type: ignore[arg-type]
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def parse_state(text: str, size: int, what: str = "state") -> FloatArray:
    """One initial-state row (``h0`` or ``c0``) of ``size`` numbers; empty text means zeros."""
    cells = [c for c in _SEPARATORS.split(text.strip()) if c]
    if not cells:
        return np.zeros(size)
    bad = next((c for c in cells if not _is_float(c)), None)
    if bad is not None:
        raise ValueError(f"{what}: {_quote(bad)} is not a number")
    if len(cells) != size:
        raise ValueError(f"{what}: {len(cells)} values, expected {size} (one per unit)")
    arr = np.array([float(c) for c in cells])
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: NaN or Inf; values must be finite")
    return arr


def _numbers(n: int) -> str:
    return f"{n} number{'s' if n != 1 else ''}"
