"""How the Keras LSTM layers found in a graph fit together: their order by data flow, which
read their input reversed (``go_backwards``), which pair up as a ``Bidirectional`` and how it
merges (``keras_graph``)."""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING

from lstmviz.core.model import MergeMode
from lstmviz.io.tensorflow.nodes import Graph

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.keras_graph import KerasCell

MAX_ANCESTORS = 200_000
MAX_DATA_PATH = 40


def under(name: str, scope: str) -> bool:
    """``name`` lies in ``scope``, also below an outer model scope (``sequential/lstm_1/…``
    for the layer ``lstm_1``, as traced SavedModel functions name their nodes)."""
    return name.startswith(scope + "/") or f"/{scope}/" in name


def reads_reversed(cell: KerasCell, fallback: Graph) -> bool:
    """Whether the cell's input runs through a ``ReverseV2`` (``go_backwards``): followed back
    along the data path (first inputs, out of loop bodies to their callers) to the sequence
    the layer was given."""
    graph, ref = cell.graph or fallback, cell.x_ref
    for _ in range(MAX_DATA_PATH):
        found = graph.resolve(ref)
        if found is None:
            return False
        graph, node = found
        if node.op == "ReverseV2":
            return True
        if node.op in ("Placeholder", "Split", "While", "StatelessWhile") or not node.inputs:
            return False
        ref = node.inputs[0]
    return False


def ancestor_scopes(graph: Graph, ref: str, scopes: list[str]) -> set[str]:
    """The other cells' scopes that ``ref`` depends on (bounded breadth-first walk, out
    through function arguments to the callers)."""
    seen: set[tuple[int, str]] = set()
    queue: deque[tuple[Graph, str]] = deque([(graph, ref)])
    out: set[str] = set()
    while queue and len(seen) < MAX_ANCESTORS:
        g, name = queue.popleft()
        found = g.resolve(name.lstrip("^"))
        if found is None or (id(found[0]), found[1].name) in seen:
            continue
        g, node = found
        seen.add((id(g), node.name))
        out.update(s for s in scopes if under(node.name, s))
        queue.extend((g, i) for i in node.inputs)
    return out


def pair(cells: list[KerasCell]) -> list[list[KerasCell]]:
    """One entry per layer: ``[cell]`` or, for a Bidirectional, ``[forward, backward]``."""
    out: list[list[KerasCell]] = []
    sides: dict[str, dict[str, KerasCell]] = {}
    for cell in cells:
        parent, _, last = cell.scope.rpartition("/")
        side = next((s for s in ("forward", "backward") if last.startswith(s + "_")), None)
        if side is None:
            out.append([cell])
        elif parent not in sides:
            sides[parent] = {side: cell}
            out.append([cell])
        else:
            sides[parent][side] = cell
    layers = []
    for group in out:
        parent = group[0].scope.rpartition("/")[0]
        pair = sides.get(parent, {})
        layers.append([pair["forward"], pair["backward"]] if len(pair) == 2 else group)
    return layers


#: Bidirectional's merge (tf_keras ``bidirectional.py``), as the op right under its scope
_MERGE_OPS = (
    ("ConcatV2", MergeMode.CONCAT),
    ("RealDiv", MergeMode.AVE),
    ("AddV2", MergeMode.SUM),
    ("Add", MergeMode.SUM),
    ("Mul", MergeMode.MUL),
)


def merge_mode(top: Graph, scope: str) -> MergeMode | None:
    """How a Bidirectional at ``scope`` merges: the op directly under it (``…/concat``,
    ``…/truediv`` of the sum for ave, ``…/add``, ``…/mul``)."""
    ops = {
        n.op
        for n in top.nodes.values()
        if (parent := n.name.rpartition("/")[0]) == scope or parent.endswith("/" + scope)
    }
    return next((mode for op, mode in _MERGE_OPS if op in ops), None)


def natural(text: str) -> tuple:
    """``lstm_2`` before ``lstm_10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))
