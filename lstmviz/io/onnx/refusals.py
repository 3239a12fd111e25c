"""What an ONNX file without an LSTM node is, said in one line (issue 12 item 9).

A GRU or RNN model, an LSTM cell written out as Gemm/MatMul + Sigmoid + Tanh nodes (torch
exports ``nn.LSTMCell`` so, and silero-vad ships such a file), a recurrence lowered to
``Scan``/``Loop``, a quantized operator lstmviz does not read, or a graph of other ops: the
message names the kind and the nodes, looking into every subgraph. Names come from the file,
so each is quoted and bounded (``proto.quote``) and lists are cut short.
"""

from __future__ import annotations

from collections import Counter

from lstmviz.io.onnx.proto import Graph, Node, quote, walk

#: Recurrent ops of ONNX that are not an LSTM.
OTHER_RNNS = {"GRU": "GRU", "RNN": "plain RNN"}
#: The recurrent nodes lstmviz opens, as refusals name them.
NODES = "LSTM, GRU or RNN"
#: Quantized ops (ONNX and com.microsoft) that lstmviz does not fold into weights.
QUANTIZED = frozenset(
    {
        "DynamicQuantizeMatMul",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "QLinearMatMul",
        "QGemm",
        "QAttention",
        "MatMulNBits",
        "ConvInteger",
        "QLinearConv",
        "DynamicQuantizeLinear",
    }
)
#: Ops that may sit between a gate pre-activation's MatMul/Gemm and its Sigmoid/Tanh.
_GATE_PATH = frozenset({"Split", "Slice", "Add", "Gemm", "MatMul", "Identity", "Reshape"})
_MATMULS = frozenset({"Gemm", "MatMul"}) | QUANTIZED
LISTED = 4


def _names(nodes: list[Node], listed: int = LISTED) -> str:
    shown = ", ".join(quote(n.name or n.op_type, 40) for n in nodes[:listed])
    return shown + (f" and {len(nodes) - listed} more" if len(nodes) > listed else "")


class _Search:
    """Looks for gate activations fed by a MatMul/Gemm, within a total step budget so a graph
    of 100,000 Sigmoids costs a bounded amount of work (then the generic message is used)."""

    BUDGET = 100_000

    def __init__(self) -> None:
        self.steps = 0

    def from_matmul(self, graph: Graph, node: Node) -> bool:
        """True if ``node``'s input comes from a MatMul/Gemm through gate-slicing ops."""
        todo = [(node, 0)]
        while todo and self.steps < self.BUDGET:
            current, depth = todo.pop()
            self.steps += 1
            for name in current.inputs[:2]:
                producer = graph.producer(name) if name else None
                if producer is None:
                    continue
                if producer.op_type in _MATMULS:
                    return True
                if producer.op_type in _GATE_PATH and depth < 4:
                    todo.append((producer, depth + 1))
        return False

    def written_out(self, graphs: list[Graph]) -> tuple[Graph, list[Node]] | None:
        """Gemm/MatMul, Sigmoid and Tanh nodes of an LSTM cell written out op by op, if
        found, and the graph holding them."""
        for graph in graphs:
            sig = [n for n in graph.nodes if n.op_type == "Sigmoid" and self.from_matmul(graph, n)]
            tanh = [n for n in graph.nodes if n.op_type == "Tanh" and self.from_matmul(graph, n)]
            if sig and tanh:
                mats = [n for n in graph.nodes if n.op_type in _MATMULS]
                return graph, mats[:1] + sig[:1] + tanh[:1] + mats[1:] + sig[1:] + tanh[1:]
            if self.steps >= self.BUDGET:
                break
        return None


def no_lstm_message(file: str, root: Graph) -> str:
    """One line saying what the graph holds instead of an LSTM node."""
    graphs = walk(root)
    counts: Counter[str] = Counter(n.op_type for g in graphs for n in g.nodes)
    top = ", ".join(f"{op} ×{k}" if k > 1 else op for op, k in counts.most_common(8))
    ops = f"ops: {top}{', ...' if len(counts) > 8 else ''}" if counts else "an empty graph"
    for op, kind in OTHER_RNNS.items():
        found = [n for g in graphs for n in g.nodes if n.op_type == op]
        if found:
            return (
                f"{file}: an ONNX {op} node ({_names(found, 2)}): a {kind}, not an LSTM; "
                f"lstmviz opens LSTMs ({ops})"
            )
    quantized = sorted({op for op in counts if op in QUANTIZED})
    found = _Search().written_out(graphs)
    if found is not None and found[0].owner_op in ("Loop", "Scan"):
        graph, cell = found
        return (
            f"{file}: ONNX graph has no {NODES} node: the recurrence is a {graph.owner_op} whose "
            f"body computes the cell with Gemm/MatMul, Sigmoid and Tanh nodes ({_names(cell, 3)}); "
            f"lstmviz reads {NODES} nodes: convert with the layer kept as one node (tf2onnx's "
            "LSTM/GRU rewriters, torch's nn.LSTM/nn.GRU/nn.RNN)"
        )
    if found is not None:
        cell = found[1]
        quant = f" with quantized {', '.join(quantized[:3])}" if quantized else ""
        return (
            f"{file}: ONNX graph has no {NODES} node (the cell is written out as Gemm/MatMul, "
            f"Sigmoid and Tanh nodes{quant}: {_names(cell, 3)}); lstmviz reads {NODES} nodes: "
            "export the nn.LSTM/nn.GRU/nn.RNN layer rather than a cell called step by step, "
            "or open the PyTorch state_dict"
        )
    if quantized:
        return (
            f"{file}: ONNX graph has no {NODES} node but quantized {', '.join(quantized[:4])} "
            f"nodes, which lstmviz does not read ({ops}); it reads {NODES} and "
            "DynamicQuantizeLSTM nodes"
        )
    if {"Scan", "Loop"} & set(counts):
        return (
            f"{file}: ONNX graph has no {NODES} node; its recurrence is lowered to Scan/Loop "
            f"({ops}); export with dynamo=False so the layer stays one node"
        )
    return f"{file}: ONNX graph has no {NODES} node ({ops}); lstmviz shows recurrent layers only"
