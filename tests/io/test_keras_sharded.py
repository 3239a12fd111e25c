"""Keras 3 sharded weights (``save_weights("m.weights.json", max_shard_size=…)``): the index
or any one shard loads the whole set, and its outputs match Keras; broken sets are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import lstmviz
from lstmviz.io import LoadError, load_model

T, D = 5, 3
L = keras.layers


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list[np.ndarray]]:
    """A stacked LSTM → Bidirectional model in shards; one LSTM spans two of them."""
    folder = tmp_path_factory.mktemp("sharded")
    model = keras.Sequential(
        [
            keras.Input((T, D)),
            L.LSTM(48, return_sequences=True),
            L.Bidirectional(L.LSTM(16, return_sequences=True)),
        ]
    )
    rng = np.random.default_rng(8)
    for w in model.weights:
        w.assign(rng.normal(0, 0.3, size=w.shape).astype("float32"))
    model.save_weights(folder / "m.weights.json", max_shard_size=0.00005)
    x = rng.normal(size=(T, D)).astype(np.float32)
    outs = [
        keras.Model(model.inputs, layer.output).predict(x[None], verbose=0)[0]
        for layer in model.layers
    ]
    return folder, x, outs


def _check(model: lstmviz.core.model.LSTMModel, x: np.ndarray, outs: list[np.ndarray]) -> None:
    trace = lstmviz.run(model, x)
    assert len(model.layers) == len(outs)
    for k, want in enumerate(outs):
        np.testing.assert_allclose(trace.layers[k].output, want, atol=1e-5, rtol=0)


def test_index_loads_every_shard(sharded: tuple[Path, np.ndarray, list[np.ndarray]]) -> None:
    folder, x, outs = sharded
    shards = sorted(folder.glob("m_*.weights.h5"))
    assert len(shards) >= 2
    weight_map = json.loads((folder / "m.weights.json").read_text())["weight_map"]
    assert any(len(v) > 1 for v in weight_map.values())  # a layer split over two shards
    model = load_model(folder / "m.weights.json")
    _check(model, x, outs)
    assert f"sharded weights: {len(shards)} shard files merged" in model.notes[0]


def test_one_shard_loads_the_set(sharded: tuple[Path, np.ndarray, list[np.ndarray]]) -> None:
    folder, x, outs = sharded
    model = load_model(folder / "m_00001.weights.h5")
    _check(model, x, outs)
    assert "m_00001.weights.h5 is one of them" in model.notes[0]


def _copy_set(src: Path, dst: Path) -> Path:
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    return dst / "m.weights.json"


def _rewrite(index: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(index.read_text())
    change(data)
    index.write_text(json.dumps(data))


CASES = {
    "missing shard": (lambda i: (i.parent / "m_00001.weights.h5").unlink(), "is missing"),
    "shard outside the folder": (
        lambda i: _rewrite(i, lambda d: d["weight_map"].update({"/x/vars": ["../evil.h5"]})),
        "names '../evil.h5', not a shard file beside it",
    ),
    "no weight_map": (
        lambda i: i.write_text('{"metadata": {}, "weight_map": {}}'),
        "has no weight_map",
    ),
    "index not JSON": (lambda i: i.write_text('{"weight_map": [oops'), "is not valid JSON"),
    "shard not HDF5": (
        lambda i: (i.parent / "m_00000.weights.h5").write_bytes(b"not hdf5"),
        "shard m_00000.weights.h5 is not HDF5",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_sets(
    sharded: tuple[Path, np.ndarray, list[np.ndarray]], tmp_path: Path, case: str
) -> None:
    edit, fragment = CASES[case]
    index = _copy_set(sharded[0], tmp_path)
    edit(index)
    with pytest.raises(LoadError) as info:
        load_model(index)
    message = str(info.value)
    assert "\n" not in message and message.startswith("m.weights.json:"), message
    assert fragment in message, message
