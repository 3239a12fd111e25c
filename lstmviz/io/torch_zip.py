"""PyTorch ``torch.save`` files (zip, torch ≥ 1.6) read without torch (CONVENTIONS §3.5).

The archive holds ``<prefix>/data.pkl`` (protocol 2 pickle of the saved object) and one raw
member ``<prefix>/data/<key>`` per storage. The pickle is read by ``RestrictedUnpickler``
allowing only the names a state dict needs: ``_rebuild_tensor_v2`` & co. become records of
(storage, offset, size, stride) checked against the storage's real length, and the bytes are
read with NumPy only for the tensors the LSTM uses. Anything else (a pickled ``nn.Module``,
``os.system``) is refused by name before it is imported. The extension is irrelevant: .pt,
.pth, .bin, .ckpt, .tar all sniff the same.
"""

from __future__ import annotations

import math
import sys
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstmviz.core.model import LSTMModel
from lstmviz.io.convert import bfloat16_to_float32
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import TORCH_LEGACY_HEADER, Probe
from lstmviz.io.registry import Reader
from lstmviz.io.safe_pickle import Sealed, restricted_loads
from lstmviz.io.state_dict import LazyTensor, Tensor, is_tensor, model_from_state_dict

SOURCE_FORMAT = "PyTorch zip (torch.save)"
#: Pre-1.6 files start with ``pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)``.
MAX_PICKLE_BYTES = 256 << 20  # a state dict of 100k tensors pickles to ~20 MB
MAX_DEFLATE_RATIO = 1100  # deflate cannot do better than ~1032:1; more is a zip bomb
#: What a damaged zip raises in zipfile (bad names, CRC, deflate stream, sizes).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)
SAVE_ADVICE = "save a state_dict with torch.save(model.state_dict(), path)"

#: dtype name → (NumPy dtype, element size); bfloat16 is read as its uint16 bits.
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
    "complex64": ("c8", 8),
    "complex128": ("c16", 16),
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
    "UntypedStorage": "uint8",  # new dtypes: untyped bytes + a dtype in _rebuild_tensor_v3
}


class _DType(Sealed):
    """A ``torch.<dtype>`` global (``torch.float32``) or storage class, as a plain name."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)


class _Storage(Sealed):
    """One ``persistent_load`` id: a member of the archive, checked to be long enough."""

    __slots__ = ("archive", "dtype", "key", "numel")

    def __init__(self, archive: _Archive, key: str, dtype: str, numel: int) -> None:
        for attr, value in (("archive", archive), ("key", key), ("dtype", dtype), ("numel", numel)):
            object.__setattr__(self, attr, value)


class _Marker(Sealed):
    """``torch.Tensor`` / ``torch.nn.Parameter`` used only as a type tag."""

    __slots__ = ()


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


class _Archive:
    """The open zip: locates members, reads storages once, builds lazy tensors."""

    def __init__(self, zf: zipfile.ZipFile, probe: Probe) -> None:
        self.zf, self.probe, self.file = zf, probe, probe.name
        names = zf.namelist()
        pkls = sorted(
            (n for n in names if n.endswith("/data.pkl")), key=lambda n: (n.count("/"), n)
        )
        if not pkls:
            raise LoadError(
                f"{self.file}: zip archive has no */data.pkl, so it is not a torch.save file; "
                f"{SAVE_ADVICE}"
            )
        self.prefix = pkls[0][: -len("data.pkl")]
        if any(n.startswith(self.prefix + "code/") for n in names) or (
            self.prefix + "constants.pkl" in names
        ):
            raise LoadError(
                f"{self.file}: file is a TorchScript archive (torch.jit.save), whose pickle "
                f"holds compiled modules; {SAVE_ADVICE}"
            )
        self.infos = {i.filename: i for i in zf.infolist()}
        order = self._text("byteorder", "little")
        if order not in ("little", "big"):
            raise LoadError(f"{self.file}: byteorder member says {order!r}, not little or big")
        self.endian = "<" if order == "little" else ">"
        self._bytes: dict[str, bytes] = {}

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = self.infos.get(name)
        if info is None:
            raise LoadError(f"{self.file}: zip member {name} is missing; re-save the file")
        if info.compress_size > self.probe.size or info.file_size > (
            MAX_DEFLATE_RATIO * info.compress_size + 4096
        ):
            raise LoadError(
                f"{self.file}: zip member {name} declares {info.file_size} bytes from "
                f"{info.compress_size} stored (damaged or a zip bomb)"
            )
        return info

    def read(self, name: str, limit: int | None = None) -> bytes:
        info = self._member(name)
        if limit is not None and info.file_size > limit:
            raise LoadError(f"{self.file}: {name} is {info.file_size} bytes, more than {limit}")
        try:
            with self.zf.open(info) as fh:
                return fh.read()
        except ZIP_ERRORS as exc:
            raise LoadError(
                f"{self.file}: zip member {name} is damaged ({exc}); re-save the file"
            ) from exc

    def _text(self, member: str, default: str) -> str:
        name = self.prefix + member
        if name not in self.infos:
            return default
        return self.read(name, limit=64).decode("ascii", "replace").strip()

    def storage(self, pid: Any) -> _Storage:
        """``persistent_load``: ``('storage', storage_type, key, location, numel)``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise LoadError(
                f"{self.file}: data.pkl has an unknown persistent id (not a torch storage); "
                "re-save the file with torch.save"
            )
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _DType) or not isinstance(key, str) or not _is_int(numel):
            raise LoadError(f"{self.file}: data.pkl has a malformed storage reference")
        name = f"{self.prefix}data/{key}"
        info = self._member(name)
        size = DTYPES[kind.name][1]
        if numel * size > info.file_size:
            raise LoadError(
                f"{self.file}: storage {key} declares {numel} × {size} bytes but {name} holds "
                f"{info.file_size}; the archive is damaged"
            )
        return _Storage(self, key, kind.name, numel)

    def tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None
    ) -> LazyTensor:
        """A lazy tensor after checking that every element lies inside its storage."""
        if not isinstance(storage, _Storage):
            raise LoadError(f"{self.file}: a tensor in data.pkl has no storage")
        dtype = dtype or storage.dtype
        ok = (
            _is_int(offset)
            and isinstance(size, tuple)
            and isinstance(stride, tuple)
            and len(size) == len(stride) <= 32
            and all(_is_int(n) for n in (*size, *stride))
        )
        if not ok:
            raise LoadError(f"{self.file}: a tensor in data.pkl has a malformed shape or stride")
        storage_bytes = storage.numel * DTYPES[storage.dtype][1]
        itemsize = DTYPES[dtype][1]
        count = math.prod(size)
        last = (
            offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if count
            else offset - 1
        )
        if (last + 1) * itemsize > storage_bytes or count * itemsize > 64 * storage_bytes + 4096:
            raise LoadError(
                f"{self.file}: a tensor of shape {size} at offset {offset} reaches past the end "
                f"of storage {storage.key} ({storage_bytes} bytes)"
            )

        def read() -> np.ndarray:
            raw = self._storage_bytes(storage, storage_bytes)
            np_dtype = np.dtype(DTYPES[dtype][0]).newbyteorder(self.endian)
            strides = tuple(s * itemsize for s in stride)
            view = np.ndarray(size, np_dtype, buffer=raw, offset=offset * itemsize, strides=strides)
            if view.flags.c_contiguous and np_dtype.isnative:
                arr = view  # a read-only view of the member's bytes: no copy at all
            else:
                arr = view.astype(np_dtype.newbyteorder("="), order="C")  # one copy
            return bfloat16_to_float32(arr) if dtype == "bfloat16" else arr

        return LazyTensor(size, dtype, read)

    def _storage_bytes(self, storage: _Storage, nbytes: int) -> bytes:
        if storage.key not in self._bytes:
            data = self.read(f"{self.prefix}data/{storage.key}")
            if len(data) < nbytes:
                raise LoadError(f"{self.file}: storage {storage.key} is truncated")
            self._bytes[storage.key] = data
        return self._bytes[storage.key]


