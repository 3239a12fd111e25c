"""Which LSTM nodes an ONNX file holds, in which graph, and which of them feed each other.

Exporters put LSTMs in subgraphs: silero-vad's model switches on the sample rate with an ``If``
whose branches each hold an ``If`` on "was a state given", and each of those holds an LSTM.
Every LSTM node of every graph is found here (``sites``); within one graph, ``chains`` follows
each LSTM's X back through layout-only operators to the LSTM whose Y it is, so stacked layers
run together and LSTMs separated by other computation, or in different branches, are separate
choices (``choose_stack``, the ``prefix=`` option and the GUI's choice dialog). Labels are the
node names, qualified by their subgraph's path only when two stacks would share a label.

Some converters write a bidirectional layer as two one-direction LSTM nodes: the second reads
X reversed in time by a ``Slice`` (steps -1 on axis 0) or has ``direction=reverse``, its Y is
reversed back, and a ``Concat`` on the feature axis joins forward and backward (madmom's
converter writes its BLSTMs so). Such a pair is one layer (``Unit``) with two directions.
An embedding lookup (``Gather``) found the same way in front of the first LSTM gives the model
its token table. Everything here is linear in the number of nodes (issue 18: a 20,000-node
graph once took 15 s because each label searched the node list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmviz.core.model import freeze
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.onnx.fold import LAYOUT_OPS, MAX_DEPTH, Folder, NotConstant
from lstmviz.io.onnx.proto import Graph, Node, TensorInfo, quote, walk
from lstmviz.io.onnx.tensors import EXTERNAL, tensor_array
from lstmviz.io.wire import protowire as pw

#: Nodes lstmviz runs as layers (the quantized LSTM is dequantized first; GRU and RNN:
#: ``onnx.gru``). Stacks may mix them: a GRU fed by an LSTM's Y runs after it.
RECURRENT = frozenset({"LSTM", "DynamicQuantizeLSTM", "GRU", "RNN"})
INT64_MAX = 2**63 - 1
#: Characters of labels listed in a message (messages are cut at 300 characters; the GUI's
#: dialog gets every choice from ``ChoiceRequired.choices``).
LISTED_CHARS = 150


@dataclass
class Unit:
    """One layer: an LSTM node, or a forward and a backward node joined by a Concat."""

    nodes: list[Node]
    out: str  # the tensor the layer's output is read from
    source: str  # the tensor its X comes from (through layout-only ops and reversals)
    reversed_input: bool = False  # a lone node reading X reversed in time


@dataclass
class Stack:
    """LSTM layers of one graph, each fed by the previous one's output; ``label`` names it."""

    graph: Graph
    units: list[Unit]
    index: int  # position of the first node in its graph
    label: str = ""

    @property
    def nodes(self) -> list[Node]:
        return [n for u in self.units for n in u.nodes]

    @property
    def base_label(self) -> str:
        first = self.nodes[0]
        return first.name or f"{first.op_type} node {self.index}"


def _feeder(graph: Graph, node: Node) -> tuple[Node, str] | None:
    """The first operator upstream of ``node``'s X that is not layout-only, and the tensor of
    it the chain starts from; None at a graph input or initializer, or past ``MAX_DEPTH``."""
    name, steps = node.inputs[0] if node.inputs else "", 0
    while name and steps < MAX_DEPTH:
        producer = graph.producer(name)
        if producer is None:
            return None
        if producer.op_type not in LAYOUT_OPS or not producer.inputs:
            return producer, name
        name, steps = producer.inputs[0], steps + 1
    return None


def _small_ints(graph: Graph, name: str) -> list[int] | None:
    """A short integer constant (an initializer or a Constant's value) read without a Folder;
    None for anything else. Slices' starts/steps are a few int64 values."""
    found = graph.producer(name)
    t = None
    if found is not None and found.op_type == "Constant":
        t = found.attrs.get("value")
    elif found is None:
        scope: Graph | None = graph
        while scope is not None and t is None:
            t = scope.initializers.get(name)
            scope = scope.parent
    if not isinstance(t, TensorInfo) or t.data_type not in (6, 7) or len(t.dims) > 1:
        return None
    if pw.get_int(t.fields, 14) == EXTERNAL:
        return None  # never read another file to label a graph
    if t.dims and not 0 < t.dims[0] <= 8:
        return None
    try:
        return [int(v) for v in tensor_array(t, Path("."), "", "slice").reshape(-1)]
    except LoadError:
        return None


