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
import pickle
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from lstmviz.io.errors import LoadError
from lstmviz.io.wire.pickle_records import (
    NUMPY_GLOBALS,
    Buildable,
    Deferred,
    NumpyArray,
    NumpyDType,
    Opaque,
    PickledObject,
    Sealed,
)
from lstmviz.io.wire.pickle_vm import Limits, PickleLimit, PickleVM

__all__ = [
    "Buildable",
    "Deferred",
    "Limits",
    "NumpyArray",
    "NumpyDType",
    "Opaque",
    "PickleLimit",
    "PickledObject",
    "RestrictedUnpickler",
    "Sealed",
    "restricted_loads",
]

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


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """Protocol 2 pickles ``bytes`` as ``_codecs.encode(text, 'latin1')``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin1 bytes only")
    return text.encode("latin1")


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
        encoding: str = "utf-8",
    ) -> None:
        super().__init__(data, limits or Limits.for_size(len(data)), pos, encoding)
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
        if isinstance(func, type) and issubclass(func, dict):
            # our attribute records (ScriptObject...) fill through SETITEMS/BUILD, whose keys
            # are checked; dict(pairs) would hash unchecked keys
            raise pickle.UnpicklingError(f"{func.__name__} cannot be called here")
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
    encoding: str = "utf-8",
) -> Any:
    """Unpickle ``data`` allowing only ``allowed`` (plus harmless builtins and NumPy data).

    ``resolve(module, name)`` may supply a stand-in for a whole family of names (None: not
    one of them); any other global is a ``Deferred`` (an inert record, or refused by
    ``refuse(module, name)`` when a pickle calls code). ``limits`` bound the work and memory
    (default: scaled with ``len(data)``); ``PickleLimit`` names the one exceeded. Errors of
    the pickle machinery itself (truncated stream, bad opcode) propagate for the caller to wrap.
    ``pos``: where the pickle starts in ``data``; its end is appended to ``ends``. ``encoding``
    decodes Python 2 ``str`` (``latin1`` for Python 2 pickles of NumPy arrays, as NumPy does).
    """
    vm = RestrictedUnpickler(data, allowed, persistent_load, refuse, resolve, limits, pos, encoding)
    obj = vm.load()
    if ends is not None:
        ends.append(vm.pos)  # where the next pickle starts (legacy torch files hold several)
    return obj
