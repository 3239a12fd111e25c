"""ONNX models: every ``LSTM`` node of the main graph becomes a layer (CONVENTIONS.md §3.6).

The ``onnx`` package is an optional extra and is imported only inside ``load``; sniffing walks
the first top-level protobuf fields of ``ModelProto`` by hand (``ir_version`` varint first, a
``graph`` field 7 somewhere after), so an ONNX file is recognised even without the package.

ONNX stores ``W [dirs, 4H, D]``, ``R [dirs, 4H, H]``, ``B [dirs, 8H]`` (``Wb`` then ``Rb``) and
``P [dirs, 3H]`` with gates in order i, o, f, c (peepholes i, o, f); index 0 of ``dirs`` is the
forward direction. Biases are summed, blocks reordered to i, f, g, o. Weights must be
initializers or ``Constant`` outputs: anything computed by other nodes is refused by name.
External data is read only from inside the model's folder.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.io import protowire
from lstmviz.io.convert import PERMS, reorder_gates
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader

SOURCE_FORMAT = "ONNX"
GATE_ORDER = ("i", "o", "f", "c")
PERM = PERMS[GATE_ORDER]
MAX_PROTO = 2**31  # protobuf cannot hold more; bigger weights must be external data
#: ModelProto top-level fields → wire type (1 ir_version ... 7 graph, 8 opset_import ...).
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
#: First byte of a GraphProto: node, name, initializer, doc_string, input, output, value_info.
_GRAPH_TAGS = frozenset(b"\x0a\x12\x2a\x52\x5a\x62\x6a")

#: ONNX activation names (matched case-insensitively, as onnxruntime does) → lstmviz names.
ACTIVATIONS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "hardsigmoid": "hard_sigmoid_ab",
    "affine": "affine",
    "leakyrelu": "leaky_relu",
    "thresholdedrelu": "thresholded_relu",
    "scaledtanh": "scaled_tanh",
    "elu": "elu",
    "softsign": "softsign",
    "softplus": "softplus",
}
#: Which activations consume ``activation_alpha`` / ``activation_beta`` entries (in order).
_USES_ALPHA = {"hardsigmoid", "affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "elu"}
_USES_BETA = {"hardsigmoid", "affine", "scaledtanh"}
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
_NOT_LSTM = {"GRU": "GRU, not an LSTM", "RNN": "RNN, not an LSTM"}


def sniff(probe: Probe) -> bool:
    """A ModelProto: ``ir_version`` (tag 0x08) first, then known fields, including a graph."""
    head = probe.head
    if probe.is_dir or probe.is_hdf5 or probe.is_zip or not head.startswith(b"\x08"):
        return False
    pos, seen_graph = 0, False
    try:
        while pos < len(head):
            key, pos = protowire.read_varint(head, pos)
            field, wire = key >> 3, key & 7
            if _MODEL_FIELDS.get(field) != wire:
                return False
            value, pos = protowire.read_varint(head, pos)
            if field == 1 and not 1 <= value <= 100:
                return False
            if wire == protowire.LEN:
                if pos + value > probe.size:  # a truncated ONNX file, if a graph starts here
                    return field == 7 and pos < len(head) and head[pos] in _GRAPH_TAGS
                seen_graph = seen_graph or field == 7
                pos += value
        return seen_graph
    except protowire.ProtoError:  # the head ended inside a varint: judge what we saw
        return seen_graph


def _import_onnx(file: str) -> Any:
    try:
        import onnx
        import onnx.numpy_helper  # loads the submodule used as onnx.numpy_helper
    except ImportError as exc:
        raise LoadError(
            f"{file}: reading ONNX needs the onnx package; pip install 'lstmviz[onnx]'"
        ) from exc
    return onnx


class _Graph:
    """Name → tensor lookup over initializers, Constant nodes and (refused) computed values."""

    def __init__(self, onnx: Any, model: Any, path: Path) -> None:
        self.onnx, self.path, self.file = onnx, path, path.name
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {out: node for node in graph.node for out in node.output if out}
        self.inputs = {i.name for i in graph.input}

    def array(self, name: str, what: str, depth: int = 0) -> tuple[np.ndarray, str]:
        """The value of ``name`` as float array, and the name of the tensor holding it."""
        if name in self.initializers:
            return self._tensor(self.initializers[name], what), name
        node = self.producers.get(name)
        if node is not None and node.op_type == "Constant" and depth < 16:
            return self._constant(node, what), name
        if node is not None and node.op_type == "Identity" and node.input and depth < 16:
            return self.array(node.input[0], what, depth + 1)
        if node is not None:
            raise LoadError(
                f"{self.file}: {what} ({name!r}) is computed at run time by a {node.op_type} "
                "node; lstmviz reads LSTM weights stored as initializers or Constant nodes"
            )
        if name in self.inputs:
            raise LoadError(
                f"{self.file}: {what} ({name!r}) is a graph input fed at run time; "
                "lstmviz needs the weights stored in the file (as initializers)"
            )
        raise LoadError(f"{self.file}: {what} ({name!r}) is not defined anywhere in the graph")

    def _constant(self, node: Any, what: str) -> np.ndarray:
        for attr in node.attribute:
            if attr.name == "value":
                return self._tensor(attr.t, what)
            if attr.name in ("value_float", "value_floats"):
                return np.asarray(self.onnx.helper.get_attribute_value(attr), dtype=np.float32)
        raise LoadError(f"{self.file}: {what} comes from a Constant node without a float value")

    def _tensor(self, t: Any, what: str) -> np.ndarray:
        dims = [int(d) for d in t.dims]
        if any(d < 0 for d in dims) or math.prod(dims) > 1 << 34:
            raise LoadError(f"{self.file}: {what} ({t.name!r}) has absurd dims {dims}")
        try:
            if t.data_location == self.onnx.TensorProto.EXTERNAL:
                arr = self._external(t, dims, what)
            else:
                arr = self.onnx.numpy_helper.to_array(t)
        except LoadError:
            raise
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LoadError(f"{self.file}: {what} ({t.name!r}) is damaged ({detail})") from exc
        if arr.dtype.kind == "f":
            return arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
        if arr.dtype.name.startswith("bfloat16"):
            return arr.astype(np.float32)
        raise LoadError(
            f"{self.file}: {what} ({t.name!r}) has dtype {arr.dtype}; LSTM weights must be "
            "floating point"
        )

    def _external(self, t: Any, dims: list[int], what: str) -> np.ndarray:
        """Raw little-endian bytes from a file next to the model, never outside its folder."""
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        base = self.path.resolve().parent
        rel = Path(location)
        target = (base / rel).resolve()
        if not location or rel.is_absolute() or ".." in rel.parts or base not in target.parents:
            raise LoadError(
                f"{self.file}: {what} ({t.name!r}) points to external data {location!r} outside "
                "the model's folder; lstmviz reads external data only from beside the model"
            )
        dtype = np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).newbyteorder("<")
        offset = int(info.get("offset", 0) or 0)
        need = math.prod(dims) * dtype.itemsize
        length = int(info.get("length", need) or need)
        if not target.is_file():
            raise LoadError(f"{self.file}: external data file {location!r} for {what} is missing")
        size = target.stat().st_size
        if length != need or offset < 0 or offset + length > size:
            raise LoadError(
                f"{self.file}: {what} ({t.name!r}) needs {need} bytes at offset {offset} of "
                f"{location!r} ({size} bytes, length {length}); the data file is truncated "
                "or does not match"
            )
        with target.open("rb") as fh:
            fh.seek(offset)
            raw = fh.read(need)
        return np.frombuffer(raw, dtype=dtype).reshape(dims)


def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _activations(
    attrs: dict[str, Any], dirs: int, where: str
) -> tuple[list[tuple[Activation, Activation, Activation]], Setting]:
    """Three activations per direction; alpha/beta are consumed only by functions that use
    them, in order, as onnxruntime does (defaults otherwise)."""
    given = [_text(n) for n in attrs.get("activations", [])]
    names = given or list(DEFAULT_ACTIVATIONS) * dirs
    if len(names) != 3 * dirs:
        raise LoadError(f"{where} has {len(names)} activations; expected 3 per direction")
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    acts = []
    for name in names:
        key = name.lower()
        if key not in ACTIVATIONS:
            raise LoadError(
                f"{where} uses activation {name!r}; lstmviz knows {', '.join(sorted(ACTIVATIONS))}"
            )
        alpha = alphas.pop(0) if key in _USES_ALPHA and alphas else None
        beta = betas.pop(0) if key in _USES_BETA and betas else None
        acts.append(Activation(ACTIVATIONS[key], alpha, beta))
    per_dir = [(acts[3 * d], acts[3 * d + 1], acts[3 * d + 2]) for d in range(dirs)]
    text = "; ".join(", ".join(str(a) for a in trio) for trio in per_dir)
    note = "f (gates), g (candidate), h (cell output)"
    return per_dir, Setting("activations", text, assumed=not given, note=note)


def _lstm_layer(graph: _Graph, node: Any, index: int, framework: str) -> LSTMLayer:
    name = node.name or f"LSTM node {index}"
    where = f"{graph.file}: {name}"
    attrs = _attributes(graph.onnx, node)
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
    inputs = list(node.input) + [""] * 8
    if not inputs[1] or not inputs[2]:
        raise LoadError(f"{where} lacks its W or R input")
    arrays = {
        key: graph.array(inputs[k], f"{name} input {key}")
        for key, k in (("W", 1), ("R", 2), ("B", 3), ("P", 7))
        if inputs[k]
    }
    H = arrays["W"][0].shape[1] // 4 if arrays["W"][0].ndim == 3 else -1
    if int(attrs.get("hidden_size", H)) != H:
        raise LoadError(
            f"{where}: hidden_size={attrs['hidden_size']} but W has shape "
            f"{arrays['W'][0].shape}, expected ({dirs}, 4 * hidden_size, D)"
        )
    notes = [
        f"{what} is stored in the file; lstmviz starts from zero states"
        for k, what in ((5, "initial_h"), (6, "initial_c"))
        if inputs[k] and inputs[k] in graph.initializers
    ]
    acts, act_setting = _activations(attrs, dirs, where)
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
    base = Provenance(
        framework=framework, source_format=SOURCE_FORMAT, settings=settings, notes=tuple(notes)
    )
    return onnx_layer(name, where, arrays, direction, acts, clip, base)


def onnx_layer(
    name: str,
    where: str,
    arrays: dict[str, tuple[np.ndarray, str]],
    direction: str,
    acts: list[tuple[Activation, Activation, Activation]],
    clip: float | None,
    base: Provenance,
) -> LSTMLayer:
    """One layer from ONNX-layout ``arrays`` {"W", "R", optional "B", "P": (array, name)}.

    ``base`` supplies framework, source format, settings and notes; the stored tensors, gate
    order and transforms are filled in here. Shared with the raw-array reader.
    """
    dirs = 2 if direction == "bidirectional" else 1
    (W, w_name), (R, r_name) = arrays["W"], arrays["R"]
    if W.ndim != 3 or W.shape[0] != dirs or W.shape[1] % 4 or W.shape[1] == 0:
        raise LoadError(f"{where}: W has shape {W.shape}, expected ({dirs}, 4H, D)")
    H = W.shape[1] // 4
    if R.shape != (dirs, 4 * H, H):
        raise LoadError(f"{where}: R has shape {R.shape}, expected {(dirs, 4 * H, H)}")
    stored = [StoredTensor("W_x", w_name, W.shape, dtype=str(W.dtype), shared_by=dirs)]
    stored.append(StoredTensor("W_h", r_name, R.shape, dtype=str(R.dtype), shared_by=dirs))
    transforms = ["gate blocks reordered i,o,f,c → i,f,g,o"]
    notes = list(base.notes)
    if "B" in arrays:
        B, b_name = arrays["B"]
        if B.shape != (dirs, 8 * H):
            raise LoadError(f"{where}: B has shape {B.shape}, expected {(dirs, 8 * H)}")
        stored.append(StoredTensor("b", b_name, B.shape, dtype=str(B.dtype), shared_by=dirs))
        transforms.append("B split into Wb + Rb and summed")
    else:
        B = np.zeros((dirs, 8 * H), dtype=W.dtype)
        notes.append("B absent: b = 0 (ONNX default)")
    P = None
    if "P" in arrays:
        P, p_name = arrays["P"]
        if P.shape != (dirs, 3 * H):
            raise LoadError(f"{where}: P has shape {P.shape}, expected {(dirs, 3 * H)}")
        stored.append(StoredTensor("P", p_name, P.shape, dtype=str(P.dtype), shared_by=dirs))
        transforms.append("P reordered i,o,f → p_i, p_o, p_f")
    provenance = dataclasses.replace(
        base,
        gate_order=GATE_ORDER,
        perm=PERM,
        stored=tuple(stored),
        transforms=tuple(transforms),
        notes=tuple(notes),
    )
    directions = []
    for d in range(dirs):
        with np.errstate(all="ignore"):  # NaN/Inf weights are shown, not refused
            b = B[d, : 4 * H].astype(np.float64) + B[d, 4 * H :]
        peep = {}
        if P is not None:
            peep = {"p_i": P[d, :H], "p_o": P[d, H : 2 * H], "p_f": P[d, 2 * H :]}
        f_act, g_act, h_act = acts[d]
        directions.append(
            LSTMDirection(
                W_x=reorder_gates(W[d], PERM),
                W_h=reorder_gates(R[d], PERM),
                b=reorder_gates(b, PERM),
                act_gate=f_act,
                act_cand=g_act,
                act_cell=h_act,
                gate_clip=float(clip) if clip is not None else None,
                reverse=direction == "reverse" or d == 1,
                provenance=provenance,
                **peep,
            )
        )
    kind = "LSTM" if dirs == 1 else "LSTM (bidirectional)"
    # ONNX Y is [seq, dirs, batch, H]: the reverse direction is written in time order.
    return LSTMLayer(
        name=name,
        directions=tuple(directions),
        merge_mode=MergeMode.CONCAT,
        output_order=OutputOrder.TIME,
        kind=kind,
    )


def _node_info(graph: _Graph, node: Any, index: int) -> LayerInfo:
    weights = tuple(
        (n, tuple(int(d) for d in graph.initializers[n].dims))
        for n in node.input
        if n in graph.initializers
    )
    name = node.name or f"{node.op_type} node {index}"
    is_lstm = node.op_type == "LSTM"
    note = "shown" if is_lstm else _NOT_LSTM.get(node.op_type, "not run by lstmviz")
    return LayerInfo(name=name, kind=node.op_type, weights=weights, is_lstm=is_lstm, note=note)


def _opset(model: Any) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return int(versions[0]) if versions else 0


def load(probe: Probe) -> LSTMModel:
    """Read every LSTM node of the main graph, chained in graph order."""
    file = probe.name
    onnx = _import_onnx(file)
    if probe.size >= MAX_PROTO:
        raise LoadError(
            f"{file}: {probe.size} bytes is over protobuf's 2 GB limit; save the weights as "
            "ONNX external data"
        )
    try:
        data = probe.path.read_bytes()
        for _ in protowire.iter_fields(data):  # lengths checked before protobuf allocates
            pass
    except OSError as exc:
        raise LoadError(f"{file}: cannot read file ({exc.strerror or exc})") from exc
    except protowire.ProtoError as exc:
        raise LoadError(
            f"{file}: truncated or damaged ONNX file ({exc}); re-export or re-download it"
        ) from exc
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(
            f"{file}: not a readable ONNX model ({detail}); the file is truncated or damaged"
        ) from exc
    graph = _Graph(onnx, model, probe.path)
    opset = _opset(model)
    framework = f"ONNX opset {opset}"
    if model.producer_name:
        framework += f" ({model.producer_name} {model.producer_version})".replace(" )", ")")
    nodes = list(model.graph.node)
    lstm_nodes = [(k, n) for k, n in enumerate(nodes) if n.op_type == "LSTM"]
    infos = tuple(
        _node_info(graph, n, k)
        for k, n in enumerate(nodes)
        if n.op_type in ("LSTM", "GRU", "RNN") or any(i in graph.initializers for i in n.input)
    )
    if not lstm_nodes:
        found = sorted({n.op_type for n in nodes if n.op_type in _NOT_LSTM})
        what = f"{' and '.join(found)}, not an LSTM" if found else "no LSTM node"
        ops = ", ".join(sorted({n.op_type for n in nodes})[:6]) or "an empty graph"
        raise LoadError(
            f"{file}: ONNX graph has {what} (ops: {ops}); lstmviz shows LSTM layers only"
        )
    layers = tuple(_lstm_layer(graph, n, k, framework) for k, n in lstm_nodes)
    notes = []
    others = sorted({n.op_type for n in nodes if n.op_type not in ("LSTM", "Constant")})
    if others:
        notes.append(
            f"only the LSTM nodes are run, chained in graph order; other nodes "
            f"({', '.join(others[:8])}{', ...' if len(others) > 8 else ''}) are not"
        )
    try:
        return LSTMModel(
            layers=layers,
            source_path=str(probe.path),
            source_format=SOURCE_FORMAT,
            framework=framework,
            all_layers=infos,
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{file}: the LSTM nodes do not chain in graph order ({exc})") from exc


READER = Reader(name="ONNX", sniff=sniff, load=load)
