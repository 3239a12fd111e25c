"""Hostile Keras files (issue 18), each loaded under ``bounded_load``'s memory cap and time
limit: data kept outside the file (HDF5 external storage, virtual datasets), compression bombs,
a sharded merge that would multiply one block, duplicate names, special files and links out of
a model folder, and names that would make a message more than one printable line.

Each refusal is one printable line within 2 s and 200 MB + 2 × the file; the files that must
still load (gzip-compressed weights as h5py writes them) match the uncompressed original.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from bounded import bounded_load

import lstmviz
from lstmviz.io import LoadError, load_model

L = keras.layers
KERNELS = ("kernel:0", "recurrent_kernel:0", "bias:0")


def legacy_weights(path: Path, make: Callable[[h5py.Group], None], names=None) -> Path:
    """A Keras 2 ``save_weights`` file with one LSTM group whose arrays ``make`` writes."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm"])
        f.attrs["keras_version"] = b"2.2.4"
        g = f.create_group("lstm")
        listed = names or [f"lstm/{k}" for k in KERNELS]
        g.attrs["weight_names"] = np.array([n.encode() for n in listed])
        make(g.create_group("lstm"))
    return path


def plain(d: int, h: int) -> Callable[[h5py.Group], None]:
    def make(s: h5py.Group) -> None:
        rng = np.random.default_rng(0)
        for name, shape in zip(KERNELS, ((d, 4 * h), (h, 4 * h), (4 * h,)), strict=True):
            s.create_dataset(name, data=rng.normal(0, 0.3, shape).astype("f4"))

    return make


# ----------------------------------------------------------------------------- outside reads
def test_external_raw_storage_is_refused_before_reading(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)

    def make(s: h5py.Group) -> None:
        s.create_dataset("kernel:0", shape=(4, 16), dtype="f4", external=[(str(secret), 0, 256)])
        s.create_dataset("recurrent_kernel:0", data=np.zeros((4, 16), "f4"))
        s.create_dataset("bias:0", data=np.zeros(16, "f4"))

    path = legacy_weights(tmp_path / "external.h5", make)
    out = bounded_load(path)
    out.assert_refused("external storage", "secret.txt", "stored in the file itself")


def test_virtual_dataset_over_dev_zero_is_refused(tmp_path: Path) -> None:
    def make(s: h5py.Group) -> None:
        layout = h5py.VirtualLayout(shape=(4096, 16384), dtype="f4")
        layout[:] = h5py.VirtualSource("/dev/zero", "data", shape=(4096, 16384))
        s.create_virtual_dataset("kernel:0", layout, fillvalue=0)
        s.create_dataset("recurrent_kernel:0", shape=(4096, 16384), dtype="f4")
        s.create_dataset("bias:0", shape=(16384,), dtype="f4")

    out = bounded_load(legacy_weights(tmp_path / "vds.h5", make))
    out.assert_refused("virtual dataset")


def test_small_virtual_dataset_is_refused_too(tmp_path: Path) -> None:
    """A VDS as small as real weights (the declared-vs-stored check alone would pass it)."""
    src = tmp_path / "other.h5"
    with h5py.File(src, "w") as f:
        f["data"] = np.arange(64, dtype="f4").reshape(4, 16)

    def make(s: h5py.Group) -> None:
        layout = h5py.VirtualLayout(shape=(4, 16), dtype="f4")
        layout[:] = h5py.VirtualSource(str(src), "data", shape=(4, 16))
        s.create_virtual_dataset("kernel:0", layout)
        s.create_dataset("recurrent_kernel:0", data=np.zeros((4, 16), "f4"))
        s.create_dataset("bias:0", data=np.zeros(16, "f4"))

    out = bounded_load(legacy_weights(tmp_path / "vds_small.h5", make))
    out.assert_refused("virtual dataset")


