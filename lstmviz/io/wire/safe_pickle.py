"""Unpickling that can only build plain data: an allow-list of globals, nothing else.

A pickle is a program: ``GLOBAL os system`` followed by ``REDUCE`` runs a shell command. The
standard ``pickle.Unpickler`` imports every global it is asked for; ``RestrictedUnpickler``
imports nothing. Names its caller allows (CONVENTIONS.md §3.5) map to inert stand-ins; any
other name becomes a ``Deferred`` that raises ``LoadError`` naming it the moment the pickle
tries to call it (REDUCE, INST) when it names code (the standard library, torch, NumPy), so
nothing of it ever runs; any other class or function (a project's own, Lightning's,
omegaconf's) becomes an inert ``PickledObject`` recording (module, name, args, state): a
vocabulary, a config, a whole pickled ``nn.Module`` whose ``_parameters`` the torch reader
reads. BUILD never reaches user code. The opcodes run on ``pickle_vm.PickleVM``, whose
budgets keep a hostile stream from recursing in C, allocating gigabytes or running for long.

A few data-only types that real checkpoints carry beside the weights are rebuilt from their
bytes without calling NumPy's own pickle hooks: numeric NumPy arrays (``NumpyArray``) and
scalars (``best_acc``) come back as data; object arrays, ``argparse.Namespace``,
OmegaConf/typing names, datetimes become inert ``Opaque`` placeholders; paths become strings.
"""

from __future__ import annotations

import _compat_pickle
import math
import pickle
import re
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lstmviz.io.errors import LoadError
from lstmviz.io.wire.pickle_vm import Limits, PickleVM

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
        self.update((str(k), v) for k, v in state.items() if not str(k).startswith("__"))

    def __repr__(self) -> str:
        return f"<{self.cls.module}.{self.cls.name} object, not loaded>"


#: Standard-library names a data pickle calls that only describe data: recorded, never run.
INERT_CALLS = frozenset(
    {("types", "SimpleNamespace"), ("re", "_compile")}
    | {("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"), ("enum", "Enum")}
    | {("collections", "deque"), ("collections", "namedtuple")}
)
#: Top-level packages whose functions are code gadgets (besides the standard library).
CODE_PACKAGES = frozenset({"torch", "__torch__", "numpy", "scipy", "pandas", "dill", "joblib"})


def is_code(module: str, name: str) -> bool:
    """True for a global whose call could run code: refused; others become inert records."""
    top = module.split(".")[0]
    if (module, name) in INERT_CALLS:
        return False
    return top in sys.stdlib_module_names or top in CODE_PACKAGES


def _plain(value: object) -> bool:
    return value is None or type(value) in (str, bytes, int, float, bool, complex)


