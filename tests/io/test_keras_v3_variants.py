"""More Keras 3 models (KERAS_BACKEND=torch), each packing several variants, saved as
``.keras``, legacy ``.h5`` and ``.weights.h5``, loaded by lstmviz and run: every LSTM layer's
output must match what Keras computes for that layer (a sub-model up to it) within 1e-5.

Variants: LSTM not first (TimeDistributed Dense before), Masking, return_state, unroll,
use_bias=False, custom Bidirectional backward_layer with every merge mode, nested Sequential,
RNN(LSTMCell), RNN(StackedRNNCells) with go_backwards, Bidirectional(RNN(LSTMCell)), every
activation lstmviz knows, layer names out of order or equal to class names, branches and a
second input (wiring), mask_zero, float16/bfloat16/mixed dtype policies, weights-only order.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.io import ChoiceRequired, LoadError, load_model

T, D = 5, 3
L = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore:Layer 'block' .* does not support masking")
FORMATS = ("keras", "h5", "weights.h5")


@dataclass
class Case:
    model: keras.Model
    probes: dict[int, keras.KerasTensor]  # lstmviz layer index → Keras tensor of its output
    lstm_input: keras.KerasTensor | None = None  # what lstmviz gets as x, if not the input
    scale: float = 0.6  # weight scale (small for unbounded activations)
    defaults_only: bool = False  # a weights-only file can run it too
    layer: str | None = None  # layer= for a model whose LSTMs form several chains


def kitchen() -> Case:
    """TimeDistributed(Dense) → Masking → LSTM(relu, hard_sigmoid, return_state) → Dropout →
    Bidirectional(sum, custom softsign backward) → nested [LSTM(unroll, no bias), LSTM(back)]
    → RNN(LSTMCell(elu)) → TimeDistributed(Dense)."""
    i = keras.Input((T, D))
    pre = L.Masking(-99.0)(L.TimeDistributed(L.Dense(D))(i))
    o, _, _ = L.LSTM(
        4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True,
        return_state=True,
    )(pre)  # fmt: skip
    back = L.LSTM(3, return_sequences=True, go_backwards=True, activation="softsign")
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True), backward_layer=back, merge_mode="sum")
    b = bi(L.Dropout(0.5)(o))
    block = keras.Sequential(
        [
            L.LSTM(3, return_sequences=True, unroll=True, use_bias=False),
            L.LSTM(2, return_sequences=True, go_backwards=True),
        ],
        name="block",
    )
    n = block(b)
    r = L.RNN(L.LSTMCell(2, activation="elu"), return_sequences=True)(n)
    model = keras.Model(i, L.TimeDistributed(L.Dense(1))(r))
    return Case(model, {0: o, 1: b, 3: n, 4: r}, lstm_input=pre)


def merges() -> Case:
    """Every merge mode, each with a custom backward_layer of other activations."""
    i = keras.Input((T, D))

    def back(units: int, **kw: object) -> L.LSTM:
        return L.LSTM(units, return_sequences=True, go_backwards=True, **kw)

    a = L.Bidirectional(
        L.LSTM(3, return_sequences=True), backward_layer=back(3, activation="relu")
    )(i)
    m = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="mul")(a)
    v = L.Bidirectional(
        L.LSTM(2, return_sequences=True),
        backward_layer=back(2, recurrent_activation="hard_sigmoid"),
        merge_mode="ave",
    )(m)
    s = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="sum")(v)
    n = L.Bidirectional(L.LSTM(2, return_sequences=True), backward_layer=back(2), merge_mode=None)(
        s
    )
    return Case(keras.Model(i, n), {0: a, 1: m, 2: v, 3: s, 4: n})


#: (activation, recurrent_activation) of each LSTM of four stacks: every activation lstmviz
#: knows, in orders that keep the signal alive through each stack.
ACTIVATIONS = {
    "act_a": [("softsign", "softplus"), ("elu", "hard_sigmoid"), ("exponential", "sigmoid"),
              ("silu", "sigmoid")],
    "act_b": [("selu", "relu6"), ("sigmoid", "elu"), ("leaky_relu", "sigmoid")],
    "act_c": [("tanh", "swish"), ("relu6", "sigmoid"), ("softplus", "linear")],
    "act_d": [("relu", "leaky_relu"), ("linear", "sigmoid"), ("tanh", "exponential"),
              ("swish", "softsign")],
    "act_e": [("gelu", "sigmoid"), ("squareplus", "hard_silu")],  # tanh_shrink, *_shrink: too
              # weak a signal for a stack; checked against Keras in test_activations_keras3
    "act_f": [("mish", "sparse_sigmoid"), ("sparse_plus", "sigmoid"), ("celu", "sigmoid")],
    "act_g": [("hard_tanh", "sigmoid"), ("tanh", "log_sigmoid")],
}  # fmt: skip


def activations(group: str) -> Case:
    i = keras.Input((T, D))
    x, probes = i, {}
    for k, (act, rec) in enumerate(ACTIVATIONS[group]):
        x = L.LSTM(3, activation=act, recurrent_activation=rec, return_sequences=True)(x)
        probes[k] = x
    return Case(keras.Model(i, x), probes, scale=0.4)


def cells() -> Case:
    """Bidirectional(RNN(LSTMCell)) → RNN(StackedRNNCells), go_backwards, last step only."""
    i = keras.Input((T, D))
    b = L.Bidirectional(L.RNN(L.LSTMCell(3), return_sequences=True))(i)
    r = L.RNN(
        [L.LSTMCell(3), L.LSTMCell(2, recurrent_activation="hard_sigmoid")], go_backwards=True
    )(b)
    return Case(keras.Model(i, r), {0: b, 2: r})


def names() -> Case:
    """Sequential without Input (built later); names out of order and equal to class names:
    the Keras 3 weights path follows the class, the legacy HDF5 group the name."""
    model = keras.Sequential(
        [
            L.LSTM(4, return_sequences=True, name="lstm_1"),
            L.LSTM(3, return_sequences=True, name="lstm"),
            L.Bidirectional(L.LSTM(2, return_sequences=True), name="lstm_2"),
            L.LSTM(2, return_sequences=True, name="bidirectional"),
            L.LSTM(2, name="lstm_10"),
        ]
    )
    model.build((None, T, D))
    return Case(model, {k: model.layers[k].output for k in range(5)}, defaults_only=True)


def wiring() -> Case:
    """Tokens → Embedding(mask_zero) → LSTM a → LSTM c; LSTM b branches off the embedding."""
    i = keras.Input((T,), dtype="int32")
    e = L.Embedding(10, D, mask_zero=True)(i)
    a = L.LSTM(4, return_sequences=True, name="a")(e)
    b = L.LSTM(4, return_sequences=True, name="b")(e)
    c = L.LSTM(3, return_sequences=True, name="c")(a)
    return Case(keras.Model(i, L.Concatenate()([b, c])), {0: a, 1: c}, layer="a")


def nested_order() -> Case:
    """Bidirectional → nested Sequential[LSTM] → LSTM: a weights-only file sorts its groups
    by class (bidirectional, lstm, sequential), so only the widths tell the order."""
    i = keras.Input((T, D))
    b = L.Bidirectional(L.LSTM(3, return_sequences=True))(i)
    n = keras.Sequential([L.LSTM(4, return_sequences=True)], name="inner")(b)
    o = L.LSTM(2, return_sequences=True)(n)
    return Case(keras.Model(i, o), {0: b, 1: n, 2: o}, defaults_only=True)


CASES: dict[str, Callable[[], Case]] = {
    "kitchen": kitchen,
    "merges": merges,
    **{group: (lambda group=group: activations(group)) for group in ACTIVATIONS},
    "cells": cells,
    "names": names,
    "wiring": wiring,
    "nested_order": nested_order,
}


@dataclass
class Saved:
    case: Case
    x: np.ndarray  # the model input (T, D) or tokens (T,)
    lstm_x: np.ndarray  # what lstmviz runs
    outputs: dict[int, np.ndarray]
    paths: dict[str, Path]


def _randomize(model: keras.Model, rng: np.random.Generator, scale: float) -> None:
    for w in model.weights:
        w.assign(rng.normal(0, scale, size=w.shape).astype("float32"))


def _predict(model: keras.Model, tensor: keras.KerasTensor, x: np.ndarray) -> np.ndarray:
    y = keras.Model(model.inputs, tensor).predict(x[None], verbose=0)
    if isinstance(y, (list, tuple)):  # merge_mode=None: shown concatenated
        y = np.concatenate(y, axis=-1)
    return np.asarray(y, dtype=np.float32)[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    folder = tmp_path_factory.mktemp("keras3_variants")
    out = {}
    for name, build in CASES.items():
        rng = np.random.default_rng(zlib.crc32(name.encode()))  # each case on its own seed
        case = build()
        _randomize(case.model, rng, case.scale)
        if case.model.inputs[0].dtype.startswith("int"):
            x = rng.integers(1, 10, size=T).astype("int32")
        else:
            x = rng.normal(size=(T, D)).astype(np.float32)
        lstm_x = x if case.lstm_input is None else _predict(case.model, case.lstm_input, x)
        outputs = {k: _predict(case.model, t, x) for k, t in case.probes.items()}
        paths = {fmt: folder / f"{name}.{fmt}" for fmt in FORMATS}
        case.model.save(paths["keras"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.model.save(paths["h5"])
        case.model.save_weights(paths["weights.h5"])
        out[name] = Saved(case, x, lstm_x, outputs, paths)
    return out


def _compare(s: Saved, fmt: str) -> lstmviz.core.model.LSTMModel:
    options = {"layer": s.case.layer} if s.case.layer and fmt != "weights.h5" else {}
    model = load_model(s.paths[fmt], **options)
    x = s.lstm_x if model.embedding is None else model.embedding[s.x]
    trace = lstmviz.run(model, x)
    for k, want in s.outputs.items():
        got = trace.layers[k].output if want.ndim == 2 else trace.layers[k].last_output
        assert got.shape == want.shape, (fmt, k)
        assert np.abs(want).max() > 0.02  # a real signal at this tolerance
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{fmt} layer {k}")
    return model


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", list(CASES))
def test_every_lstm_matches_keras(saved: dict[str, Saved], name: str, fmt: str) -> None:
    _compare(saved[name], fmt)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n]().defaults_only])
def test_weights_only_file_matches_keras(saved: dict[str, Saved], name: str) -> None:
    _compare(saved[name], "weights.h5")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_kitchen_settings_and_notes(saved: dict[str, Saved], fmt: str) -> None:
    model = load_model(saved["kitchen"].paths[fmt])
    first, bi, inner0, inner1, rnn = model.layers
    assert first.directions[0].act_gate.name == "hard_sigmoid_k3"
    assert first.directions[0].act_cand.name == "relu"
    assert bi.merge_mode is MergeMode.SUM
    merge = bi.directions[1].provenance.setting("merge_mode")
    assert merge is not None and merge.value == "sum" and not merge.assumed
    assert bi.directions[1].act_cand.name == "softsign" and bi.directions[0].act_cand.name == "tanh"
    assert not np.any(inner0.directions[0].b)
    assert inner1.output_order is OutputOrder.PROCESSING
    assert rnn.kind == "LSTM" and rnn.directions[0].act_cand.name == "elu"
    assert any("Masking(mask_value=-99.0)" in n for n in model.notes)
    assert any("TimeDistributed" in n and "not run" in n for n in model.notes)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_wiring_skips_the_branch_and_keeps_the_embedding(saved: dict[str, Saved], fmt: str) -> None:
    """Keras 3 writes the mask as a NotEqual op layer; it must not hide the Embedding."""
    with pytest.raises(ChoiceRequired) as info:
        load_model(saved["wiring"].paths[fmt], ask_choices=True)
    assert info.value.option == "layer" and info.value.choices == ("a", "b")
    default = load_model(saved["wiring"].paths[fmt])
    assert [layer.name for layer in default.layers] == ["a", "c"]
    model = load_model(saved["wiring"].paths[fmt], layer="a")
    assert [layer.name for layer in model.layers] == ["a", "c"]
    assert model.embedding is not None
    assert any("'b' is not run" in n for n in model.notes)
    assert any("mask_zero=True" in n for n in model.notes)
    assert not any("no weights found" in n for n in model.notes)
    info = {i.name: i.note for i in model.all_layers}
    assert info["b"].startswith("not run")


def test_weights_only_keeps_numbered_order(saved: dict[str, Saved]) -> None:
    """Without a config, lstm (a) → lstm_1 (b) is Keras' layer order; b does not fit after a,
    and the chain ends there rather than being reordered into a → c → b (which fits)."""
    s = saved["wiring"]
    model = load_model(s.paths["weights.h5"])
    assert len(model.layers) == 1
    assert model.layers[0].directions[0].provenance.stored[0].name.startswith("layers/lstm/")
    assert any("only the LSTMs up to" in n for n in model.notes)
    got = lstmviz.run(model, model.embedding[s.x]).layers[0].output
    np.testing.assert_allclose(got, s.outputs[0], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, keras.Model]:
    enc_in, dec_in = keras.Input((T, D)), keras.Input((T, D))
    _, h, c = L.LSTM(3, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(3, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], dec)
    path = tmp_path_factory.mktemp("s2s") / "s2s.keras"
    model.save(path)
    return path, model


def test_second_input_and_initial_state(seq2seq: tuple[Path, keras.Model]) -> None:
    path, kmodel = seq2seq
    with pytest.raises(ChoiceRequired) as info:
        load_model(path, ask_choices=True)
    assert info.value.choices == ("encoder", "decoder")
    assert [layer.name for layer in load_model(path).layers] == ["encoder"]
    model = load_model(path, layer="encoder")
    assert [layer.name for layer in model.layers] == ["encoder"]
    assert any("'decoder' is not run: its input comes from a model input" in n for n in model.notes)
    x = np.random.default_rng(2).normal(size=(T, D)).astype(np.float32)
    encoder = keras.Model(kmodel.inputs[0], kmodel.get_layer("encoder").output[0])
    want = encoder.predict(x[None], verbose=0)[0]
    got = lstmviz.run(model, x).layers[0].last_output
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_low_precision_policies(tmp_path: Path, dtype: str, fmt: str) -> None:
    """Half-precision weights are widened; the reference is a float32 twin holding the same
    (rounded) weights, and Keras' own half-precision outputs agree to ~1e-2."""
    rng = np.random.default_rng(4)
    i = keras.Input((T, D))
    layer = L.LSTM(4, return_sequences=True, dtype=dtype, recurrent_initializer="glorot_uniform")
    kmodel = keras.Model(i, layer(i))
    _randomize(kmodel, rng, 0.6)
    j = keras.Input((T, D))
    twin_layer = L.LSTM(4, return_sequences=True)
    twin = keras.Model(j, twin_layer(j))
    twin_layer.set_weights(
        [keras.ops.convert_to_numpy(keras.ops.cast(w, "float32")) for w in layer.weights]
    )
    x = rng.normal(size=(T, D)).astype(np.float32)
    path = tmp_path / f"m.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (kmodel.save_weights if fmt == "weights.h5" else kmodel.save)(path)
    model = load_model(path)
    got = lstmviz.run(model, x).output
    np.testing.assert_allclose(got, twin.predict(x[None], verbose=0)[0], atol=1e-5, rtol=0)
    own = keras.ops.convert_to_numpy(keras.ops.cast(kmodel(x[None]), "float32"))[0]
    np.testing.assert_allclose(got, own, atol=2e-2, rtol=0)
    notes = model.layers[0].directions[0].provenance.notes
    if not dtype.startswith("mixed"):
        assert any(f"stored as {dtype}, widened to float32" in n for n in notes)
    if fmt != "weights.h5":
        assert any(f"dtype policy '{dtype}'" in n for n in notes)