def test_external_link_is_refused(tmp_path: Path) -> None:
    other = legacy_weights(tmp_path / "other.h5", plain(3, 4))

    def make(s: h5py.Group) -> None:
        plain(3, 4)(s)
        del s["kernel:0"]
        s["kernel:0"] = h5py.ExternalLink(str(other), "/lstm/lstm/kernel:0")

    out = bounded_load(legacy_weights(tmp_path / "extlink.h5", make))
    out.assert_refused("external link")


# ----------------------------------------------------------------------------- compression
def _v3_archive(path: Path, units: int, d: int, write: Callable[[h5py.Group], None]) -> Path:
    """A ``.keras`` zip of an LSTM(units) over d inputs whose weights file ``write`` fills."""
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 5, d]}},
                {"class_name": "LSTM", "config": {"name": "lstm", "units": units}},
            ],
        },
    }
    inner = path.with_suffix(".weights.h5")
    with h5py.File(inner, "w") as f:
        write(f.create_group("layers/lstm/cell/vars"))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        zf.writestr("config.json", json.dumps(config))
        zf.write(inner, "model.weights.h5")
    inner.unlink()
    return path


def test_gzip_bomb_in_a_small_keras_file_is_refused(tmp_path: Path) -> None:
    """Zeros gzip 1000:1: a ~200 KB .keras declaring 128 MB of weights."""
    h, d = 2048, 8

    def write(v: h5py.Group) -> None:
        for k, shape in enumerate(((d, 4 * h), (h, 4 * h), (4 * h,))):
            zeros = np.zeros(shape, "f4")
            v.create_dataset(str(k), data=zeros, compression="gzip", compression_opts=9)

    path = _v3_archive(tmp_path / "bomb.keras", h, d, write)
    assert path.stat().st_size < 400_000
    out = bounded_load(path)
    out.assert_refused("--option budget=", "past")