class RestrictedUnpickler(PickleVM):
    """The budgeted ``PickleVM`` with lstmviz's meaning for globals and calls.

    Globals come only from the allow-list (inert stand-ins) or become ``Deferred``. REDUCE
    calls only lstmviz's own stand-ins and a few builtin types, each checked first: a
    container is built from VM-made items whose keys ``check_key`` accepts (its size charged),
    a scalar type only from scalars (``str`` of a list that shares itself is exponential).
    BUILD reaches our records only (``OrderedDict`` and ``Opaque`` states are dropped).
    """

    def __init__(
        self,
        data: Any,
        allowed: Mapping[tuple[str, str], Any],
        persistent_load: Callable[[Any], Any] | None,
        refuse: Callable[[str, str], LoadError],
        resolve: Callable[[str, str], Any] | None = None,
        limits: Limits | None = None,
        pos: int = 0,
    ) -> None:
        super().__init__(data, limits or Limits.for_size(len(data)), pos)
        self._allowed = {
            **BUILTIN_GLOBALS,
            **DATA_GLOBALS,
            **NUMPY_GLOBALS,
            ("_codecs", "encode"): _latin1_encode,
            ("copyreg", "_reconstructor"): _reconstructor,
            **allowed,
        }
        self._persistent = persistent_load
        self._refuse = refuse
        self._resolve = resolve
        self.foreign: dict[str, None] = {}  # top-level packages of Deferred globals, in order

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
        self.foreign.setdefault(key[0].split(".")[0])
        return Deferred(*key, self._refuse, code=is_code(*key))

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("persistent ids are not allowed here")
        return self._persistent(pid)

    def build(self, inst: Any, state: Any) -> None:
        if type(inst) is Opaque or (type(inst) is OrderedDict and isinstance(state, dict)):
            return  # nothing we need is stored this way
        if isinstance(inst, Buildable):
            inst.build(state)
            return
        raise pickle.UnpicklingError(f"BUILD on {type(inst).__name__} is not allowed")

    def call(self, func: Any, args: tuple) -> Any:
        if isinstance(func, Deferred):
            return func.called(args)
        if isinstance(func, type) and func in _CONTAINERS:
            return self._container(func, args)
        if isinstance(func, type) and func in _SCALARS:
            if not all(_plain(a) for a in args):
                raise pickle.UnpicklingError(f"{func.__name__}() of something not a plain value")
            return func(*args)
        if func is Opaque or isinstance(func, Opaque):
            return Opaque()
        if callable(func) and str(getattr(func, "__module__", "")).startswith("lstmviz."):
            return func(*args)  # one of our stand-ins; each checks its arguments
        raise pickle.UnpicklingError(f"a {type(func).__name__} cannot be called here")

    def newobj(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        if isinstance(cls, Deferred):
            return cls.instance()
        if isinstance(cls, type) and cls in _CONTAINERS:
            return cls() if cls in (list, dict, set, OrderedDict, Counter) else self.call(cls, args)
        if isinstance(cls, type) and (cls in _SCALARS or cls.__module__.startswith("lstmviz.")):
            return self.call(cls, args) if cls in _SCALARS else cls.__new__(cls, *args)
        if cls is Opaque:
            return Opaque()
        raise pickle.UnpicklingError(f"NEWOBJ on {type(cls).__name__} is not allowed")

    def _container(self, kind: type, args: tuple) -> Any:
        """``list(x)``, ``set(x)``, ``OrderedDict(pairs)``... with every item charged and every
        key checked before the container hashes it."""
        if not args:
            return kind()
        if len(args) != 1 or type(args[0]) not in (list, tuple, dict, set, frozenset):
            raise pickle.UnpicklingError(f"{kind.__name__}() of something not a plain container")
        items = list(args[0].items()) if isinstance(args[0], dict) else list(args[0])
        self.charge(_ITEM_COST * len(items), len(items))
        if kind in (dict, OrderedDict):
            if not all(type(p) is tuple and len(p) == 2 for p in items):
                raise pickle.UnpicklingError(f"{kind.__name__}() of something not key-value pairs")
            for key, _ in items:
                self.check_key(key)
        elif kind in (set, frozenset, Counter):
            for item in items:
                self.check_key(item)
        return self.record_tuple(tuple(items)) if kind is tuple else kind(items)


_ITEM_COST = 56
_CONTAINERS = (list, tuple, dict, set, frozenset, OrderedDict, Counter)
_SCALARS = (int, float, complex, str, bool, slice, object)


def _reconstructor(cls: object, base: object = None, state: object = None) -> object:
    """``copyreg._reconstructor`` (protocol 0/1 plain objects): an inert record, nothing run."""
    if isinstance(cls, Deferred):
        return cls.instance()
    if cls is Opaque:
        return Opaque()
    raise pickle.UnpicklingError("copyreg._reconstructor of something not a plain class")


def restricted_loads(
    data: Any,
    allowed: Mapping[tuple[str, str], Any],
    persistent_load: Callable[[Any], Any] | None,
    refuse: Callable[[str, str], LoadError],
    resolve: Callable[[str, str], Any] | None = None,
    limits: Limits | None = None,
    pos: int = 0,
    ends: list[int] | None = None,
) -> Any:
    """Unpickle ``data`` allowing only ``allowed`` (plus harmless builtins and NumPy data).

    ``resolve(module, name)`` may supply a stand-in for a whole family of names (None: not
    one of them); any other global is a ``Deferred`` (an inert record, or refused by
    ``refuse(module, name)`` when a pickle calls code). ``limits`` bound the work and memory
    (default: scaled with ``len(data)``); ``PickleLimit`` names the one exceeded. Errors of
    the pickle machinery itself (truncated stream, bad opcode) propagate for the caller to wrap.
    ``pos``: where the pickle starts in ``data``; its end is appended to ``ends``.
    """
    vm = RestrictedUnpickler(data, allowed, persistent_load, refuse, resolve, limits, pos)
    obj = vm.load()
    if ends is not None:
        ends.append(vm.pos)  # where the next pickle starts (legacy torch files hold several)
    return obj
