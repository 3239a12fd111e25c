"""Cheap look at a file's content so readers can sniff it without trusting its name.

``Probe.open`` is also the first boundary a path crosses: it reads only regular files (and
folders), so a FIFO, a device or a socket given as the model is refused before any read, where
``open()`` would block forever on a FIFO or stream ``/dev/zero`` without end. Readers that open
side files (shards, ``.meta``, ONNX external data, files inside a checkpoint folder) go through
``safe_member`` / ``check_regular_file`` for the same promise and to stay inside the folder.
"""

from __future__ import annotations

import itertools
import os
import stat
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lstmviz.io.errors import LoadError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
#: Pre-1.6 torch.save: a protocol-2 pickle whose first object is the 10-byte magic number
#: 0x1950a86a20f9469cfc6c, written as a pickle LONG1 (little-endian).
TORCH_LEGACY_HEADER = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
HEAD_BYTES = 4096


@dataclass
class Probe:
    """A file (or folder) about to be loaded: its path, size, first bytes and listing.

    ``sniff`` functions use these properties only; every property is cheap and never raises.
    """

    path: Path
    size: int
    head: bytes
    is_dir: bool = False
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Probe:
        """Open ``path`` or raise LoadError for a missing, unreadable, special or empty file.

        ``model.ckpt``, the prefix TensorFlow's ``saver.save`` returns, names no file: when
        ``model.ckpt.index`` is beside it, that index is opened instead
        (``checkpoint_prefix_index``), and refused like any other path if it is special.
        """
        p = Path(path)
        name = p.name or str(p)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            index = checkpoint_prefix_index(p)
            if index is None:
                raise LoadError(f"{name}: no such file") from None
            return cls.open(index)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise LoadError(
                f"{name}: cannot read file ({getattr(exc, 'strerror', None) or exc})"
            ) from exc
        if stat.S_ISDIR(st.st_mode):
            return cls(path=p, size=0, head=b"", is_dir=True)
        _refuse_special(name, st.st_mode)
        try:
            size, head = _read_head(p, name)
        except OSError as exc:
            raise LoadError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
        if size == 0:
            raise LoadError(f"{name}: file is empty; expected a Keras, TF1, PyTorch or ONNX file")
        return cls(path=p, size=size, head=head)

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

    def member(self, name: str | os.PathLike[str]) -> Path:
        """A file a folder-format model holds (or a file's sibling, for a file probe), through
        ``safe_member``: inside the folder, regular, else a one-line LoadError naming it."""
        folder = self.path if self.is_dir else self.path.parent
        return safe_member(folder, name, what=f"{self.name}: {os.fspath(name)}")

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    @property
    def is_hdf5(self) -> bool:
        # The superblock may also sit at 512, 1024 or 2048 (after a user block).
        return any(self.head[k : k + 8] == HDF5_MAGIC for k in (0, 512, 1024, 2048))

    @property
    def is_zip(self) -> bool:
        return self.head.startswith(ZIP_MAGIC)

    @cached_property
    def zip_names(self) -> tuple[str, ...]:
        """Member names of a zip archive, or () if it is not a readable zip."""
        if not self.is_zip:
            return ()
        try:
            with zipfile.ZipFile(self.path) as zf:
                return tuple(zf.namelist())
        except Exception:
            return ()

    @cached_property
    def hdf5_root_attrs(self) -> frozenset[str]:
        """Names of the root attributes of an HDF5 file, or an empty set."""
        if not self.is_hdf5:
            return frozenset()
        try:
            import h5py

            with h5py.File(self.path, "r") as f:
                return frozenset(f.attrs.keys()) | frozenset(f"/{k}" for k in f)
        except Exception:
            return frozenset()

    def describe(self) -> str:
        """Say what a file is when no reader accepts it (Netron-style 'file contains X')."""
        head = self.head
        text = head[:512].lstrip().lower()
        if self.is_dir:
            return _describe_folder(self.path)
        if head.startswith(b"version https://git-lfs"):
            return "file is a Git LFS pointer, not the weights (run `git lfs pull`)"
        if text.startswith((b"<!doctype html", b"<html")):
            return "file is an HTML page (a download link saved instead of the file?)"
        if head.startswith(TORCH_LEGACY_HEADER):
            return (
                "file is a legacy (pre-1.6) PyTorch pickle; "
                "re-save it with torch.save in torch >= 1.6"
            )
        if self.is_hdf5:
            return "HDF5 file holds no Keras model or weights"
        if self.is_zip:
            names = ", ".join(self.zip_names[:4]) or "unreadable members"
            return f"zip archive holds no model ({names})"
        if head[:1] in (b"{", b"["):
            return "file is JSON text, not weights"
        if head.startswith(b"\x80") and len(head) > 1 and head[1] in range(2, 6):
            return "file is a bare pickle, which lstmviz does not unpickle"
        if head[4:8] == b"TFL3":
            return (
                "file is a TensorFlow Lite flatbuffer, which lstmviz does not read; open the "
                "Keras model or SavedModel it was converted from"
            )
        if head.startswith(b"\x93NUMPY"):
            return "NumPy array file"
        if all(32 <= c < 127 or c in (9, 10, 13) for c in head[:256]):
            return "file is plain text, not weights"
        return "unrecognised binary content"


