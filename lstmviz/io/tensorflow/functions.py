"""Function bodies of a GraphDef's library, instantiated at their call sites.

Under TF2's control flow v2 (the default of ``tf.compat.v1`` graph code run by TF 2.x) a
``dynamic_rnn`` loop is a ``While``/``StatelessWhile`` op whose ``body`` attr names a
``FunctionDef`` in ``graph_def.library`` (tensorflow/core/framework/function.proto:
FunctionDefLibrary.function = 1; FunctionDef signature = 1 (OpDef: name = 1, input_arg = 2,
ArgDef.name = 1), node_def = 3, ret = 4). The cell's ops live in that body, so its constants
are found only there. Inside a body a NodeDef input is ``node:output_arg:index`` or a bare
argument name; argument ``k`` is the caller's data input ``k`` (``If``/``Case``: ``k + 1``,
after the predicate or branch index). Each call site becomes a :class:`Graph` whose arguments
lead back to the caller's graph, so a kernel read inside the body resolves to the top-level
variable. Nesting, instances and nodes are bounded: a hostile library cannot hang the reader,
it only leaves settings unresolved (assumed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from lstmviz.io.tensorflow.nodes import Graph, Node, parse_node
from lstmviz.io.wire import protowire as pw

MAX_DEPTH = 8  # While inside While inside a tf.function is 3; 8 is generous
MAX_INSTANCES = 256
MAX_NODES = 250_000  # summed over instances: each one builds its own consumer map
#: Attrs that name a function: While/If/Case/PartitionedCall and friends.
_FUNC_ATTRS = frozenset({"body", "cond", "then_branch", "else_branch", "branches", "f"})
#: Ops whose first data input is not passed to the function (predicate, branch index).
_SKIP_FIRST = frozenset({"If", "StatelessIf", "_If", "Case", "StatelessCase"})


@dataclass
class Function:
    name: str
    args: list[str]
    nodes: list[Node]


def library(graph_def: pw.Fields) -> dict[str, memoryview]:
    """Function name → its raw FunctionDef (``GraphDef.library`` = field 2)."""
    out: dict[str, memoryview] = {}
    for raw in pw.get_message(graph_def, 2).get(1, ()):
        if isinstance(raw, memoryview):
            name = pw.get_string(pw.get_message(pw.parse(raw), 1), 1)
            if name:
                out.setdefault(name, raw)
    return out


def _function(raw: memoryview) -> Function:
    fields = pw.parse(raw)
    signature = pw.get_message(fields, 1)
    # a malformed ArgDef keeps its place, so later arguments still match their inputs
    args = [
        pw.get_string(pw.parse(a), 1) if isinstance(a, memoryview) else ""
        for a in signature.get(2, ())
    ]
    nodes = [parse_node(n) for n in fields.get(3, ()) if isinstance(n, memoryview)]
    return Function(pw.get_string(signature, 1), args, [n for n in nodes if n.name and n.op])


def _called(node: Node, names: dict[str, memoryview]) -> list[str]:
    """The library functions ``node`` calls: through func attrs, or as its op name."""
    found = [node.op] if node.op in names else []
    for key, raw in node.attrs.items():
        if key not in _FUNC_ATTRS:
            continue
        attr = pw.parse(raw)
        funcs = [pw.get_bytes(attr, 10)]  # AttrValue.func (NameAttrList)
        funcs += pw.get_message(attr, 1).get(9, [])  # AttrValue.list.func (Case branches)
        for func in funcs:
            if isinstance(func, memoryview):
                name = pw.get_string(pw.parse(func), 1)
                if name in names:
                    found.append(name)
    return found


class Instances:
    """Every function body reachable from the top graph, one :class:`Graph` per call site."""

    def __init__(
        self,
        top: Graph,
        names: dict[str, memoryview],
        parsed: dict[str, Function] | None = None,
    ) -> None:
        """``parsed``: decoded function bodies shared with other walks of the same library."""
        self.top, self.names = top, names
        self.truncated = ""
        self._parsed: dict[str, Function] = {} if parsed is None else parsed

    def __iter__(self) -> Iterator[Graph]:
        if not self.names:  # a TF1 graph: no library, nothing called (and no attr decoded)
            return
        queue: deque[tuple[Graph, int]] = deque([(self.top, 0)])
        instances = nodes = 0
        while queue:
            graph, depth = queue.popleft()
            for caller in list(graph.nodes.values()):
                for name in _called(caller, self.names):
                    if depth >= MAX_DEPTH:
                        self.truncated = f"function calls nested deeper than {MAX_DEPTH}"
                        continue
                    func = self._get(name)
                    instances, nodes = instances + 1, nodes + len(func.nodes)
                    if instances > MAX_INSTANCES or nodes > MAX_NODES:
                        self.truncated = (
                            f"more than {MAX_INSTANCES} function calls or {MAX_NODES} nodes"
                        )
                        return
                    body = _instantiate(func, caller, graph)
                    yield body
                    queue.append((body, depth + 1))

    def _get(self, name: str) -> Function:
        if name not in self._parsed:
            self._parsed[name] = _function(self.names[name])
        return self._parsed[name]


def _instantiate(func: Function, caller: Node, graph: Graph) -> Graph:
    inputs = caller.inputs[1:] if caller.op in _SKIP_FIRST else caller.inputs
    args = {arg: ref for arg, ref in zip(func.args, inputs, strict=False) if arg}
    return Graph(func.nodes, args=args, parent=graph, name=func.name)
