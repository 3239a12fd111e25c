"""The ``keras`` target: a Keras 3 ``.weights.h5`` and the code that builds the matching model.

Keras 3 ``save_weights`` stores each layer under ``layers/<class in snake_case, de-duplicated
as lstm, lstm_1, ...>/`` with its variables in ``vars/0, 1, 2`` (kernel ``(D, 4H)``, recurrent
kernel ``(H, 4H)``, bias ``(4H,)``: the canonical arrays transposed, same i, f, c, o order) and
``Bidirectional`` under ``forward_layer``/``backward_layer`` (CONVENTIONS §3.2). The file is
read back by name, so the model must be built in the same order: ``export_keras`` returns that
``keras.Sequential`` as code. Keras' LSTM has one ``activation`` for both the candidate and the
cell, no peepholes, projection or clips, and Keras 3's ``hard_sigmoid`` is clip(x/6 + 0.5):
a Keras 2 model (slope 0.2) is refused rather than silently changed. Per-step layers between
the LSTMs and in the head (Dense, Activation, Layer/BatchNormalization) are written too.

GRU layers are ``keras.layers.GRU`` (``reset_after`` True or False: Keras holds both; kernels
in z, r, h order, ``bias [2, 3H]`` input and recurrent rows, or ``[3H]`` summed) under
``layers/gru[_n]/cell/vars`` (``gru_cell``), plain RNNs ``SimpleRNN`` under
``layers/simple_rnn[_n]`` (``simple_rnn_cell``), as Keras 3.15 ``save_weights`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, MergeMode, OutputOrder
from lstmviz.port import checks
from lstmviz.port.checks import ExportError, Feature
from lstmviz.port.npz import keras_gru_vars
from lstmviz.port.result import ExportResult

TARGET = "keras"

#: lstmviz activation name → Keras 3's name (parameter-free ones only).
NAMES = {
    "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "relu6": "relu6", "linear": "linear",
    "softsign": "softsign", "softplus": "softplus", "selu": "selu", "exponential": "exponential",
    "hard_sigmoid_k3": "hard_sigmoid", "swish": "silu", "gelu": "gelu", "mish": "mish",
    "hard_silu": "hard_silu", "log_sigmoid": "log_sigmoid", "hard_tanh": "hard_tanh",
    "softmax": "softmax", "log_softmax": "log_softmax",
}  # fmt: skip


def keras_activation(act: Activation, where: str) -> str:
    if act.name == "elu" and act.alpha == 1.0:
        return "elu"
    name = NAMES.get(act.name)
    if name is None:
        hint = " (Keras 3's hard_sigmoid is x/6 + 0.5)" if act.name == "hard_sigmoid_k2" else ""
        raise checks.refusal(TARGET, Feature("activation", where, f"activation {act}{hint}"))
    return name


@dataclass
class _Stack:
    """Layers in build order: code lines and, per layer, its h5 group and arrays."""

    code: list[str] = field(default_factory=list)
    groups: list[tuple[str, str, dict[str, list[np.ndarray]]]] = field(default_factory=list)
    used: dict[str, int] = field(default_factory=dict)
    #: h5 group → the recurrent layer's snake-case class (``lstm``, ``gru``, ``simple_rnn``):
    #: Keras names the cell's vars ``<class>_cell`` and a Bidirectional's ``forward_<class>``.
    cells: dict[str, str] = field(default_factory=dict)

    def path(self, cls: str) -> str:
        n = self.used.get(cls, 0)
        self.used[cls] = n + 1
        return cls if n == 0 else f"{cls}_{n}"


#: Cell kind → (Keras class, snake-case name Keras files it under).
CLASSES = {"LSTM": ("LSTM", "lstm"), "GRU": ("GRU", "gru"), "RNN": ("SimpleRNN", "simple_rnn")}


def _lstm_args(w: LSTMDirection, at: str, go_backwards: bool) -> str:
    """``keras.layers.LSTM(...)``, ``GRU(..., reset_after=)`` or ``SimpleRNN(...)``."""
    kind = w.kind
    if kind == "LSTM" and w.act_cand != w.act_cell:
        raise checks.refusal(
            TARGET,
            Feature("activation", at, f"candidate {w.act_cand} and cell {w.act_cell} activations "
                    "that differ (Keras has one activation for both)"),
        )  # fmt: skip
    act = keras_activation(w.act_cand, at)
    args = [str(w.hidden_size), "return_sequences=True"]
    if act != "tanh":
        args.append(f"activation={act!r}")
    if kind != "RNN":
        rec = keras_activation(w.act_gate, at)
        if rec != "sigmoid":
            args.append(f"recurrent_activation={rec!r}")
    if kind == "GRU" and not w.reset_after:
        args.append("reset_after=False")
    if go_backwards:
        args.append("go_backwards=True")
    return f"keras.layers.{CLASSES[kind][0]}({', '.join(args)})"


def _cell_vars(w: LSTMDirection) -> list[np.ndarray]:
    if w.kind == "GRU":
        return keras_gru_vars(w)
    return [np.asarray(a, np.float32) for a in (w.W_x.T, w.W_h.T, w.b)]


def _add_lstm(stack: _Stack, k: int, layer: LSTMLayer) -> None:
    at = checks.where(k, layer)
    d0 = layer.directions[0]
    cls = CLASSES[d0.kind][1]
    if not layer.bidirectional:
        name = stack.path(cls)
        stack.code.append(_lstm_args(d0, at, go_backwards=d0.reverse))
        stack.groups.append((name, layer.name, {"cell": _cell_vars(d0)}))
        stack.cells[name] = cls
        return
    mode = "concat" if layer.merge_mode is MergeMode.NONE else layer.merge_mode.value
    inner = _lstm_args(d0, at, go_backwards=d0.reverse)
    extra = ""
    if d0.reverse:  # Keras 2 Bidirectional(LSTM(go_backwards=True)): Keras 3 needs the copy
        extra = f", backward_layer={_lstm_args(layer.directions[1], at, go_backwards=False)}"
    stack.code.append(f"keras.layers.Bidirectional({inner}{extra}, merge_mode={mode!r})")
    fw, bw = (_cell_vars(w) for w in layer.directions)
    name = stack.path("bidirectional")
    stack.groups.append((name, layer.name, {"forward_layer/cell": fw, "backward_layer/cell": bw}))
    stack.cells[name] = cls


def _add_transform(stack: _Stack, t: object, at: str) -> None:
    if isinstance(t, DenseLayer):
        act = keras_activation(t.activation, at)
        use_bias = "" if t.b is not None else ", use_bias=False"
        stack.code.append(f"keras.layers.Dense({t.W.shape[0]}, activation={act!r}{use_bias})")
        arrays = [np.asarray(t.W.T, np.float32)]
        if t.b is not None:
            arrays.append(np.asarray(t.b, np.float32))
        stack.groups.append((stack.path("dense"), t.name, {"": arrays}))
    elif isinstance(t, ActivationLayer):
        stack.code.append(f"keras.layers.Activation({keras_activation(t.activation, at)!r})")
        stack.groups.append((stack.path("activation"), t.name, {}))
    elif isinstance(t, NormLayer):
        args = [f"epsilon={t.epsilon!r}"]
        args += ["scale=False"] * (t.scale is None) + ["center=False"] * (t.offset is None)
        stored = [a for a in (t.scale, t.offset) if a is not None]
        if t.mean is None:
            cls, path = "LayerNormalization", "layer_normalization"
        else:
            cls, path = "BatchNormalization", "batch_normalization"
            stored += [t.mean, t.var]
        stack.code.append(f"keras.layers.{cls}({', '.join(args)})")
        arrays = [np.asarray(a, np.float32) for a in stored]
        stack.groups.append((stack.path(path), t.name, {"": arrays}))
    else:
        kind = getattr(t, "kind", type(t).__name__)
        raise checks.refusal(TARGET, Feature("between", at, f"a {kind} layer"), "numpy")


def _check(model: LSTMModel) -> None:
    checks.refuse_any(
        TARGET, model,
        {"peepholes", "projection", "cell_clip", "proj_clip", "gate_clip", "initial_state",
         "reverse_only"},
    )  # fmt: skip
    for k, layer in enumerate(model.layers):
        d0 = layer.directions[0]
        if d0.reverse and layer.output_order is OutputOrder.TIME:
            raise checks.refusal(
                TARGET, Feature("reverse_only", checks.where(k, layer), "a direction reading "
                                "backwards returned in time order"),
            )  # fmt: skip


def build(model: LSTMModel) -> tuple[_Stack, list[str]]:
    """The layer stack (code and h5 groups) and notes; raises ExportError when it cannot."""
    _check(model)
    stack, notes = _Stack(), []
    stack.code.append(f"keras.Input(shape=(None, {model.input_size}))")
    for k, layer in enumerate(model.layers):
        for t in layer.before:
            _add_transform(stack, t, checks.where(k, layer))
        _add_lstm(stack, k, layer)
        if layer.bidirectional and layer.merge_mode is MergeMode.NONE:
            notes.append(f"{checks.where(k, layer)}: merge_mode None written as concat")
    if model.head:
        try:
            trial = _Stack(used=dict(stack.used))
            for t in model.head:
                _add_transform(trial, t, "the head")
        except ExportError as exc:
            notes.append(f"the head was not written ({exc})")
        else:
            stack.code += trial.code
            stack.groups += trial.groups
            stack.used = trial.used
            stack.cells.update(trial.cells)
    return stack, notes


def write_weights(path: Path, stack: _Stack) -> None:
    """The groups and datasets Keras 3 ``save_weights`` writes for this Sequential."""
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
        layers = f.create_group("layers")
        for name, layer_name, parts in stack.groups:
            group = layers.create_group(name)
            group.create_group("vars").attrs["name"] = layer_name or name
            for sub, arrays in parts.items():
                target = group.require_group(sub) if sub else group
                var = target.require_group("vars")
                if sub:
                    var.attrs["name"] = f"{stack.cells.get(name, 'lstm')}_cell"
                for n, a in enumerate(arrays):
                    var.create_dataset(str(n), data=a)
            for side in ("forward_layer", "backward_layer"):
                if side in group:
                    cls = stack.cells.get(name, "lstm")
                    group[side].create_group("vars").attrs["name"] = f"{side.split('_')[0]}_{cls}"


def export_keras(model: LSTMModel, path: Path) -> ExportResult:
    if not path.name.endswith(".weights.h5"):
        raise ExportError(
            f"keras export: {path.name} must end in .weights.h5 (Keras 3 load_weights insists)"
        )
    stack, notes = build(model)
    write_weights(path, stack)
    body = "".join(f"    {line},\n" for line in stack.code)
    code = (
        f"import keras\n\nmodel = keras.Sequential([\n{body}])\nmodel.load_weights({str(path)!r})\n"
    )
    n = len(stack.groups)
    summary = f"wrote {path} ({n} Keras layers; build them with the code from --code)"
    return ExportResult(TARGET, (path,), summary, tuple(notes), code)
