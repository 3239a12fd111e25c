"""Sequence arrays from ``.npy`` / ``.npz`` files, bounded before anything is read.

A sequence file is untrusted input (issue 18): the ``.npy`` header is parsed with NumPy's own
header reader (never a pickle), its shape and dtype checked against ``MAX_VALUES`` and against
the bytes actually stored; an ``.npz`` member is chosen from the zip directory and inflated
alone, after its declared size and compression ratio were checked (a zip bomb is refused before
any inflating). ``sequence.load_sequence`` turns what these raise into one printable line.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import stat
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

#: A sequence is at most this many values (32 MB as float64; a million steps of 4 features).
MAX_VALUES = 4_000_000
#: A float ``.npy`` past ``MAX_VALUES`` is memory-mapped, not read, up to this many values
#: (10⁹: a million steps of 1,000 features); the run then keeps a bounded trace.
MAX_MAPPED_VALUES = 1_000_000_000
MAX_NPY_HEADER = 10_000  # what numpy itself allows without allow_pickle
MAX_NPZ_MEMBERS = 1_000
MAX_NPZ_RATIO = 200  # inflated bytes per archive byte (zeros deflate 1000:1, real data ~1:1)


def open_regular(p: Path) -> io.BufferedReader:
    """Open for reading without blocking on a FIFO swapped in after the ``stat``."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{p.name}: not a regular file; expected .csv, .txt, .npy, .npz")
    return os.fdopen(fd, "rb")


#: Temporary space left free after a sequence spilled to disk (other programs need some too).
SPARE_TEMP_BYTES = 256 << 20


def spill_file(nbytes: int, name: str) -> IO[bytes]:
    """An unlinked temporary file (it has no name, so it vanishes with the process) for a
    sequence too large for memory, once the temp dir was seen to hold ``nbytes`` more."""
    where = tempfile.gettempdir()
    free = shutil.disk_usage(where).free
    if nbytes + SPARE_TEMP_BYTES > free:
        raise ValueError(
            f"{name}: needs {nbytes / 2**20:,.1f} MB of temporary space in {where} but "
            f"{free / 2**20:,.0f} MB are free; free some, or set TMPDIR to a larger disk"
        )
    return tempfile.TemporaryFile(dir=where)


def npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the ``.npy`` header at ``fh``'s position: a
    literal NumPy parses (never a pickle) of at most ``MAX_NPY_HEADER`` bytes. ValueError
    for a format version other than 1.0 and 2.0; a damaged header raises what NumPy's
    parser raises (ValueError, SyntaxError, TypeError, tokenize.TokenError)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        read_header = np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        read_header = np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f"format version {version}")
    shape, fortran, dtype = read_header(fh, max_header_size=MAX_NPY_HEADER)
    return tuple(shape), fortran, dtype


def read_npy(
    fh: IO[bytes],
    available: int,
    name: str,
    width: int,
    path: Path | None = None,
    *,
    spill: bool = False,
    progress: Callable[[float], None] | None = None,
) -> npt.NDArray:
    """One ``.npy`` array from ``fh``, its header checked before any data is read: numeric
    dtype (never a pickle), at most ``MAX_VALUES`` values, no more bytes than ``available``.
    A C-order float array of up to ``MAX_MAPPED_VALUES`` is memory-mapped read-only instead:
    from ``path`` at ``fh``'s position (a plain ``.npy``, a stored ``.npz`` member), or with
    ``spill`` copied a block at a time into a temporary file first (an inflated member)."""
    try:
        shape, fortran, dtype = npy_header(fh)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{name}: cannot read as NumPy ({detail[:120]})") from exc
    if dtype.hasobject:
        raise ValueError(
            f"{name}: cannot read as NumPy (dtype {dtype} holds Python objects); "
            "pickled arrays are refused"
        )
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"{name}: dtype {dtype} is not numeric; expected (T, {width}) floats")
    count = math.prod(shape)
    mappable = (path is not None or spill) and dtype.kind == "f" and not fortran and len(shape)
    if count > (MAX_MAPPED_VALUES if mappable else MAX_VALUES):
        raise ValueError(
            f"{name}: shape {tuple(shape)} holds {count:,} values; lstmviz reads sequences of "
            f"at most {MAX_VALUES:,} (float .npy files up to {MAX_MAPPED_VALUES:,}, mapped)"
        )
    nbytes = count * dtype.itemsize
    if nbytes > available:
        raise ValueError(
            f"{name}: shape {tuple(shape)} {dtype} needs {nbytes:,} bytes but only "
            f"{available:,} are stored; the file is truncated"
        )
    if count > MAX_VALUES and path is not None:  # larger than a read: mapped, pages on demand
        return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=tuple(shape))
    if count > MAX_VALUES:
        return _spill(fh, nbytes, name, dtype, tuple(shape), progress)
    raw = fh.read(nbytes)
    if len(raw) != nbytes:
        raise ValueError(f"{name}: the file is truncated ({len(raw):,} of {nbytes:,} bytes)")
    arr = np.frombuffer(raw, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _spill(
    fh: IO[bytes],
    nbytes: int,
    name: str,
    dtype: np.dtype,
    shape: tuple[int, ...],
    progress: Callable[[float], None] | None,
) -> np.memmap:
    """``nbytes`` of ``fh`` (an inflating zip member) copied 8 MB at a time into a temporary
    file, mapped read-only; the member's CRC is checked at its end as ``zipfile`` does."""
    with spill_file(nbytes, name) as out:
        done = 0
        while done < nbytes:
            chunk = fh.read(min(nbytes - done, 8 << 20))
            if not chunk:
                raise ValueError(f"{name}: the file is truncated ({done:,} of {nbytes:,} bytes)")
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done / nbytes)
        fh.read(1)  # reach the member's end, where zipfile compares the CRC
        out.flush()
        return np.memmap(out, dtype=dtype, mode="r", shape=shape)


