"""Second red-team round (issue 18), TensorFlow checkpoints: index entries that share bytes.

A V2 checkpoint's ``.index`` gives each variable a (shard, offset, size); nothing stops every
cell of a MultiRNNCell from naming the same region. The index is written here by a minimal
LevelDB table writer (one uncompressed data block, as TensorFlow writes small indexes).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load
from test_tf1_bad_files import field, varint

import lstmviz
from lstmviz.io.wire.crc32c import crc32c


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block: entries without prefix sharing, one restart point."""
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)


def _table(entries: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = varint(len(out)) + varint(len(block))
        out.extend(block + b"\x00" + struct.pack("<I", _mask(crc32c(block + b"\x00"))))
        return handle

    entries = sorted(entries)
    data = put(_block(entries))
    meta = put(_block([]))
    index = put(_block([(entries[-1][0], data)]))
    return bytes(out) + (meta + index).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)


def write(prefix: str, tensors: dict[str, np.ndarray], aliases: list[tuple[str, str]]) -> None:
    """A V2 checkpoint of float32 ``tensors``; each ``(name, target)`` of ``aliases`` is an
    index entry for ``name`` that points at ``target``'s bytes."""
    data, entries, where = bytearray(), [], {}
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, "<f4").tobytes()
        shape = b"".join(field(2, field(1, d)) for d in arr.shape)
        where[name] = (
            field(1, 1)
            + field(2, shape)
            + field(3, 0)
            + field(4, len(data))
            + field(5, len(raw))
            + varint(6 << 3 | 5)
            + struct.pack("<I", _mask(crc32c(raw)))
        )
        data += raw
    entries = [(n.encode(), e) for n, e in where.items()]
    entries += [(n.encode(), where[target]) for n, target in aliases]
    entries.append((b"", field(1, 1) + field(2, 0) + field(3, field(1, 1))))
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))
    Path(prefix + ".index").write_bytes(_table(entries))


def _aliased(folder: Path, H: int, cells: int) -> np.ndarray:
    """A MultiRNNCell checkpoint whose cells 1.. name cell 0's kernel and bias bytes."""
    folder.mkdir()
    kernel = (np.random.default_rng(0).normal(size=(2 * H, 4 * H)) * 0.1).astype(np.float32)
    base = "rnn/multi_rnn_cell/cell_0/lstm_cell/"
    tensors = {base + "kernel": kernel, base + "bias": np.zeros(4 * H, np.float32)}
    aliases = [
        (f"rnn/multi_rnn_cell/cell_{k}/lstm_cell/{w}", base + w)
        for k in range(1, cells)
        for w in ("kernel", "bias")
    ]
    write(str(folder / "model.ckpt"), tensors, aliases)
    return kernel


def test_cells_naming_one_kernel_are_refused_past_the_shard_size(tmp_path: Path) -> None:
    # before: 30 cells naming one 32 MB kernel: 806 MB, 2.7 s (MemoryError under the cap);
    # 20,000 cells of H=64 (2.8 MB index): 829 MB, 3.7 s
    for name, H, cells in (("big", 512, 30), ("many", 64, 20_000)):
        _aliased(tmp_path / name, H, cells)
        out = bounded_load(tmp_path / name / "model.ckpt.index")
        out.assert_refused("model.ckpt.index", "pointing at the same bytes")


def test_a_few_cells_sharing_bytes_still_load_with_those_bytes(tmp_path: Path) -> None:
    kernel = _aliased(tmp_path / "ok", 8, 3)
    model = lstmviz.load_model(tmp_path / "ok" / "model.ckpt")
    first = model.layers[0].directions[0]
    for layer in model.layers[1:]:
        np.testing.assert_array_equal(layer.directions[0].W_x, first.W_x)
    # TF1 LSTMCell: kernel rows [x; h], gate columns i, j (g), f, o
    i, j, f, o = np.split(kernel, 4, axis=1)
    np.testing.assert_array_equal(first.W_x, np.concatenate([i, f, j, o], axis=1)[:8].T)


SAVED = Path(__file__).parents[1] / "fixtures" / "tf" / "keras2_saved" / "saved_model"


@pytest.mark.parametrize("link", ["folder", "index", "shard"])
def test_a_saved_model_whose_variables_are_linked_elsewhere_is_refused(
    tmp_path: Path, link: str
) -> None:
    # before: variables/ (or variables/variables.index) linked to another model's folder
    # loaded that model's weights, read from outside the folder the user picked
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(SAVED / "variables", elsewhere)
    model = tmp_path / "saved_model"
    shutil.copytree(SAVED, model)
    name = {"folder": "", "index": "variables.index", "shard": "variables.data-00000-of-00001"}
    target = model / "variables" / name[link]
    shutil.rmtree(target) if link == "folder" else target.unlink()
    target.symlink_to(elsewhere / name[link])
    needle = "checkpoint data shard" if link == "shard" else "checkpoint index"
    bounded_load(model).assert_refused("outside the model's folder", needle)
    # the index itself, picked through the link, is the user's choice and opens
    if link == "folder":
        out = bounded_load(model / "variables" / "variables.index")
        assert out.kind == "model", out
    reference = lstmviz.load_model(SAVED)
    shutil.rmtree(model)
    shutil.copytree(SAVED, model)
    again = lstmviz.load_model(model)
    np.testing.assert_array_equal(
        again.layers[0].directions[0].W_x, reference.layers[0].directions[0].W_x
    )
