"""Sequence text (CSV/TXT rows): typed text parsed line by line, files of any size streamed.

A text file is read a block of whole lines at a time (``BLOCK_BYTES``), never whole: each block
goes through NumPy's C ``loadtxt`` (about 3× the per-line Python parser) and, only when that
refuses the block or finds a NaN/Inf, through the per-line parser, which says exactly what is
wrong and where (``line N: 'x' is not a number (column 3)``) — so the messages are the ones
typed text gets, at the line an editor shows, in whatever block the line falls. ``loadtxt``
parses floats with the same ``PyOS_string_to_double`` as ``float()`` and accepts no cell that
``float()`` refuses, so both paths give the same numbers.

One streaming pass counts the lines first (``bytes.count``, ~1 GB/s): it bounds the result
before parsing starts, so a result that may not fit in memory goes to a temporary file whose
free space is checked up front, progress has a denominator, and nothing is ever regrown.
Up to ``IN_MEMORY_VALUES`` values the result is float64 in memory, exactly what the text says
(as before); past that it is float32 (what ``run`` computes in by default, half the disk) in
an unlinked temporary file, memory-mapped read-only, so it vanishes with the process. A line
is at most ``MAX_LINE_BYTES`` (or 64 bytes per expected value): a 1 GB line is refused after
reading a few MB.
"""

from __future__ import annotations

import io
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
        n_lines = _count_lines(fh, size, cap, progress)
        fh.seek(0)
        bound = n_lines * width  # rows ≤ lines: what the result can hold at most
        if bound <= IN_MEMORY_VALUES:
            parts: list[FloatArray] = []
            rows = _parse(fh, size, width, name, parts.append, progress, IN_MEMORY_VALUES)
            return np.concatenate(parts) if len(parts) > 1 else parts[0]
        nbytes = min(bound, MAX_MAPPED_VALUES + width) * 4
        with spill_file(nbytes, name) as out:

            def write(block: FloatArray) -> None:
                with np.errstate(over="ignore"):  # past ±3.4e38: refused just below
                    f32 = block.astype(np.float32, copy=False)
                if not np.isfinite(f32).all():
                    raise _Overflow(int(np.argwhere(~np.isfinite(f32))[0][0]))
                out.write(memoryview(f32))

            rows = _parse(fh, size, width, name, write, progress, MAX_MAPPED_VALUES, np.float32)
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


def _count_lines(fh: IO[bytes], size: int, cap: int, progress: Progress | None) -> int:
    """Lines as ``lines_of`` splits them, counted a block at a time in bounded memory; stops
    at a line longer than ``cap`` (the parse refuses it there, so what follows never counts)."""
    breaks, done, last, run = 0, 0, b"", 0
    while chunk := fh.read(BLOCK_BYTES):
        n = _breaks(chunk)
        breaks += n - (last == b"\r" and chunk[:1] == b"\n")
        run = (
            run + len(chunk)
            if n == 0
            else len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        )
        if run > cap + BLOCK_BYTES:
            break
        last, done = chunk[-1:], done + len(chunk)
        if progress is not None:
            progress(0.1 * done / max(size, 1))
    return breaks + 1


def _blocks(fh: IO[bytes], cap: int) -> Iterator[tuple[bytes, bool]]:
    """Whole lines a block at a time (the last one may lack its line break), and whether
    the block is a cut line longer than ``cap`` (the caller refuses it)."""
    rest = b""
    while True:
        chunk = fh.read(BLOCK_BYTES)
        if not chunk:
            if rest:
                yield rest, False
            return
        buf = rest + chunk if rest else chunk
        # after the last \n, or after a \r that is not the last byte (it may start a \r\n)
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1)) + 1
        if cut:
            yield buf[:cut], False
        rest = buf[cut:]
        if len(rest) > cap:
            yield rest, True
            return


def _parse(
    fh: IO[bytes],
    size: int,
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
    lineno, rows, done, header_seen = 1, 0, 0, False
    mode = [","]  # loadtxt's delimiter that worked last: "," or None (any whitespace)
    for raw, too_long in _blocks(fh, cap):
        if done == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        done += len(raw)
        if too_long:
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
                    lineno += first + 1
                    lines = lines[first + 1 :]
                    raw = "\n".join(lines).encode()
        n_breaks = _breaks(raw)
        try:
            x = _fast(raw, width, mode, dtype)
            if x is None:
                lines = lines or lines_of(_decode(raw, name))
                x = parse_rows(lines, width, first=lineno, limit=limit)[0]
            if rows * width + x.size > limit:
                raise ValueError(
                    f"line {lineno + n_breaks}: more than {limit:,} values; lstmviz steps "
                    f"through at most {limit // width:,} timesteps of {width}"
                )
            if len(x):
                emit(x)
        except _Overflow as exc:
            lines = lines or lines_of(_decode(raw, name))
            rows_at = parse_rows(lines, width, first=lineno, limit=limit)[1]
            raise ValueError(
                f"{name}: line {rows_at[exc.args[0]]}: a value past float32's ±3.4e38; "
                "a long sequence is kept as float32 (scale it, or save it as .npy)"
            ) from None
        except _NotText:
            raise
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
        rows += len(x)
        lineno += n_breaks
        if progress is not None:
            progress(0.1 + 0.9 * done / max(size, 1))
    if rows == 0:
        raise ValueError(f"{name}: no timesteps; type one row of {_numbers(width)} per timestep")
    return rows


def _fast(
    raw: bytes, width: int, mode: list[str | None], dtype: type = np.float64
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
            data = raw if raw.find(b"\r") < 0 else raw.translate(_BYTES_CR)
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


def _breaks(raw: bytes) -> int:
    """Line breaks in ``raw`` as ``lines_of`` counts them (``\r\n`` is one)."""
    if raw.find(b"\r") < 0:
        return raw.count(b"\n")
    return raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")


def _numbers(n: int) -> str:
    return f"{n} number{'s' if n != 1 else ''}"


def written_cells(p: Path, size: int) -> _Cells:
    """The first cell of every data row of a one-column text file, as written (token ids
    quoted in messages), read back on demand rather than kept (a million strings)."""
    return _Cells(p, size)


class _Cells:
    def __init__(self, p: Path, size: int) -> None:
        self.p, self.size = p, size

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return 1 << 62  # unknown without a pass; __getitem__ raises IndexError past the end

    def __getitem__(self, row: int) -> str:
        seen, header_seen = 0, False
        with open_regular(self.p) as fh:
            for raw, too_long in _blocks(fh, MAX_LINE_BYTES):
                if too_long:
                    break
                for line in lines_of(raw.decode("utf-8-sig", errors="replace")):
                    cells = cells_of(line, 1)
                    if not cells:
                        continue
                    if not header_seen:
                        header_seen = True
                        if is_header(line):
                            continue
                    if seen == row:
                        return cells[0]
                    seen += 1
        raise IndexError(row)
