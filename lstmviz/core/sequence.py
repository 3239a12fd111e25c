"""Input sequences for the debugger: typed or pasted text, files, generators, token embedding.

Every function returns a float64 array ``(T, width)`` or raises ValueError with a one-line
message that names the expected width, so the GUI can show it next to the editor and keep
the previous sequence.
"""

from __future__ import annotations

import enum
import os
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_SEPARATORS = re.compile(r"[,\s;]+")


class SequenceKind(enum.Enum):
    """What ``generate_sequence`` can make."""

    ZEROS = "zeros"
    ONES = "ones"
    RANDOM = "random normal"
    SINE = "sine"
    ONE_HOT = "one-hot tokens"


def validate(x: npt.ArrayLike, width: int, source: str = "sequence") -> FloatArray:
    """Check ``x`` is finite, non-empty and ``(T, width)``; 1-D is one column when width is 1."""
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


def parse_sequence(text: str, width: int) -> FloatArray:
    """One timestep per line, values separated by commas, spaces, tabs or semicolons.

    Blank lines and ``#`` comments are skipped. Errors name the line, as users paste from
    spreadsheets where one bad cell is easy to miss.
    """
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().strip(",;")
        if not line:
            continue
        cells = [c for c in _SEPARATORS.split(line) if c]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            raise ValueError(f"line {lineno}: {bad!r} is not a number") from None
        if len(values) != width:
            raise ValueError(
                f"line {lineno}: {len(values)} values, but the model's first layer expects {width} "
                "per timestep"
            )
        if not all(np.isfinite(values)):
            raise ValueError(f"line {lineno}: NaN or Inf; every value must be finite")
        rows.append(values)
    if not rows:
        raise ValueError(f"no timesteps; type one row of {_numbers(width)} per timestep")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def format_sequence(x: npt.ArrayLike, precision: int = 6) -> str:
    """The text form ``parse_sequence`` reads back (one row per timestep, comma separated)."""
    arr = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return "\n".join(", ".join(f"{v:.{precision}g}" for v in row) for row in arr)


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_sequence(
    path: str | os.PathLike[str], width: int, embedding: npt.ArrayLike | None = None
) -> FloatArray:
    """Read ``.csv``/``.txt`` (text rows), ``.npy`` or ``.npz`` (first array, or one named ``x``).

    With the model's ``embedding (vocab, width)``, a file of one column of whole numbers is
    token ids, looked up as the Embedding layer would (what a user of a text model has);
    anything else must have ``width`` columns. ``np.load`` runs with ``allow_pickle=False``
    so a file can never execute code.
    """
    if embedding is not None and width != 1:
        try:
            ids = _read_sequence(path, 1)
        except ValueError:
            ids = None  # not one column: read it as embedded vectors below
        if ids is not None:
            try:
                return embed_tokens(ids, embedding)
            except ValueError as exc:
                raise ValueError(
                    f"{Path(path).name}: one column, read as token ids: {exc}; or give "
                    f"{width} values per row (the embedded vectors)"
                ) from exc
    return _read_sequence(path, width)


def _read_sequence(path: str | os.PathLike[str], width: int) -> FloatArray:
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise ValueError(f"{name}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        try:
            data = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(
                f"{name}: cannot read as NumPy ({exc}); pickled arrays are refused"
            ) from exc
        except OSError as exc:
            raise ValueError(f"{name}: not a NumPy {suffix} file ({exc})") from exc
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                keys = list(data.files)
                if not keys:
                    raise ValueError(f"{name}: empty .npz; expected an array of shape (T, {width})")
                key = next((k for k in ("x", "input", "inputs", "sequence") if k in keys), keys[0])
                data = data[key]
                name = f"{name}[{key}]"
        if data.dtype.kind not in "fiub":
            raise ValueError(
                f"{name}: dtype {data.dtype} is not numeric; expected (T, {width}) floats"
            )
        return validate(data, width, name)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not a text file; use CSV/TXT rows, .npy or .npz") from exc
    lines = text.splitlines()
    if lines and not _row_is_numeric(lines[0]):
        lines = lines[1:]  # a CSV header row
    try:
        return parse_sequence("\n".join(lines), width)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def _row_is_numeric(line: str) -> bool:
    cells = [c for c in _SEPARATORS.split(line.split("#", 1)[0].strip()) if c]
    return not cells or all(_is_float(c) for c in cells)


def generate_sequence(
    kind: SequenceKind | str, T: int, width: int, seed: int = 0, period: float = 16.0
) -> FloatArray:
    """Standard test inputs: zeros, ones, N(0,1) with a seed, phase-shifted sines, one-hot tokens.

    One-hot tokens draw a random token per step (seeded) in ``range(width)``.
    """
    kind = SequenceKind(kind)
    if T < 1:
        raise ValueError(f"length must be at least 1, got {T}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    rng = np.random.default_rng(seed)
    if kind is SequenceKind.ZEROS:
        return np.zeros((T, width))
    if kind is SequenceKind.ONES:
        return np.ones((T, width))
    if kind is SequenceKind.RANDOM:
        return rng.standard_normal((T, width))
    if kind is SequenceKind.SINE:
        t = np.arange(T)[:, None]
        phase = np.arange(width)[None, :] * (2 * np.pi / max(width, 1))
        return np.sin(2 * np.pi * t / period + phase)
    tokens = rng.integers(0, width, size=T)
    return np.eye(width)[tokens]


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
            raise ValueError(f"{c!r} is not a token id; expected integers 0..{vocab - 1}") from None
    return np.asarray(ids, dtype=np.int64)


def embed_tokens(ids: npt.ArrayLike, embedding: npt.ArrayLike | None) -> FloatArray:
    """Look up ``ids (T,)`` in ``embedding (vocab, D)``: what an Embedding layer feeds the LSTM."""
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
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got {arr.dtype}")
    vocab = table.shape[0]
    bad = (arr < 0) | (arr >= vocab)
    if bad.any():
        t = int(np.argmax(bad))
        raise ValueError(
            f"token id {int(arr[t])} at step {t} is outside the vocabulary 0..{vocab - 1}"
        )
    return table[arr]


def parse_state(text: str, size: int, what: str = "state") -> FloatArray:
    """One initial-state row (``h0`` or ``c0``) of ``size`` numbers; empty text means zeros."""
    cells = [c for c in _SEPARATORS.split(text.strip()) if c]
    if not cells:
        return np.zeros(size)
    bad = next((c for c in cells if not _is_float(c)), None)
    if bad is not None:
        raise ValueError(f"{what}: {bad!r} is not a number")
    if len(cells) != size:
        raise ValueError(f"{what}: {len(cells)} values, expected {size} (one per unit)")
    arr = np.array([float(c) for c in cells])
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: NaN or Inf; values must be finite")
    return arr


def _numbers(n: int) -> str:
    return f"{n} number{'s' if n != 1 else ''}"
