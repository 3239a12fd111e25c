"""Unpickling that can only build plain data: an allow-list of globals, nothing else.

A pickle is a program: ``GLOBAL os system`` followed by ``REDUCE`` runs a shell command. The
standard ``pickle.Unpickler`` resolves every global it is asked for; ``RestrictedUnpickler``
resolves only the names its caller allows (CONVENTIONS.md §3.5) and raises ``LoadError``
naming the refused global otherwise, *before* anything is called. Objects it builds are
ordinary dicts, lists and the caller's own frozen records, so BUILD cannot reach user code.

A few data-only types that real checkpoints carry beside the weights (NumPy scalars such as
``best_acc``, ``argparse.Namespace`` hyperparameters) become inert ``Opaque`` placeholders:
nothing of theirs is imported or called, their content is simply dropped.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from lstmviz.io.errors import LoadError

#: Harmless builtins a state dict may use (sets pickle as ``builtins.set`` + REDUCE).
#: ``bytearray`` is left out on purpose: ``bytearray(10**10)`` would allocate on demand.
BUILTIN_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
}


class Opaque:
    """Stand-in for a data-only object we do not rebuild (its content is ignored)."""

    __slots__ = ()

    def __new__(cls, *args: object, **kwargs: object) -> Opaque:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> Opaque:
        return Opaque()

    def __setstate__(self, state: object) -> None:
        """BUILD on a placeholder keeps nothing."""

    def __repr__(self) -> str:
        return "<not loaded>"


#: Globals that only describe data: replaced by ``Opaque`` (never imported).
OPAQUE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("argparse", "Namespace"),
    }
)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Protocol 2 pickles ``bytes`` as ``_codecs.encode(text, 'latin1')``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1 bytes only")
    return text.encode("latin1")


class Sealed:
    """Base for records built while unpickling: BUILD and attribute setting are refused.

    (A frozen slotted dataclass would not do: Python gives it a ``__setstate__``.)
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __setstate__(self, state: object) -> None:
        raise pickle.UnpicklingError(f"BUILD on {type(self).__name__} is not allowed")


class RestrictedUnpickler(pickle._Unpickler):
    """Pure-Python ``pickle`` unpickler that returns only allow-listed globals.

    The pure-Python unpickler is used on purpose: its memo is a dict (the C one allocates an
    array as long as the largest memo index, so one flipped byte can ask for gigabytes), and
    its opcode table can be narrowed: BUILD is accepted on ``OrderedDict`` (torch stores
    ``_metadata`` there, which we drop) and ``Opaque`` only.
    """

    dispatch: ClassVar[dict[int, Callable[..., None]]] = dict(pickle._Unpickler.dispatch)

    def __init__(
        self,
        data: bytes,
        allowed: Mapping[tuple[str, str], Any],
        persistent_load: Callable[[Any], Any] | None,
        refuse: Callable[[str, str], LoadError],
    ) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._allowed = {**BUILTIN_GLOBALS, ("_codecs", "encode"): _latin1_encode, **allowed}
        self._persistent = persistent_load
        self._refuse = refuse

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 writers rename Python 3 modules to their Python 2 names
        # (``builtins`` → ``__builtin__``); map them back as pickle itself does.
        key = _compat_pickle.NAME_MAPPING.get((module, name))
        if key is None:
            key = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        if key in self._allowed:
            return self._allowed[key]
        if key in OPAQUE_GLOBALS:
            return Opaque
        raise self._refuse(*key)

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("persistent ids are not allowed here")
        return self._persistent(pid)

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is Opaque or (type(inst) is OrderedDict and isinstance(state, dict)):
            return  # nothing we need is stored this way
        raise pickle.UnpicklingError(f"BUILD on {type(inst).__name__} is not allowed")

    dispatch[pickle.BUILD[0]] = _load_build


def restricted_loads(
    data: bytes,
    allowed: Mapping[tuple[str, str], Any],
    persistent_load: Callable[[Any], Any] | None,
    refuse: Callable[[str, str], LoadError],
) -> Any:
    """Unpickle ``data`` allowing only ``allowed`` (plus harmless builtins).

    ``refuse(module, name)`` makes the LoadError raised for any other global. Errors of the
    pickle machinery itself (truncated stream, bad opcode) propagate for the caller to wrap.
    """
    return RestrictedUnpickler(data, allowed, persistent_load, refuse).load()
