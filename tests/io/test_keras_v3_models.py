"""Keras 3 models built here (KERAS_BACKEND=torch), saved as ``.keras``, ``.weights.h5`` and
legacy ``.h5``, loaded by lstmviz and run: every LSTM layer's output must match what Keras
computes for that layer (a sub-model up to it) within 1e-5.

Each model is built and saved once per module. Weights are random everywhere, biases included,
so a wrong gate order, transpose or bias would show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import LSTMModel, MergeMode, OutputOrder
from lstmviz.core.summary import model_summary
from lstmviz.io import load_model

T, D = 5, 3
L = keras.layers
FULL_FORMATS = ("keras", "h5")  # the config travels with the weights


def _seq(*layers: keras.layers.Layer) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    def apply(x: keras.KerasTensor) -> keras.KerasTensor:
        for layer in layers:
            x = layer(x)
        return x

    return apply


def _nested() -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    inner = keras.Sequential([L.LSTM(4, return_sequences=True, name="inner_lstm")], name="block")
    return _seq(inner, L.LSTM(2, return_sequences=True, name="outer_lstm"))


BUILDERS: dict[str, Callable[[], Callable]] = {
    "single": lambda: _seq(L.LSTM(4, return_sequences=True)),
    "stacked": lambda: _seq(
        L.LSTM(4, return_sequences=True), L.Dropout(0.3), L.LSTM(3, return_sequences=True)
    ),
    **{
        f"bi_{mode}": (
            lambda mode=mode: _seq(
                L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=mode),
                L.LSTM(2, return_sequences=True),
            )
        )
        for mode in ("concat", "sum", "mul", "ave")
    },
    "bi_none": lambda: _seq(L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=None)),
    "go_backwards": lambda: _seq(
        L.LSTM(4, return_sequences=True, go_backwards=True), L.LSTM(2, return_sequences=True)
    ),
    "last_only": lambda: _seq(L.LSTM(4, return_sequences=False)),
    "activations": lambda: _seq(
        L.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True)
    ),
    "no_bias": lambda: _seq(L.LSTM(4, use_bias=False, return_sequences=True)),
    "dense_between": lambda: _seq(
        L.LSTM(4, return_sequences=True),
        L.Dropout(0.2),
        L.Dense(4),
        L.LSTM(3, return_sequences=True),
        L.Dense(2),
    ),
    "nested": _nested,
}
#: Models whose settings are all Keras defaults, so a config-less weights file runs them right.
DEFAULTS_ONLY = ("single", "stacked", "bi_concat", "last_only", "no_bias")


@dataclass
class Saved:
    model: keras.Model
    x: np.ndarray  # (T, D)
    outputs: list[np.ndarray]  # per top-level LSTM layer, as Keras returns it
    paths: dict[str, Path]


def _randomize(model: keras.Model, rng: np.random.Generator) -> None:
    for w in model.weights:
        w.assign(rng.normal(0, 0.6, size=w.shape).astype(w.dtype))


def _lstm_outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    outs = []
    for layer in model.layers:
        if isinstance(layer, (L.LSTM, L.Bidirectional)):
            y = keras.Model(model.inputs, layer.output).predict(x[None], verbose=0)
            if isinstance(y, list):  # merge_mode=None: two outputs, shown concatenated
                y = np.concatenate(y, axis=-1)
            outs.append(np.asarray(y)[0])
    return outs


def _save_all(model: keras.Model, folder: Path, name: str) -> dict[str, Path]:
    from keras.src.legacy.saving import legacy_h5_format

    paths = {
        "keras": folder / f"{name}.keras",
        "weights.h5": folder / f"{name}.weights.h5",
        "h5": folder / f"{name}.h5",
        "legacy_weights": folder / f"{name}_legacy_weights.h5",
    }
    model.save(paths["keras"])
    model.save_weights(paths["weights.h5"])
    model.save(paths["h5"])  # Keras 3 writes the legacy HDF5 full-model format
    with h5py.File(paths["legacy_weights"], "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return paths


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    folder = tmp_path_factory.mktemp("keras3")
    rng = np.random.default_rng(3)
    out = {}
    for name, build in BUILDERS.items():
        inp = keras.Input((T, D))
        model = keras.Model(inp, build()(inp), name=name)
        _randomize(model, rng)
        x = rng.normal(size=(T, D)).astype(np.float32)
        out[name] = Saved(model, x, _lstm_outputs(model, x), _save_all(model, folder, name))
    return out


def _compare(model: LSTMModel, s: Saved, layers: range | None = None) -> None:
    trace = lstmviz.run(model, s.x)
    for k in layers if layers is not None else range(len(s.outputs)):
        want = s.outputs[k]
        got = trace.layers[k].output if want.ndim == 2 else trace.layers[k].last_output
        assert got.shape == want.shape, k
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"layer {k}")


@pytest.mark.parametrize("fmt", FULL_FORMATS)
@pytest.mark.parametrize("name", [n for n in BUILDERS if n not in ("dense_between", "nested")])
def test_config_formats_match_keras(saved: dict[str, Saved], name: str, fmt: str) -> None:
    s = saved[name]
    model = load_model(s.paths[fmt])
    assert len(model.layers) == len(s.outputs)
    _compare(model, s)
    assert model.framework == f"Keras {keras.__version__}"
    expected_format = {"keras": "Keras 3 .keras", "h5": "Keras HDF5 full model"}[fmt]
    assert model.source_format == expected_format
    assert model.layers[0].directions[0].provenance.source_format == expected_format


@pytest.mark.parametrize("fmt", ["weights.h5", "legacy_weights"])
@pytest.mark.parametrize("name", DEFAULTS_ONLY)
def test_weights_only_formats_match_keras_defaults(
    saved: dict[str, Saved], name: str, fmt: str
) -> None:
    s = saved[name]
    model = load_model(s.paths[fmt])
    _compare(model, s)
    w = model.layers[0].directions[0]
    settings = {x.name: x for x in w.provenance.settings}
    assert settings["activation"].assumed and settings["recurrent_activation"].assumed
    assert settings["recurrent_activation"].value == "sigmoid"  # Keras 3 default
    assert not settings["units"].assumed
    fmt_name = {"weights.h5": "Keras 3 .weights.h5", "legacy_weights": "Keras HDF5 weights-only"}
    assert model.source_format == fmt_name[fmt]


def test_weights_h5_paths_follow_class_names(saved: dict[str, Saved]) -> None:
    model = load_model(saved["bi_concat"].paths["weights.h5"])
    fw, bw = model.layers[0].directions
    assert fw.provenance.stored[0].name == "layers/bidirectional/forward_layer/cell/vars/0"
    assert bw.provenance.stored[0].name == "layers/bidirectional/backward_layer/cell/vars/0"
    assert model.layers[1].directions[0].provenance.stored[0].name == "layers/lstm/cell/vars/0"


@pytest.mark.parametrize("fmt", FULL_FORMATS)
def test_hard_sigmoid_is_keras3_slope(saved: dict[str, Saved], fmt: str) -> None:
    w = load_model(saved["activations"].paths[fmt]).layers[0].directions[0]
    assert w.act_gate.name == "hard_sigmoid_k3" and w.act_cand.name == "relu"
    assert w.act_cell.name == "relu"
    assert any("hard_sigmoid_k3" in n for n in w.provenance.notes)


@pytest.mark.parametrize("fmt", FULL_FORMATS)
def test_merge_modes_and_directions(saved: dict[str, Saved], fmt: str) -> None:
    for mode in ("concat", "sum", "mul", "ave", "none"):
        layer = load_model(saved[f"bi_{mode}"].paths[fmt]).layers[0]
        assert layer.merge_mode is MergeMode(mode)
        fw, bw = layer.directions
        assert not fw.reverse and bw.reverse
    back = load_model(saved["go_backwards"].paths[fmt]).layers[0]
    assert back.directions[0].reverse and back.output_order is OutputOrder.PROCESSING


@pytest.mark.parametrize("fmt", FULL_FORMATS)
def test_return_sequences_and_no_bias_recorded(saved: dict[str, Saved], fmt: str) -> None:
    assert not load_model(saved["last_only"].paths[fmt]).layers[0].return_sequences
    w = load_model(saved["no_bias"].paths[fmt]).layers[0].directions[0]
    assert not np.any(w.b) and len(w.provenance.stored) == 2
    assert {s.name: s.value for s in w.provenance.settings}["use_bias"] is False


@pytest.mark.parametrize("fmt", FULL_FORMATS)
def test_dense_between_lstms_is_run(saved: dict[str, Saved], fmt: str) -> None:
    s = saved["dense_between"]
    model = load_model(s.paths[fmt])
    kinds = [i.kind for i in model.all_layers if i.kind != "InputLayer"]
    assert kinds == ["LSTM", "Dropout", "Dense", "LSTM", "Dense"]
    dense = next(i for i in model.all_layers if i.kind == "Dense")
    assert [shape for _, shape in dense.weights] == [(4, 4), (4,)]
    assert len(model.layers) == 2
    assert [(t.kind, t.W.shape) for t in model.layers[1].before] == [("Dense", (4, 4))]
    assert [(t.kind, t.W.shape) for t in model.head] == [("Dense", (2, 3))]
    _compare(model, s)  # the second LSTM sees the Dense output, as in Keras
    want = s.model.predict(s.x[None], verbose=0)[0]
    np.testing.assert_allclose(lstmviz.run(model, s.x).network_output, want, atol=1e-5)


@pytest.mark.parametrize("fmt", [*FULL_FORMATS, "weights.h5"])
def test_nested_model(saved: dict[str, Saved], fmt: str) -> None:
    s = saved["nested"]
    model = load_model(s.paths[fmt])
    assert [layer.name for layer in model.layers][-1] == "outer_lstm"
    want = s.model.predict(s.x[None], verbose=0)[0]
    np.testing.assert_allclose(lstmviz.run(model, s.x).output, want, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def embedding_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, keras.Model]:
    rng = np.random.default_rng(5)
    inp = keras.Input((T,), dtype="int32")
    lstm = L.LSTM(4, return_sequences=True)
    model = keras.Model(inp, L.Dense(2)(lstm(L.Embedding(10, D)(inp))))
    _randomize(model, rng)
    path = tmp_path_factory.mktemp("emb") / "emb.keras"
    model.save(path)
    return path, model


def test_embedding_goes_to_model_embedding(embedding_file: tuple[Path, keras.Model]) -> None:
    path, kmodel = embedding_file
    model = load_model(path)
    table = np.asarray(kmodel.layers[1].embeddings)
    assert model.embedding is not None
    np.testing.assert_array_equal(model.embedding, table)
    tokens = np.array([[1, 4, 9, 0, 4]], dtype="int32")
    sub = keras.Model(kmodel.inputs, kmodel.layers[2].output)
    want = np.asarray(sub.predict(tokens, verbose=0))[0]
    got = lstmviz.run(model, model.embedding[tokens[0]]).output
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert [i.kind for i in model.all_layers][1:] == ["Embedding", "LSTM", "Dense"]


def test_bfloat16_weights_are_widened(tmp_path: Path) -> None:
    inp = keras.Input((T, D))
    layer = L.LSTM(3, return_sequences=True, dtype="bfloat16", recurrent_initializer="zeros")
    kmodel = keras.Model(inp, layer(inp))
    _randomize(kmodel, np.random.default_rng(9))
    path = tmp_path / "bf16.weights.h5"
    kmodel.save_weights(path)
    with h5py.File(path) as f:
        assert f["layers/lstm/cell/vars/0"].attrs["dtype"] == "bfloat16"
    w = load_model(path).layers[0].directions[0]
    kernel = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(layer.cell.kernel, "float32")))
    np.testing.assert_array_equal(w.W_x, kernel.T)
    assert w.W_x.dtype == np.float32
    assert w.provenance.stored[0].dtype == "bfloat16"
    assert any("widened to float32" in n for n in w.provenance.notes)


@pytest.mark.parametrize(("features", "count"), [(1, 12), (2, 16)])
def test_classic_parameter_counts(tmp_path: Path, features: int, count: int) -> None:
    kmodel = keras.Sequential([keras.Input((T, features)), L.LSTM(1)])
    assert kmodel.count_params() == count
    path = tmp_path / "one_unit.keras"
    kmodel.save(path)
    model = load_model(path)
    assert model.layers[0].n_params == count == model.n_params
    text = model_summary(model)
    assert f"{count} parameters" in text or f"{count} canonical parameters" in text


def test_unit_forget_bias_is_noted_not_added(saved: dict[str, Saved]) -> None:
    w = load_model(saved["single"].paths["keras"]).layers[0].directions[0]
    setting = w.provenance.setting("unit_forget_bias")
    assert setting is not None and setting.value is True and not setting.assumed
    kernel, rec, bias = (np.asarray(v) for v in saved["single"].model.layers[1].get_weights())
    np.testing.assert_array_equal(w.b, bias)  # exactly as stored: no +1 added
    np.testing.assert_array_equal(w.W_x, kernel.T)
    np.testing.assert_array_equal(w.W_h, rec.T)


@pytest.mark.parametrize("fmt", ["keras", "weights.h5", "h5"])
def test_format_is_sniffed_not_taken_from_the_name(
    saved: dict[str, Saved], fmt: str, tmp_path: Path
) -> None:
    s = saved["stacked"]
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(s.paths[fmt].read_bytes())
    a, b = load_model(renamed), load_model(s.paths[fmt])
    assert a.source_format == b.source_format
    np.testing.assert_array_equal(a.layers[1].directions[0].W_h, b.layers[1].directions[0].W_h)


def test_tf_keras_213_checkpoint_dependencies_tree(saved: dict[str, Saved], tmp_path: Path) -> None:
    """tf.keras 2.13–2.15 wrote ``_layer_checkpoint_dependencies`` where Keras 3 writes
    ``layers``. Crafted: a real Keras 3 weights file with its top group renamed."""
    path = tmp_path / "tfk213.weights.h5"
    path.write_bytes(saved["stacked"].paths["weights.h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        f.move("layers", "_layer_checkpoint_dependencies")
    model = load_model(path)
    _compare(model, saved["stacked"])
    stored = model.layers[0].directions[0].provenance.stored[0].name
    assert stored.startswith("_layer_checkpoint_dependencies/lstm")


def test_real_chunked_layer_names(tmp_path: Path) -> None:
    """270 long-named Dropouts push ``layer_names`` past 64 KB: Keras itself splits it into
    ``layer_names0, layer_names1`` (CONVENTIONS §3.2), and both LSTMs are still found."""
    layers: list = [keras.Input((T, D)), L.LSTM(3, return_sequences=True, name="first")]
    layers += [L.Dropout(0.1, name=f"dropout_{k:04d}_" + "n" * 240) for k in range(270)]
    kmodel = keras.Sequential([*layers, L.LSTM(2, return_sequences=True, name="last")])
    _randomize(kmodel, np.random.default_rng(12))
    path = tmp_path / "many.h5"
    kmodel.save(path)
    with h5py.File(path) as f:
        assert "layer_names" not in f["model_weights"].attrs
        assert "layer_names1" in f["model_weights"].attrs
    model = load_model(path)
    assert [layer.name for layer in model.layers] == ["first", "last"]
    x = np.random.default_rng(13).normal(size=(T, D)).astype(np.float32)
    want = kmodel.predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(lstmviz.run(model, x).output, want, atol=1e-5, rtol=0)
