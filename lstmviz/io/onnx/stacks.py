"""Which LSTM nodes an ONNX file holds, in which graph, and which of them feed each other.

Exporters put LSTMs in subgraphs: silero-vad's model switches on the sample rate with an ``If``
whose branches each hold an ``If`` on "was a state given", and each of those holds an LSTM.
Every LSTM node of every graph is found here (``sites``); within one graph, ``chains`` follows
each LSTM's X back through layout-only operators to the LSTM whose Y it is, so stacked layers
run together and LSTMs separated by other computation, or in different branches, are separate
choices (``choose_stack``, the ``prefix=`` option and the GUI's choice dialog). Labels are the
node names, qualified by their subgraph's path only when two stacks would share a label.
An embedding lookup (``Gather``) found the same way in front of the first LSTM gives the model
its token table. Everything here is linear in the number of nodes (issue 18: a 20,000-node
graph once took 15 s because each label searched the node list).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmviz.core.model import freeze
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.onnx.fold import LAYOUT_OPS, MAX_DEPTH, Folder, NotConstant
from lstmviz.io.onnx.proto import Graph, Node, quote, walk

#: Nodes lstmviz runs as LSTM layers (the quantized one is dequantized first).
RECURRENT = frozenset({"LSTM", "DynamicQuantizeLSTM"})
#: Characters of labels listed in a message (messages are cut at 300 characters; the GUI's
#: dialog gets every choice from ``ChoiceRequired.choices``).
LISTED_CHARS = 150


@dataclass
class Stack:
    """LSTM nodes of one graph, each fed by the previous one's Y; ``label`` names it."""

    graph: Graph
    nodes: list[Node]
    index: int  # position of the first node in its graph
    label: str = ""

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


def upstream_lstm(graph: Graph, node: Node) -> Node | None:
    """The LSTM whose Y reaches ``node``'s X through layout-only operators, if any."""
    found = _feeder(graph, node)
    if found is None or found[0].op_type not in RECURRENT:
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
    """LSTM nodes of ``graph`` grouped into stacks: each node's X comes from the previous
    one's Y. Only nodes in ``lstms`` link; nodes left in no stack (LSTMs feeding each other in
    a cycle, which no valid graph has) come back as stacks of their own."""
    members = {id(n) for n in lstms}
    up = {}
    for n in lstms:
        u = upstream_lstm(graph, n)
        up[id(n)] = u if u is not None and id(u) in members and u is not n else None
    downs: dict[int, list[Node]] = {}
    for n in lstms:
        u = up[id(n)]
        if u is not None:
            downs.setdefault(id(u), []).append(n)
    out, placed = [], set()
    for n in lstms:
        u = up[id(n)]
        if u is not None and len(downs.get(id(u), [])) == 1:
            continue  # continues the stack of u
        stack, ids = [n], {id(n)}
        while len(nxt := downs.get(id(stack[-1]), [])) == 1 and len(stack) <= len(lstms):
            if id(nxt[0]) in placed or id(nxt[0]) in ids:
                break
            stack.append(nxt[0])
            ids.add(id(nxt[0]))
        placed.update(ids)
        out.append(stack)
    out.extend([n] for n in lstms if id(n) not in placed)  # a cycle: each node alone
    return out


def find_stacks(root: Graph) -> list[Stack]:
    """Every stack of LSTM nodes in every graph, labelled uniquely."""
    stacks: list[Stack] = []
    for graph in walk(root):
        index = {id(n): k for k, n in enumerate(graph.nodes)}
        lstms = [n for n in graph.nodes if n.op_type in RECURRENT]
        if lstms:
            stacks.extend(Stack(graph, s, index[id(s[0])]) for s in chains(graph, lstms))
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
            f"{file}: no LSTM node named or under {quote(prefix)}; choose one of {_listed(labels)}",
            option="prefix",
            choices=tuple(labels),
        )
    where = sum(1 for s in stacks if s.graph.parent is not None)
    inside = f", {where} in If/Loop/Scan subgraphs" if where else ""
    raise ChoiceRequired(
        f"{file}: holds {len(stacks)} separate LSTM stacks{inside} ({_listed(labels)}); "
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
