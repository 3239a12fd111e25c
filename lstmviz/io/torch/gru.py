"""PyTorch ``nn.GRU``/``nn.GRUCell`` and ``nn.RNN``/``nn.RNNCell`` state dicts → canonical
GRU and plain-RNN directions (CONVENTIONS.md §7).

``nn.GRU`` stores ``weight_ih_l{k}[_reverse]`` ``(3H, D)``, ``weight_hh`` ``(3H, H)`` and two
biases ``(3H,)`` with blocks r, z, n, which is the canonical order: no permutation, no
transpose, and the biases stay apart (``b_x`` = ``bias_ih``, ``b_h`` = ``bias_hh``) because torch
applies the reset gate to ``W_hn·h + b_hn`` (``reset_after``). ``nn.RNN`` stores ``(H, D)``,
``(H, H)`` and two ``(H,)`` biases, which are summed. Its nonlinearity (tanh or relu) is not a
tensor: a whole pickled module or a TorchScript archive records it as the ``nonlinearity``
attribute; a bare state dict does not, so tanh (the default) is assumed unless
``nonlinearity=`` says otherwise, and the provenance says which.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lstmviz.core.activations import TANH, Activation
from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import LSTMLayer, Provenance, Setting
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.errors import LoadError
from lstmviz.io.torch.groups import _Group
from lstmviz.io.torch.state_dict import _Arrays, layers_of

#: ``nn.RNN(nonlinearity=...)`` → lstmviz activation.
NONLINEARITIES = {"tanh": TANH, "relu": Activation("relu")}
_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def nonlinearity_setting(
    prefix: str, recorded: Mapping[str, str], given: str | None, file: str
) -> tuple[Activation, Setting]:
    """The activation of the ``nn.RNN`` at ``prefix``: ``nonlinearity=`` when given, else
    what the pickled module recorded, else tanh (assumed)."""
    if given is not None:
        value, assumed, note = str(given).strip().lower(), False, "given as nonlinearity="
    elif prefix in recorded:
        value, assumed, note = recorded[prefix], False, "read from the module's nonlinearity"
    else:
        value, assumed = "tanh", True
        note = "a state dict does not record it; nn.RNN default (pass nonlinearity='relu')"
    if value not in NONLINEARITIES:
        raise LoadError(
            f"{file}: nn.RNN nonlinearity {value!r} is not tanh or relu (the two nn.RNN has)"
        )
    return NONLINEARITIES[value], Setting("nonlinearity", value, assumed, note)


def _direction(
    group: _Group,
    layer: int,
    reverse: bool,
    arrays: _Arrays,
    source_format: str,
    activation: tuple[Activation, Setting] | None,
) -> GRUDirection | RNNDirection:
    file = arrays.file
    names = {p: group.get(p, layer, reverse) for p in _PARAMS}
    suffix = f"_l{layer}{'_reverse' if reverse else ''}" if group.layered else ""
    for need in ("weight_ih", "weight_hh"):
        if names[need] is None:
            raise LoadError(
                f"{file}: {group.label} lacks {need}{suffix}; the state dict is incomplete"
            )
    gru = group.kind.startswith("GRU")
    n_blocks = 3 if gru else 1
    W_x, W_h = arrays.float(names["weight_ih"]), arrays.float(names["weight_hh"])  # type: ignore[arg-type]
    if W_x.ndim != 2 or W_x.shape[0] % n_blocks or W_x.shape[0] == 0:
        raise LoadError(
            f"{file}: {names['weight_ih']} has shape {W_x.shape}, expected "
            f"({'3H' if gru else 'H'}, in)"
        )
    rows = W_x.shape[0]
    H = rows // n_blocks
    if W_h.shape != (rows, H):
        raise LoadError(f"{file}: {names['weight_hh']} has shape {W_h.shape}, expected {(rows, H)}")
    biases = {}
    for p in ("bias_ih", "bias_hh"):
        if names[p]:
            bias = arrays.float(names[p])  # type: ignore[arg-type]
            if bias.shape != (rows,):
                raise LoadError(f"{file}: {names[p]} has shape {bias.shape}, expected ({rows},)")
            biases[p] = bias
    used = [n for n in names.values() if n]
    transforms = [arrays.derived[n] for n in used if n in arrays.derived]
    notes = [group.notes[n] for n in used if n in group.notes]
    roles = (("W_x", "weight_ih"), ("W_h", "weight_hh"))
    roles += (
        (("b_x", "bias_ih"), ("b_h", "bias_hh"))
        if gru
        else (("b_ih", "bias_ih"), ("b_hh", "bias_hh"))
    )
    stored, widened = arrays.stored(names, roles)
    transforms += widened
    missing = [p for p in ("bias_ih", "bias_hh") if p not in biases]
    if len(missing) == 2:
        notes.append("bias=False: biases = 0")
    elif missing:
        notes.append(f"only {next(iter(biases))} stored; {missing[0]} taken as 0")
    settings: tuple[Setting, ...] = ()
    b = None
    order = (GRU_CELL if gru else RNN_CELL).stored_order("torch")
    if gru:
        transforms.append("bias_ih → b_x, bias_hh → b_h (kept apart: the reset gate acts on b_h)")
    else:
        act, setting = activation or (TANH, Setting("nonlinearity", "tanh", True))
        settings = (setting,)
        if len(biases) == 2:
            with np.errstate(all="ignore"):  # NaN/Inf weights are shown, not refused
                b = biases["bias_ih"].astype(np.float64) + biases["bias_hh"]
            transforms.append("bias_ih + bias_hh summed into b")
        else:
            b = next(iter(biases.values()), None)
    provenance = Provenance(
        framework="PyTorch",
        source_format=source_format,
        gate_order=order.names,
        perm=order.perm,
        stored=stored,
        transforms=tuple(transforms),
        settings=settings,
        notes=tuple(notes),
    )
    try:
        if gru:
            return GRUDirection(
                W_x=W_x,
                W_h=W_h,
                b_x=biases.get("bias_ih"),
                b_h=biases.get("bias_hh"),
                reset_after=True,
                reverse=reverse,
                provenance=provenance,
            )
        return RNNDirection(
            W_x=W_x, W_h=W_h, b=b, act_cand=act, reverse=reverse, provenance=provenance
        )
    except ValueError as exc:
        raise LoadError(f"{file}: {group.label} has inconsistent shapes ({exc})") from exc


def recurrent_layers(
    group: _Group,
    arrays: _Arrays,
    source_format: str,
    activation: tuple[Activation, Setting] | None = None,
) -> tuple[LSTMLayer, ...]:
    """The layers of an ``nn.GRU``/``nn.RNN`` (or the one layer of a ``*Cell``)."""
    return layers_of(
        group,
        arrays.file,
        lambda k, rev: _direction(group, k, rev, arrays, source_format, activation),
    )
