"""The inert records the restricted unpickler builds instead of running anything.

``Opaque`` (a data-only object not rebuilt), ``Deferred`` (a global never imported),
``PickledObject`` (an instance of such a class: its recorded arguments and state), ``Sealed``
and ``Buildable`` bases (BUILD reaches only records that validate their state), and NumPy
arrays, dtypes and scalars rebuilt from their bytes without NumPy's own pickle hooks.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from lstmviz.io.errors import LoadError


class Opaque:
    """Stand-in for a data-only object we do not rebuild (its content is ignored)."""

    __slots__ = ()
    accepts_items = True  # APPENDS/SETITEMS on it (a ListConfig, a deque): dropped

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
class Buildable:
    """A record that accepts the pickle BUILD opcode by validating the state itself."""

    __slots__ = ()

    def build(self, state: object) -> None:
        raise NotImplementedError


#: NumPy dtype strings rebuilt as data: bool, (unsigned) integers, floats, complex.
_NUMERIC_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))$")
_MAX_NP_BYTES = 1 << 34
_MAX_NDIM = 64  # NumPy's own limit; a 40,000-dim shape is refused before any product


class NumpyDType(Buildable):
    """``numpy.dtype('f4', False, True)`` + BUILD ``(3, '<', ...)``; None unless numeric."""

    __slots__ = ("dtype",)

    def __init__(self, code: object = None, align: object = False, copy: object = True) -> None:
        ok = isinstance(code, str) and _NUMERIC_DTYPE.match(code)
        self.dtype: np.dtype | None = np.dtype(code) if ok else None

    def build(self, state: object) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else "|"
        if self.dtype is not None and order in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(order) if order != "|" else self.dtype


class NumpyArray(Buildable):
    """``_reconstruct(ndarray, (0,), b'b')`` + BUILD ``(1, shape, dtype, fortran, bytes)``.

    The array is made with ``np.frombuffer`` from the pickled bytes, after checking that
    they hold exactly shape x itemsize; object arrays (whose state is a list) stay empty.
    Exposes ``shape``, ``dtype`` and ``read()`` like the readers' lazy tensors.
    """

    __slots__ = ("_array",)

    def __init__(self, cls: object = None, *args: object) -> None:
        if isinstance(cls, Deferred):
            cls()  # raises the refusal naming it: _reconstruct would have called it
        if cls is not Opaque:  # numpy.ndarray; subclasses (matrix, memmap) are not rebuilt
            raise pickle.UnpicklingError("numpy _reconstruct of something not numpy.ndarray")
        self._array: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape if self._array is not None else ()

    @property
    def dtype(self) -> str:
        return self._array.dtype.name if self._array is not None else "object"

    def read(self) -> np.ndarray:
        if self._array is None:
            raise LoadError("a pickled NumPy array holds Python objects, not numbers")
        return self._array

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        arr = self.read()
        return arr if dtype is None else arr.astype(dtype)

    def build(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("a NumPy array has a malformed pickle state")
        _, shape, dtype, fortran, raw = state
        self.fill(raw, dtype, shape, fortran)

    def fill(self, raw: object, dtype: object, shape: object, fortran: object) -> None:
        if isinstance(raw, bytearray):
            raw = bytes(raw)
        elif isinstance(raw, str):  # a Python 2 pickle read as latin-1, as NumPy itself does
            raw = raw.encode("latin-1")
        if not isinstance(dtype, NumpyDType) or dtype.dtype is None or not isinstance(raw, bytes):
            return  # object or structured array: kept as an empty placeholder
        ok = (
            isinstance(shape, tuple)
            and len(shape) <= _MAX_NDIM
            and all(
                isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 62 for n in shape
            )
        )
        nbytes = math.prod(shape) * dtype.dtype.itemsize if ok else -1
        if nbytes != len(raw) or nbytes > _MAX_NP_BYTES:
            raise pickle.UnpicklingError("a NumPy array's bytes do not match its shape")
        arr = np.frombuffer(raw, dtype.dtype)
        arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
        self._array = arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _numpy_scalar(dtype: object, raw: object = b"") -> object:
    """``numpy.core.multiarray.scalar(dtype, bytes)`` → a Python number, or Opaque."""
    np_dtype = dtype.dtype if isinstance(dtype, NumpyDType) else None
    if np_dtype is not None and isinstance(raw, bytes) and len(raw) == np_dtype.itemsize:
        return np.frombuffer(raw, np_dtype)[0].item()
    return Opaque()


def _numpy_frombuffer(raw: object, dtype: object, shape: object, order: object) -> NumpyArray:
    """Protocol 5 ``numpy._core.numeric._frombuffer(bytes, dtype, shape, order)``."""
    arr = NumpyArray(Opaque)
    arr.fill(raw, dtype, shape, order == "F")
    return arr


NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "dtype"): NumpyDType,
    ("numpy", "ndarray"): Opaque,  # only ever the first argument of _reconstruct
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NUMPY_GLOBALS[(_core, "_reconstruct")] = NumpyArray
    NUMPY_GLOBALS[(_core, "scalar")] = _numpy_scalar
for _numeric in ("numpy.core.numeric", "numpy._core.numeric"):
    NUMPY_GLOBALS[(_numeric, "_frombuffer")] = _numpy_frombuffer


def key_name(key: object) -> str:
    """A dict key as a name, formatted only when that is cheap (str, numbers, None)."""
    if type(key) is str:
        return key
    if key is None or type(key) in (int, float, bool):
        return str(key)[:40]
    return f"<{type(key).__name__} key>"


class Sealed:
    """Base for records built while unpickling: BUILD and attribute setting are refused.

    (A frozen slotted dataclass would not do: Python gives it a ``__setstate__``.)
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __setstate__(self, state: object) -> None:
        raise pickle.UnpicklingError(f"BUILD on {type(self).__name__} is not allowed")


