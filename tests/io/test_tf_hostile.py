"""Hostile TensorFlow files on every route (issue 18): checkpoint prefixes, sibling graphs,
frozen GraphDefs and SavedModels, each loaded by ``bounded_load`` (a forked child under a
memory cap and a time limit): refused in one printable line, within 2 s and 200 MB + 2 × the
file's size, or loaded within those bounds."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from bounded import bounded_load
from test_tf1_bad_files import field, varint

TF = Path(__file__).resolve().parents[1] / "fixtures" / "tf"


def _attr(key: str, value: bytes) -> bytes:
    return field(5, field(1, key.encode()) + field(2, value))


def _node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: bytes = b"") -> bytes:
    body = field(1, name.encode()) + field(2, op.encode())
    body += b"".join(field(3, i.encode()) for i in inputs)
    return field(1, body + attrs)


def _const(name: str, shape: tuple[int, ...], content: bytes = b"", floats: int = 0) -> bytes:
    dims = b"".join(field(2, field(1, d)) for d in shape)
    tensor = field(1, 1) + field(2, dims)
    if content:
        tensor += field(4, content)
    if floats:
        tensor += field(5, struct.pack(f"<{floats}f", *([0.5] * floats)))
    return _node(name, "Const", attrs=_attr("value", field(8, tensor)))


def _copy_checkpoint(tmp: Path) -> Path:
    for f in (TF / "basic_head" / "ckpt").iterdir():
        shutil.copy(f, tmp / f.name.replace("model.ckpt-1000", "model.ckpt"))
    return tmp / "model.ckpt"


def test_prefix_whose_index_is_a_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.ckpt.index")
    bounded_load(tmp_path / "model.ckpt").assert_refused("FIFO")


def test_prefix_whose_data_shard_is_a_fifo_is_refused(tmp_path: Path) -> None:
    prefix = _copy_checkpoint(tmp_path)
    shard = tmp_path / "model.ckpt.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)
    bounded_load(prefix).assert_refused("not a regular file")


def test_sibling_meta_that_is_a_fifo_is_skipped(tmp_path: Path) -> None:
    prefix = _copy_checkpoint(tmp_path)
    (tmp_path / "model.ckpt.meta").unlink()
    os.mkfifo(tmp_path / "model.ckpt.meta")
    out = bounded_load(prefix)
    out.assert_bounded()
    assert out.kind == "model", out


def test_huge_sibling_meta_is_checked_before_it_is_read(tmp_path: Path) -> None:
    """A 600 MB .meta beside a small checkpoint is never read: its size is known from stat."""
    prefix = _copy_checkpoint(tmp_path)
    with open(tmp_path / "model.ckpt.meta", "r+b") as fh:
        fh.truncate(600 << 20)  # sparse: costs no disk
    out = bounded_load(prefix)
    out.assert_bounded()
    assert out.kind == "model" and out.peak_mb < 100, out
    bounded_load(tmp_path / "model.ckpt.meta").assert_refused("limit")


@pytest.mark.parametrize(
    "name",
    [
        "basic_head/model.pb",
        "keras2_stack/model.pb",
        "basic_head/saved_model",
        "keras3_stack/saved_model",
    ],
)
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.97])
def test_truncated_graphs_are_refused(tmp_path: Path, name: str, keep: float) -> None:
    src = TF / name
    if src.is_dir():
        target = tmp_path / "sm"
        shutil.copytree(src, target)
        pb = target / "saved_model.pb"
    else:
        target = pb = tmp_path / "model.pb"
        shutil.copy(src, pb)
    data = pb.read_bytes()
    pb.write_bytes(data[: int(len(data) * keep)])
    out = bounded_load(target)
    out.assert_bounded()
    if src.is_dir():  # the weights are in variables/: the graph is only settings
        assert out.kind in ("model", "load_error"), out
    else:
        out.assert_refused("model.pb")


def test_huge_declared_const_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    """A frozen 'kernel' claiming (2^20, 2^22) floats with 4 bytes stored."""
    graph = _const("rnn/basic_lstm_cell/kernel", (1 << 20, 1 << 22), content=b"\0" * 4)
    graph += _const("rnn/basic_lstm_cell/bias", (1 << 22,), content=b"\0" * 4)
    path = tmp_path / "model.pb"
    path.write_bytes(graph)
    bounded_load(path).assert_refused("model.pb")


def test_fill_constant_of_huge_shape_is_no_weight(tmp_path: Path) -> None:
    """``float_val: 0.5`` with a shape of 2^40 elements: TF would repeat it; lstmviz never
    expands it (it is no stored weight) and says the graph has no LSTM."""
    graph = _const("w", (1 << 20, 1 << 20), floats=1) + _node("x", "Placeholder")
    path = tmp_path / "model.pb"
    path.write_bytes(graph)
    bounded_load(path).assert_refused("without an LSTM")


def test_many_dims_and_negative_dims_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pb"
    path.write_bytes(_const("k", tuple([1] * 40_000), content=b"\0" * 4))
    bounded_load(path).assert_refused("invalid shape")
    path.write_bytes(_const("k", (4, -1), content=b"\0" * 4))
    bounded_load(path).assert_refused("invalid shape")


def _function(name: str, calls: list[str]) -> bytes:
    signature = field(1, name.encode()) + field(2, field(1, b"a"))
    body = b""
    for k, callee in enumerate(calls):
        func = field(10, field(1, callee.encode()))
        inner = field(1, f"c{k}".encode()) + field(2, b"PartitionedCall") + field(3, b"a")
        body += field(3, inner + _attr("f", func))
    return field(1, field(1, signature) + body)  # library.function = 1, signature = 1


def test_deep_and_wide_function_nesting_is_bounded(tmp_path: Path) -> None:
    """A library where f_k calls f_{k+1} eight times, 60 levels deep: 8^60 call sites."""
    depth = 60
    library = b"".join(
        _function(f"f{k}", [f"f{k + 1}"] * 8 if k + 1 < depth else []) for k in range(depth)
    )
    top = _node("x", "Placeholder") + _node(
        "call", "PartitionedCall", ("x",), _attr("f", field(10, field(1, b"f0")))
    )
    path = tmp_path / "model.pb"
    path.write_bytes(top + field(2, library))
    bounded_load(path).assert_refused("without an LSTM")


def test_millions_of_empty_nodes_are_refused_while_reading(tmp_path: Path) -> None:
    node = _node("n", "NoOp")
    path = tmp_path / "model.pb"
    path.write_bytes(node * 2_000_000)
    bounded_load(path).assert_refused("nodes")


def test_saved_model_with_special_and_hostile_side_files(tmp_path: Path) -> None:
    folder = tmp_path / "sm"
    shutil.copytree(TF / "keras2_saved" / "saved_model", folder)
    (folder / "keras_metadata.pb").unlink()
    os.mkfifo(folder / "keras_metadata.pb")  # a FIFO: skipped with a note, never opened
    out = bounded_load(folder)
    out.assert_bounded()
    assert out.kind == "model", out
    (folder / "keras_metadata.pb").unlink()
    deep = b"[" * 100_000 + b"]" * 100_000
    (folder / "keras_metadata.pb").write_bytes(field(1, field(3, b"root.layer-0") + field(5, deep)))
    out = bounded_load(folder)
    out.assert_bounded()
    assert out.kind == "model", out
    data = folder / "variables" / "variables.data-00000-of-00001"
    data.unlink()
    os.mkfifo(data)
    bounded_load(folder).assert_refused("not a regular file")


def test_big_static_rnn_style_graph_stays_within_memory(tmp_path: Path) -> None:
    """Tens of thousands of nodes with attrs (a static_rnn's unrolled steps): bounded."""
    nodes = [_node("x", "Placeholder")]
    attr = _attr("T", field(6, 1)) + _attr("_class", field(1, field(1, b"loc:@x")))
    for k in range(60_000):
        nodes.append(_node(f"rnn/cell/mul_{k}", "Mul", (f"rnn/cell/mul_{k - 1}", "x"), attr))
    path = tmp_path / "model.pb"
    path.write_bytes(b"".join(nodes))
    out = bounded_load(path)
    out.assert_refused("without an LSTM")


def test_unpacked_float_values_are_not_decoded_one_object_each(tmp_path: Path) -> None:
    """2 M float_val fields written one by one (TF packs them): refused after 4,096."""
    values = b"".join(varint(5 << 3 | 5) + struct.pack("<f", 0.5) for _ in range(2_000_000))
    dims = field(2, field(1, 9)) + field(2, field(1, 24))
    tensor = field(1, 1) + field(2, dims) + values
    graph = _node("rnn/basic_lstm_cell/kernel", "Const", attrs=_attr("value", field(8, tensor)))
    path = tmp_path / "model.pb"
    path.write_bytes(graph)
    bounded_load(path).assert_refused("unpacked")


def test_scalar_const_with_a_huge_value_list_is_not_expanded(tmp_path: Path) -> None:
    """A 'forget bias' scalar whose float_val holds 2 M values beside a real frozen cell."""
    graph = (TF / "basic_head" / "model.pb").read_bytes()
    graph += _const("rnn/basic_lstm_cell/Const_9", (), floats=2_000_000)
    path = tmp_path / "model.pb"
    path.write_bytes(graph)
    bounded_load(path).assert_bounded()


def test_checkpoint_state_file_pointing_outside_its_folder_is_refused(tmp_path: Path) -> None:
    """``model_checkpoint_path`` naming a checkpoint elsewhere (``/abs/other/model.ckpt``) is
    not followed out of the folder; the same name beside the state file is used instead."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _copy_checkpoint(elsewhere)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{elsewhere}/model.ckpt"\n')
    bounded_load(folder).assert_refused("outside its folder")
    (folder / "checkpoint").write_text('model_checkpoint_path: "../elsewhere/model.ckpt"\n')
    bounded_load(folder).assert_refused("outside its folder")
    _copy_checkpoint(folder)  # moved folders keep working: the name beside the state file
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{elsewhere}/model.ckpt"\n')
    out = bounded_load(folder)
    out.assert_bounded()
    assert out.kind == "model", out


def test_side_files_symlinked_out_of_the_folder_are_not_read(tmp_path: Path) -> None:
    """A data shard linked to a file outside the folder is refused; a .meta linked out is
    skipped (the checkpoint loads with TF's defaults and a note)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    prefix = _copy_checkpoint(folder)
    meta = folder / "model.ckpt.meta"
    meta.rename(outside / "model.ckpt.meta")
    meta.symlink_to(outside / "model.ckpt.meta")
    out = bounded_load(prefix)
    out.assert_bounded()
    assert out.kind == "model", out
    shard = folder / "model.ckpt.data-00000-of-00001"
    shard.rename(outside / shard.name)
    shard.symlink_to(outside / shard.name)
    bounded_load(prefix).assert_refused("outside")


@pytest.mark.parametrize(
    "name",
    ["basic_head/model.pb", "keras3_bidi_ave/model.pb", "static_head/ckpt/model.ckpt-1000.meta"],
)
def test_mutated_graphs_raise_only_load_error(tmp_path: Path, name: str) -> None:
    """Seeded byte flips, cuts and insertions in a frozen graph or a .meta: every load
    answers (a model or one LoadError, never another exception) in well under a second."""
    import random
    import time

    from lstmviz.io import LoadError, load_model

    rng = random.Random(name)
    src = TF / name
    original = src.read_bytes()
    for case in range(40):
        folder = tmp_path / str(case)
        shutil.copytree(src.parent, folder)
        data = bytearray(original)
        for _ in range(rng.choice([1, 3, 12])):
            i = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.5:
                data[i] = rng.randrange(256)
            elif roll < 0.8:
                del data[i : i + rng.randrange(1, 40)]
            else:
                data[i:i] = rng.randbytes(rng.randrange(1, 8))
        (folder / src.name).write_bytes(bytes(data))
        start = time.perf_counter()
        try:
            load_model(folder / src.name)
        except LoadError as exc:
            assert str(exc).isprintable() and "\n" not in str(exc)
        assert time.perf_counter() - start < 2.0
