"""Reader for the LevelDB table format TensorFlow uses for a checkpoint's ``.index`` file.

Layout (tensorflow/core/lib/io/format.cc, block.cc, table.cc): data blocks, a metaindex block,
an index block, then a 48-byte footer = metaindex handle + index handle (two varint64 pairs),
zero padding to 40 bytes, and the u64 LE magic ``0xdb4775248b80fb57``. Every block is
followed by a 5-byte trailer: a compression byte and the masked CRC32C of block + that byte.
A block holds prefix-compressed entries, then u32 restart offsets and their count.

Everything is bounds-checked; corrupt input raises :class:`TableError`.
"""

from __future__ import annotations

from lstmviz.io.wire.crc32c import crc32c, unmask
from lstmviz.io.wire.protowire import ProtoError, read_varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
MAX_KEY_BYTES = 1 << 16  # far longer than any variable name
MAX_TOTAL_KEY_BYTES = 1 << 28  # guards against prefix-sharing blow-ups


class TableError(ValueError):
    """The bytes are not a valid (uncompressed) LevelDB table."""


def has_table_magic(tail: bytes) -> bool:
    """True when ``tail`` (the file's last 8 or more bytes) ends with the table magic."""
    return len(tail) >= 8 and int.from_bytes(tail[-8:], "little") == TABLE_MAGIC


def _handle(buf: memoryview, pos: int) -> tuple[int, int, int]:
    """A BlockHandle (offset, size) at ``pos``; returns (offset, size, next position)."""
    try:
        offset, pos = read_varint(buf, pos)
        size, pos = read_varint(buf, pos)
    except ProtoError as exc:
        raise TableError(f"bad block handle ({exc})") from exc
    return offset, size, pos


def read_block(data: memoryview, offset: int, size: int, what: str) -> memoryview:
    """The contents of one block, after checking its bounds, compression byte and CRC."""
    if offset + size + TRAILER_SIZE > len(data) - FOOTER_SIZE or size < 4:
        raise TableError(
            f"{what} block [{offset}, {offset + size}) lies outside the "
            f"{len(data)}-byte file (truncated?)"
        )
    contents = data[offset : offset + size]
    kind = data[offset + size]
    stored = int.from_bytes(data[offset + size + 1 : offset + size + 5], "little")
    if crc32c(data[offset : offset + size + 1]) != unmask(stored):
        raise TableError(f"{what} block checksum mismatch (file corrupted)")
    if kind == SNAPPY_COMPRESSION:
        raise TableError(
            f"{what} block is snappy-compressed (type 1); lstmviz reads uncompressed tables "
            "only, as TensorFlow writes them"
        )
    if kind != NO_COMPRESSION:
        raise TableError(f"{what} block has unknown compression type {kind}")
    return contents


def iter_block(block: memoryview, what: str) -> list[tuple[bytes, memoryview]]:
    """Decode all ``(key, value)`` entries of one block in order."""
    n = len(block)
    num_restarts = int.from_bytes(block[n - 4 :], "little")
    if num_restarts > (n - 4) // 4:
        raise TableError(f"{what} block claims {num_restarts} restart points in {n} bytes")
    limit = n - 4 * (1 + num_restarts)
    entries: list[tuple[bytes, memoryview]] = []
    key = b""
    total_key_bytes = 0
    pos = 0
    try:
        while pos < limit:
            shared, pos = read_varint(block, pos)
            non_shared, pos = read_varint(block, pos)
            value_len, pos = read_varint(block, pos)
            if shared > len(key):
                raise TableError(
                    f"{what} block entry shares {shared} bytes of a {len(key)}-byte key"
                )
            if non_shared + value_len > limit - pos:
                raise TableError(f"{what} block entry runs past the block end")
            key = key[:shared] + bytes(block[pos : pos + non_shared])
            pos += non_shared
            if len(key) > MAX_KEY_BYTES:
                raise TableError(f"{what} block key is {len(key)} bytes long")
            total_key_bytes += len(key)
            if total_key_bytes > MAX_TOTAL_KEY_BYTES:
                raise TableError(f"{what} block keys are implausibly large")
            entries.append((key, block[pos : pos + value_len]))
            pos += value_len
    except ProtoError as exc:
        raise TableError(f"{what} block entry is corrupt ({exc})") from exc
    return entries


def read_table(data: bytes | memoryview) -> list[tuple[bytes, memoryview]]:
    """All ``(key, value)`` entries of the table held in ``data``, in file order.

    Each data block is read once (the index must point at distinct, in-file blocks), so the
    work is bounded by the file size.
    """
    buf = memoryview(data)
    if len(buf) < FOOTER_SIZE:
        raise TableError(f"file is {len(buf)} bytes, shorter than the 48-byte table footer")
    footer = buf[len(buf) - FOOTER_SIZE :]
    if not has_table_magic(bytes(footer)):
        raise TableError("footer magic is not 0xdb4775248b80fb57 (not a LevelDB/TF table)")
    _meta_off, _meta_size, pos = _handle(footer, 0)
    index_off, index_size, _ = _handle(footer, pos)
    index_block = read_block(buf, index_off, index_size, "index")
    entries: list[tuple[bytes, memoryview]] = []
    seen: set[int] = set()
    for _sep, handle in iter_block(index_block, "index"):
        offset, size, _ = _handle(handle, 0)
        if offset in seen:
            raise TableError(f"index points twice at the data block at offset {offset}")
        seen.add(offset)
        entries.extend(iter_block(read_block(buf, offset, size, "data"), "data"))
    return entries
