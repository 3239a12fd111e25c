"""Initial c/h values a TF1 graph gives its cell, when they can be read without running TF.

``tf1_context`` finds the tensor that feeds a cell's first state. Its value is known when it is
(through reads, ``Identity`` and the shape-only ops that copy rows to the batch, such as
``tf.tile(var, [batch, 1])``):

* a ``Const`` (its ``TensorProto`` decoded here, like ``tensor_util.MakeNdarray``: a short
  ``float_val`` repeats its last value);
* a ``PlaceholderWithDefault`` whose default is such a ``Const``: TF uses it unless fed;
* a variable stored in the checkpoint (a learned initial state ``[1, H]`` or ``[H]``).

The value must be one row (``(W,)``, ``(1, W)`` or all batch rows equal); else it stays zeros
and the note says the graph feeds its own state. Sizes are bounded: a hostile file falls back
to the note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmviz.core.model import Setting
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.nodes import MAX_WALK, PASS_OPS, VAR_OPS, Graph, Node, attr_tensor
from lstmviz.io.wire import protowire as pw

MAX_STATE_VALUES = 1 << 16  # elements of one initial-state tensor lstmviz reads
_SHAPE_OPS = frozenset({"Tile", "ExpandDims", "Reshape", "BroadcastTo", "Squeeze"})
_TENSOR_DTYPES = {1: ("<f4", 5), 2: ("<f8", 6), 19: ("<f2", 0)}  # FLOAT, DOUBLE, HALF


@dataclass
class StateSource:
    """The graph node feeding one initial c or h, and what lstmviz can know of its value."""

    name: str  # the feeding node, as shown in the notes
    kind: str = ""  # "default" (PlaceholderWithDefault), "const", "variable", "" = unknown
    value: np.ndarray | None = None  # Const value (default or direct)
    variable: str = ""  # checkpoint key of a variable

    @property
    def label(self) -> str:
        if self.kind == "default":
            return f"the default of {self.name}"
        if self.kind == "variable":
            return f"checkpoint variable {self.variable}"
        return f"Const {self.name}"


def const_array(node: Node) -> np.ndarray | None:
    """A float ``Const``'s value, or None (other dtype, malformed, or over the size bound)."""
    if node.op != "Const" or "value" not in node.attrs:
        return None
    try:
        tensor = attr_tensor(node.attrs["value"])
        shape = [
            pw.get_signed(pw.parse(d), 1)
            for d in pw.get_message(tensor, 2).get(2, ())
            if isinstance(d, memoryview)
        ]
        dtype = _TENSOR_DTYPES.get(pw.get_int(tensor, 1))
        size = math.prod(shape)
        if dtype is None or any(n < 0 for n in shape) or size > MAX_STATE_VALUES:
            return None
        flat = _flat_values(tensor, *dtype)
    except (pw.ProtoError, ValueError, OverflowError):
        return None
    if flat is None or flat.size > size:
        return None
    if flat.size == 0:
        flat = np.zeros(size, dtype=dtype[0])
    elif flat.size < size:
        flat = np.pad(flat, (0, size - flat.size), mode="edge")
    return flat.astype(np.float32).reshape(shape)


def _flat_values(tensor: pw.Fields, code: str, field: int) -> np.ndarray | None:
    """``tensor_content`` (raw little-endian) or the typed repeated field."""
    content = pw.get_bytes(tensor, 4)
    if content is not None and len(content):
        width = np.dtype(code).itemsize
        return np.frombuffer(content, dtype=code) if len(content) % width == 0 else None
    if not field:
        return None
    if pw.count_packed(tensor, field, np.dtype(code).itemsize)[0] > MAX_STATE_VALUES:
        return None
    return pw.fixed_array(tensor, field, code)


def _through(graph: Graph, node: Node) -> tuple[Graph, Node]:
    """Follow reads, identities and row-copying shape ops back from ``node`` (bounded)."""
    for _ in range(MAX_WALK):
        if (node.op not in PASS_OPS and node.op not in _SHAPE_OPS) or not node.inputs:
            break
        found = graph.resolve(node.inputs[0])
        if found is None:
            break
        graph, node = found
    return graph, node


