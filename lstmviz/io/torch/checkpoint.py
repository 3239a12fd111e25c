"""What a ``torch.save`` / ``torch.jit.save`` pickle may name, and what each name becomes.

``data.pkl`` rebuilds tensors with ``torch._utils._rebuild_tensor_v2`` & co. and names
storage classes, dtypes, ``torch.device``, layouts... (the same list torch's own
``weights_only`` unpickler allows). Here each such global is an inert stand-in: rebuild calls
become lazy tensors checked against their storage by the caller's ``Storages``, dtypes
become names. TorchScript archives pickle their modules as ``__torch__.<class>`` objects
whose BUILD state is the module's attributes (parameters, submodules); those become plain
``ScriptObject`` dicts, and the archive's compiled code is never looked at. Everything else
(a pickled ``nn.Module``, ``os.system``) is refused by name before it is imported.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from typing import Any, Protocol

from lstmviz.io.errors import LoadError
from lstmviz.io.torch.quantized import PackedState, rebuild_qtensor
from lstmviz.io.torch.state_dict import LazyTensor
from lstmviz.io.wire.pickle_records import key_name
from lstmviz.io.wire.pickle_vm import Limits, PickleLimit
from lstmviz.io.wire.safe_pickle import (
    Buildable,
    NumpyArray,
    Opaque,
    Sealed,
    restricted_loads,
)

SAVE_ADVICE = "save a state_dict with torch.save(model.state_dict(), path)"

#: dtype name → (NumPy dtype, element size); bfloat16 and float8 are read as their bits.
DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("f4", 4),
    "float64": ("f8", 8),
    "float16": ("f2", 2),
    "bfloat16": ("u2", 2),
    "int64": ("i8", 8),
    "int32": ("i4", 4),
    "int16": ("i2", 2),
    "int8": ("i1", 1),
    "uint8": ("u1", 1),
    "uint16": ("u2", 2),
    "uint32": ("u4", 4),
    "uint64": ("u8", 8),
    "bool": ("b1", 1),
    "complex32": ("u4", 4),
    "complex64": ("c8", 8),
    "complex128": ("c16", 16),
    "float8_e4m3fn": ("u1", 1),
    "float8_e5m2": ("u1", 1),
    "float8_e4m3fnuz": ("u1", 1),
    "float8_e5m2fnuz": ("u1", 1),
    "float8_e8m0fnu": ("u1", 1),
    "qint8": ("i1", 1),
    "quint8": ("u1", 1),
    "qint32": ("i4", 4),
    "quint4x2": ("u1", 1),
    "quint2x4": ("u1", 1),
}
#: Legacy typed storage classes as ``torch.save`` names them (``torch.FloatStorage``...).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8",  # new dtypes: untyped bytes + a dtype in _rebuild_tensor_v3
}
#: Other plain-name globals (layouts, quantization schemes, memory formats).
NAMED = (
    "strided",
    "sparse_coo",
    "sparse_csr",
    "sparse_csc",
    "sparse_bsr",
    "sparse_bsc",
    "_mkldnn",
    "jagged",
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
    "contiguous_format",
    "channels_last",
    "preserve_format",
)


class DType(Sealed):
    """A ``torch.<dtype>`` global (``torch.float32``), storage class or layout, as a name."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)


class Marker(Sealed):
    """``torch.Tensor`` / ``torch.nn.Parameter`` used only as a type tag."""

    __slots__ = ()


class ScriptObject(dict, Buildable):  # type: ignore[misc]
    """A TorchScript ``__torch__.*`` module or class instance: its attributes, as a dict.

    TorchScript pickles a module as GLOBAL + NEWOBJ + BUILD(attribute dict); the dict's items
    are kept. A custom class whose state is not a dict (packed quantized weights) keeps it as
    ``state``, for ``quantized`` to read.
    """

    __slots__ = ("state",)

    def build(self, state: object) -> None:
        if isinstance(state, dict):
            self.update((key_name(k), v) for k, v in state.items())
        else:
            self.state = state


