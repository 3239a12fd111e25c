"""Sequences from text, files, generators and token embeddings; errors name the width."""

import io
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load

from lstmviz.core.sequence import (
    SequenceKind,
    embed_tokens,
    format_sequence,
    generate_sequence,
    load_sequence,
    parse_sequence,
    parse_state,
    parse_token_ids,
)


def test_parse_mixed_separators_comments_and_blank_lines():
    text = "1, 2, 3\n\n4\t5\t6   # a comment\n7 8;9\n"
    x = parse_sequence(text, 3)
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def test_format_round_trip():
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(parse_sequence(format_sequence(x, 17), 4), x, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1, 2\n3, 4, 5", "line 2: 3 values, but the model's first layer expects 2 per timestep"),
        ("1, abc", "line 1: 'abc' is not a number"),
        ("1, nan", "line 1: NaN or Inf"),
        ("  \n# only a comment", "no timesteps; type one row of 2 numbers"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as err:
        parse_sequence(text, 2)
    assert message in str(err.value)


def test_load_all_formats(tmp_path):
    x = np.arange(12, dtype=float).reshape(4, 3) / 7
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", other=np.zeros(2), x=x)
    np.savez(tmp_path / "c.npz", x[None])  # batch of one, unnamed
    (tmp_path / "d.csv").write_text("a,b,c\n" + format_sequence(x, 17) + "\n")
    (tmp_path / "e.txt").write_text(format_sequence(x, 17).replace(",", " "))
    for name in ("a.npy", "b.npz", "c.npz", "d.csv", "e.txt"):
        np.testing.assert_array_equal(load_sequence(tmp_path / name, width=3), x, err_msg=name)


def test_load_errors(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"wide.npy: 5 values per timestep, .* expects 3"):
        load_sequence(tmp_path / "wide.npy", width=3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj.npy: cannot .*pickled arrays are refused"):
        load_sequence(tmp_path / "obj.npy", width=3)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ValueError, match=r"bin.csv"):
        load_sequence(tmp_path / "bin.csv", width=3)
    with pytest.raises(ValueError, match=r"missing.csv: no such file"):
        load_sequence(tmp_path / "missing.csv", width=3)
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"NaN or Inf at step 0, feature 1"):
        load_sequence(tmp_path / "nan.npy", width=3)


def test_generators():
    assert generate_sequence("zeros", 5, 3).tolist() == np.zeros((5, 3)).tolist()
    assert generate_sequence(SequenceKind.ONES, 2, 2).tolist() == [[1, 1], [1, 1]]
    a = generate_sequence("random normal", 6, 4, seed=7)
    np.testing.assert_array_equal(a, np.random.default_rng(7).standard_normal((6, 4)))
    assert not np.array_equal(a, generate_sequence("random normal", 6, 4, seed=8))
    s = generate_sequence("sine", 16, 2, period=16)
    np.testing.assert_allclose(s[:, 0], np.sin(2 * np.pi * np.arange(16) / 16), atol=1e-12)
    np.testing.assert_allclose(s[:, 1], np.sin(2 * np.pi * np.arange(16) / 16 + np.pi), atol=1e-12)
    oh = generate_sequence("one-hot tokens", 20, 5, seed=1)
    assert oh.shape == (20, 5) and (oh.sum(axis=1) == 1).all() and set(np.unique(oh)) == {0, 1}
    with pytest.raises(ValueError, match=r"length must be at least 1"):
        generate_sequence("zeros", 0, 3)
    with pytest.raises(ValueError):
        generate_sequence("triangle", 3, 3)


def test_embedding():
    table = np.arange(15, dtype=float).reshape(5, 3)
    ids = parse_token_ids("4, 0 2\n2", vocab=5)
    np.testing.assert_array_equal(embed_tokens(ids, table), table[[4, 0, 2, 2]])
    with pytest.raises(ValueError, match=r"token id 5 at step 1 is outside the vocabulary 0\.\.4"):
        embed_tokens([1, 5], table)
    with pytest.raises(ValueError, match=r"'x' is not a token id"):
        parse_token_ids("1 x", vocab=5)
    with pytest.raises(ValueError, match=r"whole numbers"):
        embed_tokens(np.array([1.5]), table)


def test_initial_state():
    assert parse_state("", 3).tolist() == [0, 0, 0]
    assert parse_state("1, 2\n3", 3).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"h0: 2 values, expected 3"):
        parse_state("1 2", 3, "h0")


