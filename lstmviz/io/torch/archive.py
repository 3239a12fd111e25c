"""PyTorch zip archives (torch ≥ 1.6) read without torch (CONVENTIONS §3.5).

A ``torch.save`` archive holds ``<prefix>/data.pkl`` (the pickled object) and one raw member
``<prefix>/data/<key>`` per storage; ``torch.jit.save`` archives add ``code/`` (never read) and
pickle their modules as attribute dicts; ``torch.export.save`` ``.pt2`` archives describe
their weights in JSON (``torch_export``). Pickles go through the inert, budgeted unpickler of
``checkpoint``: tensors become records of (storage, offset, size, stride) checked against
the storage's real length (``storage``), and bytes are read with NumPy only for the tensors
the LSTM uses. Legacy torch pickles and bare pickles (``legacy``) take the same route.
The extension is irrelevant: .pt, .pth, .bin, .ckpt, .tar, .pt2 all sniff the same.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import Any

from lstmviz.core.model import LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import TORCH_LEGACY_HEADER, Probe
from lstmviz.io.registry import Reader
from lstmviz.io.torch import export_archive as torch_export
from lstmviz.io.torch import legacy
from lstmviz.io.torch.checkpoint import DTYPES, SAVE_ADVICE, DType, unpickle
from lstmviz.io.torch.containers import Checkpoint, foreign_classes, split_checkpoint
from lstmviz.io.torch.state_dict import group_recurrent, model_from_state_dict
from lstmviz.io.torch.storage import Budget, Storage, StorageSource, is_count
from lstmviz.io.wire.pickle_vm import Limits

SOURCE_FORMAT = "PyTorch zip (torch.save)"
MAX_PICKLE_BYTES = 256 << 20  # a state dict of 100k tensors pickles to ~20 MB
PICKLE_FLOOR, PICKLE_RATIO = 16 << 20, 64  # most a deflated data.pkl may inflate to
MAX_DEFLATE_RATIO = 1100  # deflate cannot do better than ~1032:1; more is a zip bomb
#: torch stores members uncompressed; a re-zipped archive may inflate this much per byte
#: beyond a floor (zero-filled weights compress ~1000:1, which is how zip bombs are made).
MAX_INFLATE_RATIO, INFLATE_FLOOR = 100, 64 << 20
#: Uncompressed members from this size on are read directly (``Archive._read_stored``).
DIRECT_READ_BYTES = 1 << 16
#: What a damaged zip raises in zipfile (bad names, CRC, deflate stream, sizes).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)
SCRIPT_NOTE = "TorchScript archive (torch.jit.save): weights read from data.pkl, code not run"


def _data_pkl_prefix(names: list[str]) -> str | None:
    """``<prefix>/`` of the shallowest ``*/data.pkl`` (torch uses the file stem or 'archive')."""
    pkls = sorted((n for n in names if n.endswith("/data.pkl")), key=lambda n: (n.count("/"), n))
    return pkls[0][: -len("data.pkl")] if pkls else None


class Archive(StorageSource):
    """An open torch zip: checked members, storages read once, lazy strided tensors.

    ``size`` is the size of the file the zip came from (a nested archive: its bytes), against
    which every member's declared sizes are checked before anything is inflated; ``budget``
    (shared with nested archives) counts the bytes reads and copies create. A member name
    that appears twice is refused: torch's reader (miniz, binary search over the sorted
    central directory) may take either copy, so no answer would be the file's.
    """

    def __init__(
        self, zf: zipfile.ZipFile, file: str, size: int, prefix: str, budget: Budget
    ) -> None:
        super().__init__()
        self.zf, self.file, self.size, self.prefix, self.budget = zf, file, size, prefix, budget
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.filename in self.infos:
                raise LoadError(
                    f"{file}: zip holds two members named {info.filename} (torch.load may read "
                    "either copy, so lstmviz reads neither); re-save the file with torch.save"
                )
            self.infos[info.filename] = info
        order = self.text("byteorder", "little")
        if order not in ("little", "big"):
            raise LoadError(f"{self.file}: byteorder member says {order!r}, not little or big")
        self.endian = "<" if order == "little" else ">"

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
            raise LoadError(
                f"{self.file}: {name} is {info.file_size} bytes, more than {limit} (inflated from "
                f"{info.compress_size}); if you trust the file, raise the limit with "
                "--option budget=4"
            )
        self.budget.charge(info.file_size, f"zip member {name}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size >= DIRECT_READ_BYTES:
            return self._read_stored(info, name)
        try:
            with self.zf.open(info) as fh:
                return fh.read(info.file_size + 1)
        except ZIP_ERRORS as exc:
            raise LoadError(
                f"{self.file}: zip member {name} is damaged ({exc}); re-save the file"
            ) from exc

    def _read_stored(self, info: zipfile.ZipInfo, name: str) -> bytes:
        """An uncompressed member's bytes in one read from where its local header says they
        start, without zipfile's chunked copies or its CRC-32 pass: torch's own reader (miniz
        built without CRC checks) does not check it either, and skipping it halves the time
        a large storage takes (the bytes are still bounded by the member's declared size,
        which ``_member`` checked against the file)."""
        fp = self.zf.fp
        try:
            fp.seek(info.header_offset)
            header = fp.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
            fp.seek(info.header_offset + 30 + name_len + extra_len)
            data = fp.read(info.file_size)
        except ZIP_ERRORS as exc:
            raise LoadError(
                f"{self.file}: zip member {name} is damaged ({exc}); re-save the file"
            ) from exc
        if len(data) != info.file_size:
            raise LoadError(f"{self.file}: zip member {name} is truncated; re-save the file")
        return data

    def text(self, member: str, default: str) -> str:
        if not self.has(member):
            return default
        return self.read(self.prefix + member, limit=64).decode("ascii", "replace").strip()

    def member_size(self, member: str) -> int:
        return self._member(self.prefix + member).file_size

    def stored_size(self, name: str) -> int:
        """Bytes the file itself spends on member ``name`` (compressed size if deflated)."""
        return self._member(name).compress_size

    def storage(self, pid: Any) -> Storage:
        """``persistent_load``: ``('storage', storage_type, key, location, numel)``; torch 1.x's
        TorchScript pickler appended ``None`` (no view metadata) as a sixth element.

        The location ('cpu', 'cuda:0', 'mps'...) is ignored: every storage is read as bytes.
        """
        if type(pid) is tuple and len(pid) == 6 and pid[5] is None:
            pid = pid[:5]
        if not (type(pid) is tuple and len(pid) == 5 and pid[0] == "storage"):
            raise LoadError(
                f"{self.file}: data.pkl has an unknown persistent id (not a torch storage); "
                "re-save the file with torch.save"
            )
        _, kind, key, _location, numel = pid
        if not isinstance(kind, DType) or not isinstance(key, str) or not is_count(numel):
            raise LoadError(f"{self.file}: data.pkl has a malformed storage reference")
        return self.make_storage(f"data/{key}", key, kind.name, numel)

    def make_storage(self, member: str, key: str, dtype: str, numel: int) -> Storage:
        """A storage of ``numel`` elements in ``<prefix><member>``, checked to fit."""
        size = DTYPES[dtype][1]
        stored = self.member_size(member)
        if numel * size > stored:
            raise LoadError(
                f"{self.file}: storage {key} declares {numel} × {size} bytes but "
                f"{self.prefix}{member} holds {stored}; the archive is damaged"
            )
        return Storage(member, key, dtype, numel)

    def read_storage(self, storage: Storage) -> bytes:
        return self.read(f"{self.prefix}{storage.member}")

    def unpickle(self, script: bool = False) -> object:
        name = self.prefix + "data.pkl"
        stored = self._member(name).compress_size  # work scales with what the file holds
        # a deflated pickle inflates ~3-10x; 64x over a 16 MB floor, then the VM's budgets
        inflated = int(max(PICKLE_FLOOR, PICKLE_RATIO * stored) * self.budget.factor)
        data = self.read(name, limit=min(MAX_PICKLE_BYTES, inflated))
        limits = Limits.for_size(stored, self.budget.factor, self.size)
        return unpickle(data, self, script=script, limits=limits)


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


def open_nested(data: bytes, file: str, what: str, budget: Budget) -> object:
    """Unpickle a ``torch.save`` archive held as bytes inside another archive (``.pt2``).

    Its tensors stay lazy (the zip reads from ``data`` in memory, nothing to close) and
    share the outer file's budget, so nested archives cannot multiply what a file may cost."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: {what} is not a readable torch.save archive ({exc})") from exc
    prefix = _data_pkl_prefix(zf.namelist())
    if prefix is None:
        raise LoadError(f"{file}: {what} has no data.pkl; re-export the file")
    return Archive(zf, file, len(data), prefix, budget).unpickle()