#: Keys under which training scripts nest the model's state dict.
CONTAINER_KEYS = ("model_state_dict", "state_dict", "model", "net", "network", "model_state")
_MAX_NODES = 2_000_000
_MAX_DEPTH = 100


@dataclass(frozen=True)
class Checkpoint:
    """A loaded pickle split into the model's tensors and everything else."""

    tensors: dict[str, Tensor]
    extras: dict[str, Tensor] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _flatten(obj: object, base: str, file: str) -> tuple[dict[str, Tensor], dict[str, object]]:
    """Dotted paths of every tensor (and shallow scalar) in nested dicts/lists, iteratively."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, object] = {}
    seen: set[int] = set()
    todo: list[tuple[str, object, int]] = [(base, obj, 0)]
    nodes = 0
    while todo:
        path, node, depth = todo.pop()
        nodes += 1
        if nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise LoadError(f"{file}: pickle is nested too deeply or too large to be a state dict")
        if is_tensor(node):
            tensors[path] = node  # type: ignore[assignment]
            continue
        if isinstance(node, Mapping):
            items = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            items = [(str(k), v) for k, v in enumerate(node)]
        else:
            if depth <= 2 and isinstance(node, (int, float, str, bool)) and len(scalars) < 20:
                scalars[path] = node
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        todo.extend((f"{path}.{k}" if path else k, v, depth + 1) for k, v in reversed(items))
    return tensors, scalars


def split_checkpoint(obj: object, file: str) -> Checkpoint:
    """Find the model's state dict in a plain state dict or a training checkpoint.

    ``{"model_state_dict": ..., "optimizer_state_dict": ..., "epoch": 3}`` and
    ``{"state_dict": ...}`` keep their model names without the container key; any other
    nesting is flattened with dotted paths.
    """
    if is_tensor(obj):
        raise LoadError(
            f"{file}: file holds a single tensor, not a state dict; "
            "save the model with torch.save(model.state_dict(), path)"
        )
    notes: list[str] = []
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                tensors, _ = _flatten(inner, "", file)
                if tensors:
                    rest = {str(k): v for k, v in obj.items() if k != key}
                    extras, scalars = _flatten(rest, "", file)
                    notes.append(f"state dict found under '{key}'")
                    notes.extend(f"{k} = {v!r}"[:80] for k, v in scalars.items())
                    return Checkpoint(tensors, extras, tuple(notes))
    tensors, scalars = _flatten(obj, "", file)
    notes.extend(f"{k} = {v!r}"[:80] for k, v in scalars.items())
    return Checkpoint(tensors, {}, tuple(notes))


def _refuse(file: str, module: str, name: str) -> LoadError:
    """Name the refused global; a model class (torch.nn, user code) gets the state_dict hint."""
    top = module.split(".")[0]
    if module.startswith(("torch.nn.", "__torch__", "__main__")) or (
        top not in sys.stdlib_module_names and top not in ("torch", "numpy")
    ):
        return LoadError(
            f"{file}: pickle wants global {module}.{name} (a whole pickled model or object), "
            f"which lstmviz refuses to load because unpickling it could run code; {SAVE_ADVICE}"
        )
    return LoadError(
        f"{file}: pickle wants global {module}.{name}, which lstmviz refuses to load; {SAVE_ADVICE}"
    )


def _allowed_globals(archive: _Archive) -> dict[tuple[str, str], Any]:
    """The torch names a state-dict pickle uses, each mapped to an inert stand-in."""

    def rebuild_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        return archive.tensor(storage, offset, size, stride, None)

    def rebuild_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        if not isinstance(dtype, _DType):
            raise LoadError(f"{archive.file}: _rebuild_tensor_v3 without a dtype")
        return archive.tensor(storage, offset, size, stride, dtype.name)

    def rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
        return data

    def rebuild_from_type_v2(func, new_type, args, state):
        if func not in (rebuild_v2, rebuild_v3, rebuild_parameter) or not isinstance(args, tuple):
            raise LoadError(f"{archive.file}: unsupported tensor subclass in data.pkl")
        return func(*args)

    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_v2,
        ("torch._utils", "_rebuild_tensor_v3"): rebuild_v3,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
        ("torch", "Tensor"): _Marker(),
        ("torch._tensor", "Tensor"): _Marker(),
        ("torch.nn.parameter", "Parameter"): _Marker(),
        ("torch", "Size"): tuple,
    }
    for storage, dtype in STORAGE_DTYPES.items():
        allowed[("torch", storage)] = _DType(dtype)
    allowed[("torch.storage", "UntypedStorage")] = _DType("uint8")
    for dtype in DTYPES:
        allowed[("torch", dtype)] = _DType(dtype)
    return allowed


def _unpickle(archive: _Archive) -> object:
    data = archive.read(archive.prefix + "data.pkl", limit=MAX_PICKLE_BYTES)
    try:
        return restricted_loads(
            data,
            _allowed_globals(archive),
            archive.storage,
            lambda module, name: _refuse(archive.file, module, name),
        )
    except LoadError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise LoadError(f"{archive.file}: data.pkl is too deeply nested or too large") from exc
    except Exception as exc:  # the stream is untrusted; nothing of it ran
        raise LoadError(
            f"{archive.file}: data.pkl is damaged ({type(exc).__name__}: {exc}); re-save the "
            "file with torch.save"
        ) from exc


def load_torch_zip(probe: Probe, prefix: str | None = None) -> LSTMModel:
    """Read a ``torch.save`` zip; ``prefix`` picks one LSTM when the file holds several."""
    file = probe.name
    if probe.head.startswith(TORCH_LEGACY_HEADER):
        raise LoadError(
            f"{file}: file is a legacy (pre-1.6) torch.save pickle, which lstmviz does not "
            "unpickle; in a trusted environment load it with torch and re-save it with "
            "torch.save(obj, path) using torch >= 1.6"
        )
    try:
        zf = zipfile.ZipFile(probe.path)
    except ZIP_ERRORS as exc:
        raise LoadError(
            f"{file}: damaged zip archive ({exc}); re-save the file with torch.save"
        ) from exc
    with zf:
        archive = _Archive(zf, probe)
        checkpoint = split_checkpoint(_unpickle(archive), file)
        return model_from_state_dict(
            checkpoint.tensors,
            file=file,
            source_format=SOURCE_FORMAT,
            source_path=str(probe.path),
            prefix=prefix,
            extras=checkpoint.extras,
            notes=checkpoint.notes,
        )


def sniff(probe: Probe) -> bool:
    """A zip with ``*/data.pkl`` (or torch's ``byteorder``/``version`` members), or legacy."""
    head = probe.head
    if head.startswith(TORCH_LEGACY_HEADER):
        return True
    # torch writes data.pkl first: its local header still names it when the end is cut off.
    if probe.is_zip and len(head) >= 30:
        name = head[30 : 30 + int.from_bytes(head[26:28], "little")]
        if name.endswith(b"/data.pkl"):
            return True
    return any(n.endswith(("/data.pkl", "/.format_version", "/byteorder")) for n in probe.zip_names)


READER = Reader(name="PyTorch", sniff=sniff, load=load_torch_zip, priority=10, options=("prefix",))

__all__ = ["READER", "load_torch_zip", "sniff"]
