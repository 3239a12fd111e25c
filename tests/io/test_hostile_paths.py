"""Issue 18 item 3, the paths: no read outside the file the user chose, no read of a special file.

A FIFO given as the model blocked ``open()`` forever; ``/dev/zero`` streams without end; a
symlink inside a checkpoint folder or an ONNX external-data ``location`` may point anywhere
(``/etc/passwd`` shown as weights). ``Probe.open`` refuses special files before any read, and
readers open side files through ``probe.safe_member`` / ``probe.check_regular_file``. Every
case runs through ``load_model`` in a bounded child (a hang is a timeout, not a stuck suite).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from bounded import bounded_load

from lstmviz.io import LoadError
from lstmviz.io.probe import Probe, check_regular_file, safe_member

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TF1_BASIC = FIXTURES / "tf1" / "basic"
SUFFIXES = (".pt", ".h5", ".keras", ".onnx", ".safetensors", ".npz", ".npy", ".index", ".meta")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_fifo_as_the_model_is_refused_before_any_read(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"model{suffix}"
    os.mkfifo(fifo)
    bounded_load(fifo).assert_refused(f"model{suffix}: a FIFO", "regular file")


def test_devices_and_sockets_are_refused(tmp_path: Path) -> None:
    bounded_load("/dev/zero").assert_refused("zero: a character device")
    link = tmp_path / "model.h5"
    link.symlink_to("/dev/urandom")  # the name says HDF5, the target streams forever
    bounded_load(link).assert_refused("model.h5: a character device")
    sock_path = tmp_path / "model.pt"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        bounded_load(sock_path).assert_refused("model.pt: a socket")


def test_a_checkpoint_prefix_opens_and_its_special_index_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(TF1_BASIC, folder)
    out = bounded_load(folder / "model.ckpt")  # the name saver.save returns: not a file
    out.assert_bounded()
    assert out.kind == "model", out
    assert Probe.open(folder / "model.ckpt").path.name == "model.ckpt.index"
    os.mkfifo(tmp_path / "other.ckpt.index")
    bounded_load(tmp_path / "other.ckpt").assert_refused("other.ckpt.index: a FIFO")
    bounded_load(tmp_path / "missing.ckpt").assert_refused("missing.ckpt: no such file")


def test_safe_member_keeps_readers_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"1234")
    (folder / "sub" / "x.bin").write_bytes(b"1234")
    (tmp_path / "secret").write_text("root:x:0:0")
    (folder / "inside").symlink_to(folder / "w.bin")
    (folder / "outside").symlink_to(tmp_path / "secret")
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "zero").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo")
    assert safe_member(folder, "w.bin") == (folder / "w.bin").resolve()
    assert safe_member(folder, "sub/x.bin") == (folder / "sub" / "x.bin").resolve()
    assert safe_member(folder, "inside") == (folder / "w.bin").resolve()
    assert safe_member(folder, "sub/../w.bin") == (folder / "w.bin").resolve()
    refused = {
        "../secret": "outside the model's folder",
        "outside": "outside the model's folder",
        "passwd": "outside the model's folder",
        "/etc/passwd": "outside the model's folder",
        "sub/../../secret": "outside the model's folder",
        "zero": "outside the model's folder",
        "fifo": "a FIFO",
        "sub": "a folder",
        "": "a folder",
        "nothing": "no such file",
    }
    for name, needle in refused.items():
        with pytest.raises(LoadError, match=needle):
            safe_member(folder, name)
    with pytest.raises(LoadError, match=r"w\.bin data: a FIFO"):
        check_regular_file(folder / "fifo", what="w.bin data")
    assert check_regular_file(folder / "inside") == folder / "inside"


# --- side files of the framework readers (owned by their engineers; checked end to end) ---


def _tf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(TF1_BASIC, folder)
    return folder


def tf_shard_fifo(tmp_path: Path) -> Path:
    folder = _tf_folder(tmp_path)
    shard = folder / "model.ckpt.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)
    return folder / "model.ckpt.index"


def tf_shard_device(tmp_path: Path) -> Path:
    folder = _tf_folder(tmp_path)
    shard = folder / "model.ckpt.data-00000-of-00001"
    shard.unlink()
    shard.symlink_to("/dev/zero")
    return folder / "model.ckpt.index"


def tf_meta_fifo(tmp_path: Path) -> Path:
    folder = _tf_folder(tmp_path)
    (folder / "model.ckpt.meta").unlink()
    os.mkfifo(folder / "model.ckpt.meta")
    return folder / "model.ckpt.index"


def tf_folder_index_links_out(tmp_path: Path) -> Path:
    """The folder the user opens holds only symlinks to a checkpoint somewhere else."""
    elsewhere = _tf_folder(tmp_path)
    folder = tmp_path / "opened"
    folder.mkdir()
    for p in elsewhere.iterdir():
        (folder / p.name).symlink_to(p)
    return folder


def onnx_external(location: str, setup: Callable[[Path], None]) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        model = onnx.load(FIXTURES / "onnx" / "external.onnx", load_external_data=False)
        for t in model.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
        folder = tmp_path / "model"
        folder.mkdir()
        setup(folder)
        onnx.save_model(model, folder / "m.onnx")
        return folder / "m.onnx"

    return make


def h5_external(target: Callable[[Path], str]) -> Callable[[Path], Path]:
    """A Keras weights file whose first kernel's bytes are stored in another file."""

    def make(tmp_path: Path) -> Path:
        import h5py

        path = tmp_path / "weights.h5"
        shutil.copy(FIXTURES / "keras" / "keras224_weights_only.h5", path)
        source = target(tmp_path)
        with h5py.File(path, "r+") as f:
            names: list[str] = []
            f.visit(names.append)
            name = next(n for n in names if n.endswith("kernel:0") and "recurrent" not in n)
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            nbytes = int(np.prod(shape)) * dtype.itemsize
            f.create_dataset(name, shape=shape, dtype=dtype, external=[(source, 0, nbytes)])
        return path

    return make


