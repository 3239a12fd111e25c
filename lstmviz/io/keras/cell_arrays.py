"""What every Keras recurrent cell stores alike: ``LSTM``, ``GRU``, ``SimpleRNN`` and the CuDNN
ones (``keras.layers`` reads the LSTMs, ``keras.gru`` the others).

Each stores ``kernel [D, nH]``, ``recurrent_kernel [H, nH]`` and an optional bias, with ``n``
the cell's gate count (``CellDescription.n_gates``: 4, 3, 1); the canonical weights are the
transposes, except in the CuDNN layers, whose kernel gate slices are cuDNN's raw bytes. Only
the bias (one, two or a CuDNN pair), the gate order and the settings shown differ per cell, and
stay with each cell's reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import StoredTensor
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import (
    LSTMSettings,
    activation_name,
    check_flags,
    lstm_settings,
    precision_note,
    resolve_activation,
)

if TYPE_CHECKING:
    from lstmviz.io.keras.layers import Source, Weight


def _pick(weights: Sequence[Weight], role: str, index: int) -> Weight | None:
    named = [w for w in weights if w.role == role]
    if named:
        return named[0]
    if all(w.role.isdigit() for w in weights) and index < len(weights):
        return weights[index]  # Keras 3 vars/0, vars/1, vars/2
    return None


def _check(w: Weight, want: tuple[int, ...], layer: str, src: Source, why: str) -> None:
    if w.shape != want:
        raise LoadError(
            f"{src.file}: layer {layer!r} {w.role} {w.name} has shape {w.shape}, "
            f"expected {want} ({why}); the file is damaged or not a Keras recurrent layer"
        )


def _units(cfg: Mapping[str, Any] | None, rec: Weight, layer: str, src: Source, n: int) -> int:
    """H from the config, or from ``rec`` in a weights-only file (``n`` gate blocks)."""
    if cfg is None:
        if len(rec.shape) != 2 or rec.shape[0] < 1:
            raise LoadError(
                f"{src.file}: layer {layer!r} recurrent_kernel has shape {rec.shape}, "
                f"expected (H, {f'{n}H' if n > 1 else 'H'})"
            )
        return rec.shape[0]
    units = cfg.get("units")
    if not isinstance(units, int) or isinstance(units, bool) or not 0 < units <= 1 << 20:
        raise LoadError(f"{src.file}: layer {layer!r} config has units={units!r}, not a size")
    return units


def cell_arrays(
    layer: str,
    weights: Sequence[Weight],
    cfg: Mapping[str, Any] | None,
    src: Source,
    n: int,
    keras1: tuple[str, ...],
) -> tuple[Weight, Weight, Weight | None, int, int]:
    """kernel, recurrent_kernel, bias (or None), H and D, shape-checked for ``n`` gate blocks.

    ``keras1``: role endings that mark Keras 1's one-array-per-gate layout (``_W_i`` for the
    LSTM), refused with a line saying so rather than as a missing kernel."""
    kernel, rec = _pick(weights, "kernel", 0), _pick(weights, "recurrent_kernel", 1)
    bias = _pick(weights, "bias", 2)
    if kernel is None or rec is None:
        found = ", ".join(w.name for w in weights) or "no arrays"
        if src.version.major == 1 or any(w.role.endswith(keras1) for w in weights):
            raise LoadError(
                f"{src.file}: layer {layer!r} uses the Keras 1 layout (W, U, b per gate), "
                "which lstmviz does not read; load it in Keras 2 and save it again"
            )
        raise LoadError(
            f"{src.file}: layer {layer!r} lacks its kernel or recurrent_kernel (found {found})"
        )
    H = _units(cfg, rec, layer, src, n)
    check_flags(cfg, layer, src.file)
    if len(kernel.shape) != 2 or kernel.shape[0] < 1:
        raise LoadError(
            f"{src.file}: layer {layer!r} kernel has shape {kernel.shape}, expected (D, {n * H})"
        )
    why = f"units={H} in the config" if cfg is not None else "from recurrent_kernel"
    _check(kernel, (kernel.shape[0], n * H), layer, src, why)
    _check(rec, (H, n * H), layer, src, why)
    return kernel, rec, bias, H, kernel.shape[0]


def cell_settings(
    layer: str,
    cfg: Mapping[str, Any] | None,
    src: Source,
    kind: str,
    H: int,
    bias: Weight | None,
    cudnn: bool,
) -> LSTMSettings:
    """The layer's settings (a CuDNN layer's fixed ones when ``cudnn``), with ``use_bias``
    checked against the bias array: a weights-only file without one has none."""
    settings = lstm_settings(cfg, src.version, "CuDNNLSTM" if cudnn else kind, H)
    if cfg is None and bias is None:
        settings = replace(settings, use_bias=replace(settings.use_bias, value=False))
    use_bias = bool(settings.use_bias.value)
    if bias is not None and not use_bias:
        raise LoadError(
            f"{src.file}: layer {layer!r} has a bias but its config says use_bias=False"
        )
    if use_bias and bias is None:
        raise LoadError(f"{src.file}: layer {layer!r} has no bias array but use_bias=True")
    return settings


def cell_kernels(
    kernel: Weight, rec: Weight, bias: Weight | None, H: int, D: int, n: int, cudnn: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``W_x (nH, D)`` and ``W_h (nH, H)`` in the stored gate order, and the transforms said."""
    k, r = kernel.read(), rec.read()
    transforms = []
    if kernel.role.isdigit():
        transforms.append(
            "Keras 3 variables by index: vars/0 = kernel, vars/1 = recurrent_kernel"
            + (", vars/2 = bias" if bias is not None else "")
        )
    if cudnn:
        # cuDNN takes the C-order bytes of each [D, H] gate slice as an (H, D) matrix.
        W_x = np.concatenate([k[:, g * H : (g + 1) * H].reshape(H, D) for g in range(n)])
        # Keras' own CuDNN → LSTM/GRU converter transposes every [H, H] gate block of the
        # recurrent kernel, so the canonical block is the stored block itself.
        W_h = np.concatenate([r[:, g * H : (g + 1) * H] for g in range(n)])
        transforms += [
            f"kernel [{D},{n * H}]: each gate block [{D},{H}] reinterpreted as ({H},{D}) "
            "(cuDNN byte order, not a transpose)",
            f"recurrent_kernel [{H},{n * H}]: gate blocks [{H},{H}] stacked as stored into "
            f"W_h [{n * H},{H}] (cuDNN layout, no transpose)",
        ]
    else:
        W_x, W_h = k.T, r.T
        transforms += [
            f"kernel [{D},{n * H}] transposed to W_x [{n * H},{D}]",
            f"recurrent_kernel [{H},{n * H}] transposed to W_h [{n * H},{H}]",
        ]
    return W_x, W_h, transforms


