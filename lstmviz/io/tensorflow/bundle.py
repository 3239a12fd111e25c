"""A TensorFlow V2 checkpoint ("tensor bundle"): find its files, list its tensors, read one.

``prefix.index`` is a LevelDB table (``sstable``): the empty key holds a BundleHeaderProto
{num_shards=1, endianness=2, version=3}, every other key a BundleEntryProto {dtype=1, shape=2,
shard_id=3, offset=4, size=5, crc32c=6 (masked), slices=7} whose tensor is the raw C-order
bytes ``[offset, offset+size)`` of ``prefix.data-{shard:05d}-of-{num_shards:05d}``
(tensorflow/core/util/tensor_bundle/tensor_bundle.cc). The user may pick any of those files,
the ``.meta`` graph, the ``checkpoint`` text file or the folder: :func:`locate` finds the index.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.io.convert import widen
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import safe_member
from lstmviz.io.tensorflow.files import is_regular, read_limited, regular_size
from lstmviz.io.wire import protowire as pw
from lstmviz.io.wire.crc32c import crc32c, crc32c_combine, unmask
from lstmviz.io.wire.sstable import TableError, has_table_magic, read_table

DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<count>\d{5})$")
CHECKPOINT_LINE = re.compile(r'^\s*model_checkpoint_path:\s*"(?P<path>(?:[^"\\]|\\.)*)"', re.M)
#: DataType enum → NumPy dtype char (little-endian; byte-swapped for BIG bundles).
DTYPES = {1: "f4", 2: "f8", 19: "f2", 14: "V2"}
DTYPE_NAMES = {
    1: "float32",
    2: "float64",
    19: "float16",
    14: "bfloat16",
    3: "int32",
    7: "string",
    9: "int64",
}
MAX_INDEX_BYTES = 1 << 30
MAX_DIMS = 16
MAX_STRING_BYTES = 64 << 20  # an object graph of a huge model is a few MB
#: Bytes read from a shard beyond its own size, plus the shard's size once more: index entries
#: may all point at one region, and 30 LSTM cells naming one 32 MB kernel read (and copied)
#: 960 MB. A real checkpoint's variables are disjoint, so its reads never pass its size.
ALIAS_FLOOR = 64 << 20
DT_STRING = 7
TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives and what it should look like."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    partitioned: bool

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"DataType {self.dtype}")


def tail_bytes(path: Path, n: int = 8) -> bytes:
    """The last ``n`` bytes of a regular file (b"" if unreadable or special)."""
    if not is_regular(path):
        return b""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - n))
            return fh.read(n)
    except OSError:
        return b""


def is_index_file(path: Path) -> bool:
    return is_regular(path) and has_table_magic(tail_bytes(path))


def _from_checkpoint_file(path: Path) -> Path:
    """Resolve ``model_checkpoint_path: "..."`` (relative to the file's folder)."""
    regular_size(path, "checkpoint state file")
    try:
        with path.open("rb") as fh:
            text = fh.read(1 << 20).decode("utf-8", errors="replace")
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot read checkpoint state file ({exc.strerror})") from exc
    match = CHECKPOINT_LINE.search(text)
    if match is None:
        raise LoadError(f"{path.name}: no model_checkpoint_path line; pick the .index file instead")
    raw = Path(match.group("path").encode().decode("unicode_escape", errors="replace"))
    local = path.parent / f"{raw.name}.index"
    if local.exists():  # beside the state file (TF often writes absolute paths; folders move)
        return local
    prefix = raw if raw.is_absolute() else path.parent / raw
    index = Path(f"{prefix}.index")
    if not _inside(prefix, path.parent):
        raise LoadError(
            f"{path.name}: points at {raw}, outside its folder; lstmviz reads only the "
            "checkpoint beside its state file: pick the .index file directly"
        )
    if not index.exists() and prefix.is_file():  # a V1 checkpoint is the bare prefix file
        return prefix
    if not index.exists():
        raise LoadError(
            f"{path.name}: points at {raw}, but {index.name} is not in {path.parent.name or '.'}; "
            "pick the .index file directly"
        )
    return index


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies in ``folder`` or below it."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def locate(path: Path) -> Path:
    """The ``.index`` file for whatever file or folder of a checkpoint the user picked."""
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            return _from_checkpoint_file(state)
        saved = path / "variables" / "variables.index"
        if (path / "saved_model.pb").is_file() and saved.exists():  # a SavedModel folder
            return saved
        indexes = sorted(path.glob("*.index"), key=lambda p: (p.stat().st_mtime, p.name))
        if not indexes:
            raise LoadError(f"{path.name}: folder holds no TensorFlow checkpoint (.index file)")
        return indexes[-1]
    name = path.name
    if name == "checkpoint" or (path.suffix == "" and _looks_like_state(path)):
        return _from_checkpoint_file(path)
    match = DATA_RE.match(name)
    if match:
        return _sibling_index(path, match.group("prefix"), "data shard")
    if name.endswith(".meta"):
        return _sibling_index(path, name[: -len(".meta")], "graph (.meta)")
    if name == "saved_model.pb":
        return _sibling_index(path.parent / "variables" / name, "variables", "SavedModel graph")
    return path


def _looks_like_state(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(64).lstrip().startswith(b"model_checkpoint_path")
    except OSError:
        return False


def _sibling_index(path: Path, prefix: str, what: str) -> Path:
    index = path.with_name(f"{prefix}.index")
    if not index.exists():
        raise LoadError(
            f"{path.name}: a checkpoint {what} without its index {index.name}; keep them together"
        )
    return index


def _shape(raw: memoryview | None) -> tuple[int, ...]:
    dims = []
    for dim in (pw.parse(raw) if raw is not None else {}).get(2, ()):
        if isinstance(dim, memoryview):
            dims.append(pw.get_signed(pw.parse(dim), 1))
    return tuple(dims)


class Bundle:
    """An opened V2 checkpoint: header checked, entries listed, tensors read on demand."""

    def __init__(self, index_path: Path, root: Path | None = None) -> None:
        """``root``: the folder the user chose (a SavedModel's, a checkpoint's); the index
        and its shards must lie inside it, symlinks resolved (default: the index's folder)."""
        self.index_path = index_path
        self.root = index_path.parent if root is None else root
        if root is not None and os.path.abspath(index_path) != os.path.abspath(root):
            rel = os.path.relpath(index_path, root)
            safe_member(root, rel, f"{index_path.name} (checkpoint index)")
        name = index_path.name
        self.prefix = (
            str(index_path)[: -len(".index")] if name.endswith(".index") else str(index_path)
        )
        data = read_limited(index_path, MAX_INDEX_BYTES, "checkpoint index")
        try:
            entries = read_table(data)
        except TableError as exc:
            raise LoadError(f"{name}: not a valid TensorFlow checkpoint index: {exc}") from exc
        table = dict(entries)
        if b"" not in table:
            raise LoadError(f"{name}: table has no bundle header; not a TensorFlow V2 checkpoint")
        try:
            header = pw.parse(table.pop(b""))
            if any(isinstance(v, memoryview) for v in header.get(1, ())):
                raise LoadError(
                    f"{name}: TensorFlow V1 checkpoint (SavedSlices table); lstmviz reads V2 "
                    "checkpoints: re-save it with tf.compat.v1.train.Saver() (V2 is the default)"
                )
            self.num_shards = pw.get_signed(header, 1)
            self.big_endian = pw.get_int(header, 2) == 1
            self.entries = {}
            for key, value in table.items():
                if key.startswith(b"\x00"):  # a slice of a partitioned variable
                    continue
                entry = self._entry(key.decode("utf-8", "replace"), value)
                self.entries[entry.name] = entry
        except pw.ProtoError as exc:
            raise LoadError(f"{name}: corrupt checkpoint entry ({exc})") from exc
        if not 1 <= self.num_shards <= 100_000:
            raise LoadError(f"{name}: header claims {self.num_shards} data shards")
        self._names_read: set[str] = set()
        self._shard_reads: dict[int, int] = {}

    @staticmethod
    def _entry(key: str, value: memoryview) -> BundleEntry:
        f = pw.parse(value)
        shape = _shape(pw.get_bytes(f, 2))
        return BundleEntry(
            name=key,
            dtype=pw.get_int(f, 1),
            shape=shape,
            shard_id=pw.get_signed(f, 3),
            offset=pw.get_signed(f, 4),
            size=pw.get_signed(f, 5),
            crc32c=pw.get_int(f, 6),
            partitioned=bool(f.get(7)),
        )

    def shard_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> npt.NDArray[np.floating]:
        """The tensor ``name`` as a float array (float16/bfloat16 widened), fully checked."""
        entry = self.entries[name]
        where = f"{self.index_path.name}: variable {name!r}"
        if entry.dtype not in DTYPES:
            raise LoadError(
                f"{where} has {entry.dtype_name}; recurrent weights must be floating point"
            )
        raw = self._raw(entry, where)
        if crc32c(raw) != unmask(entry.crc32c):
            shard = self.shard_path(entry.shard_id).name
            raise LoadError(f"{where}: checksum mismatch in {shard} (file corrupted)")
        code = DTYPES[entry.dtype]
        dtype = np.dtype(code if code.startswith("V") else (">" if self.big_endian else "<") + code)
        arr = np.frombuffer(raw, dtype=dtype)
        if self.big_endian and code == "V2":
            arr = arr.view(">u2").astype("<u2").view("V2")
        wide = widen(arr.reshape(entry.shape), name)
        return wide.astype(wide.dtype.newbyteorder("="), copy=False)

    def read_string(self, name: str) -> bytes:
        """A scalar DT_STRING tensor (e.g. the TF2 object graph), checked like TensorFlow does.

        On disk (tensor_bundle.cc ``WriteStringTensor``): the varint64 length, a masked CRC32C
        of that length taken as a u32 (u64 past 4 GiB), then the bytes. The entry's CRC covers
        the length as u32, the masked length checksum and the bytes.
        """
        entry = self.entries[name]
        where = f"{self.index_path.name}: {name}"
        if entry.dtype != DT_STRING or entry.shape != () or entry.partitioned:
            raise LoadError(f"{where} is {entry.dtype_name} {entry.shape}, not a scalar string")
        if not 5 <= entry.size <= MAX_STRING_BYTES + 14:
            raise LoadError(f"{where} claims {entry.size:,} bytes; not a plausible string")
        raw = self._raw(entry, where)
        try:
            length, pos = pw.read_varint(raw, 0)
        except pw.ProtoError as exc:
            raise LoadError(f"{where}: corrupt string length ({exc})") from exc
        if pos + 4 + length != len(raw):
            raise LoadError(f"{where}: string of {length:,} bytes does not fill its {len(raw)}")
        size_bytes = length.to_bytes(4 if length <= 0xFFFFFFFF else 8, "little")
        stored = int.from_bytes(raw[pos : pos + 4], "little")
        whole = crc32c_combine(crc32c(size_bytes), crc32c(raw[pos:]), len(raw) - pos)
        if unmask(stored) != crc32c(size_bytes) or whole != unmask(entry.crc32c):
            raise LoadError(f"{where}: checksum mismatch (file corrupted)")
        return raw[pos + 4 :]

    def _raw(self, entry: BundleEntry, where: str) -> bytes:
        """The stored bytes of ``entry`` after checking dtype, shape, size and shard bounds."""
        if entry.partitioned:
            raise LoadError(
                f"{where} is a partitioned variable (stored in slices), which is unsupported; "
                "re-save it without a partitioner"
            )
        if len(entry.shape) > MAX_DIMS or any(d < 0 for d in entry.shape):
            raise LoadError(f"{where} has an invalid shape {entry.shape}")
        itemsize = np.dtype(DTYPES[entry.dtype]).itemsize if entry.dtype in DTYPES else 0
        count = int(np.prod(entry.shape, dtype=object)) if entry.shape else 1
        if itemsize and count * itemsize != entry.size:
            raise LoadError(
                f"{where} has shape {entry.shape} ({count * itemsize:,} bytes) "
                f"but {entry.size:,} bytes stored"
            )
        return self._read_bytes(entry, where)

    def _count_read(self, entry: BundleEntry, shard_size: int, where: str) -> None:
        """Refuse reads that would take a shard past twice its size plus ``ALIAS_FLOOR``
        (each variable counted once, however often it is read)."""
        if entry.name in self._names_read:
            return
        self._names_read.add(entry.name)
        total = self._shard_reads.get(entry.shard_id, 0) + entry.size
        self._shard_reads[entry.shard_id] = total
        if total > 2 * shard_size + ALIAS_FLOOR:
            raise LoadError(
                f"{where}: the variables read so far take {total >> 20} MB from a "
                f"{shard_size >> 20} MB data shard (index entries pointing at the same bytes); "
                "lstmviz reads checkpoints whose variables are stored apart, as TensorFlow "
                "writes them"
            )

    def _read_bytes(self, entry: BundleEntry, where: str) -> bytes:
        if not 0 <= entry.shard_id < self.num_shards:
            raise LoadError(
                f"{where} lives in shard {entry.shard_id}, but the bundle has {self.num_shards}"
            )
        shard = self.shard_path(entry.shard_id)
        if not shard.exists():
            raise LoadError(
                f"{where}: data file {shard.name} is missing; copy it next to the .index"
            )
        rel = os.path.relpath(shard, self.root)  # variables/... when root is a SavedModel
        shard = safe_member(self.root, rel, f"{shard.name} (checkpoint data shard)")
        shard_size = regular_size(shard, "checkpoint data shard")
        if entry.offset < 0 or entry.offset + entry.size > shard_size:
            raise LoadError(
                f"{where} lies at bytes [{entry.offset}, {entry.offset + entry.size}), past the "
                f"end of {shard.name} ({shard_size} bytes): data file truncated or mismatched"
            )
        self._count_read(entry, shard_size, where)
        try:
            with shard.open("rb") as fh:
                fh.seek(entry.offset)
                raw = fh.read(entry.size)
        except OSError as exc:
            raise LoadError(f"{where}: cannot read {shard.name} ({exc.strerror or exc})") from exc
        if len(raw) != entry.size:
            raise LoadError(f"{where}: {shard.name} ended while reading (file truncated)")
        return raw