def h5_kernel_replaced(build: Callable) -> Callable[[Path], Path]:
    """The Keras weights file with its first kernel replaced by ``build(f, name, shape,
    dtype, tmp_path)``: a virtual dataset, an external link..."""

    def make(tmp_path: Path) -> Path:
        import h5py

        path = tmp_path / "weights.h5"
        shutil.copy(FIXTURES / "keras" / "keras224_weights_only.h5", path)
        with h5py.File(path, "r+") as f:
            names: list[str] = []
            f.visit(names.append)
            name = next(n for n in names if n.endswith("kernel:0") and "recurrent" not in n)
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            build(f, name, shape, dtype, tmp_path)
        return path

    return make


def _virtual_from(source: Callable[[Path], Path]) -> Callable:
    def build(f, name, shape, dtype, tmp_path: Path) -> None:
        import h5py

        src = source(tmp_path)
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(src), "data", shape=shape)
        f.create_virtual_dataset(name, layout)

    return build


def _secret_h5(tmp_path: Path) -> Path:
    """Another HDF5 file of the user's, with bytes lstmviz must not show as weights."""
    import h5py

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as g:
        g["data"] = np.arange(48, dtype=np.float32).reshape(3, 16)
    return secret


def _external_link(f, name, shape, dtype, tmp_path: Path) -> None:
    import h5py

    f[name] = h5py.ExternalLink(str(_secret_h5(tmp_path)), "/data")


def _fifo_at(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "pipe")
    return str(tmp_path / "pipe")


#: case → (make, needle): a needle the one-line refusal names, "" for any refusal (a special
#: file may be refused as such or as empty/truncated: either way it is never read), None for
#: a file that may also load (the side file is optional) as long as nothing blocks.
SIDE_FILES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "tf data shard is a FIFO": (tf_shard_fifo, ""),
    "tf data shard links to /dev/zero": (tf_shard_device, ""),
    "tf .meta is a FIFO": (tf_meta_fifo, None),  # the graph is optional: refused or skipped
    "tf folder of links to elsewhere": (tf_folder_index_links_out, "outside"),
    "onnx external data is a FIFO": (onnx_external("pipe", lambda d: os.mkfifo(d / "pipe")), ""),
    "onnx external data links to /dev/zero": (
        onnx_external("zero", lambda d: (d / "zero").symlink_to("/dev/zero")),
        "outside the model's folder",
    ),
    "onnx external data links to /etc/passwd": (
        onnx_external("pw", lambda d: (d / "pw").symlink_to("/etc/passwd")),
        "outside the model's folder",
    ),
    "h5 external storage is /etc/passwd": (h5_external(lambda _: "/etc/passwd"), "external"),
    "h5 external storage is a FIFO": (h5_external(_fifo_at), "another file"),
    "h5 virtual dataset from another file": (
        h5_kernel_replaced(_virtual_from(_secret_h5)),
        "virtual dataset",
    ),
    "h5 external link to another file": (h5_kernel_replaced(_external_link), "external link"),
}

