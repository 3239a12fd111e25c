"""Unpickling that can only build plain data: an allow-list of globals, nothing else.

A pickle is a program: ``GLOBAL os system`` followed by ``REDUCE`` runs a shell command. The
standard ``pickle.Unpickler`` imports every global it is asked for; ``RestrictedUnpickler``
imports nothing. Names its caller allows (CONVENTIONS.md §3.5) map to inert stand-ins; any
other name becomes a ``Deferred`` that raises ``LoadError`` naming it the moment the pickle
tries to call it (REDUCE, INST), so nothing of it ever runs. Protocol 2 writes a plain
object of an unknown class as NEWOBJ + BUILD, without a call: that becomes a
``PickledObject`` holding the attributes as a dict (a vocabulary, a config), except that a
whole ``nn.Module`` is refused by its class name. BUILD never reaches user code.

A few data-only types that real checkpoints carry beside the weights are rebuilt from their
bytes without calling NumPy's own pickle hooks: numeric NumPy arrays (``NumpyArray``) and
scalars (``best_acc``) come back as data; object arrays, ``argparse.Namespace``,
OmegaConf/typing names, datetimes become inert ``Opaque`` placeholders; paths become strings.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from lstmviz.io.errors import LoadError

#: Harmless builtins a state dict may use (sets pickle as ``builtins.set`` + REDUCE).
#: ``bytearray`` is left out on purpose: ``bytearray(10**10)`` would allocate on demand.
BUILTIN_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "Counter"): Counter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    # plain types, named as values (OmegaConf stores its element types) or called on data
    **{("builtins", t.__name__): t for t in (dict, list, tuple, int, float, str, bool, object)},
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
    {("argparse", "Namespace"), ("packaging.version", "Version")}
    | {("datetime", t) for t in ("datetime", "date", "time", "timedelta", "timezone")}
)
#: Whole packages of data-only classes training checkpoints carry in their hyperparameters
#: (Hydra/OmegaConf ``DictConfig`` in Lightning's ``hyper_parameters``, ``typing.Any``).
OPAQUE_MODULES = ("omegaconf", "typing")


def _path(*parts: object) -> str:
    """``pathlib.PosixPath('/runs', 'x')`` → ``'/runs/x'``, a string (nothing touches disk)."""
    if not all(isinstance(p, str) for p in parts):
        raise pickle.UnpicklingError("a pickled path whose parts are not strings")
    return "/".join(parts).replace("//", "/")


def _defaultdict(factory: object = None, *args: object) -> dict:
    """``collections.defaultdict(list)``: the items follow as SETITEMS; a plain dict holds them."""
    return {}


DATA_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "defaultdict"): _defaultdict,
    ("torch.torch_version", "TorchVersion"): str,
    **{("pathlib", f"{p}{t}Path"): _path for p in ("", "Pure") for t in ("", "Posix", "Windows")},
}


class Buildable:
    """A record that accepts the pickle BUILD opcode by validating the state itself."""

    __slots__ = ()

    def build(self, state: object) -> None:
        raise NotImplementedError


#: NumPy dtype strings rebuilt as data: bool, (unsigned) integers, floats, complex.
_NUMERIC_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))$")
_MAX_NP_BYTES = 1 << 34


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
        if not isinstance(dtype, NumpyDType) or dtype.dtype is None or not isinstance(raw, bytes):
            return  # object or structured array: kept as an empty placeholder
        ok = isinstance(shape, tuple) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
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


NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "dtype"): NumpyDType,
    ("numpy", "ndarray"): Opaque,  # only ever the first argument of _reconstruct
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NUMPY_GLOBALS[(_core, "_reconstruct")] = NumpyArray
    NUMPY_GLOBALS[(_core, "scalar")] = _numpy_scalar


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


class Deferred:
    """A global lstmviz does not know, never imported: calling it (REDUCE, INST) raises the
    caller's refusal naming it; NEWOBJ (how protocol 2 pickles a plain object) makes an inert
    ``PickledObject`` instead, so data-only classes (a vocabulary, a config) do not sink a
    checkpoint."""

    __slots__ = ("_refuse", "module", "name", "strict")

    def __init__(
        self, module: str, name: str, refuse: Callable[[str, str], LoadError], strict: bool = False
    ) -> None:
        self.module, self.name, self._refuse, self.strict = module, name, refuse, strict

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise self._refuse(self.module, self.name)

    def instance(self) -> PickledObject:
        """An inert record (``strict``: refused even as a plain object)."""
        if self.strict:
            self()
        return PickledObject(self)

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}, not loaded>"


class PickledObject(dict, Buildable):  # type: ignore[misc]
    """An instance of a class that was never imported: its pickled attributes, as a dict.

    A pickled ``nn.Module`` (state with ``_parameters`` and ``_modules``) is marked, and
    ``restricted_loads`` refuses the outermost one by its class name: lstmviz reads state
    dicts, not whole models.
    """

    __slots__ = ("cls", "is_module")

    def __init__(self, cls: Deferred) -> None:
        super().__init__()
        self.cls, self.is_module = cls, False

    def build(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ values)
            state = (
                {**(state[0] or {}), **(state[1] or {})}
                if all(isinstance(part, dict) or part is None for part in state)
                else None
            )
        if not isinstance(state, dict):
            return
        if "_parameters" in state and "_modules" in state:
            self.is_module = True  # a whole nn.Module: refused once the outermost is known
            return
        self.update((str(k), v) for k, v in state.items() if not str(k).startswith("__"))


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
        resolve: Callable[[str, str], Any] | None = None,
    ) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._allowed = {
            **BUILTIN_GLOBALS,
            **DATA_GLOBALS,
            **NUMPY_GLOBALS,
            ("_codecs", "encode"): _latin1_encode,
            **allowed,
        }
        self._persistent = persistent_load
        self._refuse = refuse
        self._resolve = resolve

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 writers rename Python 3 modules to their Python 2 names
        # (``builtins`` → ``__builtin__``); map them back as pickle itself does.
        key = _compat_pickle.NAME_MAPPING.get((module, name))
        if key is None:
            key = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        if key in self._allowed:
            return self._allowed[key]
        if key in OPAQUE_GLOBALS or key[0].split(".")[0] in OPAQUE_MODULES:
            return Opaque
        found = self._resolve(*key) if self._resolve is not None else None
        if found is not None:
            return found
        return Deferred(*key, self._refuse)

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("persistent ids are not allowed here")
        return self._persistent(pid)

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is Opaque or (type(inst) is OrderedDict and isinstance(state, dict)):
            return  # nothing we need is stored this way
        if isinstance(inst, Buildable):
            inst.build(state)
            return
        raise pickle.UnpicklingError(f"BUILD on {type(inst).__name__} is not allowed")

    dispatch[pickle.BUILD[0]] = _load_build

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(cls.instance() if isinstance(cls, Deferred) else cls.__new__(cls, *args))

    def _load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if isinstance(cls, Deferred):
            self.append(cls.instance())
        else:
            self.append(cls.__new__(cls, *args, **kwargs))

    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex


def restricted_loads(
    data: bytes,
    allowed: Mapping[tuple[str, str], Any],
    persistent_load: Callable[[Any], Any] | None,
    refuse: Callable[[str, str], LoadError],
    resolve: Callable[[str, str], Any] | None = None,
) -> Any:
    """Unpickle ``data`` allowing only ``allowed`` (plus harmless builtins and NumPy data).

    ``resolve(module, name)`` may supply a stand-in for a whole family of names (None: not
    one of them); any other global is a ``Deferred`` that raises ``refuse(module, name)``
    when called.
    Errors of the pickle machinery itself (truncated stream, bad opcode) propagate for the
    caller to wrap.
    """
    obj = RestrictedUnpickler(data, allowed, persistent_load, refuse, resolve).load()
    module = _outermost_module(obj)
    if module is not None:
        raise refuse(module.cls.module, module.cls.name)
    return obj


def _outermost_module(obj: object, limit: int = 1_000_000) -> PickledObject | None:
    """The first pickled ``nn.Module`` met walking the containers breadth-first from the top."""
    todo, seen = deque([obj]), set()
    while todo and len(seen) < limit:
        node = todo.popleft()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, PickledObject) and node.is_module:
            return node
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, (list, tuple)):
            todo.extend(node)
    return None
