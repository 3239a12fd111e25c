"""ONNX models: the ``LSTM`` nodes of one stack become layers (CONVENTIONS.md §3.6).

The file is decoded by field number (``onnx_proto``), so neither the ``onnx`` nor the
``protobuf`` package is needed, and tensors stored in ``raw_data`` are read in place: loading
costs one read of the file plus one copy of the reordered gates. Sniffing walks the first
top-level fields of ``ModelProto`` (``ir_version`` varint first, a ``graph`` field 7 after).

ONNX stores ``W [dirs, 4H, D]``, ``R [dirs, 4H, H]``, ``B [dirs, 8H]`` (``Wb`` then ``Rb``) and
``P [dirs, 3H]`` with gates in order i, o, f, c (peepholes i, o, f); index 0 of ``dirs`` is the
forward direction. Biases are summed, blocks reordered to i, f, g, o. Weights must be
initializers or ``Constant`` outputs, possibly reshaped or reordered by layout-only nodes
(``fold``), dequantized (``DequantizeLinear``) or cast from float16; anything computed by
other nodes is refused by name. LSTM nodes are stacked when one's Y feeds the next one's X;
separate stacks, including those in ``If``/``Loop``/``Scan`` subgraphs (``stacks``), are
chosen with ``prefix=``. onnxruntime's ``DynamicQuantizeLSTM`` is read dequantized
(``quantized``); a file without an LSTM is described (``refusals``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from lstmviz.core.model import (
    LayerInfo,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
)
from lstmviz.io.errors import LoadError
from lstmviz.io.onnx import quantized
from lstmviz.io.onnx.fold import Folder, NotConstant, input_notes
from lstmviz.io.onnx.layer import activations, onnx_layer
from lstmviz.io.onnx.proto import Graph, GraphTooDeep, Model, Node, parse_model, quote, sniff, walk
from lstmviz.io.onnx.refusals import no_lstm_message
from lstmviz.io.onnx.stacks import RECURRENT, Stack, choose_stack, embedding, find_stacks
from lstmviz.io.onnx.states import initial_states
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.wire import protowire

SOURCE_FORMAT = "ONNX"
WIDE = {"float32", "float64"}
MAX_PROTO = 2**31  # protobuf cannot hold more; bigger weights must be external data
#: TensorProto data types of floating-point weights (a node holding one is listed).
_FLOATS = frozenset({1, 10, 11, 16})
#: LSTMs of other subgraphs whose weights are folded to list their shapes.
MAX_FOLDED_OTHERS = 16
#: Ops that fold quantized weights, and how the provenance says so.
_DEQUANT = {"DequantizeLinear", "QuantizeLinear"}


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _float(arr: np.ndarray, what: str, name: str, file: str) -> np.ndarray:
    """Weights as float32/float64 (float16 widened); anything else refused."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
    raise LoadError(
        f"{file}: {what} ({quote(name)}) has dtype {arr.dtype}; recurrent weights must be "
        "floating point (quantized weights are read through DequantizeLinear)"
    )


def _weights(
    folder: Folder, node: Node, where: str, name: str, arrays: dict, owned: set[str]
) -> dict[str, tuple[np.ndarray, str]]:
    """W, R and the optional B, P of one LSTM node, folded through layout-only nodes
    (``arrays`` already read, e.g. dequantized W and R, are kept). The keys of arrays this
    node alone holds (``Folder.take``, or widened here) are added to ``owned``."""
    inputs = list(node.inputs) + [""] * 8
    if not inputs[1] or not inputs[2]:
        raise LoadError(f"{where} lacks its W or R input")
    arrays = dict(arrays)
    for key, k in (("W", 1), ("R", 2), ("B", 3), ("P", 7)):
        if not inputs[k] or key in arrays:
            continue
        what = f"{name} input {key}"
        try:
            value, mine = folder.take(inputs[k], what)
        except NotConstant as exc:
            raise LoadError(
                f"{where} input {key} ({quote(inputs[k])}) is not stored in the file: it "
                f"depends on {exc.reason}; lstmviz reads recurrent weights stored as initializers "
                "or Constant nodes (re-export with constant folding on)"
            ) from exc
        widened = _float(value, what, inputs[k], folder.file)
        arrays[key] = (widened, inputs[k])
        if mine or widened is not value:
            owned.add(key)
    return arrays


