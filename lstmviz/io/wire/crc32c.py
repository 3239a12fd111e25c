"""CRC32C (Castagnoli), the checksum of LevelDB tables and TensorFlow checkpoint tensors.

TensorFlow stores checksums *masked* (``crc32c::Mask``: rotate right by 15, add a constant) so
that a CRC computed over data which itself holds CRCs stays well distributed. The pure-Python
table loop is fine for index blocks; large tensors use :func:`crc32c_numpy`, which runs many
byte lanes at once with NumPy and joins them with the standard CRC "combine" algebra.

NumPy manages ~60 MB/s, so a 100 MB checkpoint would spend a second on checksums. When the
optional ``google-crc32c`` package (Google's 40 KB C extension, ``pip install 'lstmviz[fast]'``)
is installed it is used instead (~9 GB/s); it is optional only because lstmviz promises four
runtime dependencies. Both paths are tested against each other.
"""

from __future__ import annotations

import numpy as np

try:  # optional C implementation; the NumPy one below gives the same numbers
    import google_crc32c as _google_crc32c

    _FAST = _google_crc32c.value if _google_crc32c.implementation == "c" else None
except ImportError:  # pragma: no cover - depends on the environment
    _FAST = None

POLY = 0x82F63B78  # reflected Castagnoli polynomial
MASK_DELTA = 0xA282EAD8
_M32 = 0xFFFFFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


TABLE: tuple[int, ...] = _make_table()
_NP_TABLE = np.array(TABLE, dtype=np.uint32)

#: Below this size the plain loop beats the NumPy lanes' setup cost.
_NUMPY_THRESHOLD = 1 << 14
_LANES = 1024


def crc32c_py(data: bytes | memoryview, crc: int = 0) -> int:
    """CRC32C of ``data`` continuing from ``crc`` (0 for a fresh checksum)."""
    c = crc ^ _M32
    table = TABLE
    for byte in bytes(data):
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ _M32


def _mat_times(mat: list[int], vec: int) -> int:
    out, k = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[k]
        vec >>= 1
        k += 1
    return out


def _mat_square(mat: list[int]) -> list[int]:
    return [_mat_times(mat, mat[n]) for n in range(32)]


def _zeros_operator(n_bytes: int) -> list[int]:
    """The GF(2) matrix that advances a CRC register over ``n_bytes`` zero bytes (zlib's
    ``crc32_combine`` construction)."""
    odd = [POLY] + [1 << (n - 1) for n in range(1, 32)]  # one zero bit
    result = [1 << n for n in range(32)]  # identity
    op = odd
    op = _mat_square(op)  # 2 bits
    op = _mat_square(op)  # 4 bits
    n = n_bytes
    while n:
        op = _mat_square(op)  # 8, 16, ... bits: one byte, two bytes, ...
        if n & 1:
            result = [_mat_times(op, result[k]) for k in range(32)]
        n >>= 1
    return result


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)``."""
    if len2 == 0:
        return crc1
    return _mat_times(_zeros_operator(len2), crc1) ^ crc2


def crc32c_numpy(data: bytes | memoryview) -> int:
    """CRC32C of ``data`` computed over ``_LANES`` equal slices in parallel, then combined."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n = buf.size
    lane_len = n // _LANES
    if lane_len == 0:
        return crc32c_py(data)
    body = buf[: lane_len * _LANES].reshape(_LANES, lane_len)
    regs = np.full(_LANES, _M32, dtype=np.uint32)
    table = _NP_TABLE
    for k in range(lane_len):
        regs = table[(regs ^ body[:, k]) & 0xFF] ^ (regs >> 8)
    regs ^= np.uint32(_M32)
    op = _zeros_operator(lane_len)
    crc = int(regs[0])
    for lane in regs[1:].tolist():
        crc = _mat_times(op, crc) ^ lane
    tail = bytes(buf[lane_len * _LANES :])
    return crc32c_combine(crc, crc32c_py(tail), len(tail)) if tail else crc


def crc32c(data: bytes | memoryview) -> int:
    """CRC32C of ``data`` (fresh checksum), choosing the faster implementation by size."""
    if _FAST is not None:
        return _FAST(data if isinstance(data, bytes) else bytes(data))
    if len(data) >= _NUMPY_THRESHOLD:
        return crc32c_numpy(data)
    return crc32c_py(data)


def mask(crc: int) -> int:
    """TensorFlow/LevelDB ``crc32c::Mask``."""
    return ((((crc >> 15) | (crc << 17)) & _M32) + MASK_DELTA) & _M32


def unmask(masked: int) -> int:
    """Inverse of :func:`mask`."""
    rot = (masked - MASK_DELTA) & _M32
    return ((rot >> 17) | (rot << 15)) & _M32