def _reverses_time(node: Node, ints: Callable[[str], list[int] | None]) -> bool:
    """A Slice taking all of axis 0 backwards (steps -1), as converters reverse a sequence."""
    if node.op_type != "Slice" or len(node.inputs) < 5:
        return False
    starts, ends, axes, steps = (ints(n) for n in node.inputs[1:5])
    if starts is None or ends is None or axes is None or steps is None:
        return False
    return axes == [0] and steps == [-1] and starts[0] in (-1, INT64_MAX) and ends[0] < -(2**31)


class Tracer:
    """Where a tensor comes from through layout-only ops and time-reversing Slices, and
    whether it arrives reversed (an odd number of reversals).

    Results are memoized along the whole path walked, so tracing every LSTM input and every
    Concat input of a graph costs one pass over its nodes, however the chains are shaped (a
    hostile graph may hang 20,000 Concats off one long chain of Slices); a cycle stops the walk.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._memo: dict[str, tuple[str, bool]] = {}
        self._reverses: dict[int, bool] = {}
        self._ints: dict[str, list[int] | None] = {}

    def _small_ints(self, name: str) -> list[int] | None:
        if name not in self._ints:
            self._ints[name] = _small_ints(self.graph, name)
        return self._ints[name]

    def _flips(self, node: Node) -> bool:
        key = id(node)
        if key not in self._reverses:
            self._reverses[key] = _reverses_time(node, self._small_ints)
        return self._reverses[key]

    def __call__(self, name: str) -> tuple[str, bool]:
        path: list[tuple[str, bool]] = []
        seen: set[str] = set()
        current = name
        while current and current not in self._memo and current not in seen:
            seen.add(current)
            producer = self.graph.producer(current)
            if producer is None or not producer.inputs:
                break
            if producer.op_type in LAYOUT_OPS:
                flip = False
            elif self._flips(producer):
                flip = True
            else:
                break
            path.append((current, flip))
            current = producer.inputs[0]
        source, reversed_ = self._memo.get(current, (current, False))
        self._memo.setdefault(current, (source, reversed_))
        for step, flip in reversed(path):
            reversed_ ^= flip
            self._memo[step] = (source, reversed_)
        return self._memo.get(name, (source, reversed_))


def _one_direction(node: Node) -> str | None:
    """'forward' or 'reverse' for a one-direction LSTM node, None for a bidirectional one."""
    d = node.attrs.get("direction", b"forward")
    d = d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d)
    return d if d in ("forward", "reverse") else None


def units(graph: Graph, lstms: list[Node]) -> list[Unit]:
    """The layers of ``graph``: bidirectional pairs first found at their Concat, then every
    other node alone; in the order of each layer's first node."""
    trace_back = Tracer(graph)
    inputs = {id(n): trace_back(n.inputs[0]) if n.inputs else ("", False) for n in lstms}
    by_out = {n.outputs[0]: n for n in lstms if n.outputs and n.outputs[0]}
    paired: set[int] = set()
    out = []
    for c in graph.nodes:
        if c.op_type != "Concat" or len(c.inputs) != 2 or int(c.attrs.get("axis", 0)) == 0:
            continue
        (ya, ra), (yb, rb) = trace_back(c.inputs[0]), trace_back(c.inputs[1])
        a, b = by_out.get(ya), by_out.get(yb)
        if a is None or b is None or a is b or id(a) in paired or id(b) in paired:
            continue
        (sa, ia), (sb, ib) = inputs[id(a)], inputs[id(b)]
        da, db = _one_direction(a), _one_direction(b)
        if not sa or sa != sb or ra != ia or rb != ib or da is None or db is None:
            continue
        if ia != (da == "reverse") or ib == (db == "reverse"):
            continue  # a runs forwards and b backwards, each output back in time order
        paired.update((id(a), id(b)))
        out.append(Unit([a, b], c.outputs[0] if c.outputs else "", sa))
    for n in lstms:
        if id(n) not in paired:
            source, rev = inputs[id(n)]
            out.append(Unit([n], n.outputs[0] if n.outputs else "", source, rev))
    order = {id(n): k for k, n in enumerate(graph.nodes)}
    return sorted(out, key=lambda u: order[id(u.nodes[0])])


def embedding_table(graph: Graph, node: Node) -> str | None:
    """The table of an embedding lookup (``Gather`` on axis 0) that feeds ``node``'s X."""
    found = _feeder(graph, node)
    if found is None:
        return None
    producer = found[0]
    if producer.op_type == "Gather" and int(producer.attrs.get("axis", 0)) == 0:
        return producer.inputs[0] if producer.inputs else None
    return None


