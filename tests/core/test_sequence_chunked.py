"""Sequence files of any size (issue 17): text streamed a block at a time, large results and
large .npz members memory-mapped, the same errors at the same lines in any block."""

import io
import os
import struct
import zipfile

import numpy as np
import pytest
from bounded import bounded_load

import lstmviz
from lstmviz.core import (
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    sequence,
    sequence_files,
    sequence_text,
)
from lstmviz.core.sequence import load_sequence, parse_sequence
from lstmviz.core.sequence_text import lines_of


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 KB and a 1,000-value memory threshold: many blocks and a mapped result
    from files of a few hundred KB."""
    monkeypatch.setattr(sequence_text, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(sequence_text, "IN_MEMORY_VALUES", 1000)


def _write(path, x, sep=",", header=None, newline="\n"):
    lines = [sep.join(f"{v:.9g}" for v in row) for row in x]
    text = newline.join(([header] if header else []) + lines) + newline
    path.write_bytes(text.encode())


def test_a_csv_past_the_old_16_mb_limit_loads_bounded_and_equals_loadtxt(tmp_path):
    x = np.random.default_rng(0).standard_normal((92_000, 48)).astype(np.float32)
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("# written by np.savetxt\n")
        np.savetxt(fh, x, fmt="%.7g", delimiter=",")
    assert path.stat().st_size > 40 << 20
    out = bounded_load(path, kind="sequence", width=48)  # peak ≤ 200 MB + 2 × 40 MB
    out.assert_bounded()
    assert out.kind == "sequence" and out.message == "(92000, 48)", out
    got = load_sequence(path, 48)
    assert isinstance(got, np.memmap) and got.dtype == np.float32 and not got.flags.writeable
    ref = np.loadtxt(path, delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, np.loadtxt(path, delimiter=",").astype(np.float32))


@pytest.mark.parametrize(
    ("sep", "newline", "header"),
    [(",", "\n", "a,b,c,d"), ("\t", "\n", None), (" ", "\r\n", "t x y z"), ("; ", "\r", None)],
)
def test_separators_headers_and_line_ends_across_blocks(tmp_path, small_blocks, sep, newline,
                                                        header):  # fmt: skip
    x = np.random.default_rng(1).standard_normal((3000, 4)).astype(np.float32)
    path = tmp_path / "x.txt"
    _write(path, x, sep, header, newline)
    got = load_sequence(path, 4)
    assert isinstance(got, np.memmap) and got.shape == (3000, 4)
    np.testing.assert_array_equal(got, x)  # 9 digits of a float32 read back exactly


def test_small_files_stay_float64_in_memory_as_before(tmp_path):
    x = np.random.default_rng(2).standard_normal((500, 3))
    path = tmp_path / "x.csv"
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in x))
    got = load_sequence(path, 3)
    assert type(got) is np.ndarray and got.dtype == np.float64
    np.testing.assert_array_equal(got, x)


def _rows(n, width=3):
    return "".join(f"{k},{k + 0.5},{-k}\n" for k in range(n))


@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("1,2\n", "line 2501: 2 values, but the model's first layer expects 3 per timestep"),
        ("1,2,x\n", "line 2501: 'x' is not a number (column 3)"),
        ("1,nan,3\n", "line 2501: NaN or Inf (column 2); every value must be finite"),
        ("1,2,3,4\n", "line 2501: 4 values, but the model's first layer expects 3"),
        ("1,2,1e999\n", "line 2501: NaN or Inf (column 3)"),
    ],
)
def test_errors_in_a_later_block_name_their_line(tmp_path, monkeypatch, mapped, bad_line,
                                                 message):  # fmt: skip
    monkeypatch.setattr(sequence_text, "BLOCK_BYTES", 4096)
    if mapped:
        monkeypatch.setattr(sequence_text, "IN_MEMORY_VALUES", 1000)
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n" + _rows(2499) + bad_line + _rows(500))
    with pytest.raises(ValueError) as err:
        load_sequence(path, 3)
    assert str(err.value).startswith(f"bad.csv: {message}"), str(err.value)


def test_blank_lines_comments_and_a_truncated_last_line(tmp_path, small_blocks):
    path = tmp_path / "x.csv"
    path.write_text("# header comment\n" + _rows(800).replace("\n", "\n\n   \n# c\n") + "9,9")
    with pytest.raises(ValueError, match=r"^x.csv: line 3202: 2 values, but the model's"):
        load_sequence(path, 3)
    path.write_text(_rows(800).replace("\n", "\n  \n") + "9,9,9")  # no final line break
    got = load_sequence(path, 3)
    assert got.shape == (801, 3) and got[-1].tolist() == [9, 9, 9]
    assert got[10].tolist() == [10, 10.5, -10]


def test_a_value_past_float32_is_refused_at_its_line(tmp_path, small_blocks):
    path = tmp_path / "x.csv"
    path.write_text(_rows(1000) + "1,1e39,2\n")
    with pytest.raises(ValueError, match=r"^x.csv: line 1001: a value past float32's"):
        load_sequence(path, 3)


def test_a_long_line_is_refused_after_reading_a_few_mb(tmp_path):
    path = tmp_path / "line.csv"
    with open(path, "wb") as fh:  # 200 MB, one line (sparse: no disk used for the zeros)
        fh.write(b"1,2,3\n4," + b"5" * 1000)
        fh.seek(200 << 20)
        fh.write(b"\n")
    out = bounded_load(path, kind="sequence", width=3)
    out.assert_refused("line 2:")
    assert out.peak_mb < 100, out  # a few blocks read, not the line
    (tmp_path / "wide.csv").write_bytes(b"0," * (6 << 20))
    out = bounded_load(tmp_path / "wide.csv", kind="sequence", width=3)
    out.assert_refused("line 1: more than 3 values")


def test_not_enough_temporary_space_is_one_line(tmp_path, small_blocks, monkeypatch):
    path = tmp_path / "x.csv"
    path.write_text(_rows(2000))
    monkeypatch.setattr(sequence_files, "SPARE_TEMP_BYTES", 1 << 60)
    with pytest.raises(ValueError, match=r"^x.csv: needs [\d.]+ MB of temporary space in .*TMPDIR"):
        load_sequence(path, 3)


def test_progress_is_reported_and_its_exception_stops_the_read(tmp_path, small_blocks):
    path = tmp_path / "x.csv"
    path.write_text(_rows(5000))
    seen = []
    load_sequence(path, 3, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) > 20

    class Stop(Exception):
        pass

    def cancel(fraction):
        if fraction > 0.5:
            raise Stop

    with pytest.raises(Stop):
        load_sequence(path, 3, progress=cancel)


def test_token_ids_in_a_mapped_file_are_quoted_as_written(tmp_path, small_blocks):
    table = np.arange(12.0).reshape(4, 3)
    path = tmp_path / "ids.csv"
    path.write_text("id\n" + "1\n2\n" * 1000 + "17.0e0\n")
    with pytest.raises(ValueError, match=r"token id 17.0e0 at step 2000 is outside"):
        load_sequence(path, 3, table)
    path.write_text("1\n3\n" * 1000)
    np.testing.assert_array_equal(load_sequence(path, 3, table), table[[1, 3] * 1000])


def test_a_run_over_the_mapped_file_equals_the_run_over_the_array(tmp_path, small_blocks):
    rng = np.random.default_rng(3)
    D, H = 5, 8
    w = LSTMDirection(rng.normal(0, 0.4, (4 * H, D)).astype(np.float32),
                      rng.normal(0, 0.3, (4 * H, H)).astype(np.float32),
                      rng.normal(0, 0.1, 4 * H).astype(np.float32))  # fmt: skip
    model = LSTMModel((LSTMLayer("lstm", (w,)),))
    x = rng.standard_normal((1500, D)).astype(np.float32)
    path = tmp_path / "x.csv"
    _write(path, x)
    mapped = load_sequence(path, D)
    assert isinstance(mapped, np.memmap)
    full = lstmviz.run(model, np.loadtxt(path, delimiter=",", dtype=np.float32))
    for kind in ("full", "bounded"):
        tr = lstmviz.run(model, mapped, trace=kind)
        np.testing.assert_array_equal(tr.layers[0].output[:], full.layers[0].output[:])
        np.testing.assert_array_equal(tr.layers[0].directions[0].c[700:720],
                                      full.layers[0].directions[0].c[700:720])  # fmt: skip


# --------------------------------------------------------------------------- .npz


def test_a_stored_npz_member_is_mapped_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(sequence_files, "MAX_VALUES", 1000)
    monkeypatch.setattr(sequence, "LARGE_VALUES", 1000)  # validated in place, not copied
    x = np.random.default_rng(4).standard_normal((2000, 3))
    np.savez(tmp_path / "s.npz", other=np.zeros(3), x=x)
    got = load_sequence(tmp_path / "s.npz", 3)
    assert isinstance(got, np.memmap) and str(got.filename) == os.path.abspath(tmp_path / "s.npz")
    np.testing.assert_array_equal(got, x)
    monkeypatch.undo()
    small = load_sequence(tmp_path / "s.npz", 3)
    assert not isinstance(small, np.memmap)
    np.testing.assert_array_equal(small, x)


def test_a_compressed_npz_member_is_streamed_to_a_mapped_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sequence_files, "MAX_VALUES", 1000)
    monkeypatch.setattr(sequence, "LARGE_VALUES", 1000)
    x = np.random.default_rng(5).standard_normal((3000, 3)).astype(np.float32)
    np.savez_compressed(tmp_path / "c.npz", x=x)
    seen = []
    got = load_sequence(tmp_path / "c.npz", 3, progress=seen.append)
    assert isinstance(got, np.memmap) and got.dtype == np.float32 and seen[-1] == 1.0
    np.testing.assert_array_equal(got, x)


def _stored_zip(path, payload: bytes, declared: int, local_name: bytes = b"x.npy") -> None:
    """A one-member stored zip whose directory declares ``declared`` bytes (a lie when it
    differs from the payload)."""
    name = b"x.npy"
    crc = 0
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, declared, declared,
                        len(local_name), 0) + local_name  # fmt: skip
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, declared,
                          declared, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    body = local + payload
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    path.write_bytes(body + central + end)


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_hostile_npz_sizes_are_refused_quickly(tmp_path):
    payload = _npy(np.zeros((100, 3)))
    _stored_zip(tmp_path / "long.npz", payload, 10**9)  # declares 1 GB stored in 2 KB
    out = bounded_load(tmp_path / "long.npz", kind="sequence", width=3)
    out.assert_refused("truncated")
    _stored_zip(tmp_path / "short.npz", payload, 200)  # declares less than its header says
    out = bounded_load(tmp_path / "short.npz", kind="sequence", width=3)
    out.assert_refused("truncated")
    _stored_zip(tmp_path / "crc.npz", payload, len(payload))  # CRC 0: damaged
    out = bounded_load(tmp_path / "crc.npz", kind="sequence", width=3)
    out.assert_refused("CRC")
    _stored_zip(tmp_path / "moved.npz", payload, len(payload), local_name=b"x.npy" + b"\0" * 64)
    out = bounded_load(tmp_path / "moved.npz", kind="sequence", width=3)
    out.assert_refused("local header and the zip directory disagree")
    big = _npy(np.zeros((2_000_000, 3)))  # deflated, then its directory lies about the size
    with zipfile.ZipFile(tmp_path / "lie.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", big)
    raw = bytearray((tmp_path / "lie.npz").read_bytes())
    at = raw.rfind(b"PK\x01\x02")
    raw[at + 24 : at + 28] = struct.pack("<I", 0xF000_0000)  # uncompressed size: 3.75 GB
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    out = bounded_load(tmp_path / "lie.npz", kind="sequence", width=3)
    out.assert_refused("zip bomb")


def test_the_workspace_job_reports_progress_and_cancels(tmp_path, small_blocks):
    from lstmviz.workspace import Cancelled, Job, Workspace

    rng = np.random.default_rng(6)
    w = LSTMDirection(rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), rng.normal(size=8))
    ws = Workspace()
    ws.set_model(LSTMModel((LSTMLayer("lstm", (w,)),)))
    path = tmp_path / "x.csv"
    path.write_text(_rows(2000))
    job = ws.open_sequence(path, wait=True)
    assert job.progress == pytest.approx(1.0)
    np.testing.assert_array_equal(ws.sequence[1999], [1999, 1999.5, -1999])
    again = Job("sequence", "again", job.work, lambda result, error: None)
    again.cancel()
    result, error = again.execute()
    assert result is None and isinstance(error, Cancelled)


@pytest.mark.parametrize("seed", range(40))
def test_any_line_ends_and_block_size_give_the_typed_texts_rows_and_errors(tmp_path, monkeypatch,
                                                                           seed):  # fmt: skip
    """The streamed reader against ``parse_sequence`` (the whole text at once) on random files:
    \\n, \\r\\n and \\r mixed, blank and comment lines, blocks of 16-200 bytes (a \\r\\n split
    across blocks), sometimes one bad cell: the same rows, or the same message."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(sequence_text, "BLOCK_BYTES", int(rng.integers(16, 200)))
    monkeypatch.setattr(sequence_text, "IN_MEMORY_VALUES", 10**9 if seed % 2 else 30)
    parts = []
    for _ in range(int(rng.integers(1, 80))):
        kind = rng.random()
        line = ("" if kind < 0.1 else "  # note" if kind < 0.15 else
                ", ".join(str(int(v)) for v in rng.integers(-99, 99, 2)))  # fmt: skip
        parts.append(line + str(rng.choice(["\n", "\r\n", "\r"])))
    if seed % 3 == 0:
        at = int(rng.integers(len(parts)))
        parts[at] = str(rng.choice(["1, x", "1", "1, 2, 3", "nan, 1"])) + "\n"
    text = "".join(parts)
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    with open(path, "rb") as fh:  # every line start's number, from the nearest block mark
        index = sequence_text._LineIndex(fh, len(text), 1 << 20, None)
        for off in range(len(text) + 1):
            if off == 0 or text[off - 1] == "\n" or text[off - 1 : off + 1] == "\r":
                assert index.line_at(off) == len(lines_of(text[:off])), off
    try:
        want = parse_sequence(text, 2)
    except ValueError as exc:
        with pytest.raises(ValueError) as err:
            load_sequence(path, 2)
        assert str(err.value) == f"x.csv: {exc}"
        return
    np.testing.assert_array_equal(load_sequence(path, 2), want)