def _factor(budget: object, file: str) -> float:
    try:
        factor = float(budget)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        factor = -1.0
    if not 0 < factor < 1e6:
        raise LoadError(f"{file}: budget={str(budget)[:20]} is not a positive number; try budget=4")
    return factor


def _is_bare_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5


def load_torch_zip(
    probe: Probe, prefix: str | None = None, budget: object = 1.0, nonlinearity: str | None = None
) -> LSTMModel:
    """Read a torch zip archive (or a legacy torch pickle, or a bare pickle); ``prefix`` picks
    one LSTM when the file holds several; ``budget`` multiplies the work and memory limits;
    ``nonlinearity`` (tanh|relu) is an ``nn.RNN``'s, which a state dict does not record."""
    file = probe.name
    costs = Budget(file, probe.size, _factor(budget, file))
    rnn = {"nonlinearity": nonlinearity}
    if probe.head.startswith(TORCH_LEGACY_HEADER):
        obj, _ = legacy.load_legacy(probe, costs)
        note = "legacy torch.save stream (torch < 1.6 layout), read without torch"
        return _from_object(obj, probe, prefix, legacy.LEGACY_FORMAT, [note], costs, **rnn)
    if not probe.is_zip and _is_bare_pickle(probe.head):
        obj = legacy.load_bare(probe, costs)
        note = "bare pickle, read inertly"
        return _from_object(obj, probe, prefix, legacy.BARE_FORMAT, [note], costs, **rnn)
    try:
        zf = zipfile.ZipFile(probe.path)
    except ZIP_ERRORS as exc:
        raise LoadError(
            f"{file}: damaged zip archive ({exc}); re-save the file with torch.save"
        ) from exc
    with zf:
        names = zf.namelist()
        pt2 = torch_export.find_export(names)
        if pt2 is not None:
            archive = Archive(zf, file, probe.size, pt2, costs)
            tensors, notes = torch_export.read_weights(
                archive, names, lambda data, f, what: open_nested(data, f, what, costs)
            )
            fmt = torch_export.SOURCE_FORMAT
            return _model(Checkpoint(tensors), probe, prefix, fmt, notes, costs, **rnn)
        zip_prefix = _data_pkl_prefix(names)
        if zip_prefix is None:
            raise _refuse_other_zip(file, names)
        archive = Archive(zf, file, probe.size, zip_prefix, costs)
        script = _is_torchscript(names, zip_prefix)
        obj = archive.unpickle(script=script)
        if not script:
            return _from_object(obj, probe, prefix, SOURCE_FORMAT, [], costs, **rnn)
        checkpoint = split_checkpoint(obj, file)
        if not checkpoint.tensors:
            raise LoadError(
                f"{file}: TorchScript archive has no named parameters in data.pkl (a "
                "frozen or optimized module keeps its weights as unnamed constants); "
                f"{SAVE_ADVICE} before scripting or freezing it"
            )
        fmt = "TorchScript zip (torch.jit.save)"
        return _model(checkpoint, probe, prefix, fmt, [SCRIPT_NOTE], costs, **rnn)