#: Side files read by other engineers' readers that still fail at this suite's deadline.
SIDE_FILE_XFAIL: dict[str, str] = {}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=SIDE_FILE_XFAIL[c]))
        if c in SIDE_FILE_XFAIL
        else c
        for c in SIDE_FILES
    ],
)
def test_side_files_never_reach_outside_or_block(tmp_path: Path, case: str) -> None:
    make, needle = SIDE_FILES[case]
    out = bounded_load(make(tmp_path))
    if needle is None:
        out.assert_bounded()
        assert out.kind in ("model", "load_error"), out
    else:
        out.assert_refused(needle)


def test_probe_member_is_safe_member_of_the_model_folder(tmp_path: Path) -> None:
    folder = _tf_folder(tmp_path)
    (folder / "escape").symlink_to(tmp_path)
    probe = Probe.open(folder)
    assert probe.member("model.ckpt.index") == (folder / "model.ckpt.index").resolve()
    with pytest.raises(LoadError, match=r"^ckpt: escape/x: points outside the model's folder"):
        probe.member("escape/x")
    beside = Probe.open(folder / "model.ckpt.index")
    assert beside.member("model.ckpt.meta") == (folder / "model.ckpt.meta").resolve()
    with pytest.raises(LoadError, match="outside"):
        beside.member("../ckpt2/model.ckpt.meta")


def test_a_hugging_face_cache_snapshot_is_inside_its_folder(tmp_path: Path) -> None:
    """snapshot_download makes snapshots/<rev>/<file> links to ../../blobs/<hash>: those are
    the model's own files; a link from the snapshot anywhere else is still refused."""
    repo = tmp_path / "models--org--lstm"
    blobs, snap = repo / "blobs", repo / "snapshots" / ("a" * 40)
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    blob = blobs / ("0123456789abcdef" * 4)
    blob.write_bytes(b"weights")
    (snap / "model.onnx_data").symlink_to(Path("..", "..", "blobs", blob.name))
    (snap / "notes.txt").symlink_to(repo / "README")  # outside blobs/
    (repo / "README").write_text("x")
    (snap / "named").symlink_to(blobs / "not-a-hash")
    (blobs / "not-a-hash").write_text("x")
    assert safe_member(snap, "model.onnx_data") == blob
    with pytest.raises(LoadError, match="outside"):
        safe_member(snap, "notes.txt")
    with pytest.raises(LoadError, match="outside"):
        safe_member(snap, "named")
    with pytest.raises(LoadError, match="outside"):  # a location naming the blob directly
        safe_member(snap, f"../../blobs/{blob.name}")


def _hub_snapshot(tmp_path: Path, files: list[Path], revision: str = "a" * 40) -> Path:
    """Files laid out as huggingface_hub's snapshot_download leaves them: links from
    snapshots/<revision>/<name> to ../../blobs/<sha256>."""
    import hashlib

    repo = tmp_path / "models--org--lstm"
    blobs, snap = repo / "blobs", repo / "snapshots" / revision
    blobs.mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True)
    for f in files:
        data = f.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        (snap / f.name).symlink_to(Path("..", "..", "blobs", digest))
    return snap


def test_a_checkpoint_in_a_hub_cache_snapshot_opens(tmp_path: Path) -> None:
    snap = _hub_snapshot(tmp_path, sorted(TF1_BASIC.iterdir()))
    for target in (snap, snap / "model.ckpt", snap / "model.ckpt.index"):
        out = bounded_load(target)
        out.assert_bounded()
        assert out.kind == "model", (target, out)


def test_onnx_external_data_in_a_hub_cache_snapshot_opens(tmp_path: Path) -> None:
    onnx_dir = FIXTURES / "onnx"
    snap = _hub_snapshot(tmp_path, [onnx_dir / "external.onnx", onnx_dir / "external.weights"])
    out = bounded_load(snap / "external.onnx")
    out.assert_bounded()
    assert out.kind == "model", out


def test_a_path_with_a_nul_is_a_load_error() -> None:
    from lstmviz.io import load_model

    with pytest.raises(LoadError, match=r"cannot read file \(embedded null byte\)"):
        load_model("model\0.pt")
