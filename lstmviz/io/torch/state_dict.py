"""PyTorch-style state dicts (``{name: tensor}``) → canonical LSTM layers (CONVENTIONS §3.5).

Shared by the torch zip and safetensors readers, and usable by any reader that ends up with
flat ``{"encoder.lstm.weight_ih_l0": array, ...}`` names. Tensors are grouped by the module
path before ``weight_ih_l{k}`` (``nn.LSTM``) or ``weight_ih`` (``nn.LSTMCell``); the gate order
is already i, f, g, o, so the only transform is ``b = bias_ih + bias_hh``. Everything that is
not the chosen LSTM is listed in ``LSTMModel.all_layers`` so the user sees what the file held.

Values may be NumPy arrays or ``LazyTensor`` (bytes read only when the array is needed, so a
checkpoint of a large model costs only the LSTM's bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    StoredTensor,
)
from lstmviz.io.errors import LoadError
from lstmviz.io.torch.groups import _PARAM, _Group, _pick, _shape, group_recurrent
from lstmviz.io.torch.modules import NOT_RUN, find_embedding, module_infos
from lstmviz.io.torch.params import resolve_parametrized
from lstmviz.io.wire.safe_pickle import NumpyArray, Sealed

FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})


class LazyTensor(Sealed):
    """Shape and dtype now, values on ``read()``; ``dtype`` is a name such as ``"bfloat16"``.

    ``read()`` returns float16/32/64 or integer arrays; bfloat16 comes back widened to float32
    because NumPy has no bfloat16.
    """

    __slots__ = ("_read", "dtype", "shape")
    shape: tuple[int, ...]
    dtype: str

    def __init__(self, shape: tuple[int, ...], dtype: str, read: Callable[[], np.ndarray]) -> None:
        object.__setattr__(self, "shape", tuple(shape))
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "_read", read)

    def read(self) -> np.ndarray:
        return self._read()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self._read()
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyTensor({self.shape}, {self.dtype})"


Tensor = Union[np.ndarray, LazyTensor, NumpyArray]  # noqa: UP007 - used at run time on Python 3.10 too


def is_tensor(x: object) -> bool:
    return isinstance(x, (np.ndarray, LazyTensor, NumpyArray))


class _Arrays:
    """Reads tensors as float arrays once, remembering each one's stored dtype."""

    def __init__(
        self,
        tensors: Mapping[str, Tensor],
        file: str,
        derived: Mapping[str, str] | None = None,
        nonlinearities: Mapping[str, str] | None = None,
        nonlinearity: str | None = None,
    ) -> None:
        self.tensors, self.file = tensors, file
        self.derived = dict(derived or {})  # computed weight name → how (torch_params)
        self.nonlinearities = dict(nonlinearities or {})  # nn.RNN prefix → recorded value
        self.nonlinearity = nonlinearity  # the caller's nonlinearity= option

    def activation(self, prefix: str) -> Any:
        """``(Activation, Setting)`` of the ``nn.RNN`` at ``prefix`` (``torch.gru``)."""
        from lstmviz.io.torch.gru import nonlinearity_setting

        return nonlinearity_setting(prefix, self.nonlinearities, self.nonlinearity, self.file)

    def stored(
        self, names: Mapping[str, str | None], roles: Sequence[tuple[str, str]]
    ) -> tuple[tuple[StoredTensor, ...], list[str]]:
        """A direction's stored view, ``(role, param)`` in ``roles`` for each param present in
        ``names``, and one ``widened to float32`` transform per narrower dtype among them."""
        stored = tuple(
            StoredTensor(
                role, name, _shape(self.tensors[name]), dtype=str(self.tensors[name].dtype)
            )
            for role, p in roles
            if (name := names[p])
        )
        narrow = sorted({t.dtype for t in stored} - {"float32", "float64"})
        return stored, [f"{dtype} widened to float32" for dtype in narrow]

    def float(self, name: str) -> npt.NDArray[np.floating]:
        t = self.tensors[name]
        dtype = str(t.dtype)
        if dtype not in FLOAT_DTYPES:
            raise LoadError(
                f"{self.file}: {name} has dtype {dtype}; recurrent weights must be float16, "
                "bfloat16, float32 or float64"
            )
        arr = np.asarray(t)
        if arr.dtype.kind != "f":
            raise LoadError(f"{self.file}: {name} did not decode to floats ({arr.dtype})")
        return arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr


def _direction(
    group: _Group, layer: int, reverse: bool, arrays: _Arrays, source_format: str
) -> LSTMDirection:
    file = arrays.file
    names = {
        p: group.get(p, layer, reverse)
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    }
    for need in ("weight_ih", "weight_hh"):
        if names[need] is None:
            suffix = f"_l{layer}{'_reverse' if reverse else ''}" if group.layered else ""
            raise LoadError(
                f"{file}: {group.label} lacks {need}{suffix}; the state dict is incomplete"
            )
    W_x, W_h = arrays.float(names["weight_ih"]), arrays.float(names["weight_hh"])  # type: ignore[arg-type]
    W_p = arrays.float(names["weight_hr"]) if names["weight_hr"] else None
    for name, arr, ndim in ((names["weight_ih"], W_x, 2), (names["weight_hh"], W_h, 2)):
        if arr.ndim != ndim:
            raise LoadError(f"{file}: {name} has shape {arr.shape}, expected a matrix (4H, in)")
    rows = W_x.shape[0]
    biases = [(n, arrays.float(n)) for n in (names["bias_ih"], names["bias_hh"]) if n]
    for name, bias in biases:
        if bias.shape != (rows,):
            raise LoadError(f"{file}: {name} has shape {bias.shape}, expected ({rows},)")
    used = [n for n in names.values() if n]
    transforms = [arrays.derived[n] for n in used if n in arrays.derived]
    notes = [group.notes[n] for n in used if n in group.notes]
    if len(biases) == 2:
        with np.errstate(all="ignore"):  # NaN/Inf weights are shown, not refused
            b = biases[0][1].astype(np.float64) + biases[1][1]
        transforms.append("bias_ih + bias_hh summed into b")
    elif biases:
        b = biases[0][1]
        notes.append(f"only {biases[0][0]} stored; the other bias taken as 0")
    else:
        b = np.zeros(rows, dtype=W_x.dtype)
        notes.append("bias=False: b = 0")
    roles = (
        ("W_x", "weight_ih"),
        ("W_h", "weight_hh"),
        ("b_ih", "bias_ih"),
        ("b_hh", "bias_hh"),
        ("W_p", "weight_hr"),
    )
    stored, widened = arrays.stored(names, roles)
    transforms += widened
    if W_p is not None:
        notes.append(f"projection W_p = {names['weight_hr']} (P = {W_p.shape[0]})")
    provenance = Provenance(
        framework="PyTorch",
        source_format=source_format,
        gate_order=("i", "f", "g", "o"),
        perm=(0, 1, 2, 3),
        stored=stored,
        transforms=tuple(transforms),
        notes=tuple(notes),
    )
    try:
        return LSTMDirection(W_x=W_x, W_h=W_h, b=b, W_p=W_p, reverse=reverse, provenance=provenance)
    except ValueError as exc:
        raise LoadError(f"{file}: {group.label} has inconsistent shapes ({exc})") from exc


def _layers(group: _Group, arrays: _Arrays, source_format: str) -> tuple[LSTMLayer, ...]:
    if not group.is_lstm:  # GRU or RNN
        from lstmviz.io.torch.gru import recurrent_layers

        return recurrent_layers(group, arrays, source_format, arrays.activation(group.prefix))
    return layers_of(
        group, arrays.file, lambda k, rev: _direction(group, k, rev, arrays, source_format)
    )


def layers_of(
    group: _Group, file: str, direction: Callable[[int, bool], Any]
) -> tuple[LSTMLayer, ...]:
    """The layers of the module ``group`` (one for a ``*Cell``), each direction made by
    ``direction(layer, reverse)``: the same for ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN``, whose
    state dicts differ only inside a direction. A cell is named ``lstm_cell`` / ``gru_cell`` /
    ``rnn_cell`` when it sits at the top level."""
    if not group.layered:
        default = group.kind.removesuffix("Cell").lower() + "_cell"
        d = direction(0, False)
        return (LSTMLayer(name=group.prefix or default, directions=(d,), kind=group.kind),)
    numbers = sorted({layer for (p, layer, _) in group.params if p == "weight_ih"})  # type: ignore[type-var]
    if numbers != list(range(len(numbers))):
        missing = min(set(range(max(numbers) + 1)) - set(numbers))  # type: ignore[arg-type]
        raise LoadError(
            f"{file}: {group.label} lacks weight_ih_l{missing}; the state dict is incomplete"
        )
    bidirectional = group.get("weight_ih", 0, True) is not None
    layers = []
    for k in numbers:
        if (group.get("weight_ih", k, True) is not None) != bidirectional:  # type: ignore[arg-type]
            raise LoadError(
                f"{file}: {group.label} layer {k} and layer 0 differ in direction count"
            )
        dirs = [direction(k, False)]  # type: ignore[arg-type]
        if bidirectional:
            dirs.append(direction(k, True))  # type: ignore[arg-type]
        base = group.prefix or group.kind.lower()
        name = f"{base} layer {k}" if len(numbers) > 1 else base
        try:
            # PyTorch concatenates [forward, backward], both in time order.
            layers.append(
                LSTMLayer(
                    name=name,
                    directions=tuple(dirs),
                    merge_mode=MergeMode.CONCAT,
                    output_order=OutputOrder.TIME,
                    kind=group.kind,
                )
            )
        except ValueError as exc:
            raise LoadError(f"{file}: {group.label} layer {k}: {exc}") from exc
    return tuple(layers)


