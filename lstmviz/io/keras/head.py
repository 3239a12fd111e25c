"""Keras layers around the LSTMs that lstmviz runs at every step → ``core.dense`` transforms.

Between two LSTMs they become the second one's ``before``; after the last one, the model's
``head``, which turns h_t into the network's answer (a next value, class scores) so the
debugger can show the prediction step by step. Only layers whose wiring and settings the
config states are taken: ``Dense`` and ``TimeDistributed(Dense)``, ``Activation``,
``LayerNormalization`` and ``BatchNormalization`` (inference: the moving statistics), with
identity layers (Dropout, …) skipped. Anything else (Flatten, Add, a pooling layer) ends the
head, or the LSTM chain when it sits between two LSTMs, with a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer, Transform
from lstmviz.core.model import LSTMLayer, StoredTensor
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.cell_arrays import _pick
from lstmviz.io.keras.config import IDENTITY_LAYERS, activation_name, resolve_activation
from lstmviz.io.keras.layers import FoundLayer, Source, Weight

LINEAR = Activation("linear")


def _dense_config(f: FoundLayer) -> Mapping[str, Any] | None:
    """The Dense config of ``Dense`` or ``TimeDistributed(Dense)``; None for anything else."""
    cfg = f.config
    if cfg is None:
        return None
    if f.kind == "Dense":
        return cfg
    if f.kind == "TimeDistributed" and f.inner_kind == "Dense":
        inner = cfg.get("layer")
        if isinstance(inner, Mapping) and isinstance(inner.get("config"), Mapping):
            return inner["config"]
    return None


def _activation(f: FoundLayer, cfg: Mapping[str, Any], src: Source) -> Activation:
    return resolve_activation(
        activation_name(cfg.get("activation")), src.version, src.file, f.name, vector=True
    )


def _read(w: Weight) -> np.ndarray:
    return np.asarray(w.read(), dtype=np.result_type(w.dtype, np.float32))


def _stored(w: Weight, role: str) -> StoredTensor:
    return StoredTensor(role, w.name, w.shape, transposed=role == "W", dtype=w.dtype)


def _dense(f: FoundLayer, cfg: Mapping[str, Any], width: int, src: Source) -> DenseLayer | None:
    """``act(h W + b)`` from a Dense config and arrays; None when they do not fit that form
    (LoRA or quantized variables, a kernel for another width)."""
    use_bias = cfg.get("use_bias", True)
    if len(f.weights) != (2 if use_bias else 1):
        return None
    kernel = _pick(f.weights, "kernel", 0)
    bias = _pick(f.weights, "bias", 1) if use_bias else None
    if kernel is None or len(kernel.shape) != 2 or kernel.shape[0] != width:
        return None
    if use_bias and (bias is None or bias.shape != (kernel.shape[1],)):
        return None
    stored = tuple(_stored(w, role) for w, role in ((kernel, "W"), (bias, "b")) if w is not None)
    return DenseLayer(
        f.name,
        _read(kernel).T,
        None if bias is None else _read(bias),
        _activation(f, cfg, src),
        kind=f.display_kind,
        stored=stored,
    )


def _last_axis(cfg: Mapping[str, Any]) -> bool:
    """Normalised over the features only (axis -1, or 2 for a (batch, time, features) input)."""
    axis = cfg.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    return axis in (-1, 2)


def _norm(f: FoundLayer, width: int) -> NormLayer | None:
    """Layer/BatchNormalization over the features, with the arrays its flags say it has."""
    cfg = f.config or {}
    if not _last_axis(cfg) or cfg.get("rms_scaling") or cfg.get("renorm"):
        return None
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    roles = ["gamma"] * bool(scale) + ["beta"] * bool(center)
    if f.kind == "BatchNormalization":
        roles += ["moving_mean", "moving_variance"]
    if len(f.weights) != len(roles):
        return None
    arrays = {}
    for k, role in enumerate(roles):
        w = _pick(f.weights, role, k)
        if w is None or w.shape != (width,):
            return None
        arrays[role] = _read(w)
    eps = cfg.get("epsilon", 1e-3)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 <= eps < 1:
        return None
    return NormLayer(
        f.name,
        width,
        scale=arrays.get("gamma"),
        offset=arrays.get("beta"),
        mean=arrays.get("moving_mean"),
        var=arrays.get("moving_variance"),
        epsilon=float(eps),
        kind=f.kind,
    )


def transform(f: FoundLayer, width: int, src: Source) -> Transform | None:
    """The per-step transform of one Keras layer fed ``width`` values; None when lstmviz
    cannot run it. Raises LoadError for an activation lstmviz does not know."""
    if f.config is None:
        return None
    if f.kind == "Activation":
        return ActivationLayer(f.name, _activation(f, f.config, src))
    if f.kind in ("LayerNormalization", "BatchNormalization"):
        return _norm(f, width)
    cfg = _dense_config(f)
    return _dense(f, cfg, width, src) if cfg is not None else None


def _append(chain: list[Transform], t: Transform) -> None:
    """Add ``t``; an Activation right after a linear Dense is folded into it (one layer, as
    most models write it: ``Dense(n)`` then ``Activation``)."""
    last = chain[-1] if chain else None
    if (
        isinstance(t, ActivationLayer)
        and isinstance(last, DenseLayer)
        and last.activation == LINEAR
    ):
        chain[-1] = replace(last, activation=t.activation)
    else:
        chain.append(t)


def transforms_between(
    layers: Sequence[FoundLayer], width: int, src: Source
) -> tuple[Transform, ...] | str:
    """The layers between two LSTMs (in data order) as transforms, or the reason they cannot
    all be run."""
    out: list[Transform] = []
    for f in layers:
        if f.kind in IDENTITY_LAYERS:
            continue
        try:
            t = transform(f, width, src)
        except LoadError as exc:
            return str(exc).split(": ", 1)[-1]
        if t is None:
            return f"lstmviz does not run {f.display_kind} {f.name!r}"
        _append(out, t)
        width = t.output_size(width)
    return tuple(out)


def dense_head(
    after: Sequence[FoundLayer],
    last: FoundLayer,
    last_layer: LSTMLayer,
    wired: Callable[[FoundLayer], bool],
    src: Source,
    notes: list[str],
) -> tuple[Transform, ...]:
    """The per-step chain fed by ``last`` (the last LSTM run), from the layers after it in
    file order. A weights-only file (no config) has no head: its activations are unknown."""
    if last.config is None:
        return ()
    head: list[Transform] = []
    node = last.wiring.node if last.wiring is not None else None
    ours = {node}  # nodes of the LSTM and the head so far
    width = last_layer.output_size
    for f in after:
        if wired(f) and f.wiring is not None and node is not None:
            merged = set(f.wiring.sources) or {f.wiring.source}
            if f.wiring.n_inputs != 1 and merged & ours:
                notes.append(
                    f"{f.display_kind} {f.name!r} merges {last_layer.name!r}'s output with "
                    "another branch; lstmviz does not run it, so the network output shown is "
                    f"{last_layer.name!r}'s"
                )
                return ()  # a residual or merge: the Dense chain so far is only one branch
            if f.wiring.source != node or f.wiring.source_output:
                continue  # another branch of a functional model
        elif f.is_lstm:
            break
        if f.kind not in IDENTITY_LAYERS:
            try:
                t = transform(f, width, src)
            except LoadError as exc:  # an activation lstmviz lacks ends the head, not the load
                notes.append(f"the head stops before {f.name!r}: {str(exc).split(': ', 1)[-1]}")
                break
            if t is None:
                cell = last_layer.cell.name  # LSTM, GRU, RNN: the layer's own cell
                fed = repr(head[-1].name) if head else f"the last {cell} {last_layer.name!r}"
                notes.append(
                    f"{f.display_kind} {f.name!r} after {fed} is not run by lstmviz: the "
                    f"network output shown is the output of {fed}"
                )
                break
            _append(head, t)
            width = t.output_size(width)
        node = f.wiring.node if f.wiring is not None else node
        ours.add(node)
    if head and not last_layer.return_sequences:
        which = (
            "Keras' output is the head on both directions' last steps merged, "
            "trace.final_output (no row of the per-step output)"
            if last_layer.bidirectional
            else "the last row is Keras' output, also trace.final_output"
        )
        notes.append(
            f"{last_layer.name!r} has return_sequences=False: Keras applies "
            f"{', '.join(repr(d.name) for d in head)} to its last step only; lstmviz shows the "
            f"head at every step ({which})"
        )
    return tuple(head)
