"""NodeDefs of a TF graph or function body, and the walks ``tf1_graph`` makes over them.

NodeDef (tensorflow/core/framework/node_def.proto): name = 1, op = 2, input = 3 (control inputs
start with ``^``), attr = 5 (map entry: key = 1, AttrValue = 2). A top-level input is ``node`` or
``node:k``; inside a function body it is ``node:output_arg:k`` or a bare argument name, which
:meth:`Graph.resolve` follows to the caller's graph (``tf1_functions``). In a frozen graph
(``convert_variables_to_constants``) the variables are ``Const`` nodes of the same name.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from lstmviz.io.wire import protowire as pw

VAR_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
PASS_OPS = frozenset(
    {"Identity", "Enter", "RefEnter", "ReadVariableOp", "Switch", "RefSwitch", "Snapshot"}
)
MAX_WALK = 32  # reads, identities and function boundaries between a use and its variable


class Node:
    """One NodeDef: name, op, data inputs (control inputs dropped) and its attrs.

    The attrs are decoded on first use: a graph of 30,000 nodes (a ``static_rnn`` unrolled
    over hundreds of steps) has 100,000 attr entries of which the scan reads a few hundred.
    """

    __slots__ = ("_attrs", "_raw_attrs", "inputs", "name", "op")

    def __init__(
        self,
        name: str,
        op: str,
        inputs: list[str],
        attrs: dict[str, memoryview] | None = None,
        raw_attrs: tuple[memoryview, ...] = (),
    ) -> None:
        self.name, self.op, self.inputs = name, op, inputs
        self._attrs, self._raw_attrs = attrs, raw_attrs

    @property
    def attrs(self) -> dict[str, memoryview]:
        """attr name → raw AttrValue; a malformed entry is left out (a setting unresolved)."""
        if self._attrs is None:
            attrs: dict[str, memoryview] = {}
            for entry in self._raw_attrs:
                try:
                    e = pw.parse(entry)
                except pw.ProtoError:
                    continue
                value = pw.get_bytes(e, 2)
                if value is not None:
                    attrs[pw.get_string(e, 1)] = value
            self._attrs, self._raw_attrs = attrs, ()
        return self._attrs

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.op!r}, {self.inputs!r})"


def _text(raw: memoryview) -> str:
    return bytes(raw).decode("utf-8", "replace")


def parse_node(raw: memoryview) -> Node:
    """Decode a NodeDef's name, op and inputs; keep its attr entries for later.

    Every NodeDef field that lstmviz reads is length-delimited, so one loop over the keys
    (with the one-byte varints of short fields read inline) is several times faster than the
    general decoder, which matters for graphs of tens of thousands of nodes.
    """
    buf = memoryview(raw)
    pos, n = 0, len(buf)
    name = op = ""
    inputs: list[str] = []
    attrs: list[memoryview] = []
    while pos < n:
        key = buf[pos]
        if key & 0x80:
            key, pos = pw.read_varint(buf, pos)
        else:
            pos += 1
        field, wire = key >> 3, key & 7
        if wire != pw.LEN:
            if field == 0 or wire not in (pw.VARINT, pw.FIXED64, pw.FIXED32):
                raise pw.ProtoError(f"NodeDef field {field} has wire type {wire}")
            pos = _skip(buf, pos, wire)
            continue
        length = buf[pos] if pos < n else 0x80
        if not length & 0x80:
            pos += 1
        elif pos + 1 < n and not buf[pos + 1] & 0x80:  # two bytes: under 2^14
            length, pos = (length & 0x7F) | buf[pos + 1] << 7, pos + 2
        else:
            length, pos = pw.read_varint(buf, pos)
        end = pos + length
        if end > n:
            raise pw.ProtoError(f"NodeDef field {field} runs past the node's end")
        if field == 1:
            name = _text(buf[pos:end])
        elif field == 2:
            op = sys.intern(_text(buf[pos:end]))  # a few dozen op names shared by all nodes
        elif field == 3:
            ref = _text(buf[pos:end])
            if not ref.startswith("^"):
                inputs.append(ref)
        elif field == 5:
            attrs.append(buf[pos:end])
        pos = end
    return Node(name, op, inputs, raw_attrs=tuple(attrs))


def _skip(buf: memoryview, pos: int, wire: int) -> int:
    if wire == pw.VARINT:
        return pw.read_varint(buf, pos)[1]
    width = 8 if wire == pw.FIXED64 else 4
    if pos + width > len(buf):
        raise pw.ProtoError("truncated fixed-width field in a NodeDef")
    return pos + width


#: Values a TensorProto may hold as one field each (unpacked): TF writes them packed, so more
#: is a crafted file whose every 5 bytes would otherwise become a Python object.
MAX_UNPACKED = 4096


def attr_tensor(raw: memoryview) -> pw.Fields:
    """The TensorProto fields of an ``AttrValue`` (``tensor`` = field 8); ProtoError past
    ``MAX_UNPACKED`` unpacked values."""
    tensor = pw.get_bytes(pw.parse(raw), 8)
    out: pw.Fields = {}
    if tensor is None:
        return out
    unpacked = 0
    for number, wire, value in pw.iter_fields(tensor):
        if wire != pw.LEN:
            unpacked += 1
            if unpacked > MAX_UNPACKED:
                raise pw.ProtoError(f"tensor holds over {MAX_UNPACKED} unpacked values")
        out.setdefault(number, []).append(value)
    return out


def attr_float(node: Node, key: str) -> float | None:
    """``AttrValue.f`` (field 4, fixed32)."""
    raw = node.attrs.get(key)
    if raw is None:
        return None
    values = [v for n, w, v in pw.iter_fields(raw) if n == 4 and w == pw.FIXED32]
    return pw.fixed32_float(values[-1]) if values else None


def attr_int(node: Node, key: str) -> int | None:
    raw = node.attrs.get(key)
    if raw is None:
        return None
    values = [v for n, w, v in pw.iter_fields(raw) if n in (3, 5) and w == pw.VARINT]
    return values[-1] if values else None


def const_scalar(node: Node) -> float | None:
    """The value of a scalar float ``Const`` (TensorProto in ``AttrValue.tensor``, field 8)."""
    if node.op != "Const" or "value" not in node.attrs:
        return None
    try:
        tensor = attr_tensor(node.attrs["value"])
    except pw.ProtoError:
        return None
    dtype = pw.get_int(tensor, 1)
    content = pw.get_bytes(tensor, 4)
    if pw.count_packed(tensor, 5 if dtype == 1 else 6, 4 if dtype == 1 else 8)[0] > 1:
        return None  # a scalar holds one value; never decode a long list to find out
    values: list[float]
    if dtype == 1:  # FLOAT
        values = pw.get_floats(tensor, 5) or (
            [pw.fixed32_float(int.from_bytes(content, "little"))]
            if content is not None and len(content) == 4
            else []
        )
    elif dtype == 2:  # DOUBLE
        values = pw.get_doubles(tensor, 6)
    else:
        return None
    return float(values[0]) if len(values) == 1 else None


def canonical(ref: str) -> str:
    """``node``, ``node:0`` and ``node:out:0`` → ``node``; ``node:out:k`` → ``node:k``.

    In a function body ``k`` counts within the named output arg; for the ops read here
    (``Split``'s one ``output`` list, single-output ops) that is the flat output index.
    """
    parts = ref.split(":")
    if len(parts) == 3:
        parts = [parts[0], parts[2]]
    if len(parts) == 2 and parts[1] == "0":
        return parts[0]
    return ":".join(parts)


class Graph:
    """The nodes of a GraphDef or of one function call by name, and each output's consumers.

    ``args`` maps a function's argument names to the caller's input refs in ``parent``.
    """

    def __init__(
        self,
        nodes: list[Node],
        args: dict[str, str] | None = None,
        parent: Graph | None = None,
        name: str = "",
        weights: frozenset[str] = frozenset(),
    ) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.args, self.parent, self.name = args or {}, parent, name
        #: ``Const`` nodes that hold weights (a frozen graph's variables turned constants)
        self.weights = weights if parent is None else parent.weights
        self._consumers: dict[str, list[tuple[Node, int]]] | None = None

    def resolve(self, ref: str) -> tuple[Graph, Node] | None:
        """The node producing ``ref``, followed out through function arguments to the caller."""
        graph: Graph | None = self
        for _ in range(MAX_WALK):
            if graph is None:
                return None
            name = ref.split(":")[0]
            node = graph.nodes.get(name)
            if node is not None:
                return graph, node
            caller_ref = graph.args.get(name)
            if caller_ref is None:
                return None
            graph, ref = graph.parent, caller_ref
        return None

    @property
    def consumers(self) -> dict[str, list[tuple[Node, int]]]:
        """Each output's consuming nodes and input positions, built on first use (a graph
        that is refused before any walk never pays for it)."""
        if self._consumers is None:
            consumers: dict[str, list[tuple[Node, int]]] = defaultdict(list)
            for n in self.nodes.values():
                for k, ref in enumerate(n.inputs):
                    consumers[canonical(ref)].append((n, k))
            self._consumers = consumers
        return self._consumers

    def users(self, ref: str, ops: frozenset[str] | None = None) -> list[tuple[Node, int]]:
        found = self.consumers.get(canonical(ref), [])
        return [(n, k) for n, k in found if ops is None or n.op in ops]

    def variable(self, ref: str) -> str | None:
        """The variable node feeding ``ref`` through reads/identities/arguments, or None."""
        found = self.resolve(ref)
        for _ in range(MAX_WALK):  # bounded walk
            if found is None:
                return None
            graph, node = found
            if node.op in VAR_OPS or (node.op == "Const" and node.name in graph.weights):
                return node.name
            # Merge: a loop-invariant weight that lowered control flow v2 passes as a loop
            # variable is Merge(Enter(weight), NextIteration(itself)); its value is input 0
            if (node.op not in PASS_OPS and node.op != "Merge") or not node.inputs:
                return None
            found = graph.resolve(node.inputs[0])
        return None

    def other_const(self, node: Node, skip: str) -> Node | None:
        """The ``Const`` among ``node``'s inputs other than ``skip`` (also when passed in)."""
        for ref in node.inputs:
            if canonical(ref) != canonical(skip):
                found = self.resolve(ref)
                if found is not None and found[1].op == "Const":
                    return found[1]
        return None

    def clip_after(self, ref: str) -> float | None:
        """The bound of a ``clip_by_value`` applied to ``ref``, or None if there is none."""
        for node, _k in self.users(ref, frozenset({"Minimum"})):
            const = self.other_const(node, ref)
            value = const_scalar(const) if const is not None else None
            if value is not None and self.users(node.name, frozenset({"Maximum"})):
                return value
        return None