def chains(graph: Graph, layers: list[Unit]) -> list[list[Unit]]:
    """Layers of ``graph`` grouped into stacks: each one's X comes from the previous one's
    output. Layers left in no stack (feeding each other in a cycle, which no valid graph has)
    come back as stacks of their own."""
    by_out = {u.out: u for u in layers if u.out}
    up: dict[int, Unit | None] = {}
    for u in layers:
        v = None if u.reversed_input else by_out.get(u.source)
        up[id(u)] = v if v is not u else None
    downs: dict[int, list[Unit]] = {}
    for u in layers:
        v = up[id(u)]
        if v is not None:
            downs.setdefault(id(v), []).append(u)
    out, placed = [], set()
    for u in layers:
        v = up[id(u)]
        if v is not None and len(downs.get(id(v), [])) == 1:
            continue  # continues the stack of v
        stack, ids = [u], {id(u)}
        while len(nxt := downs.get(id(stack[-1]), [])) == 1 and len(stack) <= len(layers):
            if id(nxt[0]) in placed or id(nxt[0]) in ids:
                break
            stack.append(nxt[0])
            ids.add(id(nxt[0]))
        placed.update(ids)
        out.append(stack)
    out.extend([u] for u in layers if id(u) not in placed)  # a cycle: each layer alone
    return out


def find_stacks(root: Graph) -> list[Stack]:
    """Every stack of LSTM nodes in every graph, labelled uniquely."""
    stacks: list[Stack] = []
    for graph in walk(root):
        index = {id(n): k for k, n in enumerate(graph.nodes)}
        lstms = [n for n in graph.nodes if n.op_type in RECURRENT]
        if lstms:
            for chain in chains(graph, units(graph, lstms)):
                stacks.append(Stack(graph, chain, index[id(chain[0].nodes[0])]))
    counts: dict[str, int] = {}
    for s in stacks:
        counts[s.base_label] = counts.get(s.base_label, 0) + 1
    seen: dict[str, int] = {}
    for s in stacks:
        label = s.base_label
        if counts[label] > 1 and s.graph.path:
            label = f"{s.graph.path}/{label}"
        if label in seen:  # still shared (same name twice in one graph): number them
            seen[label] += 1
            label = f"{label}#{seen[label]}"
        else:
            seen[label] = 1
        s.label = label
    return stacks


def _listed(labels: list[str]) -> str:
    shown: list[str] = []
    for label in labels:
        text = quote(label, 70)
        if shown and sum(len(s) + 2 for s in shown) + len(text) > LISTED_CHARS:
            break
        shown.append(text)
    more = f" and {len(labels) - len(shown)} more" if len(shown) < len(labels) else ""
    return ", ".join(shown) + more


def choose_stack(stacks: list[Stack], prefix: str | None, file: str) -> Stack:
    """The LSTM stack to show: the only one, or the one ``prefix`` names (a label, a node
    name, or a path component of the node names)."""
    labels = [s.label for s in stacks]
    if prefix is None and len(stacks) == 1:
        return stacks[0]
    kinds = {"LSTM" if n.op_type.endswith("LSTM") else n.op_type for s in stacks for n in s.nodes}
    word = kinds.pop() if len(kinds) == 1 else "recurrent"  # "LSTM", "GRU", "RNN"
    if prefix is not None:
        want = prefix.strip().strip("/")
        for s in stacks:
            if prefix == s.label:
                return s
        for s in stacks:
            names = [n.name for n in s.nodes]
            if prefix in names or any(f"/{want}/" in f"/{n.strip('/')}/" for n in names):
                return s
        raise ChoiceRequired(
            f"{file}: no {word} node named or under {quote(prefix)}; "
            f"choose one of {_listed(labels)}",
            option="prefix",
            choices=tuple(labels),
        )
    where = sum(1 for s in stacks if s.graph.parent is not None)
    inside = f", {where} in If/Loop/Scan subgraphs" if where else ""
    raise ChoiceRequired(
        f"{file}: holds {len(stacks)} separate {word} stacks{inside} ({_listed(labels)}); "
        "pick one with prefix=",
        option="prefix",
        choices=tuple(labels),
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
    notes.append(f"embedding = {quote(name)} {tuple(table.shape)}")
    return freeze(table.astype(np.float32))
