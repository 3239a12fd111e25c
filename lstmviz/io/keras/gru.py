"""Keras ``GRU``, ``CuDNNGRU`` and ``SimpleRNN`` arrays → canonical GRU and plain-RNN directions
(CONVENTIONS.md §7), for every Keras file reader (legacy HDF5, ``.keras``, ``.weights.h5``).

- ``GRU`` stores ``kernel [D, 3H]`` and ``recurrent_kernel [H, 3H]`` with column blocks
  z, r, h, and ``bias [3H]`` (``reset_after=False``: one bias, the reset gate multiplies ``h``
  before ``U_h``) or ``[2, 3H]`` (``reset_after=True``, the default since Keras 2.3 / tf.keras 2
  / Keras 3: row 0 the input bias, row 1 the recurrent one, which the reset gate multiplies).
  Canonical: the transposes, blocks reordered to r, z, n (``GRU_CELL.stored_order("keras")``).
  The bias shape decides ``reset_after`` when the config does not say it (weights-only files).
- ``CuDNNGRU`` (Keras 2.0.9–2.2.5, tf.keras 1) stores cuDNN's bytes as CuDNNLSTM does: each
  ``[D, H]`` gate slice of ``kernel`` is really an ``(H, D)`` matrix in C order, each ``[H, H]``
  slice of ``recurrent_kernel`` is the canonical block as stored, and ``bias [6H]`` is the
  input then the recurrent bias. Gate blocks keep Keras' z, r, h (Keras' own CuDNNGRU → GRU
  converter, ``_convert_rnn_weights``, permutes nothing; it feeds cuDNN r, z, h itself); cuDNN
  runs sigmoid/tanh with the reset after.
- ``SimpleRNN``: ``kernel [D, H]``, ``recurrent_kernel [H, H]``, ``bias [H]``, ``activation``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import Provenance, Setting, StoredTensor
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import (
    activation_name,
    check_flags,
    lstm_settings,
    precision_note,
    resolve_activation,
)
from lstmviz.io.keras.layers import Source, Weight, _check, _pick, _shown_settings, _units

#: Keras classes read here (the LSTMs are read by ``layers``).
GRU_KINDS = frozenset({"GRU", "CuDNNGRU"})
RNN_KINDS = frozenset({"SimpleRNN"})


def _reorder(a: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Row blocks of ``a`` in canonical order: block k = stored block ``perm[k]``."""
    blocks = np.split(a, len(perm), axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[p] for p in perm], axis=0))


def _arrays(
    layer: str, weights: Sequence[Weight], cfg: Mapping[str, Any] | None, src: Source, n: int
) -> tuple[Weight, Weight, Weight | None, int, int]:
    """kernel, recurrent_kernel, bias (or None), H and D, shape-checked for ``n`` blocks."""
    kernel, rec = _pick(weights, "kernel", 0), _pick(weights, "recurrent_kernel", 1)
    bias = _pick(weights, "bias", 2)
    if kernel is None or rec is None:
        found = ", ".join(w.name for w in weights) or "no arrays"
        if src.version.major == 1 or any(w.role.endswith(("_W_z", "_W")) for w in weights):
            raise LoadError(
                f"{src.file}: layer {layer!r} uses the Keras 1 layout (W, U, b per gate), "
                "which lstmviz does not read; load it in Keras 2 and save it again"
            )
        raise LoadError(
            f"{src.file}: layer {layer!r} lacks its kernel or recurrent_kernel (found {found})"
        )
    H = _units(cfg, rec, layer, src)
    check_flags(cfg, layer, src.file)
    if len(kernel.shape) != 2 or kernel.shape[0] < 1:
        raise LoadError(
            f"{src.file}: layer {layer!r} kernel has shape {kernel.shape}, expected (D, {n * H})"
        )
    why = f"units={H} in the config" if cfg is not None else "from recurrent_kernel"
    _check(kernel, (kernel.shape[0], n * H), layer, src, why)
    _check(rec, (H, n * H), layer, src, why)
    return kernel, rec, bias, H, kernel.shape[0]


def _settings(
    layer: str, cfg: Mapping[str, Any] | None, src: Source, kind: str, H: int, bias: Weight | None
) -> tuple[Any, bool]:
    """``LSTMSettings``-shaped settings for a GRU or SimpleRNN, and ``use_bias``."""
    settings = lstm_settings(cfg, src.version, "CuDNNLSTM" if kind == "CuDNNGRU" else kind, H)
    if cfg is None and bias is None:
        settings = replace(settings, use_bias=replace(settings.use_bias, value=False))
    use_bias = bool(settings.use_bias.value)
    if bias is not None and not use_bias:
        raise LoadError(
            f"{src.file}: layer {layer!r} has a bias but its config says use_bias=False"
        )
    if use_bias and bias is None:
        raise LoadError(f"{src.file}: layer {layer!r} has no bias array but use_bias=True")
    return settings, use_bias