def test_deflate_twice_is_refused(tmp_path: Path) -> None:
    h = 2048

    def make(s: h5py.Group) -> None:
        for name, shape in zip(KERNELS, ((8, 4 * h), (h, 4 * h), (4 * h,)), strict=True):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk(shape)
            dcpl.set_deflate(9)
            dcpl.set_deflate(9)
            space = h5py.h5s.create_simple(shape)
            h5py.h5d.create(s.id, name.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
            s[name][...] = 0.5

    path = legacy_weights(tmp_path / "twice.h5", make)
    assert path.stat().st_size < 100_000
    bounded_load(path).assert_refused("compressed twice")


def test_chunk_that_inflates_past_its_size_is_refused(tmp_path: Path) -> None:
    """A 64-value chunk whose gzip stream inflates to 64 MB: libhdf5 would grow its buffer."""

    def make(s: h5py.Group) -> None:
        s.create_dataset("kernel:0", shape=(4, 16), dtype="f4", chunks=(4, 16), compression="gzip")
        s["kernel:0"].id.write_direct_chunk((0, 0), zlib.compress(bytes(64 << 20), 9))
        s.create_dataset("recurrent_kernel:0", data=np.zeros((4, 16), "f4"))
        s.create_dataset("bias:0", data=np.zeros(16, "f4"))

    out = bounded_load(legacy_weights(tmp_path / "chunk_bomb.h5", make))
    out.assert_refused("inflates past")


def test_unknown_filter_is_refused(tmp_path: Path) -> None:
    def make(s: h5py.Group) -> None:
        plain(3, 4)(s)
        del s["kernel:0"]
        s.create_dataset("kernel:0", data=np.ones((3, 16), "f4"), compression="lzf")

    bounded_load(legacy_weights(tmp_path / "lzf.h5", make)).assert_refused("lzf")


def test_gzip_weights_as_h5py_writes_them_still_load(tmp_path: Path) -> None:
    """gzip + shuffle + fletcher32 over several chunks: the same numbers as stored plain."""
    d, h = 5, 32
    rng = np.random.default_rng(3)
    arrays = [rng.normal(0, 0.3, s).astype("f4") for s in ((d, 4 * h), (h, 4 * h), (4 * h,))]

    def make(compressed: bool) -> Callable[[h5py.Group], None]:
        def write(s: h5py.Group) -> None:
            for name, a in zip(KERNELS, arrays, strict=True):
                extra = {"compression": "gzip", "shuffle": True, "fletcher32": True}
                chunks = (max(1, a.shape[0] // 3), *a.shape[1:])
                options = extra | {"chunks": chunks} if compressed else {}
                s.create_dataset(name, data=a, **options)

        return write

    gz = load_model(legacy_weights(tmp_path / "gz.h5", make(True)))
    flat = load_model(legacy_weights(tmp_path / "flat.h5", make(False)))
    x = rng.normal(size=(7, d)).astype("f4")
    want = lstmviz.run(flat, x).layers[0].output
    np.testing.assert_array_equal(lstmviz.run(gz, x).layers[0].output, want)
    bounded_load(tmp_path / "gz.h5").assert_bounded()


def test_budget_option_raises_the_limit(tmp_path: Path) -> None:
    h, d = 1024, 4

    def write(v: h5py.Group) -> None:
        for k, shape in enumerate(((d, 4 * h), (h, 4 * h), (4 * h,))):
            v.create_dataset(str(k), data=np.full(shape, 0.01, "f4"), compression="gzip")

    path = _v3_archive(tmp_path / "ok.keras", h, d, write)
    with pytest.raises(LoadError, match="budget=2"):
        load_model(path, budget=0.25)  # 12 MB allowed, 16 MB wanted
    with pytest.raises(LoadError, match="is not a positive number"):
        load_model(path, budget="lots")
    assert load_model(path).layers[0].hidden_size == h  # 16 MB: within the default budget


# ----------------------------------------------------------------------------- sharded
def _sharded(folder: Path, links: int) -> Path:
    """An index and one shard whose LSTM arrays are one 4 MB block linked ``links`` times."""
    folder.mkdir(exist_ok=True)
    shard = folder / "m_00000.weights.h5"
    with h5py.File(shard, "w") as f:
        block = f.create_dataset("block", data=np.zeros((1024, 1024), "f4"))
        for k in range(links):
            v = f.create_group(f"layers/lstm_{k}/cell/vars" if k else "layers/lstm/cell/vars")
            v["0"] = block
    weight_map = {"/layers/lstm/cell/vars": ["m_00000.weights.h5"]}
    (folder / "m.weights.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder / "m.weights.json"


def test_sharded_merge_cannot_multiply_one_block(tmp_path: Path) -> None:
    index = _sharded(tmp_path / "s", 100)  # 400 MB once merged, from a 4 MB shard
    out = bounded_load(index)
    out.assert_refused("--option budget=")
    assert out.peak_mb < 120


def test_fifo_shard_is_refused_without_blocking(tmp_path: Path) -> None:
    index = _sharded(tmp_path / "s", 1)
    shard = tmp_path / "s" / "m_00000.weights.h5"
    shard.unlink()
    os.mkfifo(shard)
    bounded_load(index).assert_refused("FIFO")


def test_shard_linked_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    index = _sharded(tmp_path / "s", 1)
    shard = tmp_path / "s" / "m_00000.weights.h5"
    outside = tmp_path / "elsewhere.h5"
    shard.rename(outside)
    shard.symlink_to(outside)
    bounded_load(index).assert_refused("outside the model's folder")


# ----------------------------------------------------------------------------- folders
@pytest.fixture(scope="module")
def folder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Keras 3 model saved unzipped (``zipped=False``)."""
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(4)])
    folder = tmp_path_factory.mktemp("folder") / "m"
    model.save(str(folder), zipped=False)
    return folder


def _copy_files(src: Path, dst: Path) -> None:
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())


@pytest.mark.parametrize("member", ["model.weights.h5", "config.json", "metadata.json"])
def test_fifo_member_of_a_model_folder_is_refused(
    folder_model: Path, tmp_path: Path, member: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _copy_files(folder_model, folder)
    assert load_model(folder).layers[0].hidden_size == 4
    (folder / member).unlink()
    os.mkfifo(folder / member)
    bounded_load(folder).assert_refused("FIFO")


def test_device_as_weights_is_refused(folder_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _copy_files(folder_model, folder)
    (folder / "model.weights.h5").unlink()
    (folder / "model.weights.h5").symlink_to("/dev/zero")
    bounded_load(folder).assert_refused("outside the model's folder")


def test_member_linked_out_of_the_folder_is_refused(folder_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _copy_files(folder_model, folder)
    outside = tmp_path / "config.json"
    (folder / "config.json").rename(outside)
    (folder / "config.json").symlink_to(outside)
    bounded_load(folder).assert_refused("outside the model's folder")


# ----------------------------------------------------------------------------- duplicates
def test_duplicate_weight_names_are_refused(tmp_path: Path) -> None:
    names = ["lstm/kernel:0", "lstm/kernel:0", "lstm/bias:0"]
    path = legacy_weights(tmp_path / "dup.h5", plain(3, 4), names)
    bounded_load(path).assert_refused("twice")


def test_duplicate_layer_names_are_refused(tmp_path: Path) -> None:
    path = legacy_weights(tmp_path / "dup_layers.h5", plain(3, 4))
    with h5py.File(path, "a") as f:
        f.attrs["layer_names"] = np.array([b"lstm", b"lstm"])
    bounded_load(path).assert_refused("'lstm' twice")


def test_duplicate_config_layer_names_are_refused(tmp_path: Path) -> None:
    lstms = [L.LSTM(4, return_sequences=True, name="a"), L.LSTM(2, name="b")]
    model = keras.Sequential([keras.Input((5, 3)), *lstms])
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][2]["config"]["name"] = "a"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    bounded_load(path).assert_refused("two layers named 'a'")


# ----------------------------------------------------------------------------- messages
def test_names_with_newlines_and_escapes_stay_one_printable_line(tmp_path: Path) -> None:
    evil = "lstm/ker\nnel\x1b[2J:0" + "x" * 600
    path = legacy_weights(tmp_path / "evil.h5", plain(3, 4), [evil, "lstm/b:0", "lstm/c:0"])
    out = bounded_load(path)
    out.assert_refused("listed in weight_names")  # one printable line, ≤ 300 characters
    assert "\\n" in out.message and "\\x1b" in out.message


def test_duplicate_zip_member_is_read_as_keras_reads_it(tmp_path: Path) -> None:
    """Two ``model.weights.h5`` members: Keras (Python's zipfile) opens the last one, and so
    does lstmviz, so the numbers shown are the ones Keras computes."""
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(4, return_sequences=True)])
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    model.save(first)
    rng = np.random.default_rng(9)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, size=w.shape).astype("float32"))
    model.save(second)
    path = tmp_path / "dup.keras"
    with (
        zipfile.ZipFile(first) as a,
        zipfile.ZipFile(second) as b,
        zipfile.ZipFile(path, "w") as out,
        pytest.warns(UserWarning, match="Duplicate"),
    ):
        for n in a.namelist():
            out.writestr(n, a.read(n))
        out.writestr("model.weights.h5", b.read("model.weights.h5"))
    x = rng.normal(size=(5, 3)).astype("float32")
    want = keras.saving.load_model(path).predict(x[None], verbose=0)[0]
    got = lstmviz.run(load_model(path), x).layers[0].output
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    bounded_load(path).assert_bounded()


def test_unlimited_virtual_dataset_over_a_fifo_does_not_block(tmp_path: Path) -> None:
    """A VDS of unlimited extent opens its source files to tell its shape: the source here is
    a FIFO, which would block that open forever."""
    fifo = tmp_path / "source.h5"
    os.mkfifo(fifo)

    def make(s: h5py.Group) -> None:
        layout = h5py.VirtualLayout(shape=(4, 16), maxshape=(4, None), dtype="f4")
        source = h5py.VirtualSource(str(fifo), "data", shape=(4, 16), maxshape=(4, None))
        layout[:, 0:] = source[:, 0:]
        s.create_virtual_dataset("kernel:0", layout, fillvalue=0)
        s.create_dataset("recurrent_kernel:0", data=np.zeros((4, 16), "f4"))
        s.create_dataset("bias:0", data=np.zeros(16, "f4"))

    bounded_load(legacy_weights(tmp_path / "vds_fifo.h5", make)).assert_refused("virtual dataset")


def test_deflated_weights_member_counts_against_the_budget(tmp_path: Path) -> None:
    """A .keras whose model.weights.h5 was re-compressed: 64 MB of sparse bytes inflate from
    ~1-2 MB (a ratio the zip check lets pass), past what the file's size allows."""
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(4)])
    plain_zip = tmp_path / "plain.keras"
    model.save(plain_zip)
    sparse = np.random.default_rng(0).random(64 << 20) < 0.004
    padding = sparse.astype(np.uint8).tobytes()
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(plain_zip) as a, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as b:
        for n in a.namelist():
            data = a.read(n)
            b.writestr(n, data + padding if n == "model.weights.h5" else data)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.weights.h5")
    assert info.file_size < 100 * info.compress_size  # not what the zip-bomb check refuses
    assert path.stat().st_size < 4 << 20
    bounded_load(path).assert_refused("--option budget=")
    small = tmp_path / "small.keras"  # re-compressed without padding: still opens
    with zipfile.ZipFile(plain_zip) as a, zipfile.ZipFile(small, "w", zipfile.ZIP_DEFLATED) as b:
        for n in a.namelist():
            b.writestr(n, a.read(n))
    assert load_model(small).layers[0].hidden_size == 4


def _tensor(name: str) -> dict:
    history = {"shape": [None, 5, 3], "dtype": "float32", "keras_history": [name, 0, 0]}
    return {"class_name": "__keras_tensor__", "config": history}


def _layer(kind: str, cfg: dict, node: dict) -> dict:
    return {"class_name": kind, "name": cfg["name"], "config": cfg, "inbound_nodes": [node]}


def test_many_lstms_behind_a_long_stack_are_not_quadratic(tmp_path: Path) -> None:
    """A crafted functional config (no weights needed): 6,000 Dense layers in a row and
    4,000 LSTMs all fed by the last one. Tracing each LSTM back through the stack would be
    24 million steps; it must answer (here: which LSTM?) within the time limit."""
    layers: list[dict] = [{"class_name": "InputLayer", "name": "in", "config": {"name": "in"}}]
    prev = "in"
    for k in range(6000):
        node = {"args": [_tensor(prev)], "kwargs": {}}
        cfg = {"name": f"d{k}", "units": 3}
        layers.append(_layer("Dense", cfg, node))
        prev = f"d{k}"
    for k in range(4000):
        node = {"args": [_tensor(prev)], "kwargs": {}}
        cfg = {"name": f"l{k}", "units": 2}
        layers.append(_layer("LSTM", cfg, node))
    config = {"class_name": "Functional", "config": {"name": "m", "layers": layers}}
    inner = tmp_path / "w.h5"
    with h5py.File(inner, "w") as f:
        f.create_group("layers")
    path = tmp_path / "stack.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", "{}")
        zf.write(inner, "model.weights.h5")
    out = bounded_load(path, ask_choices=True)
    out.assert_refused("pick one with layer=", "4000 LSTM branches")
    bounded_load(path).assert_refused("'l0'")  # a script gets the first chain: no weights


def _share_chunks(path: Path) -> int:
    """Point every chunk entry of the one version-1 chunk B-tree of ``path`` at its first
    chunk (its size and address), as a crafted file lists one compressed block many times.
    Returns how many entries now share it."""
    data = bytearray(path.read_bytes())
    at = data.find(b"TREE")
    while at != -1:
        node_type, used = data[at + 4], struct.unpack_from("<H", data, at + 6)[0]
        if node_type == 1 and used > 1:
            key = 8 + 3 * 8  # chunk size, filter mask, (rank + 1) offsets of a 2-D dataset
            size = struct.unpack_from("<I", data, at + 24)[0]
            child = struct.unpack_from("<Q", data, at + 24 + key)[0]
            for k in range(1, used):
                entry = at + 24 + k * (key + 8)
                struct.pack_into("<I", data, entry, size)
                struct.pack_into("<Q", data, entry + key, child)
            path.write_bytes(bytes(data))
            return used
        at = data.find(b"TREE", at + 1)
    raise AssertionError("no chunk B-tree found")


def test_chunks_sharing_one_compressed_block_are_refused(tmp_path: Path) -> None:
    """Eight chunk entries naming one 8 MB-of-zeros block: the file stores ~8 KB of it, the
    dataset claims 8 times that (and decodes to 64 MB)."""
    rows, h = 32768, 16

    def make(s: h5py.Group) -> None:
        shape, chunks = (8 * rows, 4 * h), (rows, 4 * h)
        k = s.create_dataset("kernel:0", shape=shape, dtype="f4", chunks=chunks, compression="gzip")
        k.id.write_direct_chunk((0, 0), zlib.compress(bytes(rows * 4 * h * 4), 9))
        for c in range(1, 8):
            k.id.write_direct_chunk((c * rows, 0), zlib.compress(b"\x00" * 16))
        s.create_dataset("recurrent_kernel:0", data=np.zeros((h, 4 * h), "f4"))
        s.create_dataset("bias:0", data=np.zeros(4 * h, "f4"))

    path = legacy_weights(tmp_path / "shared.h5", make)
    assert _share_chunks(path) == 8
    with h5py.File(path) as f:
        assert f["lstm/lstm/kernel:0"].id.get_storage_size() > path.stat().st_size
    bounded_load(path).assert_refused("share their bytes")


def test_an_index_reached_through_a_link_still_opens(tmp_path: Path) -> None:
    """The file the user chose may be a link; only the shards it names must stay beside it."""
    index = _sharded(tmp_path / "s", 1)
    link = tmp_path / "s" / "link.weights.json"
    link.symlink_to(index)
    with pytest.raises(LoadError, match="block is a Dataset"):  # read, then refused as a model
        load_model(link)


def _hub_snapshot(tmp_path: Path, files: list[Path]) -> Path:
    """Files as huggingface_hub's snapshot_download leaves them: links from
    snapshots/<revision>/<name> to ../../blobs/<sha256> of the same repository."""
    repo = tmp_path / "models--org--keras"
    blobs, snap = repo / "blobs", repo / "snapshots" / ("b" * 40)
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        (blobs / digest).write_bytes(f.read_bytes())
        (snap / f.name).symlink_to(Path("..", "..", "blobs", digest))
    return snap


def test_sharded_weights_in_a_hub_cache_snapshot_open(tmp_path: Path) -> None:
    """Shards that are links to the cache's blobs are inside the model's folder."""
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(48, return_sequences=True)])
    folder = tmp_path / "plain"
    folder.mkdir()
    model.save_weights(folder / "m.weights.json", max_shard_size=0.00005)
    snap = _hub_snapshot(tmp_path, sorted(folder.iterdir()))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    want = model.predict(x[None], verbose=0)[0]
    for target in (snap / "m.weights.json", snap / "m_00000.weights.h5"):
        got = lstmviz.run(load_model(target), x).layers[0].output
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_model_folder_in_a_hub_cache_snapshot_opens(folder_model: Path, tmp_path: Path) -> None:
    snap = _hub_snapshot(tmp_path, sorted(p for p in folder_model.iterdir() if p.is_file()))
    assert load_model(snap).layers[0].hidden_size == 4
