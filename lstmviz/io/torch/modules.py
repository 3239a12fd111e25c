"""The modules of a state dict besides the LSTM: what to list, and which embedding to run.

A state dict records names and shapes, not wiring: an ``*emb*.weight`` (vocab, D) whose width
matches the LSTM's input could feed it directly or through other modules. Modules are usually
registered (and so stored) in the order ``forward`` uses them, so an embedding is offered for
token ids only when no other module that could output D-wide vectors is stored between it and
the LSTM (e.g. ``embedding → inp = Linear(D, D) → lstm``: lstmviz runs only the LSTM, so token
ids through the embedding alone would give numbers PyTorch never computes). Even then it is
an assumption, and the note says so and names the modules lstmviz does not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from lstmviz.core.model import LayerInfo

FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
NOT_RUN = "not run by lstmviz"


def shape_of(t: object) -> tuple[int, ...]:
    return tuple(int(n) for n in t.shape)  # type: ignore[attr-defined]


def _modules(names: Sequence[str]) -> dict[str, list[str]]:
    """Module path (text before the last dot) → its tensor names, in stored order."""
    modules: dict[str, list[str]] = {}
    for name in names:
        modules.setdefault(name.rpartition(".")[0], []).append(name)
    return modules


def _kind(params: Mapping[str, tuple[int, ...]], module: str) -> str:
    weight = params.get("weight", ())
    if len(weight) == 2 and set(params) == {"weight"} and "emb" in module.lower():
        return "Embedding"
    if len(weight) == 2 and set(params) <= {"weight", "bias"}:
        return "Linear"
    return "tensor"


def module_infos(
    names: Sequence[str], tensors: Mapping[str, object], notes: Mapping[str, str]
) -> list[LayerInfo]:
    """One LayerInfo per module path for the tensors not in a recurrent group."""
    infos = []
    for module, members in _modules(names).items():
        params = {n.rpartition(".")[2]: shape_of(tensors[n]) for n in members}
        weights = tuple((n, shape_of(tensors[n])) for n in members)
        label = module or "(top level)"
        note = notes.get(module, NOT_RUN)
        infos.append(LayerInfo(name=label, kind=_kind(params, module), weights=weights, note=note))
    return infos


def _outputs_width(members: Sequence[str], tensors: Mapping[str, object], width: int) -> bool:
    """True when a module could produce ``width``-wide vectors: a float parameter whose first
    axis is ``width`` (Linear weight (D, in) or bias (D,), a norm's (D,), a conv's (D, in, k))."""
    for n in members:
        t = tensors[n]
        shape = shape_of(t)
        if shape and shape[0] == width and str(getattr(t, "dtype", "")) in FLOAT_DTYPES:
            return True
    return False


def find_embedding(
    lstm_prefix: str,
    lstm_names: Sequence[str],
    tensors: Mapping[str, object],
    input_size: int,
    read: Callable[[str], np.ndarray],
    cell: str = "LSTM",
) -> tuple[np.ndarray | None, dict[str, str], str]:
    """``(table, module notes, model note)`` for an ``*emb*.weight`` beside the LSTM
    (same parent module, or top level); table None when there is none or it is not taken.
    ``cell`` names a top-level module in the notes ("the GRU")."""
    parent = lstm_prefix.rpartition(".")[0]
    names = list(tensors)
    modules = _modules(names)
    found = []
    for module, members in modules.items():
        owner, _, leaf = module.rpartition(".")
        if len(members) != 1 or members[0].rpartition(".")[2] != "weight":
            continue
        t = tensors[members[0]]
        shape = shape_of(t)
        if (
            "emb" in leaf.lower()
            and owner in (parent, "")
            and len(shape) == 2
            and shape[1] == input_size
            and str(t.dtype) in FLOAT_DTYPES  # type: ignore[attr-defined]
        ):
            found.append((owner != parent, members[0]))
    if not found:
        return None, {}, ""
    found.sort()
    if len(found) > 1 and found[0][0] == found[1][0]:
        return None, {}, ""  # ambiguous: do not guess
    name = found[0][1]
    module = name.rpartition(".")[0]
    lstm = lstm_prefix or f"the {cell}"
    shape = shape_of(tensors[name])
    at = {n: k for k, n in enumerate(names)}
    lo, hi = sorted((at[name], min(at[n] for n in lstm_names)))
    lstm_set = set(lstm_names)
    between = [
        m
        for m, members in modules.items()
        if m != module
        and not lstm_set & set(members)
        and lo < at[members[0]] < hi
        and _outputs_width(members, tensors, input_size)
    ]
    if between:
        listed = ", ".join(m or "(top level)" for m in between)
        return (
            None,
            {module: f"{NOT_RUN}: {listed} is stored between it and {lstm}"},
            f"{name} {shape} is not used for token ids: {listed}, stored between it and {lstm}, "
            f"may run in between (a state dict does not record wiring); type {input_size}-wide "
            "vectors instead",
        )
    return (
        read(name),
        {module: f"token embedding, assumed to feed {lstm} directly"},
        f"embedding = {name} {shape}, assumed to feed {lstm} directly (a state dict does not "
        "record wiring)",
    )
