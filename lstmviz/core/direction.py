"""What every canonical direction class shares: read-only weights and their derived copies.

``freeze`` marks arrays lstmviz made read-only itself, so a model keeps them (and views of them)
without copying, and an engine's reordered copy of the weights (``RecurrentDirection.derived``)
never goes stale.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from lstmviz.core.activations import Activation
from lstmviz.core.cells import CellDescription
from lstmviz.core.provenance import Provenance

FloatArray = npt.NDArray[np.floating]

#: Arrays lstmviz made read-only itself (``freeze``), by id: nobody else holds them writable.
_OWNED: dict[int, weakref.ReferenceType[np.ndarray]] = {}


def freeze(arr: np.ndarray) -> np.ndarray:
    """Make ``arr`` read-only and remember that lstmviz did, so a model keeps it (and views
    of it) without copying. Only for arrays nobody else holds: a reader's own fresh arrays.
    Someone else's read-only array is copied, since its owner may make it writable again."""
    arr.setflags(write=False)
    key = id(arr)
    _OWNED[key] = weakref.ref(arr, lambda _, key=key: _OWNED.pop(key, None))
    return arr


def _immutable(arr: np.ndarray) -> bool:
    """True when nothing can write to ``arr``'s memory: it and every array it views are
    read-only, and the memory is an array ``freeze`` made read-only or a ``bytes`` object.
    A read-only view of a writable array, an array read-only by its owner's choice, a
    bytearray behind a read-only memoryview, or a memory-mapped file is not enough."""
    base: Any = arr
    owned = False
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        ref = _OWNED.get(id(base))
        owned = owned or (ref is not None and ref() is base)
        base = base.base
    while isinstance(base, memoryview):
        if not base.readonly:
            return False
        base = base.obj
    return owned or isinstance(base, bytes)


def _frozen(a: Any, name: str) -> FloatArray:
    """A read-only float copy of ``a``; an already immutable float array is kept as is, so a
    model built from frozen arrays (``replace``, readers) does not copy its weights again."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.itemsize >= 4 and _immutable(a):
        return a
    arr = np.array(a, dtype=np.result_type(np.asarray(a).dtype, np.float32), copy=True)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array, got {arr.dtype}")
    return freeze(arr)


class RecurrentDirection:
    """What every direction class shares (``LSTMDirection``, ``GRUDirection``,
    ``RNNDirection``): read-only weight arrays named by ``array_fields``, the ``derived`` cache
    of engine-ready copies, pickling, and gate blocks by the cell's names. Subclasses are
    frozen dataclasses with ``W_x (n_gates·H, D)``, ``reverse``, ``provenance`` and ``h0``."""

    #: The direction's array fields, frozen on construction and on unpickling.
    array_fields: ClassVar[tuple[str, ...]] = ()
    cell: ClassVar[CellDescription]
    W_x: FloatArray
    reverse: bool
    provenance: Provenance

    def _freeze_fields(self) -> None:
        for name in self.array_fields:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value, name))
        names = self.cell.gate_names
        if self.provenance.shown_as != names:  # the blocks are shown by the cell's own names
            prov, n = self.provenance, len(names)
            # a gate order or perm of another length was left at the LSTM's default
            object.__setattr__(
                self,
                "provenance",
                replace(
                    prov,
                    shown_as=names,
                    gate_order=prov.gate_order if len(prov.gate_order) == n else names,
                    perm=prov.perm if len(prov.perm) == n else tuple(range(n)),
                ),
            )

    @property
    def input_size(self) -> int:
        """D, the width of x_t."""
        return self.W_x.shape[1]

    @property
    def hidden_size(self) -> int:
        """H, the number of units."""
        return self.W_x.shape[0] // self.cell.n_gates

    @property
    def kind(self) -> str:
        """The cell's name: ``LSTM``, ``GRU``, ``RNN``."""
        return self.cell.name

    def gate(self, array: FloatArray, gate: str) -> FloatArray:
        """Rows of gate ``gate`` (one of ``cell.gate_names``) of a ``(n_gates·H, ...)`` array."""
        return array[self.cell.block(gate, self.hidden_size)]

    def activation_for(self, role: str) -> Activation:
        """The activation of a gate role (``gate``, ``candidate``) or of the LSTM's ``cell``."""
        return getattr(
            self, {"gate": "act_gate", "candidate": "act_cand", "cell": "act_cell"}[role]
        )

    def gate_activation(self, gate: str) -> Activation:
        """The activation gate ``gate`` goes through."""
        return self.activation_for(self.cell.gate(gate).role)

    @property
    def n_params(self) -> int:
        """Canonical parameter count (a summed bias counted once; initial states not)."""
        arrays = (getattr(self, n) for n in self.array_fields if n not in ("h0", "c0"))
        return int(sum(a.size for a in arrays if a is not None))

    @property
    def n_stored_params(self) -> int:
        """Parameters as the file stores them (e.g. PyTorch's two biases count twice)."""
        if not self.provenance.stored:
            return self.n_params
        return int(
            sum(
                int(np.prod(t.shape)) // t.shared_by
                for t in self.provenance.stored
                if t.offset == 0
            )
        )

    def replace(self, **changes: Any) -> Any:
        return replace(self, **changes)  # type: ignore[type-var]

    def derived(self, key: Hashable, make: Callable[[], FloatArray]) -> FloatArray:
        """``make()``, computed once per direction and kept read-only.

        The weights are immutable (``_immutable``), so an engine's reordered or transposed
        copy of them never goes stale; running the same model again (the GUI's case: a new
        sequence, new h0) skips preparing it, 12-17 ms at H = 1024. Each engine and dtype
        that ran keeps its copy (about the size of the float32 weights each: the GUI's NumPy
        engine and the compiled one both, 16 MiB apiece at H = 1024); copies are not pickled.
        Making a weight writable again bypasses the cache; editing it and making it
        read-only once more is not supported (build a new direction with ``replace``).
        """
        trusted = all(_immutable(a) for a in self._arrays())  # else a weight was made writable
        if not trusted:
            self.__dict__.pop("_derived", None)  # nothing derived from it is trusted, or kept
        cache = self.__dict__.setdefault("_derived", {}) if trusted else {}  # not a field
        arr = cache.get(key)
        if arr is None:
            arr = make()
            arr.setflags(write=False)  # also when not kept: one compiled signature
            cache[key] = arr
        return arr

    def _arrays(self) -> list[FloatArray]:
        return [a for a in (getattr(self, n) for n in self.array_fields) if a is not None]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_derived", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """pickle and ``copy.deepcopy`` rebuild the arrays writable: make them read-only
        again, as construction does (they are the copy's own)."""
        self.__dict__.update(state)
        for a in self._arrays():
            freeze(a)
