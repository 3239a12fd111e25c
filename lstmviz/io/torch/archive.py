"""PyTorch zip archives (torch ≥ 1.6) read without torch (CONVENTIONS §3.5).

A ``torch.save`` archive holds ``<prefix>/data.pkl`` (the pickled object) and one raw member
``<prefix>/data/<key>`` per storage; ``torch.jit.save`` archives add ``code/`` (never read) and
pickle their modules as attribute dicts; ``torch.export.save`` ``.pt2`` archives describe
their weights in JSON (``torch_export``). Pickles go through the allow-list unpickler of
``torch_pickle``: tensors become records of (storage, offset, size, stride) checked against
the storage's real length, and bytes are read with NumPy only for the tensors the LSTM uses.
The extension is irrelevant: .pt, .pth, .bin, .ckpt, .tar, .pt2 all sniff the same.
"""

from __future__ import annotations

import contextlib
import io
import math
import zipfile
import zlib
from typing import Any

import numpy as np

from lstmviz.core.model import LSTMModel
from lstmviz.io.convert import bfloat16_to_float32
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import TORCH_LEGACY_HEADER, Probe
from lstmviz.io.registry import Reader
from lstmviz.io.torch import export_archive as torch_export
from lstmviz.io.torch.checkpoint import DTYPES, SAVE_ADVICE, DType, split_checkpoint, unpickle
from lstmviz.io.torch.state_dict import LazyTensor, model_from_state_dict
from lstmviz.io.wire.safe_pickle import Sealed

SOURCE_FORMAT = "PyTorch zip (torch.save)"
MAX_PICKLE_BYTES = 256 << 20  # a state dict of 100k tensors pickles to ~20 MB
MAX_DEFLATE_RATIO = 1100  # deflate cannot do better than ~1032:1; more is a zip bomb
#: torch stores members uncompressed; a re-zipped archive may inflate this much per byte
#: beyond a floor (zero-filled weights compress ~1000:1, which is how zip bombs are made).
MAX_INFLATE_RATIO, INFLATE_FLOOR = 100, 64 << 20
#: What a damaged zip raises in zipfile (bad names, CRC, deflate stream, sizes).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)
SCRIPT_NOTE = "TorchScript archive (torch.jit.save): weights read from data.pkl, code not run"


class _Storage(Sealed):
    """One ``persistent_load`` id: a member of the archive, checked to be long enough."""

    __slots__ = ("dtype", "key", "member", "numel")

    def __init__(self, member: str, key: str, dtype: str, numel: int) -> None:
        for attr, value in (("member", member), ("key", key), ("dtype", dtype), ("numel", numel)):
            object.__setattr__(self, attr, value)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _data_pkl_prefix(names: list[str]) -> str | None:
    """``<prefix>/`` of the shallowest ``*/data.pkl`` (torch uses the file stem or 'archive')."""
    pkls = sorted((n for n in names if n.endswith("/data.pkl")), key=lambda n: (n.count("/"), n))
    return pkls[0][: -len("data.pkl")] if pkls else None


class Archive:
    """An open torch zip: checked members, storages read once, lazy strided tensors.

    ``size`` is the size of the file the zip came from (a nested archive: its bytes), against
    which every member's declared sizes are checked before anything is inflated.
    """

    def __init__(self, zf: zipfile.ZipFile, file: str, size: int, prefix: str) -> None:
        self.zf, self.file, self.size, self.prefix = zf, file, size, prefix
        self.infos = {i.filename: i for i in zf.infolist()}
        order = self.text("byteorder", "little")
        if order not in ("little", "big"):
            raise LoadError(f"{self.file}: byteorder member says {order!r}, not little or big")
        self.endian = "<" if order == "little" else ">"
        self._bytes: dict[str, bytes] = {}

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = self.infos.get(name)
        if info is None:
            raise LoadError(f"{self.file}: zip member {name} is missing; re-save the file")
        inflating = info.compress_type != zipfile.ZIP_STORED
        if (
            info.compress_size > self.size
            or info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 4096
            or (inflating and info.file_size > max(INFLATE_FLOOR, MAX_INFLATE_RATIO * self.size))
        ):
            raise LoadError(
                f"{self.file}: zip member {name} declares {info.file_size} bytes from "
                f"{info.compress_size} stored (damaged or a zip bomb)"
            )
        return info

    def has(self, member: str) -> bool:
        return self.prefix + member in self.infos

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

    def text(self, member: str, default: str) -> str:
        if not self.has(member):
            return default
        return self.read(self.prefix + member, limit=64).decode("ascii", "replace").strip()

    def member_size(self, member: str) -> int:
        return self._member(self.prefix + member).file_size

    def storage(self, pid: Any) -> _Storage:
        """``persistent_load``: ``('storage', storage_type, key, location, numel)``.

        The location ('cpu', 'cuda:0', 'mps'...) is ignored: every storage is read as bytes.
        """
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise LoadError(
                f"{self.file}: data.pkl has an unknown persistent id (not a torch storage); "
                "re-save the file with torch.save"
            )
        _, kind, key, _location, numel = pid
        if not isinstance(kind, DType) or not isinstance(key, str) or not _is_int(numel):
            raise LoadError(f"{self.file}: data.pkl has a malformed storage reference")
        return self.make_storage(f"data/{key}", key, kind.name, numel)

    def make_storage(self, member: str, key: str, dtype: str, numel: int) -> _Storage:
        """A storage of ``numel`` elements in ``<prefix><member>``, checked to fit."""
        size = DTYPES[dtype][1]
        stored = self.member_size(member)
        if numel * size > stored:
            raise LoadError(
                f"{self.file}: storage {key} declares {numel} × {size} bytes but "
                f"{self.prefix}{member} holds {stored}; the archive is damaged"
            )
        return _Storage(member, key, dtype, numel)

    def tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None
    ) -> LazyTensor:
        """A lazy tensor after checking that every element lies inside its storage."""
        if not isinstance(storage, _Storage):
            raise LoadError(f"{self.file}: a tensor in data.pkl has no storage")
        dtype = dtype or storage.dtype
        if dtype not in DTYPES:
            raise LoadError(f"{self.file}: a tensor has the unknown dtype {dtype!r}")
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
        if storage.member not in self._bytes:
            data = self.read(f"{self.prefix}{storage.member}")
            if len(data) < nbytes:
                raise LoadError(f"{self.file}: storage {storage.key} is truncated")
            self._bytes[storage.member] = data
        return self._bytes[storage.member]

    def unpickle(self, script: bool = False) -> object:
        data = self.read(self.prefix + "data.pkl", limit=MAX_PICKLE_BYTES)
        return unpickle(data, self, script=script)


