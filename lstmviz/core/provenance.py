"""How a direction's weights were stored, and every transformation a reader applied to them.

``Provenance`` travels with each canonical direction (``LSTMDirection``, ``GRUDirection``...)
so the GUI can show the stored layout (``stored_layout``) and say which settings were read and
which were assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lstmviz.core.stored_role import StoredPart, StoredRole


@dataclass(frozen=True)
class StoredTensor:
    """One array as the file stored it, and how it maps to the canonical form.

    ``role``: what the array is (a ``StoredRole``; readers may pass its name as a string).
    ``transposed``: stored as ``[in, 4H]`` (Keras, TF1) rather than ``[4H, in]``.
    ``offset``: first row (before transposing) of this role inside a shared array, e.g. the
    ``W_h`` rows of a TF1 kernel start at ``D``.
    """

    role: StoredRole
    name: str
    shape: tuple[int, ...]
    transposed: bool = False
    offset: int = 0
    dtype: str = "float32"
    shared_by: int = 1  # directions stored in this one array (ONNX: leading dirs axis)
    #: Stored gate blocks this array holds, in its own order, when it holds only some (TF1
    #: GRUCell: ``gates/kernel`` holds r, u = blocks (0, 1), ``candidate/kernel`` block (2,)).
    #: Empty: all of the cell's blocks.
    blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        try:
            role = StoredRole(self.role)
        except ValueError:
            raise TypeError(
                f"unknown stored role {self.role!r}; add it to lstmviz.core.model.StoredRole"
            ) from None
        object.__setattr__(self, "role", role)

    @property
    def part(self) -> StoredPart:
        return self.role.part


@dataclass(frozen=True)
class Setting:
    """A hyperparameter the model needs, and whether the file said so or it was assumed."""

    name: str
    value: Any
    assumed: bool
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a direction's weights came from and every transformation applied to them."""

    framework: str  # e.g. "Keras 2.2.4", "PyTorch", "ONNX opset 14"
    source_format: str = ""  # e.g. "Keras HDF5 full model"
    gate_order: tuple[str, ...] = ("i", "f", "g", "o")  # stored names, e.g. ("i", "j", "f", "o")
    perm: tuple[int, ...] = (0, 1, 2, 3)  # canonical block k = stored block perm[k]
    interleaved: bool = False  # Chainer-style per-unit interleaving
    stored: tuple[StoredTensor, ...] = ()
    transforms: tuple[str, ...] = ()  # "kernel transposed", "bias_ih + bias_hh summed", ...
    settings: tuple[Setting, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def assumed(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.settings if s.assumed)

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    #: The canonical gate names the blocks are shown as (set by the direction: i,f,g,o for
    #: the LSTM, r,z,n for the GRU).
    shown_as: tuple[str, ...] = ("i", "f", "g", "o")

    def describe(self) -> str:
        """One line such as *stored as i,f,c,o (Keras 2.2.4, transposed); shown as i,f,g,o*."""
        extra = [self.framework]
        if any(s.transposed for s in self.stored):
            extra.append("transposed")
        shown = ",".join(self.shown_as)
        text = f"stored as {','.join(self.gate_order)} ({', '.join(extra)}); shown as {shown}"
        assumed = [f"{s.name}={s.value} (default assumed)" for s in self.assumed]
        return "; ".join([text, *assumed])
