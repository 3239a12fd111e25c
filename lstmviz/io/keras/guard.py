"""What a hostile Keras file must not make lstmviz do (issue 18): read another file, spend
memory far beyond its own size, block on a special file, or print a message that is not one
printable line (``LoadError`` itself sees to the last; names quoted here are cut shorter).

HDF5 can keep a dataset's bytes outside the file (external raw storage: any path on the
user's disk; virtual datasets: slices of other files, ``/dev/zero``), so every dataset is
checked for both before its data is touched. Compressed data is the other danger: a 9 KB file
can declare gigabytes, and libhdf5's deflate filter grows its buffer until the stream ends,
whatever the chunk's declared size. So a dataset may carry at most one compression filter
(deflate; plus shuffle and fletcher32, the h5py defaults around it); each of its chunks is
inflated here first with a bound on the output before libhdf5 reads it; and what all reads of
one load decode together is held to a ``ReadBudget`` set from the files' sizes, which
``budget=`` (a factor, as for PyTorch files) raises.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from lstmviz.io.errors import LoadError, one_line
from lstmviz.io.probe import safe_member

#: What compression may add on top of twice the files' own size (float weights hardly
#: compress, and Keras never compresses them), unless ``budget=`` says otherwise.
COMPRESSED_ALLOWANCE = 48 << 20
MAX_CHUNKS = 1 << 14  # compressed chunks checked one by one; more is not a weights file
#: Weight datasets one load looks at (times budget=): the largest real Keras models hold a
#: few thousand; each costs ~0.15 ms of metadata calls, so this keeps a load near 1 s.
MAX_DATASETS = 4096
#: Distinct links one load may look up (~10 us each): a 2.3 MB file listing 1,000 layers
#: 1,000 groups deep asked for a million links (> 8 s); a hard-linked group cycle makes
#: paths of any depth at no cost in the file.
MAX_LOOKUPS = 50_000
#: Parts of one path inside an HDF5 file; Keras writes at most ~10 (nested models: ~70).
MAX_PATH_PARTS = 128
MESSAGE_LIMIT = 300  # errors.MAX_MESSAGE
_DEFLATE, _SHUFFLE, _FLETCHER32 = h5py.h5z.FILTER_DEFLATE, 2, 3
_FILTER_NAMES = {
    1: "deflate",
    2: "shuffle",
    3: "fletcher32",
    4: "szip",
    5: "nbit",
    6: "scaleoffset",
}
_FILTER_NAMES |= {32000: "lzf", 32001: "blosc", 32004: "lz4", 32015: "zstd", 307: "bzip2"}


# ----------------------------------------------------------------------------- budget
class ReadBudget:
    """The decoded bytes one load may read from its HDF5 datasets, counted read by read:
    (48 MB + 2 × the files' size) × the user's ``budget=`` factor, as the torch reader's."""

    def __init__(self, file_bytes: int, factor: object = None, file: str = "") -> None:
        if factor is None:
            value = 1.0
        else:
            try:
                value = float(str(factor))
            except ValueError:
                value = -1.0
            if not 0 < value < 1e6:
                raise LoadError(
                    f"{file}: budget={printable(str(factor), 20)} is not a positive number; "
                    "try budget=4"
                )
        self.limit = int((COMPRESSED_ALLOWANCE + 2 * file_bytes) * value)
        self.factor = value
        self.used = 0
        self.max_datasets = int(MAX_DATASETS * value)
        self.datasets = 0
        self.max_lookups = int(MAX_LOOKUPS * value)
        #: (group, name) -> child, each link looked up once per load (see ``child_of``)
        self.children: dict[tuple[object, str], object] = {}

    def count_dataset(self, name: str, file: str) -> None:
        """Count one weight dataset looked at (each costs ~0.15 ms of h5py calls before a byte
        is read, and hard links let a 14 MB file list 60,000 of them: 10 s), or refuse."""
        self.datasets += 1
        if self.datasets > self.max_datasets:
            raise LoadError(
                f"{file}: {name} is weight array number {self.datasets}, more than the "
                f"{self.max_datasets} lstmviz looks at in one file; if you trust the file, raise "
                "the limit with --option budget=4"
            )

    def take(self, nbytes: int, name: str, file: str) -> None:
        """Count ``nbytes`` about to be decoded for ``name``, or refuse past the limit."""
        need = self.used + nbytes
        if need > self.limit:
            factor = max(2, math.ceil(self.factor * need / max(self.limit, 1)))
            raise LoadError(
                f"{file}: {name} would take the weights read to {_mb(need)}, past the "
                f"{_mb(self.limit)} this file's size allows (compressed or repeated data); if "
                f"you trust the file, raise the limit with --option budget={factor}"
            )
        self.used += nbytes


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


_BUDGET: contextvars.ContextVar[ReadBudget | None] = contextvars.ContextVar(
    "keras_read_budget", default=None
)


@contextlib.contextmanager
def read_budget(budget: ReadBudget) -> Iterator[ReadBudget]:
    """Make ``budget`` the one every dataset read in this load counts against."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def count_dataset(name: str, file: str) -> None:
    """Count a weight dataset against the current load's budget (none outside a load)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.count_dataset(name, file)


def current_budget() -> ReadBudget | None:
    """The budget of the load in progress (None outside one)."""
    return _BUDGET.get()


def take(nbytes: int, name: str, file: str, own_file_bytes: int) -> None:
    """Count a read against the current load's budget (a fresh one for a caller outside a
    load, sized from the dataset's own file)."""
    budget = _BUDGET.get()
    if budget is None:
        budget = ReadBudget(own_file_bytes)
    budget.take(nbytes, name, file)


# ----------------------------------------------------------------------------- storage
def check_storage(ds: h5py.Dataset, name: str, file: str) -> bool:
    """Refuse a dataset whose bytes live outside the file or whose filters lstmviz cannot
    bound, before any of its data is read. True when its chunks are compressed: then
    ``check_chunks`` must pass before it is read."""
    count_dataset(name, file)
    try:
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        external = dcpl.get_external_count()
        n_filters = dcpl.get_nfilters() if layout == h5py.h5d.CHUNKED else 0
        filters = [int(dcpl.get_filter(k)[0]) for k in range(min(n_filters, 16))]
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise LoadError(f"{file}: cannot read the storage of {name}; the file is damaged") from exc
    if external:
        target = printable(str(dcpl.get_external(0)[0].decode("utf-8", "replace")), 80)
        raise LoadError(
            f"{file}: {name} keeps its data in another file ({target!r}, HDF5 external "
            "storage); lstmviz reads only weights stored in the file itself"
        )
    if layout == h5py.h5d.VIRTUAL:
        raise LoadError(
            f"{file}: {name} is an HDF5 virtual dataset (its data is read from other files); "
            "lstmviz reads only weights stored in the file itself"
        )
    if layout == h5py.h5d.CHUNKED:
        _check_chunk_grid(ds, dcpl, name, file)
    if n_filters > 3 or any(f not in (_DEFLATE, _SHUFFLE, _FLETCHER32) for f in filters):
        names = ", ".join(_FILTER_NAMES.get(f, f"filter {f}") for f in filters)
        raise LoadError(
            f"{file}: {name} is stored through the HDF5 filters {names}; lstmviz reads weights "
            "stored plain or with one gzip (deflate) filter, as Keras and h5py write them"
        )
    if filters.count(_DEFLATE) > 1:
        raise LoadError(
            f"{file}: {name} is compressed twice (deflate twice), which no Keras writes and "
            "which hides how large it decodes; re-save the model"
        )
    return _DEFLATE in filters


def _check_chunk_grid(ds: h5py.Dataset, dcpl: object, name: str, file: str) -> None:
    """Refuse a dataset cut into more than ``MAX_CHUNKS`` chunks (counted from its shape
    and chunk shape, nothing listed), or whose one chunk holds more than the budget allows:
    libhdf5 keeps an index entry per chunk while it reads (a 1 MB kernel in 1 x 1 chunks,
    262,144 of them, made it allocate 860 MB) and a buffer per chunk it decodes."""
    try:
        chunk = tuple(int(c) for c in dcpl.get_chunk())  # type: ignore[attr-defined]
        shape = tuple(int(s) for s in (ds.shape or ()))
        itemsize = ds.dtype.itemsize
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise LoadError(
            f"{file}: cannot read the chunk shape of {name}; the file is damaged"
        ) from exc
    count = 1
    for n, c in zip(shape, chunk, strict=False):
        count *= -(-n // max(c, 1))
        if count > MAX_CHUNKS:
            raise LoadError(
                f"{file}: {name} is split into more than {MAX_CHUNKS} chunks (chunk shape "
                f"{printable(str(chunk[:8]), 60)}), which no Keras writes; re-save the model"
            )
    nbytes = itemsize
    for c in chunk[:32]:
        nbytes *= c
    budget = _BUDGET.get()
    limit = budget.limit if budget is not None else COMPRESSED_ALLOWANCE
    if nbytes > limit:
        raise LoadError(
            f"{file}: {name} declares chunks of {nbytes} bytes, more than the "
            f"{_mb(limit)} this file's size allows; re-save the model"
        )


def _chunk_offsets(ds: h5py.Dataset, count: int, name: str, file: str) -> list[tuple]:
    """Every chunk's offset in one walk of the chunk index: ``get_chunk_info(k)`` walks the
    index from the start each time, so asking for each of 16,384 chunks took over 8 s."""
    offsets: list[tuple] = []
    try:
        if hasattr(ds.id, "chunk_iter"):  # HDF5 >= 1.13.2
            ds.id.chunk_iter(lambda info: offsets.append(info.chunk_offset))
        else:
            offsets = [ds.id.get_chunk_info(k).chunk_offset for k in range(count)]
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise LoadError(f"{file}: cannot list the chunks of {name}; the file is damaged") from exc
    if len(offsets) != count:
        raise LoadError(f"{file}: the chunk index of {name} is damaged")
    return offsets


def check_chunks(ds: h5py.Dataset, name: str, file: str) -> None:
    """Inflate every compressed chunk with a bound on its output: libhdf5's own deflate
    filter would grow without limit on a chunk that inflates past its declared size."""
    try:
        dcpl = ds.id.get_create_plist()
        filters = [int(dcpl.get_filter(k)[0]) for k in range(min(dcpl.get_nfilters(), 16))]
        chunk = dcpl.get_chunk()
        count = ds.id.get_num_chunks()
    except (OSError, ValueError, RuntimeError, AttributeError) as exc:
        raise LoadError(f"{file}: cannot list the chunks of {name}; the file is damaged") from exc
    if count > MAX_CHUNKS:
        raise LoadError(f"{file}: {name} is split into {count} compressed chunks, too many")
    n = int(np.prod(chunk, dtype=np.int64)) * ds.dtype.itemsize
    deflate_bit = 1 << filters.index(_DEFLATE)
    for offset in _chunk_offsets(ds, count, name, file):
        try:
            mask, raw = ds.id.read_direct_chunk(offset)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise LoadError(f"{file}: cannot read a chunk of {name}; the file is damaged") from exc
        if mask & deflate_bit:
            continue  # this chunk skipped compression: stored as is
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(raw, n + 64)
        except zlib.error as exc:
            raise LoadError(f"{file}: a chunk of {name} is not valid gzip data ({exc})") from exc
        if inflater.unconsumed_tail or len(out) > n + 8:
            raise LoadError(
                f"{file}: a compressed chunk of {name} inflates past its declared {n} bytes "
                "(a decompression bomb or a damaged file)"
            )


# ----------------------------------------------------------------------------- files
def regular_file(path: Path, folder: Path, file: str, what: str) -> int:
    """The size of ``path``, a regular file inside ``folder``, checked without opening it
    (opening a FIFO blocks until someone writes to it): ``probe.safe_member`` refuses special
    files and links that lead out of the folder (a Hugging Face cache snapshot's links to its
    ``blobs/`` count as inside)."""
    label = f"{file}: {what} {printable(path.name, 80)}"
    member = safe_member(folder, path.name, what=label)
    try:
        return int(member.stat().st_size)
    except OSError as exc:
        raise LoadError(f"{label}: cannot read it ({exc.strerror or exc})") from exc


# ----------------------------------------------------------------------------- messages
def printable(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` (a name from the file) as one printable line of at most ``limit`` characters,
    for quoting it inside a message (``LoadError`` makes the whole message so too)."""
    return one_line(text, limit)