class Storages(Protocol):
    """What the rebuild stand-ins need from the archive: name, storages, checked tensors."""

    file: str

    def storage(self, pid: Any) -> Any: ...

    def tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None
    ) -> LazyTensor: ...


def _unreadable(file: str, what: str) -> Callable[[], Any]:
    def read() -> Any:
        raise LoadError(f"{file}: {what}; {SAVE_ADVICE} of a model with plain float weights")

    return read


def _device(kind: object = "cpu", index: object = None) -> str:
    """``torch.device('cuda', 0)`` → ``'cuda:0'`` (a name; tensors are read as CPU data)."""
    if not isinstance(kind, str) or not (index is None or isinstance(index, int)):
        raise pickle.UnpicklingError("torch.device with arguments that are not a name and index")
    return kind if index is None else f"{kind}:{index}"


def _rebuild_functions(src: Storages) -> dict[str, Callable[..., Any]]:
    """``torch._utils._rebuild_*`` stand-ins; each returns a lazy tensor or a placeholder."""
    file = src.file

    def v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        return src.tensor(storage, offset, size, stride, None)

    def v1(storage, offset, size, stride):
        return src.tensor(storage, offset, size, stride, None)

    def v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        if not isinstance(dtype, DType):
            raise LoadError(f"{file}: _rebuild_tensor_v3 without a dtype")
        return src.tensor(storage, offset, size, stride, dtype.name)

    def parameter(data, requires_grad=False, hooks=None, state=None):
        return data

    def meta(dtype, size, stride=None, requires_grad=False):
        name = dtype.name if isinstance(dtype, DType) else "float32"
        ok = type(size) is tuple and len(size) <= 32 and all(type(n) is int for n in size)
        shape = size if ok else ()  # never format a VM-built object that may share itself
        what = f"a tensor of shape {shape} is on the 'meta' device (a shape without values)"
        return LazyTensor(shape, name, _unreadable(file, what))

    def from_numpy(data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, NumpyArray):
            return LazyTensor(data.shape, data.dtype, data.read)
        return data

    def from_cpu(data, dtype=None, device=None, requires_grad=False):
        return data

    def unsupported(kind: str) -> Callable[..., LazyTensor]:
        def rebuild(*args: object) -> LazyTensor:
            return LazyTensor((), kind, _unreadable(file, f"a {kind} tensor cannot be shown"))

        return rebuild

    return {
        "_rebuild_tensor_v2": v2,
        "_rebuild_tensor": v1,
        "_rebuild_tensor_v3": v3,
        "_rebuild_parameter": parameter,
        "_rebuild_parameter_with_state": parameter,
        "_rebuild_meta_tensor_no_storage": meta,
        "_rebuild_device_tensor_from_numpy": from_numpy,
        "_rebuild_device_tensor_from_cpu_tensor": from_cpu,
        "_rebuild_qtensor": rebuild_qtensor(src),
        "_rebuild_sparse_tensor": unsupported("sparse"),
        "_rebuild_nested_tensor": unsupported("nested"),
        "_rebuild_wrapper_subclass": unsupported("tensor-subclass"),
    }


def _layout(name: object) -> DType:
    if not isinstance(name, str):
        raise pickle.UnpicklingError("torch.serialization._get_layout of something not a name")
    return DType(name)


