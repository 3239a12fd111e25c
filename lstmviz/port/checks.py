"""What each export target can hold, and the one-line refusal for what it cannot.

Every target is written from the canonical ``LSTMModel``; a feature the target's format has no
place for (a peephole in ``nn.LSTM``, a cell clip in Keras) would silently change the numbers,
so it is refused up front with a message naming the feature, where it is, and which targets
could hold it (``ExportError``, a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, MergeMode, OutputOrder

#: Which targets hold each feature a model may have (for the refusal's "export to ..." part).
HOLDERS: dict[str, str] = {
    "peepholes": "onnx, npz (layout=tf1) or numpy",
    "projection": "pytorch, npz or numpy",
    "cell_clip": "numpy",
    "proj_clip": "numpy",
    "gate_clip": "onnx or numpy",
    "activation": "numpy (or onnx/keras for the activations they name)",
    "merge_mode": "keras, onnx or numpy",
    "reversed_output": "keras, onnx or numpy",
    "reverse_only": "onnx or numpy",
    "initial_state": "onnx or numpy",
    "between": "keras, onnx or numpy",
    "widths": "numpy",
    "cell": "no target (the exports write LSTM, GRU and plain RNN layers only)",
    "reset_before": (
        "keras (GRU reset_after=False), onnx (linear_before_reset=0), npz (layout=keras) or numpy"
    ),
}

#: Cell kinds every target writes (``features`` names any other as ``cell``).
KINDS = ("LSTM", "GRU", "RNN")


class ExportError(ValueError):
    """A model the target cannot hold: one line naming what, where, and which target could."""


@dataclass(frozen=True)
class Feature:
    """Something a layer has that not every target can hold."""

    key: str  # a HOLDERS key
    where: str  # "layer 1 (lstm_1)"
    what: str  # "peepholes", "cell_clip 3", "merge_mode sum", ...


def where(k: int, layer: LSTMLayer) -> str:
    return f"layer {k} ({layer.name})" if layer.name else f"layer {k}"


def refusal(target: str, feature: Feature, holds: str | None = None) -> ExportError:
    holders = holds or HOLDERS.get(feature.key, "numpy")
    return ExportError(
        f"{target} export: {feature.where} has {feature.what}, which {target} cannot hold; "
        f"export to {holders} instead"
    )


def _direction_features(d: LSTMDirection, at: str) -> Iterator[Feature]:
    """GRU and RNN directions lack the LSTM-only fields (read with ``getattr``)."""
    if d.has_peepholes:
        yield Feature("peepholes", at, "peepholes")
    W_p = getattr(d, "W_p", None)
    if W_p is not None:
        yield Feature("projection", at, f"a projection W_p {tuple(W_p.shape)}")
    for name in ("cell_clip", "proj_clip", "gate_clip"):
        value = getattr(d, name, None)
        if value is not None:
            yield Feature(name, at, f"{name} {value:g}")
    h0, c0 = d.h0, getattr(d, "c0", None)
    if (h0 is not None and np.any(h0)) or (c0 is not None and np.any(c0)):
        what = "stored initial states h0/c0" if hasattr(d, "c0") else "a stored initial state h0"
        yield Feature("initial_state", at, what)


def features(model: LSTMModel) -> Iterator[Feature]:
    """Every feature of ``model`` beyond a plain stack of sigmoid/tanh LSTM layers."""
    for k, layer in enumerate(model.layers):
        at = where(k, layer)
        kind = getattr(layer.directions[0], "kind", "LSTM")  # GRU/RNN cells share the model
        if kind not in KINDS:
            yield Feature("cell", at, f"a {kind} cell")
        if kind == "GRU" and not layer.directions[0].reset_after:
            yield Feature("reset_before", at, "a GRU with the reset gate before W_h (reset_after "
                          "False)")  # fmt: skip
        if layer.before:
            names = ", ".join(t.kind for t in layer.before)
            yield Feature("between", at, f"per-step layers before it ({names})")
        if layer.bidirectional and layer.merge_mode not in (MergeMode.CONCAT, MergeMode.NONE):
            yield Feature("merge_mode", at, f"merge_mode {layer.merge_mode.value}")
        if layer.directions[0].reverse:
            if layer.output_order is OutputOrder.PROCESSING:
                yield Feature("reversed_output", at, "go_backwards (output in reversed order)")
            else:
                yield Feature("reverse_only", at, "a direction reading backwards first")
        for d, direction in enumerate(layer.directions):
            yield from _direction_features(
                direction,
                at if len(layer.directions) == 1 else (f"{at} {'backward' if d else 'forward'}"),
            )


def activations(d: LSTMDirection) -> tuple[Activation, ...]:
    """The direction's activations: LSTM gate/candidate/cell, GRU gate/candidate, RNN one."""
    kind = getattr(d, "kind", "LSTM")
    if kind == "RNN":
        return (d.act_cand,)
    if kind == "GRU":
        return d.act_gate, d.act_cand
    return d.act_gate, d.act_cand, d.act_cell


#: The activations nn.LSTM/nn.GRU/nn.RNN and bare arrays hold, per cell kind.
PLAIN = {
    "LSTM": {("sigmoid", "tanh", "tanh")},
    "GRU": {("sigmoid", "tanh")},
    "RNN": {("tanh",), ("relu",)},
}


def require_sigmoid_tanh(target: str, model: LSTMModel, rnn_relu: bool = True) -> None:
    """nn.LSTM/nn.GRU and bare arrays hold sigmoid gates and tanh candidate/cell only; nn.RNN
    tanh or relu (``rnn_relu``: bare arrays cannot say which, so they take tanh only)."""
    for k, layer in enumerate(model.layers):
        for direction in layer.directions:
            names = tuple(a.name for a in activations(direction))
            kind = getattr(direction, "kind", "LSTM")
            allowed = PLAIN.get(kind, set())
            if not rnn_relu and kind == "RNN":
                allowed = {("tanh",)}
            if names not in allowed:
                raise refusal(
                    target,
                    Feature(
                        "activation",
                        where(k, layer),
                        f"activations {'/'.join(str(a) for a in activations(direction))}",
                    ),
                )


def refuse_any(target: str, model: LSTMModel, keys: set[str], holds: str | None = None) -> None:
    """Raise for the first feature of ``model`` whose key is in ``keys`` (or a non-LSTM cell)."""
    for feature in features(model):
        if feature.key in keys or feature.key == "cell":
            raise refusal(target, feature, holds)


def chained_concat(model: LSTMModel) -> bool:
    """Each layer's input is the previous layer's concatenated output (no layers between)."""
    return all(not layer.before for layer in model.layers)
