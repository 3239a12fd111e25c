"""Values known before run time, and which LSTM feeds which, in an ONNX graph.

Exporters do not always hand an LSTM node its weights as initializers: torch's opset-7
exporter reorders the gate blocks with Slice + Concat + Unsqueeze, others wrap them in
Identity, Transpose, Reshape or Cast. ``Folder.value`` evaluates such a chain with NumPy over
a fixed set of pure layout operators (nothing else is ever evaluated), with bounded depth and
size, and otherwise names the node or graph input the value depends on.

Names resolve through the enclosing scopes, innermost first, as onnxruntime resolves a
subgraph's names: an LSTM in an ``If`` branch reads initializers and ``Constant`` outputs of
the graphs around it. Quantized weights are folded too: ``DequantizeLinear`` computes
``(q - zero_point) * scale`` in float32 as onnxruntime does (per tensor, per axis or per
block), and ``QuantizeLinear`` of a constant (a QDQ pair on float weights) rounds half to
even and saturates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstmviz.io.errors import LoadError
from lstmviz.io.onnx.proto import Graph, Node, TensorInfo, quote
from lstmviz.io.onnx.tensors import tensor_array

MAX_DEPTH = 32
#: A Concat may output at most this many elements beyond twice what was read from the
#: file, so a chain of Concat(x, x) nodes cannot build a memory bomb out of a small tensor.
FOLD_SLACK = 1 << 22
#: Elements (float32: 64 MB) the LSTM layers may copy beyond twice what the file decoded.
#: Bytes constant folding may make beyond four times what the file decoded.
FOLD_BYTES_FLOOR = 64 << 20
LAYER_SLACK = 1 << 24
#: Operators that only move or relabel data: an LSTM's Y reaches the next X through these.
LAYOUT_OPS = frozenset(
    {"Identity", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Flatten", "Cast", "Dropout"}
)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


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


def _broadcast(param: np.ndarray, x: np.ndarray, axis: int, block: int) -> np.ndarray:
    """A scale or zero point shaped to broadcast against ``x``: scalar, per axis or per block."""
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    axis %= x.ndim
    if block > 0:  # blocked (opset 21): one value per ``block`` elements along ``axis``
        n = x.shape[axis]
        block = min(block, n)  # a block longer than the axis covers all of it
        if param.shape != (*x.shape[:axis], -(-n // block), *x.shape[axis + 1 :]):
            raise ValueError(f"scale of shape {param.shape} for blocks of {block} in {x.shape}")
        if n % block == 0:  # a broadcast view over (..., blocks, block, ...): no copy
            split = (*x.shape[:axis], n // block, block, *x.shape[axis + 1 :])
            expanded = np.expand_dims(param, axis + 1)
            return np.broadcast_to(expanded, split).reshape(x.shape)
        return np.repeat(param, block, axis=axis)[
            tuple(slice(0, n) if a == axis else slice(None) for a in range(x.ndim))
        ]
    if param.ndim != 1 or param.shape[0] != x.shape[axis]:
        raise ValueError(f"scale of shape {param.shape} for data of shape {x.shape} axis {axis}")
    shape = [1] * x.ndim
    shape[axis] = param.shape[0]
    return param.reshape(shape)


#: Elements of a per-block scale or zero point spread out at a time (8 MB of float32).
_CHUNK = 1 << 21


def _apply_in_place(
    ufunc: np.ufunc, out: np.ndarray, param: np.ndarray, axis: int, block: int
) -> None:
    """``out = ufunc(out, param)`` for a scale or zero point per tensor, axis or block.

    Blocked parameters are spread along ``axis`` a slice at a time: spreading them over
    the whole array at once made a temporary as large as the dequantized weight itself.
    """
    if block <= 0 or param.ndim == 0 or param.size == 1:
        ufunc(out, _broadcast(param, out, axis, block), out=out)
        return
    axis %= out.ndim
    n = out.shape[axis]
    block = min(block, n)
    if param.shape != (*out.shape[:axis], -(-n // block), *out.shape[axis + 1 :]):
        raise ValueError(f"scale of shape {param.shape} for blocks of {block} in {out.shape}")
    across = out.size // n
    step = max(1, _CHUNK // max(1, across * block)) * block
    for start in range(0, n, step):
        stop = min(n, start + step)
        spread = np.repeat(param[_along(axis, start // block, -(-stop // block))], block, axis)
        view = out[_along(axis, start, stop)]
        ufunc(view, spread[_along(axis, 0, stop - start)], out=view)


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(start, stop),)


def _dequantize(node: Node, x: list) -> np.ndarray:
    data, scale = x[0], x[1]
    zero = x[2] if len(x) > 2 and x[2] is not None else None
    if data.dtype.kind not in "iu" or scale.dtype.kind != "f":
        raise NotConstant(f"a DequantizeLinear of {data.dtype} data (lstmviz folds int8/uint8)")
    axis, block = int(node.attrs.get("axis", 1)), int(node.attrs.get("block_size", 0))
    if data.dtype.itemsize == 1:
        # 8-bit values and zero points are exact in float32, so (q - zero) * scale is
        # computed in one float32 array, in place: no int32 copy, no second float copy
        # (a 32 MB int8 weight took 409 MB through four full-size temporaries)
        out = data.astype(np.float32)
        if zero is not None:
            _apply_in_place(np.subtract, out, zero.astype(np.float32), axis, block)
        _apply_in_place(np.multiply, out, scale.astype(np.float32), axis, block)
        return out.astype(scale.dtype, copy=False)
    q = data.astype(np.int32)
    if zero is not None:
        q = q - _broadcast(zero.astype(np.int32), data, axis, block)
    out = q.astype(np.float32) * _broadcast(scale.astype(np.float32), data, axis, block)
    return out.astype(scale.dtype, copy=False)


def _quantize(node: Node, x: list) -> np.ndarray:
    data, scale = x[0], x[1]
    zero = x[2] if len(x) > 2 and x[2] is not None else np.zeros((), np.uint8)
    if zero.dtype not in (np.uint8, np.int8, np.uint16, np.int16):
        raise NotConstant(f"a QuantizeLinear to {zero.dtype}")
    axis, block = int(node.attrs.get("axis", 1)), int(node.attrs.get("block_size", 0))
    info = np.iinfo(zero.dtype)
    with np.errstate(all="ignore"):
        step = _broadcast(scale.astype(np.float32), data, axis, block)
        q = np.rint(data.astype(np.float32) / step)
        q = q + _broadcast(zero.astype(np.float32), data, axis, block)
    return np.clip(np.nan_to_num(q), info.min, info.max).astype(zero.dtype)


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
    "DequantizeLinear": _dequantize,
    "QuantizeLinear": _quantize,
}


class Folder:
    """Evaluates constant values seen from one graph (and its enclosing scopes); results are
    cached per defining graph and name."""

    def __init__(self, graph: Graph, folder: Path, file: str) -> None:
        self.graph, self.folder, self.file = graph, folder, file
        self._cache: dict[tuple[int, str], np.ndarray] = {}
        self._failed: dict[tuple[int, str], str] = {}
        self.used_ops: set[str] = set()
        self.loaded = 0  # elements decoded from the file so far
        self.folded_nodes: set[int] = set()  # id() of the nodes that computed a weight
        self.layer_elements = 0  # elements the LSTM layers built so far copy
        self.loaded_bytes = 0  # bytes decoded from the file so far
        self.folded_bytes = 0  # bytes of new arrays folding made so far

    def charge_layer(self, arrays: list[np.ndarray], where: str) -> None:
        """Count the weights one LSTM node's layer will copy, refusing before the copies.

        Every layer copies its weights (reordered gates, summed bias), and nothing stops 30
        LSTM nodes from naming one 16 MB initializer (1 GB of copies from a 32 MB file):
        the layers may copy at most twice what was decoded from the file, plus a floor.
        """
        self.layer_elements += sum(a.size for a in arrays)
        if self.layer_elements > LAYER_SLACK + 2 * self.loaded:
            raise LoadError(
                f"{where}: the recurrent layers would copy {self.layer_elements} weights, far "
                f"more than the {self.loaded} the file holds (one initializer shared by many "
                "recurrent nodes); lstmviz reads graphs whose recurrent nodes have their own "
                "weights"
            )

    def tensor(self, t: TensorInfo, what: str) -> np.ndarray:
        arr = tensor_array(t, self.folder, self.file, what)
        self.loaded += arr.size
        self.loaded_bytes += arr.nbytes
        return arr

    @staticmethod
    def resolve(name: str, scope: Graph) -> tuple[Graph, TensorInfo | Node | None]:
        """The graph that defines ``name`` seen from ``scope`` and its definition: an
        initializer, a node, or None for a graph input (``scope`` itself if undefined)."""
        graph: Graph | None = scope
        while graph is not None:
            if name in graph.initializers:
                return graph, graph.initializers[name]
            if (node := graph.producers.get(name)) is not None:
                return graph, node
            if graph.has_input(name):
                return graph, None
            graph = graph.parent
        return scope, None

    def initializer(self, name: str) -> TensorInfo | None:
        """The initializer ``name`` names, in this graph or an enclosing one."""
        found = self.resolve(name, self.graph)[1]
        return found if isinstance(found, TensorInfo) else None

    def value(self, name: str, what: str, depth: int = 0, scope: Graph | None = None) -> np.ndarray:
        """The value of ``name``, or NotConstant naming the run-time input or node."""
        graph, found = self.resolve(name, scope or self.graph)
        key = (id(graph), name)
        if key in self._cache:
            return self._cache[key]
        if key in self._failed:
            raise NotConstant(self._failed[key])
        try:
            out = self._value(name, what, depth, graph, found)
        except NotConstant as exc:
            self._failed[key] = exc.reason  # a DAG of failing paths is walked once
            raise
        self._cache[key] = out
        return out

    def take(self, name: str, what: str) -> tuple[np.ndarray, bool]:
        """``value(name)``, and whether the caller may change it in place: True when the
        array owns its memory, is writable and nothing else the folder cached holds it or a
        view of it. Such an array leaves the cache (another reader of ``name`` folds it
        again), so a 4×-sized dequantized weight is reordered where it lies, not copied."""
        value = self.value(name, what)
        key = (id(self.resolve(name, self.graph)[0]), name)
        mine = value.base is None and value.flags.writeable and value.flags.c_contiguous
        if mine and key in self._cache:
            others = (v for k, v in self._cache.items() if k != key)
            mine = not any(v is value or v.base is value for v in others)
            if mine:
                del self._cache[key]
        return value, mine

    def _value(
        self, name: str, what: str, depth: int, graph: Graph, found: TensorInfo | Node | None
    ) -> np.ndarray:
        if isinstance(found, TensorInfo):
            return self.tensor(found, what)
        if found is None:
            if graph.has_input(name):
                where = f"input of {graph.path}" if graph.parent is not None else "graph input"
                raise NotConstant(f"{where} {quote(name)}, fed at run time")
            raise NotConstant(f"{quote(name)}, which is not defined anywhere in the graph")
        node = found
        if node.op_type == "Constant":
            out = self._constant(node, what)
            self.folded_nodes.add(id(node))
            return out
        if node.op_type in OPS or node.op_type == "Split":
            if depth >= MAX_DEPTH:
                raise NotConstant(f"a chain of more than {MAX_DEPTH} nodes")
            return self._apply(node, name, what, depth, graph)
        op = node.op_type
        raise NotConstant(f"{_article(op)} {op} node ({quote(node.name or name)})")

    def _apply(self, node: Node, name: str, what: str, depth: int, graph: Graph) -> np.ndarray:
        args = [self.value(i, what, depth + 1, graph) if i else None for i in node.inputs]
        if not args or args[0] is None:
            raise NotConstant(f"a {node.op_type} node without input")
        total = sum(a.size for a in args if a is not None)
        if node.op_type == "Concat" and total > FOLD_SLACK + 2 * self.loaded:
            raise LoadError(
                f"{self.file}: {what} would grow to {total} elements through Concat nodes, "
                f"far more than the file holds ({self.loaded}); refusing a memory bomb"
            )
        self._charge_fold(node, args, what)
        try:
            if node.op_type == "Split":
                out = _split(node, args, node.outputs.index(name))
            else:
                out = OPS[node.op_type](node, args)
        except NotConstant:
            raise
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            detail = str(exc)[:120]
            raise LoadError(
                f"{self.file}: {what} comes from a {node.op_type} node that cannot be applied "
                f"({detail}); the graph is damaged"
            ) from exc
        self.used_ops.add(node.op_type)
        self.folded_nodes.add(id(node))
        return np.asarray(out)

    def _charge_fold(self, node: Node, args: list, what: str) -> None:
        """Count the new array a copying op will make, before it makes it. Every folded value
        is kept (cached by name), so 30 Casts of one 8 MB int8 tensor, alternating float64
        and float32, held 836 MB; a file's folding may make at most 64 MB plus four times
        what it decoded (an int8 weight dequantized to float32 is four times its bytes)."""
        first = args[0]
        if node.op_type == "Cast":
            to = {1: 4, 10: 2, 11: 8, 6: 4, 7: 8}.get(int(node.attrs.get("to", 1)), 8)
            nbytes = first.size * to
        elif node.op_type in ("DequantizeLinear", "QuantizeLinear"):
            nbytes = first.size * 4
        elif node.op_type == "Concat":
            nbytes = sum(a.nbytes for a in args if a is not None)
        else:
            return  # views (Transpose, Reshape, Slice, Squeeze...) copy nothing
        self.folded_bytes += nbytes
        if self.folded_bytes > FOLD_BYTES_FLOOR + 4 * self.loaded_bytes:
            raise LoadError(
                f"{self.file}: {what} would take the arrays folded from constants to "
                f"{self.folded_bytes >> 20} MB, far more than the {self.loaded_bytes >> 20} MB "
                f"the file holds (a chain of {node.op_type} nodes); refusing a memory bomb"
            )

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of a value already known (an initializer or a folded value)."""
        graph, found = self.resolve(name, self.graph)
        if (id(graph), name) in self._cache:
            return tuple(self._cache[(id(graph), name)].shape)
        return found.dims if isinstance(found, TensorInfo) else None

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
        raise NotConstant(f"a Constant node ({quote(node.name)}) without a tensor value")


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