def _reset_after(
    layer: str, kind: str, cfg: Mapping[str, Any] | None, bias: Weight | None, H: int, src: Source
) -> Setting:
    """``reset_after``: fixed for CuDNNGRU; else the config's, checked against the bias shape
    (``[2, 3H]`` holds two biases, ``[3H]`` one); else from the bias shape; else the
    version's default (True from Keras 2.3 / tf.keras 2, False before and in tf.keras 1)."""
    if kind == "CuDNNGRU":
        return Setting("reset_after", True, assumed=False, note="fixed by cuDNN")
    by_bias = None if bias is None else bias.shape == (2, 3 * H)
    if cfg is not None and "reset_after" in cfg:
        value = cfg["reset_after"]
        if not isinstance(value, bool):
            raise LoadError(
                f"{src.file}: layer {layer!r} config has reset_after={value!r}, expected "
                "true or false"
            )
        if by_bias is not None and by_bias != value:
            raise LoadError(
                f"{src.file}: layer {layer!r} has reset_after={value} but a bias of shape "
                f"{bias.shape} (reset_after=True stores (2, {3 * H}), False ({3 * H},)); "  # type: ignore[union-attr]
                "the file is damaged"
            )
        return Setting("reset_after", value, assumed=False, note="read from the model config")
    if by_bias is not None:
        return Setting("reset_after", by_bias, assumed=False, note=f"from the bias {bias.shape}")  # type: ignore[union-attr]
    rec, _ = src.version.default_recurrent_activation()
    default = rec == "sigmoid"  # reset_after became the default with sigmoid (Keras 2.3)
    why = "no bias and no config" if cfg is None else "not in the config"
    return Setting("reset_after", default, assumed=True, note=f"{why}; {src.version.label} default")


def _base_notes(ws: Sequence[Weight | None], cfg: Mapping[str, Any] | None) -> list[str]:
    notes = [
        f"{w.name} stored as {w.dtype}, widened to float32"
        for w in ws
        if w is not None and w.dtype in ("float16", "bfloat16")
    ]
    return notes + precision_note(cfg)


