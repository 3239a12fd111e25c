"""Sequence text (CSV/TXT rows): typed text parsed line by line, files of any size streamed.

A text file is read a block of whole lines at a time (``BLOCK_BYTES``), never whole: each block
goes through NumPy's C ``loadtxt`` (about 3× the per-line Python parser) and, only when that
refuses the block or finds a NaN/Inf, through the per-line parser, which says exactly what is
wrong and where (``line N: 'x' is not a number (column 3)``) — so the messages are the ones
typed text gets, at the line an editor shows, in whatever block the line falls. ``loadtxt``
parses floats with the same ``PyOS_string_to_double`` as ``float()`` and accepts no cell that
``float()`` refuses, so both paths give the same numbers.

One streaming pass counts the lines first (``bytes.count``, ~1 GB/s) and notes the count at
every block boundary, so the parse counts none (an error's line is found from the nearest
mark). The count bounds the result before parsing starts: a result that may not fit in memory
goes to a temporary file whose free space is checked up front, progress has a denominator, and
nothing is ever regrown. Up to ``IN_MEMORY_VALUES`` values the result is float64 in memory,
exactly what the text says (as before); past that it is float32 (what ``run`` computes in by
default, half the disk) in an unlinked temporary file, memory-mapped read-only, so it vanishes
with the process. A line is at most ``MAX_LINE_BYTES`` (or 64 bytes per expected value): a
1 GB line is refused after reading a few MB.
"""

from __future__ import annotations

import io
import itertools
import os
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from lstmviz.core.sequence_files import MAX_MAPPED_VALUES, MAX_VALUES, open_regular, spill_file

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[float], None]

_TO_SPACE = str.maketrans(",;", "  ")
_BYTES_TO_SPACE = bytes.maketrans(b",;\r", b"  \n")
_BYTES_CR = bytes.maketrans(b"\r", b"\n")
BLOCK_BYTES = 4 << 20
MAX_LINE_BYTES = 4 << 20
#: Results of at most this many values stay in memory as float64; larger ones are float32,
#: memory-mapped from a temporary file.
IN_MEMORY_VALUES = MAX_VALUES
MAX_HEADER_CELLS = 1_000  # a header row is split into at most this many names


# --------------------------------------------------------------------------- one line at a time


def lines_of(text: str) -> list[str]:
    """Lines of ``text`` split at ``\\n``, ``\\r\\n`` or ``\\r``, as an editor numbers them
    (``str.splitlines`` would also split at form feeds and Unicode separators)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def parse_rows(
    lines: Iterable[str],
    width: int,
    skip: int | None = None,
    first: int = 1,
    limit: int = MAX_VALUES,
) -> tuple[FloatArray, array]:
    """Rows of ``lines`` (numbered from ``first``; ``skip`` = index of a header line) →
    ``(T, width)`` and the line number of each row.

    Values go into one flat float buffer (8 bytes each), not lists of Python floats, so a
    long text costs what its array costs.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    values, linenos = array("d"), array("q")
    for index, raw in enumerate(lines):
        if index == skip:
            continue
        cells = cells_of(raw, width)
        if not cells:
            continue
        lineno = index + first
        if len(cells) != width:
            raise ValueError(_wrong_row(cells, width, lineno))
        try:
            values.extend(map(float, cells))
        except ValueError:
            bad = next(k for k, c in enumerate(cells) if not is_float(c))
            raise ValueError(not_a_number(lineno, bad, cells[bad])) from None
        linenos.append(lineno)
        if len(values) > limit:
            raise ValueError(
                f"line {lineno}: more than {limit:,} values; lstmviz steps through at most "
                f"{limit // width:,} timesteps of {width}"
            )
    x = np.frombuffer(values, dtype=np.float64).reshape(-1, width).copy()
    bad = ~np.isfinite(x)
    if bad.any():  # checked once at the end: a test per value costs more than parsing it
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"line {linenos[row]}: NaN or Inf (column {col + 1}); every value must be finite"
        )
    return x, linenos


