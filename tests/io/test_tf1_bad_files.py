"""Every broken TF1 checkpoint must raise one-line LoadError, never anything else, never hang.

Most cases are mutated copies of the TensorFlow-made ``basic`` fixture. A few need a checkpoint
TensorFlow would not write (snappy blocks, absurd shapes, garbage entries with valid CRCs,
float16/bfloat16 weights, many data blocks): ``write_bundle`` below builds those following
tensorflow/core/lib/io/table_builder.cc and tensor_bundle.cc.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lstmviz.core.compute import run
from lstmviz.io import LoadError, load_model
from lstmviz.io.wire.crc32c import crc32c, mask
from lstmviz.io.wire.sstable import TABLE_MAGIC

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"
BASIC = ("model.ckpt.index", "model.ckpt.data-00000-of-00001", "model.ckpt.meta", "checkpoint")


# --- a minimal table + bundle writer -------------------------------------------------------


def varint(n: int) -> bytes:
    """A protobuf varint; a negative int64 is written as its 64-bit two's complement."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def block(entries: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for n, (key, value) in enumerate(entries):
        shared = 0
        if n % restart_every:
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        prev = key
    restarts = restarts or [0]
    return (
        bytes(out)
        + b"".join(struct.pack("<I", r) for r in restarts)
        + struct.pack("<I", len(restarts))
    )


def write_table(
    entries: list[tuple[bytes, bytes]], per_block: int = 2, compression: int = 0
) -> bytes:
    buf = bytearray()

    def put(contents: bytes) -> bytes:
        handle = varint(len(buf)) + varint(len(contents))
        kind = bytes([compression])
        buf.extend(contents + kind + struct.pack("<I", mask(crc32c(contents + kind))))
        return handle

    index = []
    for k in range(0, len(entries), per_block):
        chunk = entries[k : k + per_block]
        index.append((chunk[-1][0], put(block(chunk))))
    meta_handle = put(block([]))
    index_handle = put(block(index, restart_every=1))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(buf) + footer


def write_bundle(
    folder: Path,
    tensors: dict[str, np.ndarray],
    *,
    dtype_codes: dict[str, int] | None = None,
    entry_override: dict[str, bytes] | None = None,
    compression: int = 0,
    shards: int = 1,
    header: bytes | None = None,
) -> Path:
    """Write ``folder/model.ckpt.index`` and its shards (tensors dealt round-robin)."""
    folder.mkdir(parents=True, exist_ok=True)
    datas, entries = [bytearray() for _ in range(shards)], []
    codes = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("float16"): 19}
    for n, name in enumerate(sorted(tensors)):
        shard = n % shards
        data = datas[shard]
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.tobytes()
        code = (dtype_codes or {}).get(name, codes.get(arr.dtype, 1))
        shape = b"".join(field(2, field(1, d)) for d in arr.shape)
        entry = field(1, code) + field(2, shape) + field(3, shard) + field(4, len(data))
        entry += field(5, len(raw))
        entry += b"\x35" + struct.pack("<I", mask(crc32c(raw)))  # field 6, fixed32
        entries.append((name.encode(), (entry_override or {}).get(name, entry)))
        data += raw
    if header is None:
        header = field(1, shards) + field(3, field(1, 1))
    table = write_table([(b"", header), *entries], compression=compression)
    (folder / "model.ckpt.index").write_bytes(table)
    for k, data in enumerate(datas):
        (folder / f"model.ckpt.data-{k:05d}-of-{shards:05d}").write_bytes(bytes(data))
    return folder / "model.ckpt.index"


def basic_arrays() -> dict[str, np.ndarray]:
    model = load_model(FIXTURES / "basic" / "model.ckpt.index", forget_bias=0.0)
    w = model.layers[0].directions[0]
    # Back to TF's layout: blocks i, j, f, o; kernel [D + H, 4H].
    perm = [0, 2, 1, 3]
    H = w.hidden_size
    kernel = np.concatenate([w.W_x, w.W_h], axis=1)
    kernel = np.concatenate([kernel[p * H : (p + 1) * H] for p in perm]).T
    bias = np.concatenate([w.b[p * H : (p + 1) * H] for p in perm])
    return {
        "rnn/basic_lstm_cell/kernel": kernel.astype(np.float32),
        "rnn/basic_lstm_cell/bias": bias.astype(np.float32),
        "global_step": np.array(3, dtype=np.float32),
    }


# --- good files from the writer --------------------------------------------------------------