def allowed_globals(src: Storages) -> dict[tuple[str, str], Any]:
    """The torch names a state-dict (or TorchScript) pickle uses, each an inert stand-in."""
    rebuild = _rebuild_functions(src)
    plain = (rebuild["_rebuild_tensor_v2"], rebuild["_rebuild_tensor_v3"])
    plain += (rebuild["_rebuild_parameter"], rebuild["_rebuild_tensor"])

    def from_type_v2(func, new_type, args, state):
        if func not in plain or not isinstance(args, tuple):
            raise LoadError(f"{src.file}: unsupported tensor subclass in data.pkl")
        return func(*args)

    allowed: dict[tuple[str, str], Any] = {("torch._utils", k): f for k, f in rebuild.items()}
    allowed.update(
        {
            ("torch._tensor", "_rebuild_from_type_v2"): from_type_v2,
            ("torch", "Tensor"): Marker(),
            ("torch._tensor", "Tensor"): Marker(),
            ("torch.nn.parameter", "Parameter"): Marker(),
            ("torch.nn.parameter", "Buffer"): Marker(),
            ("torch", "Size"): tuple,
            ("torch", "device"): _device,
            ("torch.serialization", "_get_layout"): _layout,
            # TorchScript's typed containers: the value itself
            ("torch.jit._pickle", "restore_type_tag"): lambda value, type_str=None: value,
            ("torch.jit._pickle", "build_tensor_from_id"): lambda data: Opaque(),
        }
    )
    for kind in ("intlist", "tensorlist", "doublelist", "boollist"):
        allowed[("torch.jit._pickle", f"build_{kind}")] = lambda data: data
    for storage, dtype in STORAGE_DTYPES.items():
        allowed[("torch", storage)] = DType(dtype)
    allowed[("torch.storage", "UntypedStorage")] = DType("uint8")
    allowed[("torch.storage", "TypedStorage")] = DType("uint8")
    for name in (*DTYPES, *NAMED):
        allowed[("torch", name)] = DType(name)
    return allowed


def resolver(file: str, script: bool) -> Callable[[str, str], Any]:
    """TorchScript classes (``__torch__.torch.nn.modules.rnn.LSTM``) become ``ScriptObject``
    in a TorchScript archive; ``torch.ScriptObject`` (packed quantized weights in a state
    dict) becomes a ``PackedState`` keeping its pickled state (nothing of it is called)."""

    def resolve(module: str, name: str) -> Any:
        if script and (module == "__torch__" or module.startswith("__torch__.")):
            return ScriptObject
        if (module, name) == ("torch", "ScriptObject"):
            return PackedState
        return None

    return resolve


def refuse(file: str, module: str, name: str) -> LoadError:
    """Name the refused global; a model class (torch.nn, user code) gets the state_dict hint."""
    top = module.split(".")[0]
    if (module, name) == ("torch", "ScriptObject"):
        return LoadError(
            f"{file}: pickle holds torch.ScriptObject values (packed weights of a quantized "
            "model, torch.ao.quantization), which lstmviz cannot read; save the state_dict of "
            "the float model before quantizing it"
        )
    if module.startswith(("torch.nn.", "__main__")) or (
        top not in sys.stdlib_module_names and top not in ("torch", "numpy")
    ):
        return LoadError(
            f"{file}: pickle wants global {module}.{name} (a whole pickled model or object), "
            f"which lstmviz refuses to load because unpickling it could run code; {SAVE_ADVICE}"
        )
    return LoadError(
        f"{file}: pickle wants global {module}.{name}, which lstmviz refuses to load; {SAVE_ADVICE}"
    )


BUDGET_ADVICE = "if you trust the file, raise the limit with --option budget=4"


def unpickle(
    data: Any,
    src: Storages,
    what: str = "data.pkl",
    script: bool = False,
    limits: Limits | None = None,
    pos: int = 0,
    ends: list[int] | None = None,
    encoding: str = "utf-8",
) -> object:
    """Run the restricted unpickler over one pickle of the archive; every failure a LoadError.

    ``limits`` (default: scaled with ``len(data)``) bound its work and memory; ``pos`` is where
    the pickle starts in ``data`` and its end is appended to ``ends`` (legacy files hold
    several back to back)."""
    file = src.file
    try:
        return restricted_loads(
            data,
            allowed_globals(src),
            src.storage,
            lambda module, name: refuse(file, module, name),
            resolver(file, script),
            limits,
            pos,
            ends,
            encoding,
        )
    except LoadError:
        raise
    except PickleLimit as exc:
        raise LoadError(f"{file}: {what} {exc}; {BUDGET_ADVICE}") from exc
    except (RecursionError, MemoryError) as exc:
        raise LoadError(f"{file}: {what} is too deeply nested or too large") from exc
    except Exception as exc:  # the stream is untrusted; nothing of it ran
        raise LoadError(
            f"{file}: {what} is damaged ({type(exc).__name__}: {exc}); re-save the file with "
            "torch.save"
        ) from exc
