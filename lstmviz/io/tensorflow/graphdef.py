"""A frozen TensorFlow GraphDef (``.pb``): the graph and its weights in one file.

``convert_variables_to_constants`` (TF1) turns every variable into a ``Const`` node of the same
name (``rnn/basic_lstm_cell/kernel``); ``convert_variables_to_constants_v2`` (TF2, Keras) names
it after the read (``model/lstm/Read/ReadVariableOp/resource``) and inlines the functions.
:class:`ConstBundle` offers those constants the way a checkpoint ``Bundle`` offers variables,
so TF1 cells are found by name and settings read from the graph exactly as for a checkpoint
with its ``.meta``; Keras layers, whose constants say nothing by name, are found by the gate
``Split`` they feed (``keras_graph``). GraphDef: node = 1 (NodeDef: name = 1, op = 2, attr =
5), library = 2; a ``Const``'s ``value`` attr holds a TensorProto {dtype = 1, tensor_shape =
2 {dim = 2 {size = 1}}, tensor_content = 4, float_val = 5, double_val = 6, half_val = 13}.
Every size is checked against the bytes present before anything is allocated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import LSTMModel
from lstmviz.io.convert import widen
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.assemble import Request, assemble
from lstmviz.io.tensorflow.files import read_limited
from lstmviz.io.tensorflow.graph import (
    MAX_META_BYTES,
    parse_graph_def,
    parse_nodes,
    read_graph_def,
)
from lstmviz.io.tensorflow.keras_graph import load_keras_graph
from lstmviz.io.tensorflow.nodes import Node, attr_tensor
from lstmviz.io.wire import protowire as pw

#: DataType → (NumPy dtype of tensor_content, repeated field, its dtype)
_DTYPES = {1: ("<f4", 5, "<f4"), 2: ("<f8", 6, "<f8"), 19: ("<f2", 13, ""), 14: ("V2", 0, "")}
_NAMES = {1: "float32", 2: "float64", 19: "float16", 14: "bfloat16"}
MAX_DIMS = 16
#: Elements a constant may claim beyond the values it stores (TF repeats the last value):
#: a fill of 4 M floats is 16 MB, the most a few bytes of file may cost.
MAX_FILLED = 1 << 22
_OP = re.compile(rb"[A-Za-z_][A-Za-z0-9_>]{0,127}")
_NAME = re.compile(rb"[\x21-\x7e]+")  # printable ASCII, no spaces
GRU_OPS = frozenset({"GRUBlockCell", "GRUBlockCellV2"})


def is_graph_def(head: bytes) -> bool:
    """Whether ``head`` starts a GraphDef: a first NodeDef whose name and op are text.

    A MetaGraphDef also starts with field 1, but its MetaInfoDef holds messages, not an op
    name; an ONNX ModelProto starts with a varint. Never raises.
    """
    try:
        if head[:1] != b"\x0a":
            return False
        _length, pos = pw.read_varint(head, 1)
        if head[pos : pos + 1] != b"\x0a":
            return False
        n, pos = pw.read_varint(head, pos + 1)
        name = head[pos : pos + n]
        if not 0 < n <= 1024 or len(name) < n or _NAME.fullmatch(name) is None:
            return False
        pos += n
        if head[pos : pos + 1] != b"\x12":
            return False
        n, pos = pw.read_varint(head, pos + 1)
        return _OP.fullmatch(head[pos : pos + n]) is not None and len(head) >= pos + n
    except (pw.ProtoError, IndexError):
        return False


@dataclass(frozen=True)
class ConstEntry:
    """A float constant of rank >= 1 holding its values (a frozen variable)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    tensor: memoryview

    @property
    def dtype_name(self) -> str:
        return _NAMES[self.dtype]


def _tensor(node: Node) -> tuple[int, tuple[int, ...], pw.Fields] | None:
    raw = node.attrs.get("value")
    if node.op != "Const" or raw is None:
        return None
    tensor = attr_tensor(raw)
    dims = [
        pw.get_signed(pw.parse(d), 1)
        for d in pw.get_message(tensor, 2).get(2, ())
        if isinstance(d, memoryview)
    ]
    return pw.get_int(tensor, 1), tuple(dims), tensor


def _stores_values(dtype: int, shape: tuple[int, ...], tensor: pw.Fields) -> bool:
    """Whether the constant stores all its values (a weight), not a fill (``zeros``)."""
    code, field, _ = _DTYPES[dtype]
    count = math.prod(shape)
    content = pw.get_bytes(tensor, 4)
    if content is not None and len(content):
        return True
    if not field or count <= 1:
        return count <= 1
    width = np.dtype(code).itemsize if dtype != 19 else 0
    stored, _ = pw.count_packed(tensor, field, width)
    return stored == count


