"""Sequences from text, files, generators and token embeddings; errors name the width."""

import numpy as np
import pytest

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
