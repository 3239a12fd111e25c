"""Reading the side files of a TensorFlow model (``.meta``, ``saved_model.pb``, a frozen ``.pb``,
the index and shards of a checkpoint) only after checking what they are.

The user picks one file; the reader opens its siblings by name. Each is checked before any
read (issue 18): a FIFO, device or socket would block ``open`` or stream forever, so only a
regular file is opened, and its size is compared with the limit from ``stat`` before a byte is
read, never after reading it whole.
"""

from __future__ import annotations

import stat
from pathlib import Path

from lstmviz.io.errors import LoadError


def regular_size(path: Path, what: str) -> int:
    """The size of ``path`` if it is a regular file (symlinks followed), else LoadError."""
    try:
        info = path.stat()
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot read {what} ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(
            f"{path.name}: {what} is not a regular file (a FIFO, device or folder); "
            "lstmviz reads model files only"
        )
    return info.st_size


def read_limited(path: Path, limit: int, what: str, option: str = "") -> bytes:
    """The bytes of a regular file no larger than ``limit``, checked before reading."""
    size = regular_size(path, what)
    if size > limit:
        raise LoadError(
            f"{path.name}: {what} is {size:,} bytes, over lstmviz's limit of {limit:,}"
            + (f"; {option}" if option else "")
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(size)  # read(n) allocates n bytes up front: the stat size, not limit
            grew = fh.read(1)
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot read {what} ({exc.strerror or exc})") from exc
    if grew:
        raise LoadError(f"{path.name}: {what} grew while being read")
    return data


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file; never raises."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