def _wrong_row(cells: list[str], width: int, lineno: int, cut: bool = False) -> str:
    """The message for a row of ``cells_of(line, width)`` that is not ``width`` numbers
    (``cut``: only the start of the line was split, so a count is "more than")."""
    bad = next((k for k, c in enumerate(cells[:width]) if not is_float(c)), None)
    if bad is not None:
        return not_a_number(lineno, bad, cells[bad])
    count = f"more than {width}" if cut and len(cells) > width else count_of(cells, width)
    return (
        f"line {lineno}: {count} values, but the model's first layer expects {width} per timestep"
    )


def cells_of(line: str, width: int = MAX_HEADER_CELLS) -> list[str]:
    """The cells of one row: split on commas, semicolons and any whitespace (``str.split``
    after a ``translate``, several times faster than a regex on long files). At most
    ``width + 1`` pieces, the last one holding the rest of the line when there are more: a
    16 MB line of ``0,0,0…`` must not become 8 million strings."""
    if "#" in line:
        line = line.split("#", 1)[0]
    return line.translate(_TO_SPACE).split(maxsplit=width)


def count_of(cells: list[str], width: int) -> str:
    """How many values a row of ``cells_of(line, width)`` has, exactly when that is cheap."""
    if len(cells) <= width:
        return str(len(cells))
    rest = cells[-1]
    return str(width + len(rest.split())) if len(rest) < 100_000 else f"more than {width}"


def not_a_number(lineno: int, index: int, cell: str) -> str:
    return f"line {lineno}: {quote(cell)} is not a number (column {index + 1})"


def quote(cell: str) -> str:
    """A cell as ``repr`` shows it (escapes included), cut to 40 characters."""
    return repr(cell if len(cell) <= 40 else cell[:40] + "…")


def is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def is_header(line: str) -> bool:
    """A header names columns: every cell of it is a non-number (``time,value``). A row with
    some numbers (``1,2,x``) is a data row with a typo, reported, never dropped."""
    cells = cells_of(line)
    return bool(cells) and not any(is_float(c) for c in cells)


# --------------------------------------------------------------------------- files, streamed


def read_text(
    p: Path, size: int, width: int, progress: Progress | None = None
) -> npt.NDArray[np.floating]:
    """The ``(T, width)`` rows of a text file: float64 in memory when it holds at most
    ``IN_MEMORY_VALUES`` values, else float32 memory-mapped from an unlinked temporary file.
    Errors are ``ValueError``s naming the file, the line and the column."""
    name = p.name
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    with open_regular(p) as fh:
        cap = max(MAX_LINE_BYTES, 64 * width)
        index = _LineIndex(fh, size, cap, progress)
        fh.seek(0)
        bound = index.lines * width  # rows ≤ lines: what the result can hold at most
        if bound <= IN_MEMORY_VALUES:
            parts: list[FloatArray] = []
            _parse(fh, index, width, name, parts.append, progress, IN_MEMORY_VALUES)
            return np.concatenate(parts) if len(parts) > 1 else parts[0]
        nbytes = min(bound, MAX_MAPPED_VALUES + width) * 4
        with spill_file(nbytes, name) as out:

            def write(block: FloatArray) -> None:
                with np.errstate(over="ignore"):  # past ±3.4e38: refused just below
                    f32 = block.astype(np.float32, copy=False)
                if not np.isfinite(f32).all():
                    raise _Overflow(int(np.argwhere(~np.isfinite(f32))[0][0]))
                out.write(memoryview(f32))

            rows = _parse(fh, index, width, name, write, progress, MAX_MAPPED_VALUES, np.float32)
            out.flush()
            return np.memmap(out, dtype=np.float32, mode="r", shape=(rows, width))


class _NotText(ValueError):
    """Bytes that are not UTF-8 text (the message names the file already)."""


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotText(f"{name}: not a text file; use CSV/TXT rows, .npy or .npz") from None


class _Overflow(Exception):
    """A block row whose value is finite in float64 but not in float32."""


