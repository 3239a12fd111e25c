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
from typing import Any

from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import Provenance, Setting
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.convert import reorder_gates
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.cell_arrays import (
    _check,
    _shown_settings,
    cell_activations,
    cell_arrays,
    cell_kernels,
    cell_notes,
    cell_settings,
    keras_activation,
    stored_tensors,
)
from lstmviz.io.keras.layers import Source, Weight

#: Keras classes read here (the LSTMs are read by ``layers``).
GRU_KINDS = frozenset({"GRU", "CuDNNGRU"})
RNN_KINDS = frozenset({"SimpleRNN"})
#: Role endings of Keras 1's per-gate arrays: a GRU's ``W_z``, a SimpleRNN's ``W``.
_KERAS1 = ("_W_z", "_W")


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


def gru_direction(
    layer: str,
    kind: str,
    weights: Sequence[Weight],
    cfg: Mapping[str, Any] | None,
    src: Source,
    reverse: bool,
) -> GRUDirection:
    """One Keras GRU (or CuDNNGRU) cell's arrays as a canonical GRU direction."""
    n = GRU_CELL.n_gates
    kernel, rec, bias, H, D = cell_arrays(layer, weights, cfg, src, n, _KERAS1)
    cudnn = kind == "CuDNNGRU" or (bias is not None and bias.shape == (6 * H,))
    kind = "CuDNNGRU" if cudnn else kind
    settings = cell_settings(layer, cfg, src, kind, H, bias, cudnn)
    reset = _reset_after(layer, kind, cfg, bias, H, src)
    reset_after = bool(reset.value)
    if bias is not None:
        want = (6 * H,) if cudnn else (2, 3 * H) if reset_after else (3 * H,)
        _check(bias, want, layer, src, f"reset_after={reset_after}")
    order = GRU_CELL.stored_order("keras")
    W_x, W_h, transforms = cell_kernels(kernel, rec, bias, H, D, n, cudnn)
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
    act, rec_act = cell_activations(settings, src, layer)
    notes = cell_notes((kernel, rec, bias), cfg, src, cudnn, settings, rec_act)
    provenance = Provenance(
        framework=src.version.label,
        source_format=src.source_format,
        gate_order=order.names,
        perm=order.perm,
        stored=stored_tensors(kernel, rec, bias, cudnn),
        transforms=tuple(transforms),
        settings=(*_shown_settings(settings, act.name, rec_act.name), reset),
        notes=tuple(notes),
    )
    try:
        return GRUDirection(
            W_x=reorder_gates(W_x, order.perm),
            W_h=reorder_gates(W_h, order.perm),
            b_x=None if b_x is None else reorder_gates(b_x, order.perm),
            b_h=None if b_h is None else reorder_gates(b_h, order.perm),
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
    kernel, rec, bias, H, D = cell_arrays(layer, weights, cfg, src, RNN_CELL.n_gates, _KERAS1)
    settings = cell_settings(layer, cfg, src, kind, H, bias, cudnn=False)
    if bias is not None:
        _check(bias, (H,), layer, src, f"units={H}")
    act = keras_activation(settings.activation.value, src, layer)
    W_x, W_h, transforms = cell_kernels(kernel, rec, bias, H, D, RNN_CELL.n_gates, cudnn=False)
    if bias is None:
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
        stored=stored_tensors(kernel, rec, bias, cudnn=False),
        transforms=tuple(transforms),
        settings=shown,
        notes=tuple(cell_notes((kernel, rec, bias), cfg, src, cudnn=False)),
    )
    try:
        return RNNDirection(
            W_x=W_x,
            W_h=W_h,
            b=None if bias is None else bias.read(),
            act_cand=act,
            reverse=reverse,
            provenance=provenance,
        )
    except ValueError as exc:
        raise LoadError(f"{src.file}: layer {layer!r} cannot be a SimpleRNN ({exc})") from exc
