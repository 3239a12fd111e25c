"""Pickles outside a zip: legacy ``torch.save`` files and bare pickles, read inertly.

**Legacy torch serialization** (torch < 1.6, or ``_use_new_zipfile_serialization=False``;
``torch/serialization.py`` ``_legacy_save`` / ``_legacy_load``) is one stream: five pickles back
to back — the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, ``sys_info``
(``little_endian``, type sizes), the object itself, and the list of storage keys in the order
their bytes follow — then, per key, an int64 element count and the raw elements. The object's
persistent ids are ``('storage', storage_type, root_key, location, numel, view_metadata)``
(``view_metadata``: ``(view_key, offset, size)`` into the root storage, or None) or
``('module', class, source_file, source)`` for a whole pickled module (its class, recorded
and never imported). Storage offsets are found by walking the count headers, each checked
against the file's length; bytes are read only for the tensors the LSTM uses.

**Bare pickles** (``pickle.dump`` of a dict of NumPy arrays, or of a library's own model
object) go through the same inert unpickler with no persistent ids. Both decode Python 2
``str`` as latin-1 (``torch.load(..., encoding='latin1')``, NumPy's own choice), so py2-era
arrays and keys read as their bytes.
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

from lstmviz.io.errors import LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.torch.checkpoint import DTYPES, DType, unpickle
from lstmviz.io.torch.storage import Budget, Storage, StorageSource, is_count
from lstmviz.io.wire.pickle_vm import Limits

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
LEGACY_FORMAT = "PyTorch legacy pickle (torch.save, torch < 1.6 layout)"
BARE_FORMAT = "Python pickle"


class _Header(StorageSource):
    """Persistent ids are not allowed in the three header pickles."""

    def __init__(self, file: str, budget: Budget) -> None:
        super().__init__()
        self.file, self.budget = file, budget

    def storage(self, pid: Any) -> Any:
        raise LoadError(f"{self.file}: a legacy torch header pickle has a persistent id")


class LegacyFile(StorageSource):
    """A legacy torch file mapped read-only: storages named by the pickle, found by offset."""

    def __init__(self, data: Any, file: str, budget: Budget) -> None:
        super().__init__()
        self.data, self.file, self.budget = data, file, budget
        self.roots: dict[str, Storage] = {}
        self.offsets: dict[str, int] = {}

    def storage(self, pid: Any) -> Any:
        if type(pid) is not tuple or not pid:
            raise LoadError(f"{self.file}: a persistent id is not a tuple; the file is damaged")
        kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if not isinstance(kind, str):  # never str() a VM-built object: it may share itself
            raise LoadError(f"{self.file}: a persistent id without a type name")
        if kind == "module" and len(pid) == 4:
            return pid[1]  # the module's class (an inert Deferred); its source is ignored
        if kind != "storage" or len(pid) != 6:
            raise LoadError(f"{self.file}: unknown persistent id {kind[:40]!r}")
        _, dtype, key, _location, numel, view = pid
        if not isinstance(dtype, DType) or dtype.name not in DTYPES:
            raise LoadError(f"{self.file}: a storage of an unknown type")
        if not isinstance(key, str) or not is_count(numel):
            raise LoadError(f"{self.file}: a malformed storage reference")
        root = self.roots.setdefault(key, Storage(key, key, dtype.name, numel))
        if (root.dtype, root.numel) != (dtype.name, numel):
            raise LoadError(f"{self.file}: storage {key} is described two ways")
        if view is None:
            return root
        ok = (
            type(view) is tuple
            and len(view) == 3
            and isinstance(view[0], str)
            and all(is_count(v) for v in view[1:])
        )
        if not ok or view[1] + view[2] > numel:
            raise LoadError(f"{self.file}: a storage view outside storage {key}")
        return Storage(key, view[0], dtype.name, view[2], base=view[1])

    def locate(self, keys: object, pos: int) -> None:
        """Offsets of each storage's elements, walking the count headers that follow."""
        if type(keys) is not list or not all(isinstance(k, str) for k in keys):
            raise LoadError(f"{self.file}: the storage key list is damaged")
        size = len(self.data)
        for key in keys:
            root = self.roots.get(key)
            if root is None or key in self.offsets:
                raise LoadError(
                    f"{self.file}: storage key {key[:40]!r} is not one the pickle named"
                )
            if pos + 8 > size:
                raise LoadError(f"{self.file}: file ends before storage {key[:40]}")
            (count,) = struct.unpack("<q", self.data[pos : pos + 8])
            nbytes = count * DTYPES[root.dtype][1]
            if count != root.numel or pos + 8 + nbytes > size:
                raise LoadError(
                    f"{self.file}: storage {key[:40]} holds {count} elements, not the "
                    f"{root.numel} its tensors use, or runs past the end; the file is damaged"
                )
            self.offsets[key] = pos + 8
            pos += 8 + nbytes

    def read_storage(self, storage: Storage) -> bytes:
        root = self.roots[storage.member]
        start = self.offsets.get(storage.member)
        if start is None:
            raise LoadError(f"{self.file}: storage {storage.key} has no bytes in the file")
        nbytes = root.numel * DTYPES[root.dtype][1]
        self.budget.charge(nbytes, f"storage {storage.key}")
        return bytes(self.data[start : start + nbytes])


def _mapped(probe: Probe) -> Any:
    try:
        with open(probe.path, "rb") as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{probe.name}: cannot map the file ({exc})") from exc


def load_legacy(probe: Probe, budget: Budget) -> tuple[object, LegacyFile]:
    """The object a legacy ``torch.save`` file holds, its storages located but not read."""
    file = probe.name
    data = _mapped(probe)
    header = _Header(file, budget)
    ends: list[int] = []
    small = Limits.for_size(4096)
    magic = unpickle(data, header, "the magic-number pickle", limits=small, ends=ends)
    version = unpickle(data, header, "the version pickle", limits=small, pos=ends[-1], ends=ends)
    if magic != MAGIC or version != PROTOCOL:
        shown = version if type(version) is int else type(version).__name__
        raise LoadError(f"{file}: legacy torch header has protocol {shown}, not 1001")
    info = unpickle(data, header, "sys_info", limits=small, pos=ends[-1], ends=ends)
    src = LegacyFile(data, file, budget)
    if isinstance(info, dict) and info.get("little_endian") is False:
        src.endian = ">"
    limits = Limits.for_size(len(data), budget.factor, len(data))
    obj = unpickle(
        data, src, "the pickled object", limits=limits, pos=ends[-1], ends=ends, encoding="latin1"
    )
    keys = unpickle(data, header, "the storage key list", limits=limits, pos=ends[-1], ends=ends)
    src.locate(keys, ends[-1])
    return obj, src


def load_bare(probe: Probe, budget: Budget) -> object:
    """The object of a bare pickle (no persistent ids: NumPy arrays are stored inline)."""
    data = _mapped(probe)
    src = _Header(probe.name, budget)
    limits = Limits.for_size(len(data), budget.factor, len(data))
    return unpickle(data, src, "pickle", limits=limits, encoding="latin1")