def keras_activation(value: Any, src: Source, layer: str) -> Activation:
    """A config's activation (a name or a serialized object) as an lstmviz activation."""
    return resolve_activation(activation_name(value), src.version, src.file, layer)


def cell_activations(
    settings: LSTMSettings, src: Source, layer: str
) -> tuple[Activation, Activation]:
    """(activation, recurrent_activation) as lstmviz activations."""
    act = keras_activation(settings.activation.value, src, layer)
    return act, keras_activation(settings.recurrent_activation.value, src, layer)


def stored_tensors(
    kernel: Weight, rec: Weight, bias: Weight | None, cudnn: bool
) -> tuple[StoredTensor, ...]:
    """What the provenance lists as stored (a CuDNN kernel is no transposed ``W_x``)."""
    stored = [
        StoredTensor(
            "kernel_cudnn" if cudnn else "W_x", kernel.name, kernel.shape, True, 0, kernel.dtype
        ),
        StoredTensor(
            "recurrent_cudnn" if cudnn else "W_h", rec.name, rec.shape, True, 0, rec.dtype
        ),
    ]
    if bias is not None:
        stored.append(StoredTensor("b", bias.name, bias.shape, False, 0, bias.dtype))
    return tuple(stored)


def cell_notes(
    ws: Sequence[Weight | None],
    cfg: Mapping[str, Any] | None,
    src: Source,
    cudnn: bool,
    settings: LSTMSettings | None = None,
    rec_act: Activation | None = None,
) -> list[str]:
    """Widened half-precision arrays, the CuDNN kernels left out of the stored view, how a
    ``hard_sigmoid`` recurrent activation was read (when ``settings`` has one), and the
    config's precision policy."""
    notes = [
        f"{w.name} stored as {w.dtype}, widened to float32"
        for w in ws
        if w is not None and w.dtype in ("float16", "bfloat16")
    ]
    if cudnn:
        notes.append(
            "stored view omits the cuDNN kernels: their gate blocks are not a transposed W_x / W_h"
        )
    rec_name = activation_name(settings.recurrent_activation.value) if settings else None
    if rec_act is not None and rec_name == "hard_sigmoid":
        notes.append(f"hard_sigmoid read as {rec_act.name} ({src.version.label})")
    return notes + precision_note(cfg)


def _shown_settings(s: LSTMSettings, act: str, rec_act: str) -> tuple:
    """Settings with activations as lstmviz names (hard_sigmoid → hard_sigmoid_k2/k3)."""
    out = []
    for setting in s.all():
        if setting.name == "activation":
            setting = type(setting)(setting.name, act, setting.assumed, setting.note)
        elif setting.name == "recurrent_activation":
            setting = type(setting)(setting.name, rec_act, setting.assumed, setting.note)
        out.append(setting)
    return tuple(out)