def test_unzipped_model_folder(tmp_path: Path) -> None:
    kmodel = keras.Sequential([keras.Input((T, D)), L.LSTM(3, return_sequences=True)])
    keras.saving.save_model(kmodel, tmp_path / "folder", zipped=False)
    model = load_model(tmp_path / "folder")
    x = np.random.default_rng(6).normal(size=(T, D)).astype(np.float32)
    np.testing.assert_allclose(
        lstmviz.run(model, x).output, kmodel.predict(x[None], verbose=0)[0], atol=1e-5, rtol=0
    )


def test_time_distributed_lstm_is_refused_by_name(tmp_path: Path) -> None:
    kmodel = keras.Sequential(
        [keras.Input((2, T, D)), L.TimeDistributed(L.LSTM(3, return_sequences=True))]
    )
    path = tmp_path / "td.keras"
    kmodel.save(path)
    with pytest.raises(LoadError, match=r"TimeDistributed\(LSTM\) — an LSTM run on each time"):
        load_model(path)


def test_weights_only_bidirectional_merge_is_told_from_widths(saved: dict[str, Saved]) -> None:
    """Without a config, a Bidirectional whose next layer takes H (not 2H) inputs merged with
    sum, mul or ave: the layer order still follows, and the note says so."""
    model = load_model(saved["merges"].paths["weights.h5"])
    stored = [layer.directions[0].provenance.stored[0].name for layer in model.layers]
    assert [s.split("/")[1] for s in stored] == ["bidirectional", "bidirectional_1"]
    # concat is what lstmviz can assume, so the chain stops where H inputs follow
    assert any("merge_mode was sum, mul or ave" in n for n in model.notes)
    merge = model.layers[0].directions[0].provenance.setting("merge_mode")
    assert merge is not None and merge.value == "concat" and merge.assumed


