"""Keras 2 code often ships ``model.to_json()`` beside ``model.save_weights("m.h5")`` (rnnmorph
does): a weights-only ``.h5`` with a ``<stem>.json`` model config beside it is read with that
config's settings and wiring, and matches Keras; a JSON that is not this model's config, or a
special file in its place, leaves the weights read alone."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from bounded import bounded_load
from keras.src.legacy.saving import legacy_h5_format

import lstmviz
from lstmviz.io import ChoiceRequired, load_model

T, D = 6, 3
L = keras.layers


def _save(model: keras.Model, path: Path) -> Path:
    """Keras 2's pair: the legacy weights-only HDF5 layout and the JSON config beside it."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    path.with_suffix(".json").write_text(model.to_json())
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, keras.Model, dict]:
    """Settings a weights-only file cannot show (relu, return_sequences=False, a branch)."""
    i = keras.Input((T, D))
    a = L.LSTM(4, return_sequences=True, activation="relu", name="a")(i)
    c = L.LSTM(3, recurrent_activation="tanh", name="c")(a)
    b = L.LSTM(2, return_sequences=True, name="b")(i)
    model = keras.Model(i, [c, b])
    rng = np.random.default_rng(5)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, size=w.shape).astype("float32"))
    path = _save(model, tmp_path_factory.mktemp("pair") / "m.h5")
    return path, model, {"a": a, "c": c, "b": b}


def test_settings_and_wiring_come_from_the_json(pair: tuple[Path, keras.Model, dict]) -> None:
    path, model, tensors = pair
    with pytest.raises(ChoiceRequired) as info:  # the wiring shows the branch
        load_model(path, ask_choices=True)
    assert info.value.choices == ("a", "b")
    m = load_model(path, layer="a")
    assert [layer.name for layer in m.layers] == ["a", "c"]
    assert "m.json beside the weights" in m.notes[1]
    first, second = m.layers
    assert first.directions[0].act_cand.name == "relu"
    assert second.directions[0].act_gate.name == "tanh" and not second.return_sequences
    x = np.random.default_rng(1).normal(size=(T, D)).astype("float32")
    trace = lstmviz.run(m, x)
    want_a = keras.Model(model.inputs, tensors["a"]).predict(x[None], verbose=0)[0]
    want_c = keras.Model(model.inputs, tensors["c"]).predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(trace.layers[0].output, want_a, atol=1e-5, rtol=0)
    np.testing.assert_allclose(trace.layers[1].last_output, want_c, atol=1e-5, rtol=0)
    b = load_model(path, layer="b")
    want_b = keras.Model(model.inputs, tensors["b"]).predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(lstmviz.run(b, x).layers[0].output, want_b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("json_text", ['{"not": "a model"}', "not json", None])
def test_other_json_leaves_the_weights_alone(
    pair: tuple[Path, keras.Model, dict], tmp_path: Path, json_text: str | None
) -> None:
    path = tmp_path / "m.h5"
    path.write_bytes(pair[0].read_bytes())
    if json_text is None:  # another model's config: its layers do not hold these weights
        other = keras.Sequential([keras.Input((T, D)), L.LSTM(4, name="zz")])
        path.with_suffix(".json").write_text(other.to_json())
    else:
        path.with_suffix(".json").write_text(json_text)
    m = load_model(path)
    assert m.notes[0].startswith("weights-only file")
    # file order and widths only (c's 3 outputs fit b): what the JSON's wiring corrects
    assert [layer.name for layer in m.layers] == ["a", "c", "b"]


def test_fifo_in_place_of_the_json_does_not_block(
    pair: tuple[Path, keras.Model, dict], tmp_path: Path
) -> None:
    path = tmp_path / "m.h5"
    path.write_bytes(pair[0].read_bytes())
    os.mkfifo(path.with_suffix(".json"))
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model"
