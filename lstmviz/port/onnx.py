"""The ``onnx`` target: a self-contained graph of ``LSTM``, ``GRU`` and ``RNN`` nodes, input
``x [T, 1, D]``.

GRU layers are ``GRU`` nodes (gate blocks z, r, h; ``B`` = ``b_x`` then ``b_h``;
``linear_before_reset`` = ``reset_after``: ONNX holds both reset modes), plain RNN layers
``RNN`` nodes (``activations`` Tanh, Relu, ...); both take ``initial_h`` and ``clip``.

Each canonical layer becomes one ONNX ``LSTM`` (opset 14): weights as initializers with the
gate blocks reordered to ONNX's i, o, f, c, the summed bias as the first half of ``B`` (the
recurrent half zero), peepholes as ``P`` (i, o, f), stored initial states as ``initial_h/c``,
and the activations, when not the defaults, as ``activations``/``activation_alpha/beta``
(consumed in order by the functions that take them, as onnxruntime does). ONNX's ``clip``
bounds the argument of every activation, which is lstmviz's ``gate_clip``; TF's ``cell_clip``
(on c) and a projection have no place in an ONNX LSTM and are refused. Between layers the
``Y [T, dirs, 1, H]`` output is merged (concat, sum, mul, ave) and, for Keras ``go_backwards``,
reversed in time; per-step Dense layers become MatMul/Add, normalisations ReduceMean/Div.
Output ``y [T, 1, out]``, the last LSTM layer's sequence, plus ``head [T, 1, n]`` when the
model's head can be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmviz import __version__
from lstmviz.core.activations import Activation
from lstmviz.core.cells import GRU_CELL
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer
from lstmviz.core.model import LSTMLayer, LSTMModel, MergeMode, OutputOrder
from lstmviz.port import checks
from lstmviz.port import protobuf as pb
from lstmviz.port.checks import ExportError, Feature
from lstmviz.port.result import ExportResult

TARGET = "onnx"
ONNX_BLOCKS = (0, 3, 1, 2)  # ONNX block k (i, o, f, c) = canonical block ONNX_BLOCKS[k]
INT64_MIN = -(2**63)
MAX_BYTES = (2**31 - 1) - (16 << 20)  # protobuf's message limit, with room for the graph


#: lstmviz activation → ONNX LSTM name and the (alpha, beta) it consumes (None: not taken).
def _lstm_activation(act: Activation) -> tuple[str, float | None, float | None] | None:
    a, b = act.alpha, act.beta
    table: dict[str, tuple[str, float | None, float | None]] = {
        "sigmoid": ("Sigmoid", None, None),
        "tanh": ("Tanh", None, None),
        "relu": ("Relu", None, None),
        "softsign": ("Softsign", None, None),
        "softplus": ("Softplus", None, None),
        "hard_sigmoid_k2": ("HardSigmoid", 0.2, 0.5),
        "hard_sigmoid_k3": ("HardSigmoid", 1 / 6, 0.5),
        "hard_sigmoid_ab": ("HardSigmoid", a, b),
        "affine": ("Affine", a, b),
        "linear": ("Affine", 1.0, 0.0),
        "leaky_relu": ("LeakyRelu", a, None),
        "thresholded_relu": ("ThresholdedRelu", a, None),
        "scaled_tanh": ("ScaledTanh", a, b),
        "elu": ("Elu", a, None),
    }
    return table.get(act.name)


#: Element-wise ops for Dense layers between or after the LSTMs (op, attributes).
_DENSE_OPS: dict[str, tuple[str, dict[str, object]]] = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "softsign": ("Softsign", {}),
    "softplus": ("Softplus", {}),
    "softmax": ("Softmax", {"axis": -1}),
    "log_softmax": ("LogSoftmax", {"axis": -1}),
    "exponential": ("Exp", {}),
}


@dataclass
class _Graph:
    nodes: list[bytes] = field(default_factory=list)
    inits: list[bytes] = field(default_factory=list)
    count: int = 0
    opset: int = 14

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, array: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(pb.tensor(name, array))
        return name

    def op(self, op: str, inputs: list[str], stem: str, **attrs: object) -> str:
        out = self.name(stem)
        self.nodes.append(pb.node(op, inputs, [out], f"{op}_{self.count}", **attrs))
        return out


def _onnx_rows(a: np.ndarray) -> np.ndarray:
    H = a.shape[0] // 4
    return np.concatenate([a[k * H : (k + 1) * H] for k in ONNX_BLOCKS])


def _stored_rows(a: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Canonical row blocks → a framework's order (canonical block k = stored block perm[k])."""
    H = a.shape[0] // len(perm)
    out = np.empty_like(a)
    for k, p in enumerate(perm):
        out[p * H : (p + 1) * H] = a[k * H : (k + 1) * H]
    return out