class _LineIndex:
    """One streaming pass over the file: its line count (``lines_of``'s), whether it has a
    ``\r`` at all, and the breaks before every ``BLOCK_BYTES`` boundary, so the parse counts
    no lines: an error's line number is found from the nearest boundary (``line_at``). The
    pass stops at a line longer than ``cap`` (the parse refuses it there)."""

    def __init__(self, fh: IO[bytes], size: int, cap: int, progress: Progress | None) -> None:
        self.fh, self.marks, self.has_cr = fh, [0], False
        breaks, done, last, run = 0, 0, b"", 0
        while chunk := fh.read(BLOCK_BYTES):
            cr = chunk.find(b"\r") >= 0
            self.has_cr |= cr
            n = _breaks(chunk, cr)
            breaks += n - (last == b"\r" and chunk[:1] == b"\n")
            self.marks.append(breaks)
            last, done = chunk[-1:], done + len(chunk)
            tail = len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            run = run + len(chunk) if n == 0 else tail
            if run > cap + BLOCK_BYTES:
                self.has_cr = True  # the rest is unseen
                break
            if progress is not None:
                progress(0.1 * done / max(size, 1))
        self.lines = breaks + 1

    def line_at(self, offset: int) -> int:
        """The line number (from 1) of the line starting at byte ``offset``."""
        k = min(offset // BLOCK_BYTES, len(self.marks) - 1)
        start = max(k * BLOCK_BYTES - 1, 0)
        back = self.fh.tell()  # the parse reads on from here (os.pread is not on Windows)
        self.fh.seek(start)
        seg = self.fh.read(offset - start)
        self.fh.seek(back)
        extra = _breaks(seg, True) - (k > 0 and seg[:1] in (b"\r", b"\n"))
        return 1 + self.marks[k] + extra


def _blocks(fh: IO[bytes], cap: int) -> Iterator[tuple[bytes, bool]]:
    """Whole lines a block at a time (the last one may lack its line break), and whether
    the block is a cut line longer than ``cap`` (the caller refuses it). Each byte is copied
    once at most (a block is usually the chunk read, as it is)."""
    rest = b""
    while True:
        chunk = fh.read(BLOCK_BYTES)
        if not chunk:
            if rest:
                yield rest, False
            return
        # after the last \n, or after a \r that is not the last byte (it may start a \r\n)
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r", 0, len(chunk) - 1)) + 1
        if cut == 0:
            rest += chunk
        else:
            if not rest and cut == len(chunk):
                yield chunk, False
            else:
                yield b"".join((rest, memoryview(chunk)[:cut])), False
            rest = chunk[cut:]
        if len(rest) > cap:
            yield rest, True
            return


def _parse(
    fh: IO[bytes],
    index: _LineIndex,
    width: int,
    name: str,
    emit: Callable[[FloatArray], None],
    progress: Progress | None,
    limit: int,
    dtype: type = np.float64,
) -> int:
    """Stream ``fh``'s rows to ``emit`` a block at a time (``dtype`` when the fast path
    parses them, else float64); returns the row count."""
    cap = max(MAX_LINE_BYTES, 64 * width)  # as in read_text
    total = max(fh.seek(0, os.SEEK_END), 1)
    fh.seek(0)
    rows, offset, header_seen = 0, 0, False
    mode = [","]  # loadtxt's delimiter that worked last: "," or None (any whitespace)
    for raw, too_long in _blocks(fh, cap):
        at, shift = offset, 0  # the block's first line: index.line_at(at) + shift
        offset += len(raw)
        if at == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if too_long:
            lineno = index.line_at(at)
            cells = cells_of(raw.decode("utf-8", errors="ignore"), width)
            if len(cells) <= width:
                cells = cells[:-1]  # the last one is cut
                if all(is_float(c) for c in cells):
                    raise ValueError(
                        f"{name}: line {lineno}: longer than {cap:,} bytes; a row holds one "
                        f"timestep of {width} numbers"
                    )
            raise ValueError(f"{name}: {_wrong_row(cells, width, lineno, cut=True)}")
        lines = None  # decoded and split only when needed: loadtxt reads the bytes
        if not header_seen:  # the first row with cells may be a header: drop it
            lines = lines_of(_decode(raw, name))
            first = next((k for k, line in enumerate(lines) if cells_of(line, 1)), None)
            if first is not None:
                header_seen = True
                if is_header(lines[first]):
                    shift = first + 1
                    lines = lines[first + 1 :]
                    raw = "\n".join(lines).encode()
        try:
            x = _fast(raw, width, mode, dtype, index.has_cr)
            if x is None:
                lines = lines or lines_of(_decode(raw, name))
                x = parse_rows(lines, width, first=index.line_at(at) + shift, limit=limit)[0]
            if rows * width + x.size > limit:
                raise ValueError(
                    f"line {index.line_at(offset) - 1}: more than {limit:,} values; lstmviz "
                    f"steps through at most {limit // width:,} timesteps of {width}"
                )
            if len(x):
                emit(x)
        except _Overflow as exc:
            lines = lines or lines_of(_decode(raw, name))
            rows_at = parse_rows(lines, width, first=index.line_at(at) + shift, limit=limit)[1]
            raise ValueError(
                f"{name}: line {rows_at[exc.args[0]]}: a value past float32's ±3.4e38; "
                "a long sequence is kept as float32 (scale it, or save it as .npy)"
            ) from None
        except _NotText:
            raise
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
        rows += len(x)
        if progress is not None:
            progress(0.1 + 0.9 * offset / total)
    if rows == 0:
        raise ValueError(f"{name}: no timesteps; type one row of {_numbers(width)} per timestep")
    return rows


def _fast(
    raw: bytes,
    width: int,
    mode: list[str | None],
    dtype: type = np.float64,
    has_cr: bool = True,
) -> FloatArray | None:
    """The block's rows by NumPy's C parser, or None when it refuses them (then the per-line
    parser finds what is wrong, or parses what ``loadtxt`` does not: blank lines of spaces
    between comma rows, ``1_000``, non-ASCII digits). Tries the delimiter that worked last.
    A ``BytesIO`` is read by ``loadtxt`` in large pieces: no list of lines is made. float32
    is parsed as float64 then rounded (NumPy's ``npy_to_float``), as ``astype`` would."""
    for delimiter in (mode[0], None if mode[0] == "," else ","):
        if delimiter is None:
            data = raw.translate(_BYTES_TO_SPACE)
        else:
            data = raw.translate(_BYTES_CR) if has_cr and raw.find(b"\r") >= 0 else raw
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": an empty block
                x = np.loadtxt(
                    io.BytesIO(data),
                    dtype=dtype,
                    delimiter=delimiter,
                    comments="#",
                    ndmin=2,
                    encoding="utf-8",
                )
        except ValueError:  # UnicodeDecodeError too: the per-line parser says which
            continue
        if x.size == 0:
            return x.reshape(0, width)
        if x.shape[1] != width or not np.isfinite(x).all():
            return None
        mode[0] = delimiter
        return x
    return None


def _breaks(raw: bytes, has_cr: bool) -> int:
    """Line breaks in ``raw`` as ``lines_of`` counts them (``\\r\\n`` is one)."""
    if not has_cr:
        return raw.count(b"\n")
    return raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")


def _numbers(n: int) -> str:
    return f"{n} number{'s' if n != 1 else ''}"


class WrittenCells:
    """The first cell of every data row of a one-column text file, as written (token ids
    quoted in messages), read back when one is asked for rather than kept (a million strings);
    ``len`` is unknown without a pass, so it is "very many"."""

    def __init__(self, p: Path) -> None:
        self.p = p

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, row: int) -> str:
        with open_regular(self.p) as fh:
            blocks = (raw for raw, too_long in _blocks(fh, MAX_LINE_BYTES) if not too_long)
            lines = (ln for raw in blocks for ln in lines_of(raw.decode("utf-8-sig", "replace")))
            cells = (c[0] for ln in lines if (c := cells_of(ln, 1)))
            first = next(cells, None)
            rows = cells if first is None or is_header(first) else itertools.chain([first], cells)
            return next(itertools.islice(rows, row, None))
