"""Second red-team round (issue 18), Keras HDF5: costs that live in HDF5's metadata, not in
the bytes a dataset declares (hard links, chunk grids, attribute counts)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from bounded import bounded_load

import lstmviz


def _weights_file(path: Path, n_layers: int, make: Callable[[h5py.Group, str], None]) -> None:
    """A Keras 2 ``save_weights`` file of ``n_layers`` LSTMs; ``make(group, layer)`` writes
    each layer's kernel:0, recurrent_kernel:0 and bias:0."""
    names = [f"lstm_{k}" for k in range(n_layers)]
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["backend"], f.attrs["keras_version"] = "tensorflow", "2.21.0"
        f.attrs["layer_names"] = np.array(names, dtype=object)
        for name in names:
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array(
                [f"{name}/lstm_cell/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")],
                dtype=object,
            )
            make(g.create_group(f"{name}/lstm_cell"), name)


def _plain(H: int, **kw: object) -> Callable[[h5py.Group, str], None]:
    rng = np.random.default_rng(0)

    def make(cell: h5py.Group, _: str) -> None:
        cell.create_dataset("kernel:0", data=rng.normal(size=(H, 4 * H)).astype("f4"), **kw)
        cell.create_dataset("recurrent_kernel:0", data=rng.normal(size=(H, 4 * H)).astype("f4"))
        cell.create_dataset("bias:0", data=rng.normal(size=4 * H).astype("f4"))

    return make


def test_thousands_of_layers_hard_linked_to_one_are_refused_quickly(tmp_path: Path) -> None:
    # before: 20,000 layers hard-linked to one H=64 set (14 MB) ran past 8 s (10 s of h5py
    # metadata calls before the read budget could see anything)
    first: dict[str, h5py.Dataset] = {}
    make = _plain(64)

    def link(cell: h5py.Group, name: str) -> None:
        if not first:
            make(cell, name)
            first.update({k: cell[k] for k in cell})
            return
        for k, ds in first.items():
            cell[k] = ds

    path = tmp_path / "links.h5"
    _weights_file(path, 6000, link)
    bounded_load(path).assert_refused("links.h5", "weight array number 4097", "budget=")


def test_a_kernel_in_a_quarter_million_chunks_is_refused(tmp_path: Path) -> None:
    # before: a 1 MB kernel in 1 x 1 chunks (6 MB file) made libhdf5 allocate 860 MB
    path = tmp_path / "tiny_chunks.h5"
    _weights_file(path, 1, _plain(256, chunks=(1, 1)))
    bounded_load(path).assert_refused("tiny_chunks.h5", "more than 16384 chunks")


def test_sixteen_thousand_gzip_chunks_are_checked_in_one_walk(tmp_path: Path) -> None:
    # before: get_chunk_info(k) per chunk walks the index each time: > 8 s for 16,384 chunks
    path = tmp_path / "gz_chunks.h5"
    _weights_file(path, 1, _plain(128, chunks=(1, 4), compression="gzip"))
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model", out
    with h5py.File(path) as f:  # the right numbers: Keras' kernel (D, 4H) is W_x transposed
        kernel = f["lstm_0/lstm_0/lstm_cell/kernel:0"][()]
    model = lstmviz.load_model(path)
    np.testing.assert_array_equal(model.layers[0].directions[0].W_x, kernel.T)


def test_root_attributes_are_looked_up_by_name_never_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: sniffing and loading listed every root attribute: 200,000 of them took 3.7 s
    # and 292 MB for an 11.8 MB file (now 0.03 s, 17 MB)
    path = tmp_path / "attrs.h5"
    _weights_file(path, 1, _plain(4))

    def listing(self: object) -> None:
        raise AssertionError("root attributes listed")

    monkeypatch.setattr(h5py.AttributeManager, "__iter__", listing)
    model = lstmviz.load_model(path)
    assert model.layers[0].directions[0].W_x.shape == (16, 4)


