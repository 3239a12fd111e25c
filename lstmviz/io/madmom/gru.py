"""madmom ``GRULayer`` and ``RecurrentLayer`` records → canonical GRU and plain-RNN directions.

madmom's GRU (``madmom/ml/nn/layers.py``, the Lasagne formulation of Cho et al. 2014):
``r = σ(x W_r + b_r + h U_r)``, ``u = σ(x W_u + b_u + h U_u)`` (``reset_gate``, ``update_gate``:
``Gate`` records), ``c = tanh(x W_c + b_c + r ⊙ (h U_c))`` (``cell``: a ``GRUCell``) and
``h' = u ⊙ c + (1 − u) ⊙ h``. That is the reset-after GRU with no recurrent bias, except that
madmom's u weighs the *new* value where the canonical z weighs the old one: z = 1 − u. With a
sigmoid update gate, 1 − σ(a) = σ(−a), so the canonical z block is madmom's update gate
negated (weights and bias); the provenance says so, and the step view's z is 1 − u.
``RecurrentLayer``: ``h = act(x W + b + h U)``. ``init`` is the initial h of both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import LSTMLayer, Provenance
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.errors import LoadError
from lstmviz.io.madmom.network import (
    FRAMEWORK,
    _activation,
    _Arrays,
    _Budget,
    _class,
    _parts,
    _sizes,
)
from lstmviz.io.wire.safe_pickle import NumpyArray, PickledObject

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

KINDS = ("GRULayer", "RecurrentLayer")
_GRU_PARTS = ("reset_gate", "update_gate", "cell")
SOURCE = "madmom pickled NeuralNetwork"


def _h0(obj: Mapping[str, Any], arrays: _Arrays, where: str, H: int) -> tuple:
    """``init`` (``hid_init`` in old GRU models) as the initial h, when nonzero."""
    for key in ("init", "hid_init"):
        if isinstance(obj.get(key), NumpyArray):
            state = arrays.get(obj, key, where, (H,))
            if np.any(state):
                return state, (f"{where}.{key} used as the initial h0",)
    return None, ()


def _gru(obj: PickledObject, where: str, file: str, reverse: bool, budget: _Budget) -> GRUDirection:
    parts = _parts(obj, _GRU_PARTS, where, file, "GRULayer")
    D, H = _sizes(
        parts["cell"].get("recurrent_weights"), parts["cell"].get("weights"), f"{where}.cell", file
    )
    budget.charge(3 * H * (D + H + 2), where)
    arrays = _Arrays(file)
    W_x, W_h, b = [], [], []
    for name, sign in (("reset_gate", 1.0), ("update_gate", -1.0), ("cell", 1.0)):
        at = f"{where}.{name}"
        W_x.append(sign * arrays.get(parts[name], "weights", at, (D, H)).T)
        W_h.append(sign * arrays.get(parts[name], "recurrent_weights", at, (H, H)).T)
        b.append(sign * arrays.get(parts[name], "bias", at, (H,)))
    r_act = _activation(parts["reset_gate"], f"{where}.reset_gate", file, "sigmoid")
    u_act = _activation(parts["update_gate"], f"{where}.update_gate", file, "sigmoid")
    if r_act.name != "sigmoid" or u_act.name != "sigmoid":
        raise LoadError(
            f"{file}: {where}'s reset/update gates use {r_act.name}/{u_act.name}; lstmviz reads "
            "madmom GRUs with sigmoid gates (z = 1 − u needs σ(−a) = 1 − σ(a))"
        )
    cell_act = _activation(parts["cell"], f"{where}.cell", file, "tanh")
    h0, notes = _h0(obj, arrays, where, H)
    prov = Provenance(
        framework=FRAMEWORK,
        source_format=SOURCE,
        gate_order=("reset_gate", "update_gate", "cell"),
        perm=(0, 1, 2),
        transforms=(
            "each part's weights [D, H] and recurrent_weights [H, H] transposed and stacked as "
            "r (reset_gate), z, n (cell)",
            "z = 1 − u: madmom's update gate weighs the new value (h' = u·c + (1 − u)·h), so "
            "its weights and bias are negated (σ(−a) = 1 − σ(a))",
            "reset after, no recurrent bias: b_h = 0",
        ),
        notes=notes,
    )
    return GRUDirection(
        W_x=np.concatenate(W_x),
        W_h=np.concatenate(W_h),
        b_x=np.concatenate(b),
        reset_after=True,
        act_cand=cell_act,
        reverse=reverse,
        provenance=prov,
        h0=h0,
    )


def _rnn(obj: PickledObject, where: str, file: str, reverse: bool, budget: _Budget) -> RNNDirection:
    D, H = _sizes(obj.get("recurrent_weights"), obj.get("weights"), where, file)
    budget.charge(H * (D + H + 2), where)
    arrays = _Arrays(file)
    h0, notes = _h0(obj, arrays, where, H)
    prov = Provenance(
        framework=FRAMEWORK,
        source_format=SOURCE,
        gate_order=("h",),
        perm=(0,),
        transforms=("weights [D, H] and recurrent_weights [H, H] transposed",),
        notes=notes,
    )
    return RNNDirection(
        W_x=arrays.get(obj, "weights", where, (D, H)).T,
        W_h=arrays.get(obj, "recurrent_weights", where, (H, H)).T,
        b=arrays.get(obj, "bias", where, (H,)),
        act_cand=_activation(obj, where, file, "tanh"),
        reverse=reverse,
        provenance=prov,
        h0=h0,
    )


def recurrent_layer(obj: PickledObject, index: int, file: str, budget: _Budget) -> LSTMLayer | None:
    """The canonical layer of a GRULayer, RecurrentLayer or a BidirectionalLayer of two of
    one kind (its backward layer reads reversed input; outputs stacked in time order)."""
    where = f"layers[{index}]"
    kind = _class(obj)
    make = {"GRULayer": _gru, "RecurrentLayer": _rnn}
    if kind in make:
        return LSTMLayer(where, (make[kind](obj, where, file, False, budget),), kind=kind)
    if kind != "BidirectionalLayer":
        return None
    fwd, bwd = obj.get("fwd_layer"), obj.get("bwd_layer")
    kinds = {_class(fwd), _class(bwd)}
    if len(kinds) != 1 or not kinds <= set(make):
        return None
    inner = kinds.pop()
    dirs = (
        make[inner](fwd, f"{where}.fwd_layer", file, False, budget),  # type: ignore[arg-type]
        make[inner](bwd, f"{where}.bwd_layer", file, True, budget),  # type: ignore[arg-type]
    )
    return LSTMLayer(where, dirs, kind=f"BidirectionalLayer({inner})")  # type: ignore[arg-type]
