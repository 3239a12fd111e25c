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
import stat
import tokenize
import zipfile
from pathlib import Path
from typing import IO

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


def read_npy(
    fh: IO[bytes], available: int, name: str, width: int, path: Path | None = None
) -> npt.NDArray:
    """One ``.npy`` array from ``fh``, its header checked before any data is read: numeric
    dtype (never a pickle), at most ``MAX_VALUES`` values, no more bytes than ``available``.
    With ``path`` (a plain ``.npy`` file), a C-order float array of up to
    ``MAX_MAPPED_VALUES`` is memory-mapped read-only instead of read."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            read_header = np.lib.format.read_array_header_1_0
        elif version == (2, 0):
            read_header = np.lib.format.read_array_header_2_0
        else:
            raise ValueError(f"format version {version}")
        shape, fortran, dtype = read_header(fh, max_header_size=MAX_NPY_HEADER)
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
    mappable = path is not None and dtype.kind == "f" and not fortran and len(shape) >= 1
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
    raw = fh.read(nbytes)
    if len(raw) != nbytes:
        raise ValueError(f"{name}: the file is truncated ({len(raw):,} of {nbytes:,} bytes)")
    arr = np.frombuffer(raw, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def read_npz(p: Path, size: int, width: int) -> tuple[npt.NDArray, str]:
    """The sequence member of an ``.npz`` (``x``, ``input``, ``inputs``, ``sequence``, else the
    first), chosen from the zip directory and inflated alone, bounded by its declared size
    (``zipfile`` stops there and checks the CRC) which is checked first."""
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
        limit = MAX_VALUES * 16 + MAX_NPY_HEADER
        if info.file_size > limit or info.file_size > max(size, 1) * MAX_NPZ_RATIO + (1 << 20):
            raise ValueError(
                f"{label}: declares {info.file_size:,} bytes inflated from a {size:,}-byte "
                "file; refused as a possible zip bomb (save the sequence with np.save)"
            )
        with zf.open(info) as fh:
            return read_npy(fh, info.file_size, label, width), label


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