def test_writer_bundle_with_many_blocks_and_shared_prefixes_loads(tmp_path: Path) -> None:
    arrays = basic_arrays()
    arrays.update(
        {f"rnn/basic_lstm_cell/kernel/Adam_{k}": np.zeros(3, np.float32) for k in range(9)}
    )
    index = write_bundle(tmp_path, arrays)
    exp = np.load(FIXTURES / "basic" / "expected.npz")
    model = load_model(index, forget_bias=0.5)
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=1e-5)


def test_tensors_are_read_from_their_own_shard(tmp_path: Path) -> None:
    index = write_bundle(tmp_path, basic_arrays(), shards=3)
    assert len(list(tmp_path.glob("model.ckpt.data-*-of-00003"))) == 3
    model = load_model(index, forget_bias=0.5)
    exp = np.load(FIXTURES / "basic" / "expected.npz")
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=1e-5)
    assert "3 data shards" in model.source_format
    (tmp_path / "model.ckpt.data-00001-of-00003").unlink()
    with pytest.raises(LoadError, match=r"model\.ckpt\.data-00001-of-00003 is missing"):
        load_model(index)


def test_tf2_object_checkpoint_without_an_lstm_says_what_it_holds(tmp_path: Path) -> None:
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    arrays = {f"model/dense/kernel{suffix}": np.zeros((3, 8), np.float32)}
    arrays[f"model/dense/bias{suffix}"] = np.zeros(8, np.float32)
    with pytest.raises(LoadError, match="TF2 object-based checkpoint without an LSTM") as info:
        load_model(write_bundle(tmp_path, arrays))
    assert "model/dense (Dense)" in str(info.value)


def test_folder_without_state_file_uses_the_newest_index(tmp_path: Path) -> None:
    old = write_bundle(tmp_path / "old", {"x/lstm_cell/kernel": np.zeros((5, 8), np.float32)})
    for f in old.parent.iterdir():
        shutil.move(f, tmp_path / f.name.replace("model.ckpt", "old.ckpt"))
    for name in BASIC[:2]:
        shutil.copy(FIXTURES / "basic" / name, tmp_path / name)
    os.utime(tmp_path / "old.ckpt.index", (1, 1))
    model = load_model(tmp_path)
    assert model.layers[0].name == "rnn/basic_lstm_cell"