def test_one_column_files_are_token_ids_for_an_embedding_model(tmp_path):
    table = np.arange(12.0).reshape(4, 3)  # vocab 4, D = 3
    np.save(tmp_path / "ids.npy", np.array([2, 0, 3]))
    np.testing.assert_array_equal(load_sequence(tmp_path / "ids.npy", 3, table), table[[2, 0, 3]])
    (tmp_path / "vectors.csv").write_text("1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(
        load_sequence(tmp_path / "vectors.csv", 3, table), [[1, 2, 3], [4, 5, 6]]
    )
    (tmp_path / "half.csv").write_text("0.5\n1\n")
    with pytest.raises(ValueError, match="read as token ids: token ids must be whole numbers"):
        load_sequence(tmp_path / "half.csv", 3, table)
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(T, 3\)"):
        load_sequence(tmp_path / "ids.npy", 3)  # without an embedding: a width error
    with pytest.raises(ValueError, match="no Embedding layer"):
        embed_tokens([1, 2], None)


# --------------------------------------------------------------------------- issue 18, item 5


def test_a_header_is_only_a_row_of_names(tmp_path):
    x = [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "named.csv").write_text("# made by hand\ntime, b;c\n1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(load_sequence(tmp_path / "named.csv", 3), x)
    (tmp_path / "typo.csv").write_text("1,2,x\n4,5,6\n")  # a typo, never a dropped "header"
    with pytest.raises(ValueError, match=r"^typo.csv: line 1: 'x' is not a number \(column 3\)$"):
        load_sequence(tmp_path / "typo.csv", 3)
    # after a real header, lines are counted as the editor shows them (header = line 1)
    (tmp_path / "after.csv").write_text("a,b,c\n1,2,3\n\n4,five,6\n")
    with pytest.raises(ValueError, match=r"after.csv: line 4: 'five' is not a number \(column 2\)"):
        load_sequence(tmp_path / "after.csv", 3)
    (tmp_path / "names_later.csv").write_text("a,b,c\n1,2,3\nd,e,f\n")
    with pytest.raises(ValueError, match=r"line 3: 'd' is not a number \(column 1\)"):
        load_sequence(tmp_path / "names_later.csv", 3)
    (tmp_path / "nan.csv").write_text("a,b,c\n1,2,3\n4,inf,6\n")
    with pytest.raises(ValueError, match=r"line 3: NaN or Inf \(column 2\)"):
        load_sequence(tmp_path / "nan.csv", 3)
    (tmp_path / "crlf.csv").write_bytes(b"a,b,c\r\n1,2,3\r\n4,5,6\r\n")
    np.testing.assert_array_equal(load_sequence(tmp_path / "crlf.csv", 3), x)


def test_token_ids_are_reported_as_the_file_wrote_them(tmp_path):
    table = np.arange(12.0).reshape(4, 3)
    (tmp_path / "ids.csv").write_text("1\n1e300\n")
    with pytest.raises(ValueError, match=r"token id 1e300 at step 1 is outside"):
        load_sequence(tmp_path / "ids.csv", 3, table)
    np.save(tmp_path / "ids.npy", np.array([2.0, 1e300]))
    with pytest.raises(ValueError, match=r"token id 1e\+300 at step 1 is outside"):
        load_sequence(tmp_path / "ids.npy", 3, table)
    with pytest.raises(ValueError, match=r"token id -7 at step 0"):
        embed_tokens(np.array([-7, 1]), table)


def _npy_with_header(shape: str, descr: str = "<f8", body: bytes = b"\0" * 64) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def _zip(path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(path, "w", method) as zf:
            for name, data in members:
                zf.writestr(name, data)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def hostile_sequences(d: Path) -> dict[str, tuple[Path, str]]:
    """Crafted sequence files → (path, what the one-line refusal must name)."""
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, data: bytes, needle: str) -> None:
        (d / name).write_bytes(data)
        cases[name] = (d / name, needle)

    # text of any size loads now, streamed (tests/core/test_sequence_chunked.py)
    add("one_line.csv", b"0," * 8_000_000, "line 1: more than 3 values")  # 16 MB, no newline
    add("typo.csv", b"1,2,x\n3,4,5\n", "line 1: 'x' is not a number (column 3)")
    add("ctrl\n\x1b[31m.csv", b"1,2,\x1b[31mq\x00\n" + b"y" * 100_000, "is not a number")
    add("huge.npy", _npy_with_header("(100000000000, 3)"), "at most")
    add("lies.npy", _npy_with_header("(1000, 3)"), "truncated")
    add("negative.npy", _npy_with_header("(-5, 3)"), "")
    add("object.npy", _npy(np.array([{"a": 1}], dtype=object)), "pickled arrays are refused")
    add("text.npy", _npy(np.array(["abc"])), "not numeric")
    add("deep.npy", _npy_with_header("(" * 5000 + ")" * 5000), "cannot read as NumPy")
    add("binary.csv", bytes(range(256)) * 100, "not a text file")
    bomb = d / "bomb.npz"  # 160 MB of zeros in a 160 KB archive (a 2.4 GB one is refused alike)
    header = _npy_with_header("(6710886, 3)", body=b"")
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("x.npy", "w", force_zip64=True) as fh,
    ):
        fh.write(header)
        chunk = b"\0" * (1 << 24)
        for _ in range(10):
            fh.write(chunk)
    cases["bomb.npz"] = (bomb, "zip bomb")
    _zip(d / "pickle.npz", [("a/data.pkl", b"\x80\x02N." * 20_000)])
    cases["pickle.npz"] = (d / "pickle.npz", "not a .npy array")
    _zip(d / "twice.npz", [("x.npy", _npy(np.zeros((2, 3)))), ("x.npy", _npy(np.ones((2, 3))))])
    cases["twice.npz"] = (d / "twice.npz", "stored twice")
    members = [(f"m{k}.npy", b"") for k in range(5000)]
    _zip(d / "many.npz", members, zipfile.ZIP_STORED)
    cases["many.npz"] = (d / "many.npz", "members")
    _zip(d / "obj.npz", [("x.npy", _npy(np.array([None, 1], dtype=object)))])
    cases["obj.npz"] = (d / "obj.npz", "pickled arrays are refused")
    (d / "cut.npz").write_bytes((d / "obj.npz").read_bytes()[:-30])
    cases["cut.npz"] = (d / "cut.npz", "")
    os.mkfifo(d / "fifo.csv")
    cases["fifo.csv"] = (d / "fifo.csv", "special file")
    (d / "folder.csv").mkdir()
    cases["folder.csv"] = (d / "folder.csv", "folder")
    return cases


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_sequences(tmp_path_factory.mktemp("hostile_sequences"))