@keras.saving.register_keras_serializable(package="lstmviz_tests")
class _Subclassed(keras.Model):
    """Layers as attributes (saved by attribute name, alphabetically) and in a list."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.encoder = L.LSTM(4, return_sequences=True)
        self.blocks = [
            L.LSTM(3, return_sequences=True),
            L.Bidirectional(L.LSTM(2, return_sequences=True)),
        ]
        self.head = L.Dense(1)

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@pytest.mark.parametrize("fmt", ["keras", "weights.h5"])
def test_subclassed_model(tmp_path: Path, fmt: str) -> None:
    """No layer list in the config: the tree is walked, the list keeps its written order and
    the attributes (blocks < encoder < head by name) are ordered by widths."""
    kmodel = _Subclassed()
    x = np.random.default_rng(14).normal(size=(T, D)).astype(np.float32)
    kmodel(x[None])
    _randomize(kmodel, np.random.default_rng(15), 0.5)
    h0 = kmodel.encoder(x[None])
    h1 = kmodel.blocks[0](h0)
    wants = [keras.ops.convert_to_numpy(h)[0] for h in (h0, h1, kmodel.blocks[1](h1))]
    path = tmp_path / f"sub.{fmt}"
    (kmodel.save_weights if fmt == "weights.h5" else kmodel.save)(path)
    model = load_model(path)
    trace = lstmviz.run(model, x)
    assert len(model.layers) == 3
    for k, want in enumerate(wants):
        np.testing.assert_allclose(trace.layers[k].output, want, atol=1e-5, rtol=0)