def _node_activations(dirs: list, at: str, acts: tuple[str, ...]) -> dict[str, object]:
    """``activations``/``activation_alpha/beta`` attributes for the directions' activations
    (``acts`` the attribute names, in ONNX's order); empty when they are ONNX's defaults."""
    names, alphas, betas = [], [], []
    for w in dirs:
        for act in (getattr(w, a) for a in acts):
            spec = _lstm_activation(act)
            if spec is None:
                raise checks.refusal(TARGET, Feature("activation", at, f"activation {act}"))
            names.append(spec[0])
            if spec[1] is not None:
                alphas.append(float(spec[1]))
            if spec[2] is not None:
                betas.append(float(spec[2]))
    default = {1: ["Tanh"], 2: ["Sigmoid", "Tanh"], 3: ["Sigmoid", "Tanh", "Tanh"]}[len(acts)]
    attrs: dict[str, object] = {}
    if names != default * len(dirs):
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    return attrs


def _clip_attr(dirs: list, at: str) -> dict[str, object]:
    clips = {w.gate_clip for w in dirs}
    if clips == {None}:
        return {}
    if len(clips) != 1:
        raise checks.refusal(TARGET, Feature("gate_clip", at, "a gate_clip on one "
                                             "direction only"), "numpy")  # fmt: skip
    return {"clip": float(next(iter(clips)))}  # type: ignore[arg-type]


def _gru_rnn_node(g: _Graph, k: int, layer: LSTMLayer, x: str) -> str:
    """One ``GRU`` (z, r, h; ``B`` = input biases then recurrent ones; ``linear_before_reset``
    is ``reset_after``) or ``RNN`` node (``B`` = the summed bias, then zeros); Y as LSTM's."""
    at = checks.where(k, layer)
    dirs = list(layer.directions)
    if len(dirs) == 2 and dirs[0].reverse:
        dirs = dirs[::-1]
    kind, H = dirs[0].kind, layer.hidden_size
    perm = GRU_CELL.perm("onnx") if kind == "GRU" else (0,)
    W = np.stack([_stored_rows(np.asarray(w.W_x), perm) for w in dirs])
    R = np.stack([_stored_rows(np.asarray(w.W_h), perm) for w in dirs])
    if kind == "GRU":
        biases = [[_stored_rows(np.asarray(b), perm) for b in (w.b_x, w.b_h)] for w in dirs]
        B = np.stack([np.concatenate(pair) for pair in biases])
    else:
        B = np.stack([np.concatenate([np.asarray(w.b), np.zeros(H)]) for w in dirs])
    inputs = [x, g.const(f"W{k}", W), g.const(f"R{k}", R), g.const(f"B{k}", B)]
    if any(w.h0 is not None for w in dirs):
        h0 = np.stack([np.zeros(H) if w.h0 is None else w.h0 for w in dirs])[:, None]
        inputs += ["", g.const(f"initial_h{k}", h0)]
    attrs: dict[str, object] = {"hidden_size": H}
    if len(dirs) == 2:
        attrs["direction"] = "bidirectional"
    elif dirs[0].reverse:
        attrs["direction"] = "reverse"
    acts = ("act_gate", "act_cand") if kind == "GRU" else ("act_cand",)
    attrs.update(_node_activations(dirs, at, acts))
    attrs.update(_clip_attr(dirs, at))
    if kind == "GRU":
        attrs["linear_before_reset"] = int(dirs[0].reset_after)
    y = g.name(f"Y{k}")
    g.nodes.append(pb.node(kind, inputs, [y], f"{kind}_{k}", **attrs))
    return y