def test_state_file_with_an_absolute_path_from_another_machine(tmp_path: Path) -> None:
    _copy_basic(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/run7/model.ckpt"\n')
    assert load_model(tmp_path / "checkpoint").layers[0].hidden_size == 6


@pytest.mark.parametrize(("code", "narrow"), [(19, "float16"), (14, "bfloat16")])
def test_half_precision_weights_are_widened(tmp_path: Path, code: int, narrow: str) -> None:
    arrays = basic_arrays()
    names = ("rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias")
    if narrow == "float16":
        stored = {n: arrays[n].astype(np.float16) for n in names}
        widened = {n: stored[n].astype(np.float32) for n in names}
    else:
        bits = {n: (arrays[n].view(np.uint32) >> 16).astype(np.uint16) for n in names}
        stored = bits
        widened = {n: (bits[n].astype(np.uint32) << 16).view(np.float32) for n in names}
    index = write_bundle(tmp_path, stored, dtype_codes=dict.fromkeys(names, code))
    w = load_model(index, forget_bias=0.0).layers[0].directions[0]
    D = 3
    np.testing.assert_array_equal(w.W_x[:6], widened[names[0]][:D, :6].T)
    assert f"{narrow} widened to float32" in w.provenance.transforms


# --- the bad-files table ---------------------------------------------------------------------


def _copy_basic(tmp_path: Path) -> Path:
    for name in BASIC:
        shutil.copy(FIXTURES / "basic" / name, tmp_path / name)
    return tmp_path


def _edit(name: str, fn: Callable[[bytearray], bytes | bytearray]) -> Callable[[Path], Path]:
    def mutate(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(bytes(fn(bytearray(path.read_bytes()))))
        return folder / "model.ckpt.index"

    return mutate


def _flip(offset: int) -> Callable[[bytearray], bytearray]:
    def fn(b: bytearray) -> bytearray:
        b[offset] ^= 0x5A
        return b

    return fn


def _delete(name: str, pick: str) -> Callable[[Path], Path]:
    def mutate(folder: Path) -> Path:
        (folder / name).unlink()
        return folder / pick

    return mutate


def _write_text(name: str, text: str) -> Callable[[Path], Path]:
    def mutate(folder: Path) -> Path:
        (folder / name).write_text(text)
        return folder / name

    return mutate


def _footer_varint_overflow(b: bytearray) -> bytearray:
    b[-48:-8] = b"\xff" * 40  # a varint that never ends within 10 bytes
    return b


def _footer_index_handle(b: bytearray) -> bytearray:
    footer = b[-48:]
    bad = varint(0) + varint(5) + varint(10_000) + varint(50)
    b[-48:] = bad.ljust(40, b"\x00") + footer[40:]
    return b


DATA = "model.ckpt.data-00000-of-00001"
CASES = {
    "index truncated to 30 bytes": (_edit("model.ckpt.index", lambda b: b[:30]), "48-byte"),
    "index tail cut": (_edit("model.ckpt.index", lambda b: b[:-10]), None),
    "wrong magic": (_edit("model.ckpt.index", _flip(-1)), "magic"),
    "index data block CRC": (_edit("model.ckpt.index", _flip(10)), "checksum mismatch"),
    "index handle past end": (_edit("model.ckpt.index", _footer_index_handle), "outside"),
    "footer varint overflows": (_edit("model.ckpt.index", _footer_varint_overflow), "varint"),
    "shard truncated": (_edit(DATA, lambda b: b[:100]), "past the end"),
    "tensor CRC mismatch": (_edit(DATA, _flip(20)), "checksum mismatch"),
    "missing shard": (_delete(DATA, "model.ckpt.index"), "missing"),
    "data without index": (_delete("model.ckpt.index", DATA), "without its index"),
    "meta picked is garbage": (
        _edit("model.ckpt.meta", lambda b: b"\x12\xff\xff" + b[:50]),
        "MetaGraphDef",
    ),
    "checkpoint points nowhere": (
        _write_text("checkpoint", 'model_checkpoint_path: "gone"\n'),
        "gone",
    ),
    "checkpoint without path": (
        _write_text("checkpoint", "model_checkpoint_path\n"),
        "no model_checkpoint_path",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_table(tmp_path: Path, case: str) -> None:
    mutate, fragment = CASES[case]
    if case == "meta picked is garbage":
        _copy_basic(tmp_path)
        mutate(tmp_path)
        target = tmp_path / "model.ckpt.meta"
    else:
        target = mutate(_copy_basic(tmp_path))
    with pytest.raises(LoadError) as info:
        load_model(target)
    message = str(info.value)
    assert "\n" not in message
    if fragment:
        assert fragment in message, message


def test_garbage_sibling_meta_is_a_note_not_an_error(tmp_path: Path) -> None:
    _copy_basic(tmp_path)
    (tmp_path / "model.ckpt.meta").write_bytes(b"\x12\xff\xff garbage")
    model = load_model(tmp_path / "model.ckpt.index")
    assert any("model.ckpt.meta is unreadable" in n for n in model.notes)
    assert model.layers[0].directions[0].provenance.setting("forget_bias").assumed


WRITER_CASES = {
    "snappy block": (dict(compression=1), "snappy-compressed"),
    "unknown compression": (dict(compression=7), "compression type 7"),
    "absurd shape": (
        dict(
            entry_override={
                "rnn/basic_lstm_cell/bias": field(1, 1)
                + field(2, field(2, field(1, 1 << 40)))
                + field(5, 96)
            }
        ),
        "shape",
    ),
    "negative offset": (
        dict(
            entry_override={
                "rnn/basic_lstm_cell/bias": field(1, 1)
                + field(2, field(2, field(1, 24)))
                + field(4, (1 << 64) - 8)
                + field(5, 96)
            }
        ),
        "past the",
    ),
    "garbage entry": (
        dict(entry_override={"rnn/basic_lstm_cell/bias": b"\x0a\xff\x01"}),
        "corrupt checkpoint entry",
    ),
    "int weights": (dict(dtype_codes={"rnn/basic_lstm_cell/bias": 3}), "floating point"),
    "string weights": (
        dict(dtype_codes={"rnn/basic_lstm_cell/bias": 7}),
        "string; recurrent weights must be floating point",
    ),
    "overlong varint in entry": (
        dict(entry_override={"rnn/basic_lstm_cell/bias": b"\x08" + b"\xff" * 10 + b"\x01"}),
        "corrupt checkpoint entry",
    ),
    "entry past the data file": (
        dict(
            entry_override={
                "rnn/basic_lstm_cell/bias": field(1, 1)
                + field(2, field(2, field(1, 24)))
                + field(4, 10_000)
                + field(5, 96)
            }
        ),
        "past the end",
    ),
    "1 TB tensor claimed": (  # shape and size agree; must fail before allocating anything
        dict(
            entry_override={
                "rnn/basic_lstm_cell/kernel": field(1, 1)
                + field(2, field(2, field(1, 1 << 34)) + field(2, field(1, 24)))
                + field(5, 96 << 34)
            }
        ),
        "past the end",
    ),
    "shard id out of range": (
        dict(
            entry_override={
                "rnn/basic_lstm_cell/bias": field(1, 1)
                + field(2, field(2, field(1, 24)))
                + field(3, 5)
                + field(5, 96)
            }
        ),
        "lives in shard 5",
    ),
    "header claims no shards": (dict(header=field(1, 0)), "0 data shards"),
    "header claims a V1 table": (dict(header=field(1, b"\x0a\x00")), "V1 checkpoint"),
}


@pytest.mark.parametrize("case", sorted(WRITER_CASES))
def test_bad_written_bundles(tmp_path: Path, case: str) -> None:
    kwargs, fragment = WRITER_CASES[case]
    index = write_bundle(tmp_path, basic_arrays(), **kwargs)
    with pytest.raises(LoadError, match=fragment) as info:
        load_model(index)
    assert "\n" not in str(info.value)


def test_random_corruption_only_ever_raises_load_error(tmp_path: Path) -> None:
    """Every truncation of the index and a few hundred random byte edits of both files."""
    original = (FIXTURES / "basic" / "model.ckpt.index").read_bytes()
    data = (FIXTURES / "basic" / DATA).read_bytes()
    rng = np.random.default_rng(0)
    shutil.copy(FIXTURES / "basic" / DATA, tmp_path / DATA)
    index = tmp_path / "model.ckpt.index"
    variants = [original[:n] for n in range(1, len(original))]
    for _ in range(300):
        b = bytearray(original)
        for pos in rng.integers(0, len(b), size=rng.integers(1, 4)):
            b[pos] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    start = time.perf_counter()
    outcomes = {"loaded": 0, "error": 0}
    for variant in variants:
        index.write_bytes(variant)
        try:
            load_model(index)
            outcomes["loaded"] += 1
        except LoadError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > len(original) - 2  # every truncation fails
    assert time.perf_counter() - start < 20
    (tmp_path / DATA).write_bytes(data[: len(data) // 2])
    index.write_bytes(original)
    with pytest.raises(LoadError):
        load_model(index)


def test_keras_cells_are_read_in_keras_layout_and_grus_are_named(tmp_path: Path) -> None:
    """A Keras LSTMCell saved by a TF1 Saver has kernel [D, 4H] + recurrent_kernel: reading its
    kernel as a TF1 [D + H, 4H] kernel would silently give wrong weights."""
    rng = np.random.default_rng(3)
    arrays = {
        "lstm/lstm_cell/kernel": rng.normal(size=(12, 16)).astype(np.float32),
        "lstm/lstm_cell/recurrent_kernel": rng.normal(size=(4, 16)).astype(np.float32),
        "lstm/lstm_cell/bias": rng.normal(size=16).astype(np.float32),
        "rnn/gru_cell/gates/kernel": np.zeros((5, 6), np.float32),
        "rnn/gru_cell/gates/bias": np.zeros(6, np.float32),
    }
    model = load_model(write_bundle(tmp_path, arrays))
    (layer,) = model.layers
    w = layer.directions[0]
    np.testing.assert_array_equal(w.W_x, arrays["lstm/lstm_cell/kernel"].T)  # i,f,c,o as stored
    np.testing.assert_array_equal(w.W_h, arrays["lstm/lstm_cell/recurrent_kernel"].T)
    np.testing.assert_array_equal(w.b, arrays["lstm/lstm_cell/bias"])  # no runtime forget bias
    assert layer.name == "lstm" and w.provenance.setting("recurrent_activation").assumed
    assert any("hard_sigmoid" in note for note in model.notes)  # tf.compat.v1 Keras default
    assert "rnn/gru_cell/gates" in {info.name for info in model.all_layers}


def test_corrupt_sibling_meta_never_breaks_loading(tmp_path: Path) -> None:
    """A damaged .meta next to a good checkpoint only costs the graph settings."""
    _copy_basic(tmp_path)
    meta = tmp_path / "model.ckpt.meta"
    original = meta.read_bytes()
    rng = np.random.default_rng(1)
    for _ in range(40):
        b = bytearray(original)
        for pos in rng.integers(0, len(b), size=3):
            b[pos] = int(rng.integers(0, 256))
        meta.write_bytes(bytes(b[: int(rng.integers(len(b) // 2, len(b) + 1))]))
        model = load_model(tmp_path / "model.ckpt.index")
        assert model.layers[0].hidden_size == 6