def _is_torchscript(names: list[str], prefix: str) -> bool:
    return prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names)


def _refuse_other_zip(file: str, names: list[str]) -> LoadError:
    """A zip without ``*/data.pkl``: legacy TorchScript, or not torch at all."""
    if any(n == "model.json" or n.endswith("/model.json") for n in names) and any(
        "/tensors/" in n or n.startswith("tensors/") for n in names
    ):
        return LoadError(
            f"{file}: file is a TorchScript archive of torch < 1.4 (model.json + tensors/), "
            "which lstmviz cannot read; load it with torch.jit.load in a trusted environment "
            f"and {SAVE_ADVICE}"
        )
    return LoadError(
        f"{file}: zip archive has no */data.pkl, so it is not a torch.save file; {SAVE_ADVICE}"
    )


def open_nested(data: bytes, file: str, what: str) -> object:
    """Unpickle a ``torch.save`` archive held as bytes inside another archive (``.pt2``)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: {what} is not a readable torch.save archive ({exc})") from exc
    with zf:
        prefix = _data_pkl_prefix(zf.namelist())
        if prefix is None:
            raise LoadError(f"{file}: {what} has no data.pkl; re-export the file")
        holder = [Archive(zf, file, len(data), prefix).unpickle()]
        _read_all(holder)  # the nested zip closes here: read its tensors now
        return holder[0]


def _read_all(obj: list) -> None:
    """Replace lazy tensors in the dicts/lists of ``obj`` by their arrays (small archives)."""
    todo: list[object] = [obj]
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for k, v in items:
            if isinstance(v, LazyTensor):
                with contextlib.suppress(LoadError):  # meta/sparse placeholders fail if used
                    node[k] = v.read()  # type: ignore[index]
            elif isinstance(v, (dict, list)):
                todo.append(v)


def load_torch_zip(probe: Probe, prefix: str | None = None) -> LSTMModel:
    """Read a torch zip archive; ``prefix`` picks one LSTM when the file holds several."""
    file = probe.name
    if probe.head.startswith(TORCH_LEGACY_HEADER):
        raise LoadError(
            f"{file}: file is a legacy (pre-1.6, or _use_new_zipfile_serialization=False) "
            "torch.save pickle, which lstmviz does not unpickle; in a trusted environment load "
            "it with torch.load and re-save it with torch.save(model.state_dict(), path)"
        )
    try:
        zf = zipfile.ZipFile(probe.path)
    except ZIP_ERRORS as exc:
        raise LoadError(
            f"{file}: damaged zip archive ({exc}); re-save the file with torch.save"
        ) from exc
    with zf:
        names = zf.namelist()
        notes: list[str] = []
        source_format = SOURCE_FORMAT
        pt2 = torch_export.find_export(names)
        if pt2 is not None:
            archive = Archive(zf, file, probe.size, pt2)
            tensors, notes = torch_export.read_weights(archive, names, open_nested)
            extras: dict = {}
            source_format = torch_export.SOURCE_FORMAT
        else:
            zip_prefix = _data_pkl_prefix(names)
            if zip_prefix is None:
                raise _refuse_other_zip(file, names)
            archive = Archive(zf, file, probe.size, zip_prefix)
            script = _is_torchscript(names, zip_prefix)
            checkpoint = split_checkpoint(archive.unpickle(script=script), file)
            tensors, extras = checkpoint.tensors, checkpoint.extras
            notes = [SCRIPT_NOTE] if script else []
            notes.extend(checkpoint.notes)
            if script:
                source_format = "TorchScript zip (torch.jit.save)"
                if not tensors:
                    raise LoadError(
                        f"{file}: TorchScript archive has no named parameters in data.pkl (a "
                        "frozen or optimized module keeps its weights as unnamed constants); "
                        f"{SAVE_ADVICE} before scripting or freezing it"
                    )
        return model_from_state_dict(
            tensors,
            file=file,
            source_format=source_format,
            source_path=str(probe.path),
            prefix=prefix,
            extras=extras,
            notes=tuple(notes),
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
    names = probe.zip_names
    if torch_export.find_export(list(names)) is not None:
        return True
    return any(n.endswith(("/data.pkl", "/.format_version", "/byteorder")) for n in names)


READER = Reader(name="PyTorch", sniff=sniff, load=load_torch_zip, priority=10, options=("prefix",))

__all__ = ["READER", "Archive", "load_torch_zip", "sniff"]