def _kind_of(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _refuse_special(name: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise LoadError(
            f"{name}: {_kind_of(mode)}, not a regular file; lstmviz reads regular files only "
            "(save the model to a file first)"
        )


def _read_head(path: Path, name: str) -> tuple[int, bytes]:
    """Size and first bytes of a regular file, checked again on the open descriptor.

    ``O_NONBLOCK`` keeps the open from blocking if the path was swapped for a FIFO after the
    ``stat`` (it only affects FIFOs and devices, which ``fstat`` then refuses); ``O_NOCTTY``
    keeps a terminal device from becoming ours.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        _refuse_special(name, st.st_mode)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            head = fh.read(HEAD_BYTES)
        return st.st_size, head
    finally:
        os.close(fd)


def check_regular_file(path: str | os.PathLike[str], what: str | None = None) -> Path:
    """``path`` if it is a regular file (symlinks followed), else a one-line LoadError.

    For readers about to open a file the user did not name directly (a shard, a ``.meta``, an
    ONNX external-data file, an HDF5 member's source): a FIFO would block the open forever, a
    device (``/dev/zero``, ``/dev/urandom``) would stream without end. ``what`` names the file
    in the message (default: its name). Raises LoadError also when the file is missing or
    cannot be examined.
    """
    p = Path(path)
    name = what or p.name or str(p)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise LoadError(f"{name}: no such file") from None
    except OSError as exc:
        raise LoadError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
    _refuse_special(name, st.st_mode)
    return p


def safe_member(
    folder: str | os.PathLike[str], name: str | os.PathLike[str], what: str | None = None
) -> Path:
    """``folder / name`` if it stays inside ``folder`` and is a regular file, else LoadError.

    The one check for every side file a model names or a folder format holds (TF checkpoint
    shards and ``.meta`` in a checkpoint folder, ``variables/`` of a SavedModel, ONNX
    ``location`` external data, Keras shards): ``..`` parts, absolute names and symlinks
    that resolve outside the folder are refused, since a model must never make lstmviz read
    a file the user did not choose (``/etc/passwd`` shown as weights). The folder itself may
    be a symlink; it is resolved first. One layout of symlinks is let through: a Hugging Face
    hub cache, whose ``snapshots/<revision>/<file>`` are links to ``../../blobs/<hash>`` of
    the same repository (``snapshot_download`` makes every downloaded model look so). Usage::

        data = safe_member(probe.path.parent, entry.location, what=f"{probe.name}: external data")
    """
    base = Path(folder)
    label = what or str(name)
    try:
        root = base.resolve(strict=True)
        target = (base / name).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise LoadError(f"{label}: cannot resolve the path ({exc})") from exc
    here = Path(os.path.abspath(base))
    named_inside = _inside(Path(os.path.normpath(here / name)), here)  # no "..", not absolute
    if not named_inside or not (_inside(target, root) or _hub_cache_blob(root, target)):
        raise LoadError(
            f"{label}: points outside the model's folder ({os.fspath(name)!r}); lstmviz reads "
            "only files inside the folder the model is in"
        )
    return check_regular_file(target, label)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _hub_cache_blob(root: Path, target: Path) -> bool:
    """``target`` is ``<repo>/blobs/<hash>`` and ``root`` lies in ``<repo>/snapshots/``."""
    repo = target.parent.parent
    return (
        target.parent.name == "blobs"
        and len(target.name) in (40, 64)
        and all(c in "0123456789abcdef" for c in target.name)
        and _inside(root, repo / "snapshots")
        and root != repo / "snapshots"
    )


def checkpoint_prefix_index(path: Path) -> Path | None:
    """``model.ckpt`` → ``model.ckpt.index`` when that index exists and the prefix itself does
    not: TensorFlow names a checkpoint by its prefix (``saver.save``/``restore``), which is not
    a file on disk. The hook the TF checkpoint reader relies on; None for anything else."""
    index = Path(f"{path}.index")
    return index if path.name and os.path.lexists(index) else None


def _describe_folder(path: Path) -> str:
    """A TensorFlow SavedModel folder (tf.keras 2 ``model.save('dir')``, ``tf.saved_model``)
    keeps its weights in a TF2 checkpoint under ``variables/``, which lstmviz reads."""
    try:  # a folder of a million files is described from its first 10,000 names
        names = {p.name for p in itertools.islice(path.iterdir(), 10_000)}
    except OSError:
        names = set()
    if names & {"saved_model.pb", "saved_model.pbtxt"}:
        keras = " (a Keras model)" if "keras_metadata.pb" in names else ""
        fix = "; or re-save it from Keras as .keras or .h5" if keras else ""
        if (path / "variables" / "variables.index").is_file():
            return (
                f"folder is a TensorFlow SavedModel{keras}: open its variables/ folder for the "
                f"weights (activations then assumed){fix}"
            )
        return f"folder is a TensorFlow SavedModel{keras} without variables/variables.index{fix}"
    return "folder holds no recognised model file"