def _lstm_node(g: _Graph, k: int, layer: LSTMLayer, x: str) -> str:
    """One LSTM node; returns Y ``[T, dirs, 1, H]``. ONNX's first direction reads forwards,
    so a layer whose first direction reads backwards is stored swapped (``order``)."""
    if layer.directions[0].kind != "LSTM":
        return _gru_rnn_node(g, k, layer, x)
    at = checks.where(k, layer)
    dirs = list(layer.directions)
    if len(dirs) == 2 and dirs[0].reverse:
        dirs = dirs[::-1]
    H, P = layer.hidden_size, dirs[0].output_size
    W = np.stack([_onnx_rows(w.W_x) for w in dirs])
    R = np.stack([_onnx_rows(w.W_h) for w in dirs])
    B = np.stack([np.concatenate([_onnx_rows(w.b), np.zeros(4 * H)]) for w in dirs])
    inputs = [x, g.const(f"W{k}", W), g.const(f"R{k}", R), g.const(f"B{k}", B), ""]
    states = ["", ""]
    if any(w.h0 is not None or w.c0 is not None for w in dirs):
        h0 = np.stack([np.zeros(P) if w.h0 is None else w.h0 for w in dirs])[:, None]
        c0 = np.stack([np.zeros(H) if w.c0 is None else w.c0 for w in dirs])[:, None]
        states = [g.const(f"initial_h{k}", h0), g.const(f"initial_c{k}", c0)]
    peep = [""]
    if any(w.has_peepholes for w in dirs):
        zero = np.zeros(H)
        rows = [
            np.concatenate([zero if p is None else p for p in (w.p_i, w.p_o, w.p_f)]) for w in dirs
        ]
        peep = [g.const(f"P{k}", np.stack(rows))]
    inputs += states + peep
    while inputs[-1] == "":
        inputs.pop()
    attrs: dict[str, object] = {"hidden_size": H}
    if len(dirs) == 2:
        attrs["direction"] = "bidirectional"
    elif dirs[0].reverse:
        attrs["direction"] = "reverse"
    attrs.update(_node_activations(dirs, at, ("act_gate", "act_cand", "act_cell")))
    attrs.update(_clip_attr(dirs, at))
    y = g.name(f"Y{k}")
    g.nodes.append(pb.node("LSTM", inputs, [y], f"LSTM_{k}", **attrs))
    return y


def _merge(g: _Graph, k: int, layer: LSTMLayer, y: str) -> str:
    """``Y [T, dirs, 1, H]`` → the layer's output ``[T, 1, out]`` (merged, maybe reversed)."""
    flat = g.const("shape", np.array([0, 0, -1], np.int64))
    concat = layer.merge_mode in (MergeMode.CONCAT, MergeMode.NONE)
    if not layer.bidirectional:
        out = g.op("Reshape", [y, flat], f"layer{k}_out")
    elif concat and not layer.directions[0].reverse:  # layout-only, as torch exports it
        yt = g.op("Transpose", [y], f"layer{k}_t", perm=[0, 2, 1, 3])
        out = g.op("Reshape", [yt, flat], f"layer{k}_out")
    else:
        first = 1 if layer.directions[0].reverse else 0  # stored swapped in _lstm_node
        axis = g.const("axis", np.array([1], np.int64))
        parts = []
        for d in (first, 1 - first):
            start, end = (
                g.const("start", np.array([d], np.int64)),
                g.const("end", np.array([d + 1], np.int64)),
            )
            parts.append(g.op("Slice", [y, start, end, axis], f"layer{k}_dir{d}"))
        mode = layer.merge_mode
        if concat:
            merged = g.op("Concat", parts, f"layer{k}_concat", axis=3)
        elif mode is MergeMode.SUM:
            merged = g.op("Add", parts, f"layer{k}_sum")
        elif mode is MergeMode.MUL:
            merged = g.op("Mul", parts, f"layer{k}_mul")
        else:
            two = g.const("two", np.array(2.0, np.float32))
            merged = g.op("Div", [g.op("Add", parts, f"layer{k}_sum"), two], f"layer{k}_ave")
        out = g.op("Reshape", [merged, flat], f"layer{k}_out")
    if layer.directions[0].reverse and layer.output_order is OutputOrder.PROCESSING:
        consts = [np.array([v], np.int64) for v in (-1, INT64_MIN, 0, -1)]
        names = [
            g.const(n, c) for n, c in zip(("start", "end", "axis", "step"), consts, strict=True)
        ]
        out = g.op("Slice", [out, *names], f"layer{k}_reversed")
    return out


def _transform(g: _Graph, t: object, x: str, at: str) -> str:
    if isinstance(t, DenseLayer | ActivationLayer):
        act = t.activation
        if act.name != "linear" and act.name not in _DENSE_OPS:
            raise checks.refusal(TARGET, Feature("between", at, f"a {t.kind} with activation "
                                                 f"{act}"), "numpy")  # fmt: skip
        if isinstance(t, DenseLayer):
            x = g.op("MatMul", [x, g.const(f"{t.name}_W", np.asarray(t.W.T))], f"{t.name}_mm")
            if t.b is not None:
                x = g.op("Add", [x, g.const(f"{t.name}_b", np.asarray(t.b))], f"{t.name}_add")
        if act.name != "linear":
            op, attrs = _DENSE_OPS[act.name]
            x = g.op(op, [x], f"{t.name}_{act.name}", **attrs)
        return x
    if isinstance(t, NormLayer):
        return _norm(g, t, x)
    kind = getattr(t, "kind", type(t).__name__)
    raise checks.refusal(TARGET, Feature("between", at, f"a {kind} layer"), "numpy")