@pytest.mark.parametrize(
    "name",
    [
        "one_line.csv",
        "typo.csv",
        "ctrl\n\x1b[31m.csv",
        "huge.npy",
        "lies.npy",
        "negative.npy",
        "object.npy",
        "text.npy",
        "deep.npy",
        "binary.csv",
        "bomb.npz",
        "pickle.npz",
        "twice.npz",
        "many.npz",
        "obj.npz",
        "cut.npz",
        "fifo.csv",
        "folder.csv",
    ],
)
def test_hostile_sequence_files_are_one_line_value_errors(hostile, name):
    path, needle = hostile[name]
    out = bounded_load(path, kind="sequence", width=3)
    assert out.kind == "value_error", out
    out.assert_refused(needle)


def test_a_long_sequence_that_fits_the_budget_loads(tmp_path):
    x = np.random.default_rng(1).normal(size=(200_000, 3))
    np.save(tmp_path / "long.npy", x)
    np.savez_compressed(tmp_path / "long.npz", x=x)
    (tmp_path / "long.csv").write_text(format_sequence(x[:100_000], 8))
    for name in ("long.npy", "long.npz", "long.csv"):
        out = bounded_load(tmp_path / name, kind="sequence", width=3)
        out.assert_bounded()
        assert out.kind == "sequence", out
    np.testing.assert_array_equal(load_sequence(tmp_path / "long.npz", 3), x)


def test_no_other_exception_escapes(tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))

    def boom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np.lib.format, "read_magic", boom)
    with pytest.raises(ValueError, match=r"^a.npy: too large to load as a sequence$"):
        load_sequence(tmp_path / "a.npy", 3)

    def attr(*args, **kwargs):
        raise AttributeError("'bytes' object has no attribute 'dtype'\nsecond line")

    monkeypatch.setattr(np.lib.format, "read_magic", attr)
    with pytest.raises(ValueError) as err:
        load_sequence(tmp_path / "a.npy", 3)
    assert "AttributeError" in str(err.value) and "\n" not in str(err.value)