def _lstm_layer(folder: Folder, node: Node, label: str, framework: str) -> LSTMLayer:
    name = label
    where = f"{folder.file}: {quote(name)}"
    if node.op_type in ("GRU", "RNN"):
        from lstmviz.io.onnx import gru  # imports this module

        return gru.node_layer(folder, node, name, where, framework)
    attrs = node.attrs
    if int(attrs.get("input_forget", 0)):
        raise LoadError(
            f"{where} has input_forget=1 (input and forget gates coupled), which lstmviz does "
            "not support; re-export it with input_forget=0"
        )
    direction = _text(attrs.get("direction", b"forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise LoadError(
            f"{where} has direction {direction!r}; expected forward|reverse|bidirectional"
        )
    dirs = 2 if direction == "bidirectional" else 1
    stored: dict[str, quantized.Stored] = {}
    q_transforms: list[str] = []
    owned: set[str] = set()
    if node.op_type == quantized.OP:
        deq, stored, q_transforms = quantized.dequantized(folder, node, where)
        owned.update(deq)  # made here, held by nobody else
        arrays = _weights(folder, node, where, name, deq, owned)
    else:
        arrays = _weights(folder, node, where, name, {}, owned)
        stored = quantized.qdq_sources(folder, arrays)
    folder.charge_layer([a for a, _ in arrays.values()], where)
    W = arrays["W"][0]
    H = W.shape[1] // 4 if W.ndim == 3 else -1
    if int(attrs.get("hidden_size", H)) != H:
        raise LoadError(
            f"{where}: hidden_size={attrs['hidden_size']} but W has shape "
            f"{W.shape}, expected ({dirs}, 4 * hidden_size, D)"
        )
    acts, act_setting = activations(attrs, dirs, where)
    clip = attrs.get("clip")
    if clip is not None and not clip > 0:
        raise LoadError(f"{where} has clip={clip}; a clip threshold must be positive")
    settings = (
        act_setting,
        Setting("direction", direction, assumed="direction" not in attrs),
        Setting("clip", clip, assumed=clip is None, note="clips each activation's argument"),
        Setting(
            "layout",
            int(attrs.get("layout", 0)),
            assumed="layout" not in attrs,
            note="arrangement of X/Y only; weights are the same",
        ),
        Setting("input_forget", 0, assumed="input_forget" not in attrs),
    )
    dtypes = {}
    for _, n in arrays.values():
        if (init := folder.initializer(n)) is not None and n not in stored:
            dtypes[n] = init.dtype_name
    transforms = [f"{d} widened to float32" for d in sorted({*dtypes.values()} - WIDE)]
    transforms += q_transforms
    folded = [n for _, n in arrays.values() if folder.initializer(n) is None]
    if folded:
        ops = ", ".join(sorted(folder.used_ops)) or "Constant"
        names = ", ".join(quote(n, 60) for n in folded)
        transforms.append(f"{names} folded from constants through {ops} nodes")
    if _DEQUANT & folder.used_ops:
        transforms.append(
            "quantized weights dequantized by DequantizeLinear: (q - zero_point) * scale"
        )
    if folder.graph.parent is not None:
        transforms.append(f"read from the subgraph {quote(folder.graph.path, 120)}")
    states = initial_states(folder, node, dirs, H, int(attrs.get("layout", 0)), where)
    base = Provenance(
        framework=framework,
        source_format=SOURCE_FORMAT,
        transforms=(*transforms, *states.transforms),
        settings=(*settings, *states.settings),
        notes=(
            *input_notes(node),
            *states.notes,
            *([quantized.NOTE] if node.op_type == quantized.OP else []),
        ),
    )
    layer = onnx_layer(name, where, arrays, direction, acts, clip, base, dtypes, stored, owned)
    if not states.transforms:
        return layer
    directions = tuple(
        w.replace(h0=states.h0[d], c0=states.c0[d]) for d, w in enumerate(layer.directions)
    )
    return dataclasses.replace(layer, directions=directions)


def _unit_layer(
    folder: Folder, nodes: list[Node], name: str, label: Callable[[Node], str], framework: str
) -> LSTMLayer:
    """One layer from one LSTM node, or from a forward and a backward node (``stacks.Unit``)."""
    forward = _lstm_layer(folder, nodes[0], name, framework)
    if len(nodes) == 1:
        return forward
    back = _lstm_layer(folder, nodes[1], label(nodes[1]), framework).directions[0]
    prov = back.provenance
    how = (
        f"backward direction from node {quote(label(nodes[1]), 60)}: X reversed in time by a "
        "Slice and its Y reversed back"
        if _text(nodes[1].attrs.get("direction", b"forward")) == "forward"
        else f"backward direction from node {quote(label(nodes[1]), 60)} (direction=reverse)"
    )
    settings = tuple(
        Setting("direction", "reverse (backward half of a bidirectional pair)", assumed=False)
        if st.name == "direction"
        else st
        for st in prov.settings
    )
    back = back.replace(
        reverse=True,
        provenance=dataclasses.replace(
            prov,
            settings=settings,
            transforms=(*prov.transforms, f"{how}; joined to the forward node by a Concat"),
        ),
    )
    return LSTMLayer(
        name=name,
        directions=(forward.directions[0], back),
        merge_mode=MergeMode.CONCAT,
        output_order=OutputOrder.TIME,
        kind=f"{nodes[0].op_type} (bidirectional, two nodes)",
    )


def _node_info(
    folder: Folder, node: Node, name: str, note: str = "", scope: Graph | None = None
) -> LayerInfo:
    """A node as listed in the model tree, with the shapes of its stored (or folded) inputs;
    an LSTM of another graph (``scope``) has its weights folded there to know their shapes."""
    shapes = [(n, folder.shape(n)) for n in node.inputs[1:] if n]
    if scope is not None:
        shapes = [(n, _folded_shape(folder, n, scope)) for n in node.inputs[1:4] if n]
    weights = tuple((n, s) for n, s in shapes if s is not None)
    is_lstm = node.op_type in RECURRENT  # LSTM, GRU, RNN: lstmviz runs it
    note = note or "not run by lstmviz"
    return LayerInfo(name=name, kind=node.op_type, weights=weights, is_lstm=is_lstm, note=note)


def _folded_shape(folder: Folder, name: str, scope: Graph) -> tuple[int, ...] | None:
    try:
        return tuple(folder.value(name, "weights of another LSTM", scope=scope).shape)
    except (NotConstant, LoadError):
        return None


def _read(probe: Probe) -> Model:
    file = probe.name
    if probe.size >= MAX_PROTO:
        raise LoadError(
            f"{file}: {probe.size} bytes is over protobuf's 2 GB limit; save the weights as "
            "ONNX external data"
        )
    try:
        data = probe.path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{file}: cannot read file ({exc.strerror or exc})") from exc
    try:
        return parse_model(data)
    except GraphTooDeep as exc:
        raise LoadError(
            f"{file}: ONNX graph has {exc} (If/Loop/Scan inside each other); no exporter "
            "writes that, so the file is damaged or crafted"
        ) from exc
    except RecursionError as exc:
        raise LoadError(f"{file}: ONNX graph is nested too deeply to read") from exc
    except protowire.ProtoError as exc:
        raise LoadError(
            f"{file}: truncated or damaged ONNX file ({exc}); re-export or re-download it"
        ) from exc


def _check_names(file: str, model: Model) -> None:
    """Refuse a graph that defines a name twice, as onnxruntime does (SSA form)."""
    for graph in walk(model.graph):
        if graph.duplicates:
            where = f"subgraph {quote(graph.path, 60)}" if graph.parent else "graph"
            raise LoadError(
                f"{file}: ONNX {where} defines {quote(graph.duplicates[0])} more than once "
                "(two nodes, or a node and an initializer); onnxruntime refuses such a graph: "
                "re-export the model"
            )


#: Nodes the model tree lists (a crafted graph of 50,000 LSTMs took 0.65 s to describe, and a
#: tree of that many rows helps nobody); the rest are counted in one last row.
MAX_LISTED = 2_000


def _infos(folder: Folder, stacks: list[Stack], chosen: Stack) -> list[LayerInfo]:
    """The model tree: the chosen graph's nodes that hold weights, and every LSTM stack."""
    graph = folder.graph
    stack_of = {id(n): s for s in stacks for n in s.nodes}

    def note(n: Node) -> str:
        stack = stack_of.get(id(n))
        if stack is None:
            return ""
        if stack is chosen:
            return "shown"
        return f"not shown; load with prefix={stack.label!r}"

    infos: list[LayerInfo] = []
    skipped = 0
    for k, n in enumerate(graph.nodes):
        if id(n) in folder.folded_nodes:
            continue  # Slice/Concat/Transpose... that only rearranged an LSTM's weights
        if n.op_type in RECURRENT or any(
            (t := graph.initializers.get(i)) is not None and t.data_type in _FLOATS
            for i in n.inputs
        ):
            if len(infos) >= MAX_LISTED:
                skipped += 1
                continue
            stack = stack_of.get(id(n))
            name = n.name or f"{n.op_type} node {k}"
            if stack is not None and n is stack.nodes[0]:
                name = stack.label
            infos.append(_node_info(folder, n, name, note(n)))
    others = [s for s in stacks if s.graph is not graph]
    for k, s in enumerate(others):
        if len(infos) >= MAX_LISTED:
            skipped += len(s.nodes)
            continue
        scope = s.graph if k < MAX_FOLDED_OTHERS else None  # a hostile file may hold 20,000
        infos.extend(
            _node_info(folder, n, s.label if j == 0 else n.name or n.op_type, note(n), scope)
            for j, n in enumerate(s.nodes)
        )
    if skipped:
        infos.append(LayerInfo(f"{skipped} more nodes", "…", note="not listed"))
    return infos


def load(probe: Probe, prefix: str | None = None) -> LSTMModel:
    """Read the LSTM nodes that feed each other (``prefix`` picks a stack, in any graph)."""
    file = probe.name
    model = _read(probe)
    _check_names(file, model)
    framework = f"ONNX opset {model.opset}" + (f" ({model.producer})" if model.producer else "")
    stacks = find_stacks(model.graph)
    if not stacks:
        raise LoadError(no_lstm_message(file, model.graph))
    chosen = choose_stack(stacks, prefix, file)
    folder = Folder(chosen.graph, probe.path.parent, file)
    index = {id(n): k for k, n in enumerate(chosen.graph.nodes)}

    def label(n: Node) -> str:
        return n.name or f"{n.op_type} node {index[id(n)]}"

    layers = tuple(
        _unit_layer(folder, u.nodes, label(u.nodes[0]) if k else chosen.label, label, framework)
        for k, u in enumerate(chosen.units)
    )
    infos = _infos(folder, stacks, chosen)
    graph = chosen.graph
    folded = {id(n) for n in graph.nodes if id(n) in folder.folded_nodes}
    others = sorted(
        {n.op_type for n in graph.nodes if n.op_type not in (*RECURRENT, "Constant")}
        - {n.op_type for n in graph.nodes if id(n) in folded}
    )
    notes = []
    kinds = sorted({"LSTM" if n.op_type.endswith("LSTM") else n.op_type for n in chosen.nodes})
    run = "LSTM" if kinds == ["LSTM"] else "/".join(kinds)  # GRU, RNN, mixed stacks
    if others:
        notes.append(
            f"only the {run} nodes are run; other nodes "
            f"({', '.join(others[:8])}{', ...' if len(others) > 8 else ''}) are not"
        )
    what = f"{run} stack" if "/" in run else run  # "the LSTM" as always, "the GRU"
    if graph.parent is not None:
        notes.append(f"the {what} is in the subgraph {quote(graph.path, 120)}")
    if graph.owner_op in ("Loop", "Scan"):
        notes.append(
            f"onnxruntime runs this {graph.owner_op} body once per iteration; lstmviz runs "
            f"the {what} once, on the sequence it is given"
        )
    table = embedding(folder, chosen.nodes[0], layers[0].input_size, notes)
    try:
        return LSTMModel(
            layers=layers,
            source_path=str(probe.path),
            source_format=SOURCE_FORMAT,
            framework=framework,
            all_layers=tuple(infos),
            embedding=table,
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{file}: the stacked {run} nodes do not fit together ({exc})") from exc


READER = Reader(name="ONNX", sniff=sniff, load=load, options=("prefix",))
