"""CRC32C, the protobuf wire decoder and the LevelDB table reader on known inputs."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from lstmviz.io.wire import protowire as pw
from lstmviz.io.wire.crc32c import crc32c, crc32c_combine, crc32c_numpy, crc32c_py, mask, unmask
from lstmviz.io.wire.sstable import TableError, read_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x00000000),
        (b"123456789", 0xE3069283),  # the standard check value
        (b"\x00" * 32, 0x8A9136AA),  # RFC 3720 B.4 vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert crc32c_py(data) == expected
    assert crc32c(data) == expected


def test_crc32c_numpy_lanes_and_combine_agree_with_the_plain_loop() -> None:
    rng_bytes = os.urandom(70_001)  # not a multiple of the lane count: exercises the tail
    assert crc32c_numpy(rng_bytes) == crc32c_py(rng_bytes)
    a, b = rng_bytes[:1234], rng_bytes[1234:5000]
    assert crc32c_combine(crc32c_py(a), crc32c_py(b), len(b)) == crc32c_py(a + b)
    assert crc32c_py(b, crc32c_py(a)) == crc32c_py(a + b)
    assert crc32c_py(b"123456789") != zlib.crc32(b"123456789")  # Castagnoli, not zlib's CRC32


def test_mask_matches_leveldb_definition() -> None:
    crc = 0xE3069283
    assert mask(crc) == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    for value in (0, 1, 0xFFFFFFFF, 0x12345678, crc):
        assert unmask(mask(value)) == value
    assert mask(crc) != crc


def test_protowire_decodes_each_wire_type() -> None:
    msg = (
        b"\x08\x96\x01"  # field 1 varint 150
        + b"\x12\x03abc"  # field 2 bytes
        + b"\x1d"
        + struct.pack("<f", 0.5)  # field 3 fixed32
        + b"\x21"
        + struct.pack("<d", -2.25)  # field 4 fixed64
        + b"\x2a\x08"
        + struct.pack("<2f", 1.0, 2.0)  # field 5 packed floats
        + b"\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # field 6 int64 -1
    )
    f = pw.parse(msg)
    assert pw.get_int(f, 1) == 150
    assert pw.get_string(f, 2) == "abc"
    assert pw.fixed32_float(pw.get_int(f, 3)) == 0.5
    assert pw.get_doubles(f, 4) == [-2.25]
    assert pw.get_floats(f, 5) == [1.0, 2.0]
    assert pw.get_signed(f, 6) == -1
    assert pw.get_message(f, 7) == {}


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x80",  # varint never ends
        b"\x08" + b"\xff" * 11,  # overlong varint
        b"\x12\x05ab",  # length past the end
        b"\x1d\x00",  # truncated fixed32
        b"\x0b",  # start group
        b"\x00\x01",  # field number 0
        b"\x12\xff\xff\xff\xff\x0f",  # 4 GB length
    ],
)
def test_protowire_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(pw.ProtoError):
        pw.parse(garbage)


def test_read_table_on_a_tensorflow_index() -> None:
    entries = read_table((FIXTURES / "basic" / "model.ckpt.index").read_bytes())
    keys = [k for k, _ in entries]
    assert keys == [b"", b"rnn/basic_lstm_cell/bias", b"rnn/basic_lstm_cell/kernel"]
    header = pw.parse(entries[0][1])
    assert pw.get_int(header, 1) == 1  # num_shards


def test_read_table_rejects_short_and_foreign_files() -> None:
    with pytest.raises(TableError, match="48-byte"):
        read_table(b"\x00" * 20)
    with pytest.raises(TableError, match="magic"):
        read_table(b"\x00" * 100)


def test_optional_c_checksum_agrees_with_the_numpy_one() -> None:
    """The test extra installs google-crc32c, so CI runs the fast path; both must agree."""
    import lstmviz.io.wire.crc32c as mod

    assert mod._FAST is not None, "google-crc32c (test extra) should provide the C path"
    data = bytes(range(256)) * 300 + b"tail"
    assert mod.crc32c(data) == mod.crc32c_numpy(data) == mod.crc32c_py(data)
    assert mod.crc32c(memoryview(data)[5:]) == mod.crc32c_py(data[5:])
