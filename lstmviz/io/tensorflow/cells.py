"""Settings and provenance of one TF1 cell: what the graph said, what the user said, defaults.

TensorFlow keeps ``forget_bias``, ``cell_clip``, ``proj_clip`` and ``activation`` out of the
checkpoint, so each one is a :class:`Setting` that says where its value came from: the user
(``load_model(forget_bias=...)``), the ``.meta`` graph, or TF's default (assumed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lstmviz.core.model import Provenance, Setting, StoredTensor
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.graph import CellGraph, GraphInfo

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.bundle import Bundle
    from lstmviz.io.tensorflow.scopes import Cell
    from lstmviz.io.tensorflow.states import States

__all__ = [
    "CellGraph",
    "GraphInfo",
    "Settings",
    "provenance",
    "resolve_settings",
    "user_number",
    "user_text",
]


@dataclass(frozen=True)
class Settings:
    forget_bias: Setting
    cell_clip: Setting
    proj_clip: Setting
    activation: Setting


def _f32(value: float) -> float:
    """A float32 graph constant as the short decimal the user typed (0.699999988 → 0.7)."""
    return float(np.format_float_positional(np.float32(value)))


def user_number(value: object, option: str, file: str) -> float | None:
    """A numeric option from Python or the command line: a float, an int or a numeric string.

    ``None`` (and the strings "none"/"") mean "not given"; anything else is a one-line LoadError
    naming the option, so ``cell_clip='0.5'`` works and ``cell_clip='abc'`` says what is wrong.
    """
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none"):
            return None
        try:
            number = float(text)
        except ValueError:
            number = None
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number):
        raise LoadError(
            f"{file}: option {option}={value!r} is not a number; expected a finite float "
            f"such as {option}=0.5 (or None)"
        )
    return number


def user_text(value: object, option: str, file: str) -> str | None:
    """A text option (``scope=``, ``activation=``): a string or None, else a LoadError."""
    if value is None or isinstance(value, str):
        return value
    raise LoadError(
        f"{file}: option {option}={value!r} has type {type(value).__name__}; expected a string "
        f"(a name, e.g. {option}={'relu' if option.endswith('activation') else 'rnn'!r})"
    )


def _forget_bias(cell: Cell, cg: CellGraph, user: float | None) -> Setting:
    if user is not None:
        return Setting("forget_bias", float(user), assumed=False, note="given by the user")
    if cg.forget_bias is not None and "forget_bias" not in cg.conflicts:
        return Setting(
            "forget_bias",
            _f32(cg.forget_bias),
            assumed=False,
            note=f"read from .meta ({cg.forget_bias_node})",
        )
    cudnn = "cudnn_compatible" in cell.scope
    default = 0.0 if cudnn else 1.0
    why = (
        "conflicting values in .meta"
        if "forget_bias" in cg.conflicts
        else "not stored in the checkpoint"
    )
    who = "CudnnCompatibleLSTMCell" if cudnn else "TF1 LSTM cells"
    return Setting(
        "forget_bias",
        default,
        assumed=True,
        note=f"{why}; default of {who}; pass forget_bias= to override",
    )


def _cell_clip(cg: CellGraph, user: float | None) -> Setting:
    if user is not None:
        value = float(user) if user > 0 else None
        return Setting("cell_clip", value, assumed=False, note="given by the user")
    if cg.located and "cell_clip" not in cg.conflicts:
        note = (
            "read from .meta (clip_by_value on c)"
            if cg.cell_clip is not None
            else "no clip on c in the .meta graph"
        )
        if cg.op_kind:
            note = f"read from .meta ({cg.op_kind} attr cell_clip)"
        return Setting(
            "cell_clip", _f32(cg.cell_clip) if cg.cell_clip else None, assumed=False, note=note
        )
    return Setting(
        "cell_clip",
        None,
        assumed=True,
        note="not stored in the checkpoint; TF default None; pass cell_clip= to override",
    )


def _proj_clip(cell: Cell, graph: GraphInfo | None, user: float | None) -> Setting:
    if user is not None:
        value = float(user) if user > 0 else None
        return Setting("proj_clip", value, assumed=False, note="given by the user")
    if graph is not None and cell.projection in graph.proj_clips:
        value = graph.proj_clips[cell.projection]
        return Setting(
            "proj_clip",
            _f32(value) if value else None,
            assumed=False,
            note="read from .meta (clip_by_value after the projection)",
        )
    return Setting(
        "proj_clip",
        None,
        assumed=True,
        note="not stored in the checkpoint; TF default None; pass proj_clip= to override",
    )


def _activation(cg: CellGraph, user: str | None) -> Setting:
    if user is not None:
        return Setting("activation", user, assumed=False, note="given by the user")
    if cg.activation is not None and "activation" not in cg.conflicts:
        return Setting(
            "activation",
            cg.activation,
            assumed=False,
            note="read from .meta (op applied to j and c)",
        )
    note = "not stored in the checkpoint; TF default tanh; pass activation= to override"
    if cg.activation_op:
        note += f" (the .meta applies an unrecognised {cg.activation_op} op to j)"
    return Setting("activation", "tanh", assumed=True, note=note)


def resolve_settings(
    cell: Cell,
    graph: GraphInfo | None,
    cg: CellGraph,
    forget_bias: float | None,
    cell_clip: float | None,
    activation: str | None = None,
    proj_clip: float | None = None,
) -> Settings:
    """Decide each runtime setting of ``cell``: user override > .meta graph > TF default."""
    return Settings(
        forget_bias=_forget_bias(cell, cg, forget_bias),
        cell_clip=_cell_clip(cg, cell_clip),
        proj_clip=_proj_clip(cell, graph, proj_clip),
        activation=_activation(cg, activation),
    )


def provenance(
    bundle: Bundle,
    cell: Cell,
    settings: Settings,
    D: int,
    H: int,
    width: int,
    notes: tuple[str, ...] = (),
    states: States | None = None,
) -> Provenance:
    """How the stored variables map to the canonical arrays, for the GUI and ``--info``."""
    entries = bundle.entries
    k = entries[cell.kernel]
    stored = [
        StoredTensor("W_x", cell.kernel, k.shape, transposed=True, offset=0, dtype=k.dtype_name),
        StoredTensor("W_h", cell.kernel, k.shape, transposed=True, offset=D, dtype=k.dtype_name),
        StoredTensor("b", cell.bias, entries[cell.bias].shape, dtype=entries[cell.bias].dtype_name),
    ]
    stored += [
        StoredTensor(role, name, entries[name].shape, dtype=entries[name].dtype_name)
        for role, name in cell.peepholes.items()
    ]
    fb = settings.forget_bias.value
    h_kind = "projected m" if cell.projection else "h"
    transforms = [
        f"kernel rows [0:{D}] → W_x, rows [{D}:{D + width}] → W_h ({h_kind}); both transposed",
        "gate blocks reordered i,j,f,o → i,f,g,o",
        f"forget_bias {float(fb)!r} added to b_f (runtime constant, not stored)"
        if fb
        else "forget_bias 0: nothing added to b_f",
    ]
    if cell.projection:
        p = entries[cell.projection]
        stored.append(
            StoredTensor("W_p", cell.projection, p.shape, transposed=True, dtype=p.dtype_name)
        )
        transforms.append(f"projection/kernel {list(p.shape)} transposed to W_p [{width}, {H}]")
    narrow = sorted({t.dtype for t in stored if t.dtype in ("float16", "bfloat16")})
    if narrow:
        transforms.append(f"{'/'.join(narrow)} widened to float32")
    chosen = [settings.forget_bias, settings.cell_clip, settings.activation]
    if cell.projection:
        chosen.append(settings.proj_clip)
    if states is not None and states.read:
        transforms.append(f"initial state read from {', '.join(states.read)}")
        chosen.extend(states.settings)
    return Provenance(
        framework="TensorFlow 1 " + cell.kind,
        source_format="TensorFlow V2 checkpoint",
        gate_order=("i", "j", "f", "o"),
        perm=(0, 2, 1, 3),
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=tuple(chosen),
        notes=(f"scope {cell.scope}", *notes),
    )