def gru_direction(
    layer: str,
    kind: str,
    weights: Sequence[Weight],
    cfg: Mapping[str, Any] | None,
    src: Source,
    reverse: bool,
) -> GRUDirection:
    """One Keras GRU (or CuDNNGRU) cell's arrays as a canonical GRU direction."""
    kernel, rec, bias, H, D = _arrays(layer, weights, cfg, src, 3)
    cudnn = kind == "CuDNNGRU" or (bias is not None and bias.shape == (6 * H,))
    kind = "CuDNNGRU" if cudnn else kind
    settings, _ = _settings(layer, cfg, src, kind, H, bias)
    reset = _reset_after(layer, kind, cfg, bias, H, src)
    reset_after = bool(reset.value)
    if bias is not None:
        want = (6 * H,) if cudnn else (2, 3 * H) if reset_after else (3 * H,)
        _check(bias, want, layer, src, f"reset_after={reset_after}")
    order = GRU_CELL.stored_order("keras")
    k, r = kernel.read(), rec.read()
    transforms = []
    if kernel.role.isdigit():
        transforms.append(
            "Keras 3 variables by index: vars/0 = kernel, vars/1 = recurrent_kernel"
            + (", vars/2 = bias" if bias is not None else "")
        )
    if cudnn:
        W_x = np.concatenate([k[:, g * H : (g + 1) * H].reshape(H, D) for g in range(3)])
        W_h = np.concatenate([r[:, g * H : (g + 1) * H] for g in range(3)])
        transforms += [
            f"kernel [{D},{3 * H}]: each gate block [{D},{H}] reinterpreted as ({H},{D}) "
            "(cuDNN byte order, not a transpose)",
            f"recurrent_kernel [{H},{3 * H}]: gate blocks [{H},{H}] stacked as stored "
            "(cuDNN layout, no transpose)",
        ]
    else:
        W_x, W_h = k.T, r.T
        transforms += [
            f"kernel [{D},{3 * H}] transposed to W_x [{3 * H},{D}]",
            f"recurrent_kernel [{H},{3 * H}] transposed to W_h [{3 * H},{H}]",
        ]
    transforms.append("gate blocks reordered z,r,h → r,z,n")
    b_x = b_h = None
    if bias is not None:
        bb = bias.read()
        if cudnn:
            b_x, b_h = bb[: 3 * H], bb[3 * H :]
            transforms.append(f"bias [{6 * H}] split: b_x = bias[:{3 * H}], b_h = bias[{3 * H}:]")
        elif reset_after:
            b_x, b_h = bb[0], bb[1]
            transforms.append(f"bias [2,{3 * H}] split: b_x = bias[0], b_h = bias[1]")
        else:
            b_x = bb
            transforms.append("one bias (reset_after=False): b_x = bias, b_h = 0")
    else:
        transforms.append("no bias (use_bias=False): b_x = b_h = 0")
    act = resolve_activation(
        activation_name(settings.activation.value), src.version, src.file, layer
    )
    rec_act = resolve_activation(
        activation_name(settings.recurrent_activation.value), src.version, src.file, layer
    )
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
    notes = _base_notes((kernel, rec, bias), cfg)
    if activation_name(settings.recurrent_activation.value) == "hard_sigmoid":
        notes.append(f"hard_sigmoid read as {rec_act.name} ({src.version.label})")
    if cudnn:
        notes.append(
            "stored view omits the cuDNN kernels: their gate blocks are not a transposed W_x / W_h"
        )
    provenance = Provenance(
        framework=src.version.label,
        source_format=src.source_format,
        gate_order=order.names,
        perm=order.perm,
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=(*_shown_settings(settings, act.name, rec_act.name), reset),
        notes=tuple(notes),
    )
    try:
        return GRUDirection(
            W_x=_reorder(W_x, order.perm),
            W_h=_reorder(W_h, order.perm),
            b_x=None if b_x is None else _reorder(b_x, order.perm),
            b_h=None if b_h is None else _reorder(b_h, order.perm),
            reset_after=reset_after,
            act_gate=rec_act,
            act_cand=act,
            reverse=reverse,
            provenance=provenance,
        )
    except ValueError as exc:
        raise LoadError(f"{src.file}: layer {layer!r} cannot be a GRU ({exc})") from exc


def rnn_direction(
    layer: str,
    kind: str,
    weights: Sequence[Weight],
    cfg: Mapping[str, Any] | None,
    src: Source,
    reverse: bool,
) -> RNNDirection:
    """One Keras SimpleRNN cell's arrays as a canonical plain-RNN direction."""
    kernel, rec, bias, H, D = _arrays(layer, weights, cfg, src, 1)
    settings, _ = _settings(layer, cfg, src, kind, H, bias)
    if bias is not None:
        _check(bias, (H,), layer, src, f"units={H}")
    act = resolve_activation(
        activation_name(settings.activation.value), src.version, src.file, layer
    )
    transforms = [
        f"kernel [{D},{H}] transposed to W_x [{H},{D}]",
        f"recurrent_kernel [{H},{H}] transposed to W_h [{H},{H}]",
    ]
    if kernel.role.isdigit():
        transforms.insert(0, "Keras 3 variables by index: vars/0 = kernel, vars/1 = recurrent")
    stored = [
        StoredTensor("W_x", kernel.name, kernel.shape, True, 0, kernel.dtype),
        StoredTensor("W_h", rec.name, rec.shape, True, 0, rec.dtype),
    ]
    if bias is not None:
        stored.append(StoredTensor("b", bias.name, bias.shape, False, 0, bias.dtype))
    else:
        transforms.append("no bias (use_bias=False): b = 0")
    shown = tuple(
        s
        for s in _shown_settings(settings, act.name, "")
        if s.name not in ("recurrent_activation", "unit_forget_bias")
    )
    order = RNN_CELL.stored_order("keras")
    provenance = Provenance(
        framework=src.version.label,
        source_format=src.source_format,
        gate_order=order.names,
        perm=order.perm,
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=shown,
        notes=tuple(_base_notes((kernel, rec, bias), cfg)),
    )
    try:
        return RNNDirection(
            W_x=kernel.read().T,
            W_h=rec.read().T,
            b=None if bias is None else bias.read(),
            act_cand=act,
            reverse=reverse,
            provenance=provenance,
        )
    except ValueError as exc:
        raise LoadError(f"{src.file}: layer {layer!r} cannot be a SimpleRNN ({exc})") from exc
