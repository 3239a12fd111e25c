"""Dense layers after a Keras model's last LSTM → ``LSTMModel.head``.

The head is what turns the last LSTM's h_t into the network's answer (a next value, class
scores), so the debugger can show the prediction step by step. Only layers whose wiring and
activation the config states are taken: ``Dense`` and ``TimeDistributed(Dense)``, with identity
layers (Dropout, …) and ``Activation`` layers folded in, each fed by the one before. Anything
else (Flatten, Concatenate, a second branch) ends the head; the model tree lists it as not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import DenseLayer, LSTMLayer, StoredTensor
from lstmviz.io.errors import LoadError
from lstmviz.io.keras_config import IDENTITY_LAYERS, activation_name, resolve_activation
from lstmviz.io.keras_layers import FoundLayer, Source, Weight, _pick

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


def _dense(f: FoundLayer, cfg: Mapping[str, Any], width: int, src: Source) -> DenseLayer | None:
    """One Dense layer from its config and arrays, or None when they do not fit a plain
    ``act(h W + b)`` (LoRA or quantized variables, a width that does not follow)."""
    use_bias = cfg.get("use_bias", True)
    if len(f.weights) != (2 if use_bias else 1):
        return None
    kernel = _pick(f.weights, "kernel", 0)
    bias = _pick(f.weights, "bias", 1) if use_bias else None
    if kernel is None or len(kernel.shape) != 2 or kernel.shape[0] != width:
        return None
    if use_bias and (bias is None or bias.shape != (kernel.shape[1],)):
        return None
    act = _activation(f, cfg, src)
    W = np.asarray(kernel.read(), dtype=np.result_type(kernel.dtype, np.float32)).T
    stored = tuple(_stored(w, role) for w, role in ((kernel, "W"), (bias, "b")) if w is not None)
    return DenseLayer(
        f.name,
        W,
        None if bias is None else bias.read(),
        act,
        kind=f.display_kind,
        stored=stored,
    )


def _activation(f: FoundLayer, cfg: Mapping[str, Any], src: Source) -> Activation:
    return resolve_activation(
        activation_name(cfg.get("activation")), src.version, src.file, f.name, vector=True
    )


def _stored(w: Weight, role: str) -> StoredTensor:
    return StoredTensor(role, w.name, w.shape, transposed=role == "W", dtype=w.dtype)


def dense_head(
    after: Sequence[FoundLayer],
    last: FoundLayer,
    last_layer: LSTMLayer,
    wired: Callable[[FoundLayer], bool],
    src: Source,
    notes: list[str],
) -> tuple[DenseLayer, ...]:
    """The Dense chain fed by ``last`` (the last LSTM run), from the layers after it in file
    order. A weights-only file (no config) has no head: its activations are unknown."""
    if last.config is None:
        return ()
    head: list[DenseLayer] = []
    node = last.wiring.node if last.wiring is not None else None
    width = last_layer.output_size
    for f in after:
        if wired(f) and f.wiring is not None and node is not None:
            if f.wiring.source != node or f.wiring.source_output or f.wiring.n_inputs != 1:
                continue  # another branch of a functional model
        elif f.is_lstm:
            break
        try:
            if f.kind in IDENTITY_LAYERS:
                pass
            elif f.kind == "Activation" and head and head[-1].activation == LINEAR and f.config:
                head[-1] = replace(head[-1], activation=_activation(f, f.config, src))
            else:
                cfg = _dense_config(f)
                dense = _dense(f, cfg, width, src) if cfg is not None else None
                if dense is None:
                    break
                head.append(dense)
                width = dense.output_size
        except LoadError as exc:  # an activation lstmviz lacks ends the head, not the load
            notes.append(f"the head stops before {f.name!r}: {str(exc).split(': ', 1)[-1]}")
            break
        node = f.wiring.node if f.wiring is not None else node
    if head and not last_layer.return_sequences:
        notes.append(
            f"{last_layer.name!r} has return_sequences=False: Keras applies "
            f"{', '.join(repr(d.name) for d in head)} to its last step only; lstmviz shows the "
            "head at every step (the last row is Keras' output)"
        )
    return tuple(head)