def _from_object(
    obj: object,
    probe: Probe,
    prefix: str | None,
    source_format: str,
    notes: list[str],
    costs: Budget,
    nonlinearity: str | None = None,
) -> LSTMModel:
    """The model in an unpickled object; a library's own model object is named when refused."""
    checkpoint = split_checkpoint(obj, probe.name)
    if not group_recurrent(checkpoint.tensors):
        classes = foreign_classes(obj)
        if classes:
            top = classes[0].split(".")[0]
            raise LoadError(
                f"{probe.name}: file is a pickled {top} object ({classes[0]}), not a PyTorch "
                f"state dict with an LSTM; lstmviz does not read {top}'s own model format "
                "(export the LSTM's weights to a PyTorch state dict or ONNX)"
            )
    return _model(checkpoint, probe, prefix, source_format, notes, costs, nonlinearity)


def _model(
    checkpoint: Checkpoint,
    probe: Probe,
    prefix: str | None,
    source_format: str,
    notes: list[str],
    costs: Budget,
    nonlinearity: str | None = None,
) -> LSTMModel:
    return model_from_state_dict(
        checkpoint.tensors,
        file=probe.name,
        source_format=source_format,
        source_path=str(probe.path),
        prefix=prefix,
        extras=checkpoint.extras,
        notes=(*notes, *checkpoint.notes),
        derived=checkpoint.derived,
        charge=costs.charge,
        nonlinearities=checkpoint.nonlinearities,
        nonlinearity=nonlinearity,
    )


def sniff(probe: Probe) -> bool:
    """A zip with ``*/data.pkl`` (or torch's ``byteorder``/``version`` members), a legacy
    torch pickle or a bare pickle (protocol 2-5)."""
    head = probe.head
    if head.startswith(TORCH_LEGACY_HEADER) or (not probe.is_zip and _is_bare_pickle(head)):
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


READER = Reader(
    name="PyTorch",
    sniff=sniff,
    load=load_torch_zip,
    priority=10,
    options=("prefix", "budget", "nonlinearity"),
)

__all__ = ["READER", "Archive", "load_torch_zip", "sniff"]
