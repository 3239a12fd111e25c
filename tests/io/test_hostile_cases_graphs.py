"""Hostile TF checkpoints and ONNX models (see test_hostile_formats.py): entries declaring
terabytes, huge or deep .meta graphs, 30,000 extras, nested If graphs, 280,000 dims."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from test_hostile_case import FIXTURES, Case
from test_tf1_bad_files import field, varint

ONNX_BASE = FIXTURES / "onnx" / "peepholes.onnx"


# --- TensorFlow checkpoint -------------------------------------------------------------------


def _tf_writer():
    """The table/bundle writer of the TF reader's own tests (one writer, not two)."""
    import test_tf1_bad_files as tf

    return tf


def tf_bundle(edit: Callable[[dict[str, np.ndarray]], dict] | None = None, **kw):
    def make(folder: Path) -> Path:
        tf = _tf_writer()
        arrays = tf.basic_arrays()
        extra = edit(arrays) if edit else {}
        return tf.write_bundle(folder / "ckpt", arrays, **extra, **kw)

    return make


def _tf_entry(shape: tuple[int, ...], size: int, offset: int = 0, dtype: int = 1) -> bytes:
    tf = _tf_writer()
    dims = b"".join(tf.field(2, tf.field(1, d)) for d in shape)
    return (
        tf.field(1, dtype)
        + tf.field(2, dims)
        + tf.field(3, 0)
        + tf.field(4, offset)
        + tf.field(5, size)
    )


def tf_huge_entry(arrays: dict) -> dict:
    return {
        "entry_override": {"rnn/basic_lstm_cell/kernel": _tf_entry((1 << 20, 1 << 20), 1 << 42)}
    }


def tf_many_extras(arrays: dict) -> dict:
    for k in range(30_000):
        arrays[f"extra/block{k % 300}/var{k}/Adam"] = np.zeros(1, np.float32)
    return {}


def tf_aliased(arrays: dict) -> dict:
    """The bias entry points into the kernel's bytes (the same offset)."""
    n = arrays["rnn/basic_lstm_cell/bias"].size
    return {"entry_override": {"rnn/basic_lstm_cell/bias": _tf_entry((n,), 4 * n, offset=0)}}


def tf_duplicate_key(folder: Path) -> Path:
    """The kernel's key twice in the sorted table, the second copy pointing at other bytes."""
    tf = _tf_writer()
    arrays = tf.basic_arrays()
    index = tf.write_bundle(folder / "ckpt", arrays)
    data = index.with_name("model.ckpt.data-00000-of-00001")
    blob = data.read_bytes()
    kernel = arrays["rnn/basic_lstm_cell/kernel"]
    extra = (kernel + 1.0).astype(np.float32).tobytes()
    data.write_bytes(blob + extra)
    entries = []
    offset = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        entries.append((name.encode(), _tf_entry(a.shape, a.nbytes, offset)))
        if name == "rnn/basic_lstm_cell/kernel":
            entries.append((name.encode(), _tf_entry(a.shape, a.nbytes, len(blob))))
        offset += a.nbytes
    header = tf.field(1, 1) + tf.field(3, tf.field(1, 1))
    index.write_bytes(tf.write_table([(b"", header), *entries]))
    return index


def tf_huge_meta(folder: Path) -> Path:
    """A 400 MB (sparse) .meta beside a good checkpoint: read whole, it busts the budget."""
    index = tf_bundle()(folder)
    with open(index.with_name("model.ckpt.meta"), "wb") as fh:
        fh.write(b"\x0a\xff\xff\xff\x7f")  # MetaGraphDef.meta_info_def claiming 268 MB
        fh.truncate(400 << 20)
    return index


def tf_deep_meta(folder: Path) -> Path:
    """A .meta whose graph_def nests messages 100,000 deep."""
    index = tf_bundle()(folder)
    tf = _tf_writer()
    inner = b""
    for _ in range(100_000):
        inner = b"\x0a" + tf.varint(len(inner)) + inner
    index.with_name("model.ckpt.meta").write_bytes(b"\x12" + tf.varint(len(inner)) + inner)
    return index


TF_CASES = {
    "tf: a kernel entry declaring 4 TB": Case(
        "size", "TensorFlow 1 checkpoint", tf_bundle(tf_huge_entry)
    ),
    "tf: a 400 MB .meta beside the index": Case(
        "size", "TensorFlow 1 checkpoint", tf_huge_meta, "bounded"
    ),
    "tf: a .meta nested 100,000 deep": Case(
        "depth", "TensorFlow 1 checkpoint", tf_deep_meta, "bounded"
    ),
    "tf: an LSTM among 30,000 extras": Case(
        "many", "TensorFlow 1 checkpoint", tf_bundle(tf_many_extras), "bounded"
    ),
    "tf: the bias on the kernel's bytes": Case(
        "aliasing", "TensorFlow 1 checkpoint", tf_bundle(tf_aliased), "bounded"
    ),
    "tf: a key twice in the index": Case(
        "duplicates", "TensorFlow 1 checkpoint", tf_duplicate_key, "bounded"
    ),
}


# --- ONNX ------------------------------------------------------------------------------------


def onnx_nested_if(folder: Path) -> Path:
    """If nodes nested 3,000 deep through their then_branch graphs (written by hand: onnx's
    own serializer refuses such depth)."""
    graph = field(1, field(4, b"LSTM"))  # innermost: a graph with one LSTM node and no inputs
    for _ in range(3_000):
        attr = field(1, b"then_branch") + field(6, graph) + varint(20 << 3) + varint(5)
        node = field(4, b"If") + field(5, attr)
        graph = field(1, node)
    model = varint(1 << 3) + varint(8) + field(8, field(1, b"") + varint(2 << 3) + varint(17))
    path = folder / "m.onnx"
    path.write_bytes(model + field(7, graph))
    return path


def onnx_edit(edit: Callable) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import onnx

        model = onnx.load(ONNX_BASE)
        edit(model.graph)
        path = folder / "m.onnx"
        onnx.save_model(model, path)
        return path

    return make


def _onnx_w(graph, **fields) -> None:
    from onnx import TensorProto

    kept = [t for t in graph.initializer if t.name != "W"]
    del graph.initializer[:]
    graph.initializer.extend([*kept, TensorProto(name="W", data_type=TensorProto.FLOAT, **fields)])


def _onnx_many_nodes(graph) -> None:
    from onnx import helper

    nodes = [helper.make_node("Identity", [f"free{k}"], [f"free{k}_out"]) for k in range(20_000)]
    graph.node.extend(nodes)


def _onnx_duplicate_w(graph) -> None:
    from onnx import numpy_helper

    w = next(t for t in graph.initializer if t.name == "W")
    other = numpy_helper.to_array(w) + 1.0
    graph.initializer.append(numpy_helper.from_array(other.astype(np.float32), "W"))


ONNX_CASES = {
    "onnx: If nested 3,000 deep": Case("depth", "ONNX", onnx_nested_if),
    "onnx: W declaring 4 TB without data": Case(
        "size", "ONNX", onnx_edit(lambda g: _onnx_w(g, dims=[1, 1 << 20, 1 << 20]))
    ),
    "onnx: W with 280,000 dims (an 840,067-character list)": Case(
        "size", "ONNX", onnx_edit(lambda g: _onnx_w(g, dims=[1] * 280_000))
    ),
    "onnx: an LSTM among 20,000 nodes": Case(
        "many", "ONNX", onnx_edit(_onnx_many_nodes), "bounded"
    ),
    "onnx: W given twice": Case("duplicates", "ONNX", onnx_edit(_onnx_duplicate_w), "bounded"),
}