def state_source(graph: Graph, node: Node) -> StateSource:
    """What feeds a cell's first c or h, from the node ``tf1_context`` stopped at."""
    graph, node = _through(graph, node)
    if node.op in VAR_OPS:
        return StateSource(node.name, "variable", variable=node.name)
    if node.op == "Const":
        value = const_array(node)
        return StateSource(node.name, "const" if value is not None else "", value)
    if node.op == "PlaceholderWithDefault" and node.inputs:
        found = graph.resolve(node.inputs[0])
        if found is not None:
            default = _through(*found)[1]
            value = const_array(default) if default.op == "Const" else None
            if value is not None:
                return StateSource(node.name, "default", value)
    return StateSource(node.name)


def _one_row(value: np.ndarray, width: int) -> np.ndarray | None:
    """``(W,)``, or the one row of ``(B, W)`` whose rows all agree; None otherwise."""
    if value.ndim == 1 and value.shape == (width,):
        return value
    if value.ndim == 2 and value.shape[1] == width and len(value) and np.all(value == value[0]):
        return value[0]
    return None


def read_state(bundle, source: StateSource, width: int) -> tuple[np.ndarray | None, str]:
    """The source's value as one ``(width,)`` row, or None and why not."""
    value = source.value
    if source.kind == "variable":
        entry = bundle.entries.get(source.variable)
        if entry is None:
            return None, f"{source.variable} is not in the checkpoint"
        if math.prod(entry.shape) > MAX_STATE_VALUES:
            return None, f"{source.variable} has shape {tuple(entry.shape)}"
        try:
            value = bundle.read(source.variable)
        except LoadError as exc:
            return None, str(exc)
    if value is None:
        return None, ""
    row = _one_row(np.asarray(value, dtype=np.float32), width)
    if row is None or not np.all(np.isfinite(row)):
        why = f"{source.label} has shape {tuple(value.shape)}, not one row of {width}"
        return None, why if row is None else f"{source.label} is not finite"
    return row, ""


@dataclass
class States:
    """Initial states of one direction read from the graph, and how to describe them."""

    h0: np.ndarray | None = None
    c0: np.ndarray | None = None
    read: tuple[str, ...] = ()  # labels of the sources whose values were used
    defaults: tuple[str, ...] = ()  # PlaceholderWithDefault names among them
    unknown: tuple[str, ...] = ()  # sources (with the reason, if any) left at zeros
    settings: tuple[Setting, ...] = ()


def direction_states(
    bundle, h_src: list[StateSource], c_src: list[StateSource], H: int, P: int
) -> States:
    """h0 ``(P,)`` and c0 ``(H,)`` from a cell's sources; a single source each, else unknown."""
    out: dict[str, np.ndarray | None] = {"h0": None, "c0": None}
    read, defaults, unknown, settings = [], [], [], []
    for key, sources, width in (("h0", h_src, P), ("c0", c_src, H)):
        if not sources:
            continue
        if len(sources) > 1:
            unknown.extend(s.name for s in sources)
            continue
        src = sources[0]
        row, why = read_state(bundle, src, width) if src.kind else (None, "")
        if row is None:
            unknown.append(f"{src.name} ({why})" if why else src.name)
            continue
        out[key] = row
        read.append(src.label)
        defaults += [src.name] if src.kind == "default" else []
        settings.append(
            Setting(
                key,
                f"read from {src.label}",
                assumed=False,
                note="lstmviz.run starts from it unless h0=/c0= are passed",
            )
        )
    found = (tuple(read), tuple(defaults), tuple(unknown), tuple(settings))
    return States(out["h0"], out["c0"], *found)


def const_int_values(node: Node, limit: int = 64) -> list[int] | None:
    """A small int32/int64 ``Const``'s values (a slice's begin, a shape), or None."""
    if node.op != "Const" or "value" not in node.attrs:
        return None
    try:
        tensor = attr_tensor(node.attrs["value"])
        dtype = pw.get_int(tensor, 1)
        code, field = {3: ("<i4", 7), 9: ("<i8", 10)}.get(dtype, ("", 0))
        if not code:
            return None
        content = pw.get_bytes(tensor, 4)
        if content is not None and len(content):
            if len(content) > limit * 8 or len(content) % np.dtype(code).itemsize:
                return None
            return [int(v) for v in np.frombuffer(content, dtype=code)]
        if pw.count_packed(tensor, field)[0] > limit:
            return None
        values = pw.get_varints(tensor, field)
        return [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    except pw.ProtoError:
        return None