class Deferred:
    """A global lstmviz does not know, never imported. Calling it (REDUCE, INST) builds an
    inert ``PickledObject`` recording (module, name, args, state), unless the name is code a
    pickle could use as a gadget (the standard library, torch, NumPy: ``os.system``,
    ``builtins.eval``, ``torch.load``): then the caller's refusal naming it is raised. NEWOBJ
    (how protocol 2 pickles a plain object) makes an inert record too (``strict``: refused)."""

    __slots__ = ("_refuse", "code", "module", "name", "strict")

    def __init__(
        self,
        module: str,
        name: str,
        refuse: Callable[[str, str], LoadError],
        strict: bool = False,
        code: bool = True,
    ) -> None:
        self.module, self.name, self._refuse = module, name, refuse
        self.strict, self.code = strict, code

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise self._refuse(self.module, self.name)

    def called(self, args: tuple) -> PickledObject:
        """What REDUCE/INST on this name gives: an inert record, or the refusal."""
        if self.code or self.strict:
            self()
        return PickledObject(self, args)

    def instance(self) -> PickledObject:
        """An inert record (``strict``: refused even as a plain object)."""
        if self.strict:
            self()
        return PickledObject(self)

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}, not loaded>"


class PickledObject(dict, Buildable):  # type: ignore[misc]
    """An instance of a class that was never imported: its pickled attributes, as a dict,
    plus the class (``cls``) and constructor arguments (``args``) it recorded.

    A pickled ``nn.Module`` (state with ``_parameters`` and ``_modules``) is marked
    ``is_module``: the torch reader takes its parameters from ``_parameters`` and walks
    ``_modules``, as ``Module.state_dict`` would, without running any of its code.
    """

    __slots__ = ("args", "cls", "is_module")
    accepts_items = True  # APPENDS/SETITEMS on a list or dict subclass: kept or dropped

    def __init__(self, cls: Deferred, args: tuple = ()) -> None:
        super().__init__()
        self.cls, self.args, self.is_module = cls, args, False

    def build(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ values)
            state = (
                {**(state[0] or {}), **(state[1] or {})}
                if all(isinstance(part, dict) or part is None for part in state)
                else None
            )
        if not isinstance(state, dict):
            return
        self.is_module = self.is_module or ("_parameters" in state and "_modules" in state)
        # attribute names are str; a key that is not is dropped unformatted (a tuple key may
        # hold one large string a thousand times over)
        self.update((k, v) for k, v in state.items() if type(k) is str and not k.startswith("__"))

    def __repr__(self) -> str:
        return f"<{self.cls.module}.{self.cls.name} object, not loaded>"
