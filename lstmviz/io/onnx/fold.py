"""Values known before run time, and which LSTM feeds which, in an ONNX graph.

Exporters do not always hand an LSTM node its weights as initializers: torch's opset-7
exporter reorders the gate blocks with Slice + Concat + Unsqueeze, others wrap them in
Identity, Transpose, Reshape or Cast. ``Folder.value`` evaluates such a chain with NumPy over
a fixed set of pure layout operators (nothing else is ever evaluated), with bounded depth and
size, and otherwise names the node or graph input the value depends on. ``chains`` follows
each LSTM's X back through layout-only operators to the LSTM whose Y it is, so stacked layers
are run together and LSTMs separated by other computation are told apart (``choose_stack``);
an embedding lookup (``Gather``) found the same way in front of the first LSTM gives the
model its token table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstmviz.core.model import freeze
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.onnx.proto import Graph, Node, TensorInfo, tensor_array

MAX_DEPTH = 32
#: A Concat may output at most this many elements beyond twice what was read from the
#: file, so a chain of Concat(x, x) nodes cannot build a memory bomb out of a small tensor.
FOLD_SLACK = 1 << 22
#: Operators that only move or relabel data: an LSTM's Y reaches the next X through these.
LAYOUT_OPS = frozenset(
    {"Identity", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Flatten", "Cast", "Dropout"}
)


class NotConstant(Exception):
    """The value depends on something only known at run time; ``reason`` says what."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ints(a: np.ndarray | list[int]) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def _axes(node: Node, inputs: list[np.ndarray | None], k: int) -> list[int] | None:
    """``axes`` from the attribute (older opsets) or from input ``k`` (newer)."""
    if "axes" in node.attrs:
        return _ints(node.attrs["axes"])
    return _ints(inputs[k]) if len(inputs) > k and inputs[k] is not None else None


def _unsqueeze(node: Node, x: list) -> np.ndarray:
    axes = _axes(node, x, 1) or []
    rank = x[0].ndim + len(axes)
    out = x[0]
    for a in sorted(a % rank for a in axes):
        out = np.expand_dims(out, a)
    return out


def _squeeze(node: Node, x: list) -> np.ndarray:
    axes = _axes(node, x, 1)
    return np.squeeze(x[0], axis=None if axes is None else tuple(axes))