def _norm(g: _Graph, t: NormLayer, x: str) -> str:
    """``(y - mean) / sqrt(var + eps) * scale + offset`` over the features of each step: the
    step's own statistics (ReduceMean; its axes became an input in opset 18) or, for
    BatchNormalization, the stored moving ones."""
    eps = g.const(f"{t.name}_eps", np.array(t.epsilon, np.float32))
    if t.mean is None:
        if g.opset >= 18:
            axes = g.const("axes", np.array([-1], np.int64))
            mean = g.op("ReduceMean", [x, axes], f"{t.name}_mean", keepdims=1)
        else:
            mean = g.op("ReduceMean", [x], f"{t.name}_mean", axes=[-1], keepdims=1)
        centred = g.op("Sub", [x, mean], f"{t.name}_centred")
        square = g.op("Mul", [centred, centred], f"{t.name}_sq")
        if g.opset >= 18:
            var = g.op("ReduceMean", [square, axes], f"{t.name}_var", keepdims=1)
        else:
            var = g.op("ReduceMean", [square], f"{t.name}_var", axes=[-1], keepdims=1)
    else:
        mean_c = g.const(f"{t.name}_moving_mean", np.asarray(t.mean))
        centred = g.op("Sub", [x, mean_c], f"{t.name}_centred")
        var = g.const(f"{t.name}_moving_variance", np.asarray(t.var))
    std = g.op("Sqrt", [g.op("Add", [var, eps], f"{t.name}_var_eps")], f"{t.name}_std")
    y = g.op("Div", [centred, std], f"{t.name}_normed")
    if t.scale is not None:
        y = g.op("Mul", [y, g.const(f"{t.name}_scale", np.asarray(t.scale))], f"{t.name}_scaled")
    if t.offset is not None:
        y = g.op("Add", [y, g.const(f"{t.name}_offset", np.asarray(t.offset))], f"{t.name}_out")
    return y


def build(model: LSTMModel, opset: int = 14) -> tuple[bytes, list[str], bool]:
    """The serialized ModelProto, notes, and whether a ``head`` output was written."""
    checks.refuse_any(TARGET, model, {"projection", "cell_clip", "proj_clip"})
    if not 14 <= opset <= 22:
        raise ExportError(f"onnx export: opset {opset} unsupported; use 14 to 22")
    size = sum(4 * d.n_params for layer in model.layers for d in layer.directions)
    if size > MAX_BYTES:
        raise ExportError(
            f"onnx export: {size} bytes of weights exceed the 2 GB one ONNX file holds "
            "(external data is not written); export to pytorch or npz instead"
        )
    g, notes = _Graph(opset=opset), []
    cur = "x"
    for k, layer in enumerate(model.layers):
        for t in layer.before:
            cur = _transform(g, t, cur, checks.where(k, layer))
        cur = _merge(g, k, layer, _lstm_node(g, k, layer, cur))
    y = cur
    g.nodes.append(pb.node("Identity", [cur], ["y"], "output"))
    outputs = [pb.value_info("y", ["T", 1, model.output_size])]
    has_head = False
    if model.head:
        trial = _Graph(count=g.count, opset=opset)
        try:
            for t in model.head:
                y = _transform(trial, t, y, "the head")
        except ExportError as exc:
            notes.append(f"the head was not written ({exc})")
        else:
            g.nodes += [*trial.nodes, pb.node("Identity", [y], ["head"], "head_output")]
            g.inits += trial.inits
            outputs.append(pb.value_info("head", ["T", 1, model.head_output_size]))
            has_head = True
    doc = f"exported by lstmviz {__version__} from {model.source_path or 'a model'}"
    raw = pb.model(
        g.nodes,
        g.inits,
        [pb.value_info("x", ["T", 1, model.input_size])],
        outputs,
        graph_name="lstmviz_export",
        opset=opset,
        doc=doc,
        version=__version__,
    )
    return raw, notes, has_head


def export_onnx(model: LSTMModel, path: Path, opset: int = 14) -> ExportResult:
    raw, notes, has_head = build(model, opset)
    path.write_bytes(raw)
    outs = "y and head" if has_head else "y"
    code = (
        "import numpy as np, onnxruntime as ort\n"
        f"sess = ort.InferenceSession({str(path)!r})\n"
        f"y = sess.run(['y'], {{'x': x.astype(np.float32)[:, None, :]}})[0][:, 0]  # x (T, "
        f"{model.input_size})\n"
    )
    counts: dict[str, int] = {}
    for layer in model.layers:
        counts[layer.directions[0].kind] = counts.get(layer.directions[0].kind, 0) + 1
    nodes = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    summary = (
        f"wrote {path} ({nodes} node{'s' * (len(model.layers) > 1)}, opset {opset}, input x [T, 1, "
        f"{model.input_size}], output {outs})"
    )
    return ExportResult(TARGET, (path,), summary, tuple(notes), code)