class ConstBundle:
    """The weight constants of a frozen graph, read like a checkpoint ``Bundle``."""

    num_shards = 0

    def __init__(self, path: Path, nodes: list[Node]) -> None:
        self.index_path = path  # messages name the .pb
        self.prefix = str(path)
        self.entries: dict[str, ConstEntry] = {}
        for node in nodes:
            if node.op != "Const":
                continue
            try:
                found = _tensor(node)
            except pw.ProtoError as exc:
                raise LoadError(f"{path.name}: Const {node.name!r} is corrupt ({exc})") from exc
            if found is None or found[0] not in _DTYPES or not found[1]:
                continue
            dtype, shape, tensor = found
            if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
                raise LoadError(f"{path.name}: Const {node.name!r} has an invalid shape {shape}")
            if _stores_values(dtype, shape, tensor):
                self.entries[node.name] = ConstEntry(node.name, dtype, shape, node.attrs["value"])

    def read(self, name: str) -> npt.NDArray[np.floating]:
        """The constant's values (float16/bfloat16 widened), sizes checked before decoding."""
        entry = self.entries[name]
        where = f"{self.index_path.name}: Const {name!r}"
        tensor = attr_tensor(entry.tensor)
        code, field, field_dtype = _DTYPES[entry.dtype]
        count = math.prod(entry.shape)
        itemsize = np.dtype(code).itemsize
        content = pw.get_bytes(tensor, 4)
        if content is not None and len(content):
            if len(content) != count * itemsize:
                raise LoadError(
                    f"{where} has shape {entry.shape} ({count * itemsize:,} bytes) but "
                    f"{len(content):,} bytes stored"
                )
            flat = np.frombuffer(content, dtype=code)
        elif entry.dtype == 19:
            flat = pw.varints_array(tensor, 13).astype("<u2").view("<f2")
        elif field_dtype:
            flat = pw.fixed_array(tensor, field, field_dtype)
        else:
            flat = np.zeros(0, code)
        if flat.size != count:
            if flat.size > count or count > MAX_FILLED:
                raise LoadError(
                    f"{where} has shape {entry.shape} but stores {flat.size:,} values; "
                    "not a weight lstmviz can read"
                )
            flat = np.pad(flat, (0, count - flat.size), mode="edge" if flat.size else "constant")
        wide = widen(flat.reshape(entry.shape), name)  # a read-only view of the file's bytes
        return wide.astype(wide.dtype.newbyteorder("="), copy=False)


def _gru_scopes(nodes: list[Node]) -> list[str]:
    """Where the graph runs a GRU: a GRU op, or TF1 ``gru_cell`` / Keras ``gru`` scopes."""
    found = []
    for node in nodes:
        if "gru" not in node.name.lower() and node.op not in GRU_OPS:
            continue
        if "/while/" in node.name:  # the same cell again inside its loop
            continue
        parts = node.name.split("/")
        if node.op in GRU_OPS:
            found.append(node.name)
        elif any(p == "gru_cell" or re.fullmatch(r"gru(_\d+)?", p) for p in parts):
            cut = next(
                k for k, p in enumerate(parts) if p == "gru_cell" or re.fullmatch(r"gru(_\d+)?", p)
            )
            found.append("/".join(parts[: cut + 1]))
        if len(set(found)) >= 3:
            break
    return sorted(set(found))


def _refusal(path: Path, nodes: list[Node]) -> LoadError:
    gru = _gru_scopes(nodes)
    if gru:
        return LoadError(
            f"{path.name}: frozen TensorFlow GraphDef of a GRU ({', '.join(gru[:2])}) whose "
            "step lstmviz does not recognise (it reads tf.keras GRU steps and TF1 GRUCells); "
            "open its SavedModel, .keras/.h5 or checkpoint"
        )
    cudnn = sorted({n.op for n in nodes if n.op.startswith("CudnnRNN")})
    if cudnn:
        return LoadError(
            f"{path.name}: TensorFlow GraphDef running a cuDNN RNN op ({', '.join(cudnn)}) "
            "whose weights are one opaque buffer; lstmviz reads LSTM cells: save the model "
            "with CudnnCompatibleLSTMCell or a Keras LSTM"
        )
    lstm = next((n.name for n in nodes if "lstm" in n.name.lower()), None)
    if lstm is not None:
        scope = lstm.split("/while/")[0].rsplit("/", 1)[0] or lstm
        return LoadError(
            f"{path.name}: TensorFlow GraphDef with LSTM ops ({scope}) that match no cell "
            "lstmviz knows (TF1 kernel + bias, Keras kernel + recurrent_kernel split into 4 "
            "gates) or whose weights are not constants"
        )
    ops: dict[str, int] = {}
    for node in nodes:
        if node.op not in ("Const", "Identity", "NoOp", "Placeholder"):
            ops[node.op] = ops.get(node.op, 0) + 1
    common = ", ".join(op for op, _n in sorted(ops.items(), key=lambda kv: -kv[1])[:6])
    return LoadError(
        f"{path.name}: TensorFlow GraphDef ({len(nodes):,} nodes: {common or 'constants only'}) "
        "without an LSTM cell; lstmviz reads TF1 LSTM cells and Keras LSTM layers"
    )


def load_graph_def(
    path: Path,
    req: Request,
    data: bytes | memoryview | None = None,
    kind: str = "TensorFlow frozen GraphDef",
) -> LSTMModel:
    """The LSTM stack of a frozen GraphDef file (or of ``data``, a GraphDef's bytes, e.g. the
    graph of a SavedModel without variables: ``kind`` names the source)."""
    if data is None:
        data = read_limited(path, MAX_META_BYTES, "GraphDef")
    try:
        graph_def = parse_graph_def(data)
        nodes = parse_nodes(graph_def)
    except pw.ProtoError as exc:
        raise LoadError(f"{path.name}: not a readable TensorFlow GraphDef ({exc})") from exc
    bundle = ConstBundle(path, nodes)
    try:
        graph = read_graph_def(graph_def, "", frozenset(bundle.entries), nodes)
    except pw.ProtoError as exc:
        raise LoadError(f"{path.name}: not a readable TensorFlow GraphDef ({exc})") from exc
    graph.source = "the graph"
    req.kind, req.parts, req.graph_label = (
        kind,
        "weights as Const nodes",
        "",
    )
    req.graph_layers = lambda: load_keras_graph(bundle, graph, req)
    req.fallback = lambda: _raise(_refusal(path, nodes))
    return assemble(bundle, graph, req)


def _raise(exc: LoadError) -> LSTMModel:
    raise exc