def _slice(node: Node, x: list) -> np.ndarray:
    data = x[0]
    if "starts" in node.attrs:  # opset < 10
        starts, ends = _ints(node.attrs["starts"]), _ints(node.attrs["ends"])
        axes = _ints(node.attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[a % data.ndim] = slice(s, e, st)
    return data[tuple(index)]


def _reshape(node: Node, x: list) -> np.ndarray:
    shape = _ints(x[1]) if len(x) > 1 else _ints(node.attrs.get("shape", []))
    if not node.attrs.get("allowzero", 0):
        shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x[0].reshape(shape)


def _cast(node: Node, x: list) -> np.ndarray:
    to = {1: np.float32, 10: np.float16, 11: np.float64, 6: np.int32, 7: np.int64}
    target = to.get(int(node.attrs.get("to", 1)))
    if target is None:
        raise NotConstant(f"a Cast to type {node.attrs.get('to')}")
    return x[0].astype(target)


def _split(node: Node, x: list, index: int) -> np.ndarray:
    axis = int(node.attrs.get("axis", 0))
    sizes = node.attrs.get("split") or (_ints(x[1]) if len(x) > 1 and x[1] is not None else None)
    n = x[0].shape[axis]
    if sizes is None:
        parts = len(node.outputs)
        sizes = [math.ceil(n / parts)] * (parts - 1) + [n - math.ceil(n / parts) * (parts - 1)]
    cuts = np.cumsum(sizes)[:-1]
    return np.split(x[0], cuts, axis=axis)[index]


OPS: dict[str, Callable[[Node, list], np.ndarray]] = {
    "Identity": lambda n, x: x[0],
    "Dropout": lambda n, x: x[0],  # inference: the identity
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Reshape": _reshape,
    "Cast": _cast,
    "Transpose": lambda n, x: np.transpose(x[0], n.attrs.get("perm") or None),
    "Concat": lambda n, x: np.concatenate(x, axis=int(n.attrs.get("axis", 0))),
    "Flatten": lambda n, x: x[0].reshape(math.prod(x[0].shape[: int(n.attrs.get("axis", 1))]), -1),
}


class Folder:
    """Evaluates constant values of one graph; results are cached by name."""

    def __init__(self, graph: Graph, folder: Path, file: str) -> None:
        self.graph, self.folder, self.file = graph, folder, file
        self._cache: dict[str, np.ndarray] = {}
        self._failed: dict[str, str] = {}
        self.used_ops: set[str] = set()
        self.loaded = 0  # elements decoded from the file so far
        self.folded_nodes: set[int] = set()  # id() of the nodes that computed a weight

    def tensor(self, t: TensorInfo, what: str) -> np.ndarray:
        arr = tensor_array(t, self.folder, self.file, what)
        self.loaded += arr.size
        return arr

    def value(self, name: str, what: str, depth: int = 0) -> np.ndarray:
        """The value of ``name``, or NotConstant naming the run-time input or node."""
        if name in self._cache:
            return self._cache[name]
        if name in self._failed:
            raise NotConstant(self._failed[name])
        try:
            out = self._value(name, what, depth)
        except NotConstant as exc:
            self._failed[name] = exc.reason  # a DAG of failing paths is walked once
            raise
        self._cache[name] = out
        return out

    def _value(self, name: str, what: str, depth: int) -> np.ndarray:
        graph = self.graph
        if name in graph.initializers:
            out = self.tensor(graph.initializers[name], what)
        elif (node := graph.producers.get(name)) is None:
            if name in graph.inputs:
                raise NotConstant(f"graph input {name!r}, fed at run time")
            raise NotConstant(f"{name!r}, which is not defined anywhere in the graph")
        elif node.op_type == "Constant":
            out = self._constant(node, what)
            self.folded_nodes.add(id(node))
        elif node.op_type in OPS or node.op_type == "Split":
            if depth >= MAX_DEPTH:
                raise NotConstant(f"a chain of more than {MAX_DEPTH} nodes")
            out = self._apply(node, name, what, depth)
        else:
            raise NotConstant(f"a {node.op_type} node ({node.name or name!r})")
        return out

    def _apply(self, node: Node, name: str, what: str, depth: int) -> np.ndarray:
        args = [self.value(i, what, depth + 1) if i else None for i in node.inputs]
        if not args or args[0] is None:
            raise NotConstant(f"a {node.op_type} node without input")
        total = sum(a.size for a in args if a is not None)
        if node.op_type == "Concat" and total > FOLD_SLACK + 2 * self.loaded:
            raise LoadError(
                f"{self.file}: {what} would grow to {total} elements through Concat nodes, "
                f"far more than the file holds ({self.loaded}); refusing a memory bomb"
            )
        try:
            if node.op_type == "Split":
                out = _split(node, args, node.outputs.index(name))
            else:
                out = OPS[node.op_type](node, args)
        except NotConstant:
            raise
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            raise LoadError(
                f"{self.file}: {what} comes from a {node.op_type} node that cannot be applied "
                f"({exc}); the graph is damaged"
            ) from exc
        self.used_ops.add(node.op_type)
        self.folded_nodes.add(id(node))
        return np.asarray(out)

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of a value already known (an initializer or a folded value)."""
        if name in self._cache:
            return tuple(self._cache[name].shape)
        t = self.graph.initializers.get(name)
        return t.dims if t is not None else None

    def _constant(self, node: Node, what: str) -> np.ndarray:
        attrs = node.attrs
        if isinstance(attrs.get("value"), TensorInfo):
            return self.tensor(attrs["value"], what)
        for key, dtype in (
            ("value_float", np.float32),
            ("value_floats", np.float32),
            ("value_int", np.int64),
            ("value_ints", np.int64),
        ):
            if key in attrs:
                return np.asarray(attrs[key], dtype=dtype)
        raise NotConstant(f"a Constant node ({node.name!r}) without a tensor value")


def _feeder(graph: Graph, node: Node) -> tuple[Node, str] | None:
    """The first operator upstream of ``node``'s X that is not layout-only, and the tensor of
    it the chain starts from; None at a graph input or initializer, or past ``MAX_DEPTH``."""
    name, steps = node.inputs[0] if node.inputs else "", 0
    while name and steps < MAX_DEPTH:
        producer = graph.producers.get(name)
        if producer is None:
            return None
        if producer.op_type not in LAYOUT_OPS or not producer.inputs:
            return producer, name
        name, steps = producer.inputs[0], steps + 1
    return None


def upstream_lstm(graph: Graph, node: Node) -> Node | None:
    """The LSTM whose Y reaches ``node``'s X through layout-only operators, if any."""
    found = _feeder(graph, node)
    if found is None or found[0].op_type != "LSTM":
        return None
    producer, name = found
    return producer if producer.outputs and producer.outputs[0] == name else None


def embedding_table(graph: Graph, node: Node) -> str | None:
    """The table of an embedding lookup (``Gather`` on axis 0) that feeds ``node``'s X."""
    found = _feeder(graph, node)
    if found is None:
        return None
    producer = found[0]
    if producer.op_type == "Gather" and int(producer.attrs.get("axis", 0)) == 0:
        return producer.inputs[0] if producer.inputs else None
    return None


def chains(graph: Graph, lstms: list[Node]) -> list[list[Node]]:
    """LSTM nodes grouped into stacks: each node's X comes from the previous one's Y."""
    up = {id(n): upstream_lstm(graph, n) for n in lstms}
    downs: dict[int, list[Node]] = {}
    for n in lstms:
        u = up[id(n)]
        if u is not None:
            downs.setdefault(id(u), []).append(n)
    out = []
    for n in lstms:
        u = up[id(n)]
        if u is not None and len(downs.get(id(u), [])) == 1:
            continue  # continues the stack of u
        stack = [n]
        while len(nxt := downs.get(id(stack[-1]), [])) == 1 and len(stack) <= len(lstms):
            stack.append(nxt[0])
        out.append(stack)
    return out


def input_notes(node: Node) -> list[str]:
    """What lstmviz does with a sequence_lens input it does not use (initial states:
    ``onnx_states``)."""
    inputs = list(node.inputs) + [""] * 8
    if not inputs[4]:
        return []
    return [
        f"sequence_lens ({inputs[4]!r}) is ignored: lstmviz runs every step of the "
        "sequence it is given"
    ]


def stack_label(stack: list[Node], nodes: list[Node]) -> str:
    first = stack[0]
    return first.name or f"LSTM node {nodes.index(first)}"


def choose_stack(stacks: list[list[Node]], nodes: list[Node], prefix: str | None, file: str) -> int:
    """Index of the LSTM stack to show: the only one, or the one ``prefix`` names."""
    labels = tuple(stack_label(s, nodes) for s in stacks)
    if prefix is None and len(stacks) == 1:
        return 0
    if prefix is not None:
        want = prefix.strip().strip("/")
        for k, stack in enumerate(stacks):
            names = [n.name for n in stack]
            if prefix in names or any(f"/{want}/" in f"/{n.strip('/')}/" for n in names):
                return k
        raise ChoiceRequired(
            f"{file}: no LSTM node named or under {prefix!r}; choose one of {', '.join(labels)}",
            option="prefix",
            choices=labels,
        )
    raise ChoiceRequired(
        f"{file}: holds {len(stacks)} separate LSTM stacks ({', '.join(labels)}), with other "
        "computation between them; pick one with prefix=",
        option="prefix",
        choices=labels,
    )


def embedding(folder: Folder, first: Node, width: int, notes: list[str]) -> np.ndarray | None:
    """The (vocab, D) table of a Gather feeding the first LSTM, so token ids can be typed."""
    name = embedding_table(folder.graph, first)
    if name is None:
        return None
    try:
        table = folder.value(name, "embedding")
    except (NotConstant, LoadError):
        return None
    if table.ndim != 2 or table.shape[1] != width or table.dtype.kind != "f":
        return None
    notes.append(f"embedding = {name} {tuple(table.shape)}")
    return freeze(table.astype(np.float32))