def read_npz(
    p: Path, size: int, width: int, progress: Callable[[float], None] | None = None
) -> tuple[npt.NDArray, str]:
    """The sequence member of an ``.npz`` (``x``, ``input``, ``inputs``, ``sequence``, else the
    first), chosen from the zip directory and read alone: a stored member (``np.savez``) in
    place, memory-mapped when large; a compressed one inflated, bounded by its declared size
    (``zipfile`` stops there and checks the CRC) which is checked first against the archive."""
    name = p.name
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise ValueError(f"{name}: {len(infos):,} members; expected a few arrays from np.savez")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise ValueError(
                f"{name}: member {twice[:60]!r} is stored twice, so which one is meant is "
                "ambiguous; re-save it with np.savez"
            )
        keys = [n[:-4] if n.endswith(".npy") else n for n in names]
        if not keys:
            raise ValueError(f"{name}: empty .npz; expected an array of shape (T, {width})")
        key = next((k for k in ("x", "input", "inputs", "sequence") if k in keys), keys[0])
        info = infos[keys.index(key)]
        label = f"{name}[{key[:60]}]"
        if not info.filename.endswith(".npy"):
            raise ValueError(f"{label}: not a .npy array; expected an archive written by np.savez")
        if info.compress_type == zipfile.ZIP_STORED:
            return _stored_member(p, size, info, label, width), label
        limit = MAX_MAPPED_VALUES * 16 + MAX_NPY_HEADER
        if info.file_size > limit or info.file_size > max(size, 1) * MAX_NPZ_RATIO + (1 << 20):
            raise ValueError(
                f"{label}: declares {info.file_size:,} bytes inflated from a {size:,}-byte "
                "file; refused as a possible zip bomb (save the sequence with np.save)"
            )
        with zf.open(info) as fh:
            data = read_npy(fh, info.file_size, label, width, spill=True, progress=progress)
            return data, label


def _stored_member(p: Path, size: int, info: zipfile.ZipInfo, label: str, width: int) -> Any:
    """An uncompressed member read from the archive at its offset (its local header gives
    where its bytes start), so a large float array is memory-mapped, never copied."""
    if info.flag_bits & 1:
        raise ValueError(f"{label}: encrypted member; save the sequence with np.savez")
    with open_regular(p) as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{label}: no local header where the zip directory points")
        (method,), (n_name, n_extra) = (
            struct.unpack("<H", local[8:10]),
            struct.unpack("<HH", local[26:30]),
        )
        start = info.header_offset + 30 + n_name + n_extra
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"  # as zipfile compares them
        same_name = fh.read(n_name) == info.orig_filename.encode(encoding, "replace")
        if method != zipfile.ZIP_STORED or info.compress_size != info.file_size or not same_name:
            raise ValueError(f"{label}: its local header and the zip directory disagree")
        if start + info.file_size > size:
            raise ValueError(
                f"{label}: declares {info.file_size:,} bytes at offset {start:,} of a "
                f"{size:,}-byte file; the file is truncated"
            )
        fh.seek(start)
        arr = read_npy(fh, info.file_size, label, width, path=p)
        if not isinstance(arr, np.memmap):  # read whole: checked as zipfile would
            fh.seek(start)
            crc, left = 0, info.file_size
            while left > 0 and (chunk := fh.read(min(left, 1 << 20))):
                crc, left = zlib.crc32(chunk, crc), left - len(chunk)
            if crc != info.CRC:
                raise ValueError(f"{label}: bad CRC-32; the file is damaged")
        return arr


def one_line(text: str, limit: int = 300) -> str:
    """One printable line of at most ``limit`` characters (file names and cells are file
    content: a newline or an escape sequence in them must not reach the screen raw)."""
    if len(text) > 4 * limit:
        text = text[: 2 * limit] + "…" + text[-2 * limit :]
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else (" " if c == "\t" else repr(c)[1:-1]) for c in text
        )
    if len(text) > limit:
        text = text[: limit - 81] + "…" + text[-80:]
    return text