def _no_lstm(tensors: Mapping[str, Tensor], file: str) -> LoadError:
    """No module path holds both weight_ih* and weight_hh*: say what there is (and name every
    recurrent module lstmviz reads, not just the LSTM)."""
    partial = [n for n in tensors if _PARAM.match(n.rpartition(".")[2])]
    if partial:
        listed = ", ".join(partial[:4]) + (", ..." if len(partial) > 4 else "")
        return LoadError(
            f"{file}: has recurrent weights ({listed}) but no module path with both "
            "weight_ih* and weight_hh*; the state dict is incomplete or its weights are "
            "stored under other names"
        )
    sample = ", ".join(list(tensors)[:4]) or "no tensors"
    return LoadError(
        f"{file}: holds no LSTM, GRU or RNN weights (no *.weight_ih_l0 or weight_ih; found "
        f"{sample}); expected the state_dict of a model with nn.LSTM, nn.GRU, nn.RNN or their "
        "Cell versions"
    )


def model_from_state_dict(
    tensors: Mapping[str, Tensor],
    *,
    file: str,
    source_format: str,
    source_path: str = "",
    prefix: str | None = None,
    extras: Mapping[str, Tensor] | None = None,
    notes: Sequence[str] = (),
    derived: Mapping[str, str] | None = None,
    charge: Callable[[int, str], None] | None = None,
    nonlinearities: Mapping[str, str] | None = None,
    nonlinearity: str | None = None,
) -> LSTMModel:
    """Build the model for the one LSTM, GRU or plain RNN in ``tensors`` (or the one
    ``prefix`` names).

    ``nonlinearities`` maps an ``nn.RNN``'s prefix to the ``nonlinearity`` a pickled module
    recorded; ``nonlinearity`` (the caller's option) overrides it for a state dict.

    ``charge(nbytes, what)`` is told the bytes weights computed from their pieces
    (weight_norm, spectral_norm) take before they are made, and refuses past the file's budget.

    Raises ``ChoiceRequired(option="prefix")`` when several LSTMs are present and ``LoadError``
    for GRUs, missing or mis-shaped tensors. ``extras`` (optimizer state...) only get listed;
    ``derived`` names weights the caller computed (dequantized) and how, for the provenance.
    """
    tensors, computed = resolve_parametrized(tensors, _Arrays(tensors, file).float, file, charge)
    derived = {**(derived or {}), **computed}
    groups = group_recurrent(tensors)
    if not groups:
        raise _no_lstm(tensors, file)
    chosen = _pick(groups, prefix, file, tensors)
    arrays = _Arrays(tensors, file, derived, nonlinearities, nonlinearity)
    layers = _layers(chosen, arrays, source_format)
    embedding, module_notes, emb_note = find_embedding(
        chosen.prefix,
        list(chosen.params.values()),
        tensors,
        layers[0].input_size,
        arrays.float,
        layers[0].cell.name,
    )
    used = set()
    infos = []
    for g in groups:
        used.update(g.params.values())
        if g is chosen:
            note = "shown"
        elif g.runnable:
            note = f"not shown; load with prefix='{g.prefix}'"
        else:
            note = "fits no cell lstmviz runs (weight_ih rows not 4H, 3H or H)"
        weights = tuple((n, _shape(tensors[n])) for n in g.params.values())
        infos.append(LayerInfo(g.label, g.kind, weights, is_lstm=g.runnable, note=note))
    infos.extend(module_infos([n for n in tensors if n not in used], tensors, module_notes))
    extras = extras or {}
    by_top: dict[str, list[str]] = {}
    for n in extras:  # one pass: 30k extras under 30k tops was quadratic
        by_top.setdefault(n.split(".", 1)[0], []).append(n)
    for top, members in by_top.items():
        note = "optimizer state" if "optim" in top.lower() else ""
        weights = tuple((n, _shape(extras[n])) for n in members)
        infos.append(LayerInfo(top, "tensor", weights, note=note))
    model_notes = list(notes)
    if emb_note and embedding is None:
        model_notes.append(emb_note)
    elif emb_note:
        others = [f"{i.name} ({i.kind})" for i in infos if not i.is_lstm and i.note == NOT_RUN]
        model_notes.append(emb_note + (f"; not run: {', '.join(others)}" if others else ""))
    try:
        return LSTMModel(
            layers=layers,
            source_path=source_path,
            source_format=source_format,
            framework="PyTorch",
            all_layers=tuple(infos),
            embedding=embedding,
            notes=tuple(model_notes),
        )
    except ValueError as exc:
        raise LoadError(f"{file}: {chosen.label} layers do not chain ({exc})") from exc
