"""The Dense head after the last LSTM, against Keras' own predictions (KERAS_BACKEND=torch).

Each model is built and saved by Keras 3 as ``.keras`` and legacy ``.h5``; lstmviz's
``trace.head_output`` must equal ``model.predict`` within 1e-5 (every step for
return_sequences=True, the last row otherwise). Weights-only files carry no activations, so
they get no head; layers that are not a plain Dense chain end it.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import lstmviz

T, D = 6, 3
L = keras.layers


def sequential_softmax() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((T, D)),
            L.LSTM(4, return_sequences=True),
            L.Dropout(0.3),
            L.Dense(5, activation="relu"),
            L.Dense(3, activation="softmax"),
        ]
    )


def functional_branches() -> keras.Model:
    """TimeDistributed(Dense) + Activation on the LSTM; a side branch from the input is not
    part of the head; the model's output is the head's."""
    i = keras.Input((T, D))
    side = L.Dense(2, name="side")(i)  # noqa: F841  (a layer the head must not take)
    x = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum")(i)
    x = L.TimeDistributed(L.Dense(2, use_bias=False))(x)
    x = L.Activation("tanh")(x)
    return keras.Model(i, x)


def last_step_only() -> keras.Model:
    return keras.Sequential(
        [keras.Input((T, D)), L.LSTM(4), L.Dense(2, activation="sigmoid", name="score")]
    )


def flatten_after() -> keras.Model:
    return keras.Sequential(
        [keras.Input((T, D)), L.LSTM(2, return_sequences=True), L.Flatten(), L.Dense(1)]
    )


def bidi_last_step() -> keras.Model:
    """Keras merges the forward direction's last step with the backward one's (t = 0)."""
    return keras.Sequential(
        [keras.Input((T, D)), L.Bidirectional(L.LSTM(3)), L.Dense(2, name="score")]
    )


BUILDERS = {
    "sequential_softmax": sequential_softmax,
    "functional_branches": functional_branches,
    "last_step_only": last_step_only,
    "bidi_last_step": bidi_last_step,
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_head")
    rng = np.random.default_rng(0)
    out = {}
    for name, build in {**BUILDERS, "flatten_after": flatten_after}.items():
        model = build()
        for w in model.weights:
            w.assign(rng.normal(size=w.shape).astype("float32") * 0.7)
        x = rng.normal(size=(1, T, D)).astype("float32")
        want = np.asarray(model.predict(x, verbose=0))[0]
        paths = {"keras": folder / f"{name}.keras", "h5": folder / f"{name}.h5"}
        model.save(paths["keras"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(paths["h5"])
        model.save_weights(folder / f"{name}.weights.h5")
        out[name] = (x[0], want, paths, folder / f"{name}.weights.h5")
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_head_output_matches_keras(saved, name, fmt):
    x, want, paths, _ = saved[name]
    model = lstmviz.load_model(paths[fmt])
    assert model.head, model.notes
    trace = lstmviz.run(model, x)
    assert np.abs(want).max() > 0.05  # a real signal at this tolerance
    np.testing.assert_allclose(trace.final_output, want, atol=1e-5, rtol=0)
    if want.ndim == 2:
        np.testing.assert_allclose(trace.head_output, want, atol=1e-5, rtol=0)
    elif name == "last_step_only":  # one direction: the last row is the framework's output
        np.testing.assert_allclose(trace.head_output[-1], want, atol=1e-5, rtol=0)
    assert trace.network_output is trace.head_output


def test_head_layers_and_notes(saved):
    m = lstmviz.load_model(saved["sequential_softmax"][2]["keras"])
    assert [(d.kind, d.activation.name, d.W.shape) for d in m.head] == [
        ("Dense", "relu", (5, 4)),
        ("Dense", "softmax", (3, 5)),
    ]
    m = lstmviz.load_model(saved["functional_branches"][2]["keras"])
    assert [(d.kind, d.activation.name, d.b) for d in m.head] == [
        ("TimeDistributed(Dense)", "tanh", None)
    ]
    m = lstmviz.load_model(saved["last_step_only"][2]["h5"])
    assert any("return_sequences=False" in n and "'score'" in n for n in m.notes)


def test_no_head_without_a_config_or_a_dense_chain(saved):
    for name in BUILDERS:
        assert lstmviz.load_model(saved[name][3]).head == ()  # weights-only: no activations
    m = lstmviz.load_model(saved["flatten_after"][2]["keras"])
    assert m.head == ()
    assert lstmviz.run(m, saved["flatten_after"][0]).head_output is None


def between_layers() -> keras.Model:
    """Every per-step layer lstmviz runs, between LSTMs and in the head."""
    i = keras.Input((T, D))
    x = L.LSTM(4, return_sequences=True)(i)
    x = L.LayerNormalization(epsilon=1e-2)(x)
    x = L.TimeDistributed(L.Dense(5))(x)
    x = L.Activation("relu")(x)
    x = L.LSTM(3, return_sequences=True)(x)
    x = L.BatchNormalization()(x)
    x = L.Dense(2, activation="tanh")(x)
    return keras.Model(i, x)


def residual_between() -> keras.Model:
    i = keras.Input((T, D))
    a = L.LSTM(3, return_sequences=True)(i)
    b = L.Add()([a, L.Dense(3)(a)])
    c = L.LSTM(2, return_sequences=True)(b)
    return keras.Model(i, L.GlobalAveragePooling1D()(c))


@pytest.fixture(scope="module")
def more(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_between")
    rng = np.random.default_rng(1)
    out = {}
    for build in (between_layers, residual_between):
        model = build()
        for w in model.weights:
            arr = rng.normal(size=w.shape).astype("float32") * 0.7
            if "variance" in w.path:
                arr = np.abs(arr) + 0.5
            w.assign(arr)
        x = rng.normal(size=(1, T, D)).astype("float32")
        path = folder / f"{build.__name__}.keras"
        model.save(path)
        out[build.__name__] = (model, x, path)
    return out


def test_layers_between_lstms_and_in_the_head_are_run(more):
    model_k, x, path = more["between_layers"]
    model = lstmviz.load_model(path)
    assert [t.kind for t in model.layers[1].before] == [
        "LayerNormalization",
        "TimeDistributed(Dense)",  # the Activation after it folded in
    ]
    assert model.layers[1].before[1].activation.name == "relu"
    assert [t.kind for t in model.head] == ["BatchNormalization", "Dense"]
    trace = lstmviz.run(model, x[0])
    lstm1 = keras.Model(model_k.inputs, model_k.layers[5].output)  # the second LSTM
    np.testing.assert_allclose(
        trace.layers[1].output, np.asarray(lstm1.predict(x, verbose=0))[0], atol=1e-5
    )
    want = np.asarray(model_k.predict(x, verbose=0))[0]
    assert np.abs(want).max() > 0.05
    np.testing.assert_allclose(trace.network_output, want, atol=1e-5)


def test_a_layer_lstmviz_cannot_run_ends_the_chain_or_the_head(more):
    path = more["residual_between"][2]
    model = lstmviz.load_model(path)
    assert len(model.layers) == 1  # Add (a residual) between: the second LSTM is not run
    assert any("Add" in n and "only the LSTMs up to" in n for n in model.notes), model.notes
    assert model.head == ()
    flat = keras.Sequential(
        [keras.Input((T, D)), L.LSTM(2, return_sequences=True), L.GlobalAveragePooling1D()]
    )
    flat_path = path.with_name("pool_after.keras")
    flat.save(flat_path)
    m = lstmviz.load_model(flat_path)
    assert m.head == ()
    assert any("GlobalAveragePooling1D" in n and "is not run by lstmviz" in n for n in m.notes)


def test_a_residual_after_the_last_lstm_leaves_no_head(tmp_path):
    i = keras.Input((T, D))
    a = L.LSTM(3, return_sequences=True)(i)
    model = keras.Model(i, L.Add()([a, L.Dense(3)(a)]))
    model.save(tmp_path / "residual_head.keras")
    m = lstmviz.load_model(tmp_path / "residual_head.keras")
    assert m.head == ()
    assert any("Add" in n and "merges" in n for n in m.notes), m.notes