def _keras_with_dense_tail(path: Path, n_dense: int) -> None:
    """``tf215_stacked.keras`` with ``n_dense`` weightless Dense layers appended to its config
    (deflated, 100,000 of them take 0.3 MB)."""
    src = Path(__file__).parents[1] / "fixtures" / "keras" / "tf215_stacked.keras"
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"] += [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": f"d{k}", "units": 4}}
        for k in range(n_dense)
    ]
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_config_of_100000_layers_is_refused_quickly(tmp_path: Path) -> None:
    # before: 0.28 MB -> past 8 s (every layer's weights looked up through h5py: 20 s)
    path = tmp_path / "dense_tail.keras"
    _keras_with_dense_tail(path, 100_000)
    bounded_load(path).assert_refused("dense_tail.keras", "more than 20000 layers")


def test_a_config_of_20000_layers_resolves_its_weights_in_one_listing(tmp_path: Path) -> None:
    # before: ~0.1 ms of h5py calls per config layer (20,000 layers: 2.2 s); now 0.4 s
    path = tmp_path / "dense_tail.keras"
    _keras_with_dense_tail(path, 19_990)
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model", out
    src = Path(__file__).parents[1] / "fixtures" / "keras" / "tf215_stacked.keras"
    model, reference = lstmviz.load_model(path), lstmviz.load_model(src)
    for got, want in zip(model.layers, reference.layers, strict=True):
        np.testing.assert_array_equal(got.directions[0].W_h, want.directions[0].W_h)


def _deep_names(path: Path, prefix: Callable[[int], str], leaves: int, chain: str) -> None:
    """A weights file listing ``leaves`` weightless layers at ``prefix(k)/x{k}``."""
    with h5py.File(path, "w", libver="latest") as f:
        g = f.create_group(chain)
        if chain == "a":
            g["loop"] = g  # a hard-linked cycle: paths of any depth, free in the file
        for k in range(leaves):
            g.create_group(f"x{k}").attrs["weight_names"] = np.array([], dtype="S1")
        f.attrs["backend"], f.attrs["keras_version"] = "tensorflow", "2.21.0"
        names = [f"{prefix(k)}/x{k}" for k in range(leaves)]
        f.attrs["layer_names"] = np.array(names, dtype=object)


@pytest.mark.parametrize("case", ["deep", "cycle", "too_deep"])
def test_deep_layer_paths_are_looked_up_once_per_link(tmp_path: Path, case: str) -> None:
    # before: 3,000 layers under a 120-group chain took 8.5 s, through a hard-linked cycle
    # (5,000 layers up to 125 deep) past 8 s, 1,000 layers 1,000 groups deep (2.3 MB) past
    # 8 s; now < 1 s each
    path = tmp_path / f"{case}.h5"
    if case == "deep":
        chain = "/".join(["a"] * 120)
        _deep_names(path, lambda k: chain, 3000, chain)
        needle = "no LSTM layer"
    elif case == "cycle":
        _deep_names(path, lambda k: "a" + "/loop" * (k % 125), 5000, "a")
        needle = "no LSTM layer"
    else:
        _deep_names(path, lambda k: "a" + "/loop" * 1000, 10, "a")
        needle = "1002 groups deep"
    bounded_load(path).assert_refused(f"{case}.h5", needle)


def test_a_damaged_name_list_attribute_is_named(tmp_path: Path) -> None:
    # found by benchmarks/fuzz_files.py (seed 5): a duplicated byte range that breaks a
    # weight_names attribute's heap reference made h5py raise OSError, reported only as
    # "unreadable Keras HDF5 file" by load_model's catch-all
    src = Path(__file__).parents[1] / "fixtures" / "keras" / "chunked_names.h5"
    data = src.read_bytes()
    path = tmp_path / "names.h5"
    path.write_bytes(data[:16569] + data[2346:2493] + data[16569:])
    bounded_load(path).assert_refused("names.h5", "cannot read attribute weight_names")
