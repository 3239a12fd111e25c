"""Cheap look at a file's content so readers can sniff it without trusting its name."""

from __future__ import annotations

import os
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
        """Open ``path`` or raise LoadError for a missing, unreadable or empty file."""
        p = Path(path)
        name = p.name or str(p)
        try:
            if p.is_dir():
                return cls(path=p, size=0, head=b"", is_dir=True)
            if not p.exists():
                raise LoadError(f"{name}: no such file")
            size = p.stat().st_size
            with p.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
        except LoadError:
            raise
        except OSError as exc:
            raise LoadError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
        if size == 0:
            raise LoadError(f"{name}: file is empty; expected a Keras, TF1, PyTorch or ONNX file")
        return cls(path=p, size=size, head=head)

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

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
        if head.startswith(b"\x93NUMPY"):
            return "NumPy array file"
        if all(32 <= c < 127 or c in (9, 10, 13) for c in head[:256]):
            return "file is plain text, not weights"
        return "unrecognised binary content"


def _describe_folder(path: Path) -> str:
    """A TensorFlow SavedModel folder (tf.keras 2 ``model.save('dir')``, ``tf.saved_model``)
    keeps its weights in a TF2 checkpoint under ``variables/``, which lstmviz reads."""
    try:
        names = {p.name for p in path.iterdir()}
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
