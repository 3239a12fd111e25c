"""Keras GRU, CuDNNGRU and SimpleRNN layers (alone, bidirectional, mixed with LSTMs) load as
canonical GRU/RNN directions and reproduce Keras.

Keras 2: committed tf.keras 2.21 legacy ``.h5`` files (tests/fixtures/gru/tf/keras2, made by
make_fixtures.py with TensorFlow). Keras 3: models built here (KERAS_BACKEND=torch), saved as
``.keras``, legacy ``.h5`` and ``.weights.h5``; every recurrent layer's output must match what
Keras computes for it (a sub-model up to it) within 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from test_gru_common import FIXTURES, check_layers

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.core.rnn import RNNDirection

K2 = FIXTURES / "tf" / "keras2"
L = keras.layers
T, D = 5, 3


def _k2_wants(stem: str) -> tuple[np.ndarray, list[np.ndarray]]:
    e = np.load(K2 / f"{stem}.expected.npz")
    return e["x"], [e[f"y{k}"] for k in range(len(e.files) - 1)]


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("gru_stack.h5", ["GRU", "GRU"]),
        (
            "bidi_simple.h5",
            ["Bidirectional(GRU)", "SimpleRNN", "Bidirectional(SimpleRNN)", "GRU"],
        ),
        ("mixed.h5", ["LSTM", "GRU", "LSTM"]),
        ("cudnn_gru.h5", ["CuDNNGRU"]),
        ("cudnn_gru_weights.h5", ["CuDNNGRU"]),
    ],
)
def test_tf_keras2_files_match_tf_keras(name: str, kinds: list[str]) -> None:
    model = lstmviz.load_model(K2 / name)
    assert [layer.kind for layer in model.layers] == kinds
    assert model.framework.startswith("tf.keras 2.21")
    x, wants = _k2_wants(name.removesuffix(".h5"))
    check_layers(model, x, wants)


def test_keras2_gru_settings_come_from_the_config() -> None:
    first, second = lstmviz.load_model(K2 / "gru_stack.h5").layers
    a, b = first.directions[0], second.directions[0]
    assert isinstance(a, GRUDirection) and isinstance(b, GRUDirection)
    assert a.reset_after and not b.reset_after
    assert b.act_gate.name == "hard_sigmoid_k2"  # tf.keras 2: slope 0.2
    assert a.provenance.gate_order == ("z", "r", "h") and a.provenance.perm == (1, 0, 2)
    reset = b.provenance.setting("reset_after")
    assert reset is not None and not reset.assumed and reset.note == "read from the model config"
    assert not b.b_h.any()  # one stored bias: b_h = 0


def test_keras2_weights_only_gru_reads_reset_after_from_the_bias() -> None:
    """No config: reset_after from the bias shape ((2, 3H) or (3H,)); the activations are
    assumed (sigmoid), so the hard_sigmoid layer differs from tf.keras until told."""
    model = lstmviz.load_model(K2 / "gru_stack_weights.h5")
    a, b = (layer.directions[0] for layer in model.layers)
    assert a.reset_after and not b.reset_after
    assert not b.provenance.setting("reset_after").assumed  # type: ignore[union-attr]
    rec = b.provenance.setting("recurrent_activation")
    assert rec is not None and rec.assumed and rec.value == "sigmoid"
    x, wants = _k2_wants("gru_stack_weights")
    check_layers(model.replace(layers=model.layers[:1]), x, wants[:1])


def test_cudnn_gru_layout() -> None:
    """CuDNNGRU: kernel gate blocks reinterpreted (H, D), recurrent blocks as stored, the flat
    [6H] bias split into input and recurrent halves, Keras' z, r, h order."""
    import h5py

    with h5py.File(K2 / "cudnn_gru.h5") as f:
        group = f["model_weights/cu_dnngru/cu_dnngru"]
        kernel, rec, bias = (
            np.asarray(group[k]) for k in ("kernel:0", "recurrent_kernel:0", "bias:0")
        )
    d = lstmviz.load_model(K2 / "cudnn_gru.h5").layers[0].directions[0]
    H, D_in = 4, 3
    # canonical r = stored block 1, z = block 0, n = block 2
    np.testing.assert_array_equal(d.W_x[:H], kernel[:, H : 2 * H].reshape(H, D_in))
    np.testing.assert_array_equal(d.W_h[H : 2 * H], rec[:, :H])
    np.testing.assert_array_equal(d.b_x[2 * H :], bias[2 * H : 3 * H])
    np.testing.assert_array_equal(d.b_h[:H], bias[4 * H : 5 * H])
    assert d.reset_after and d.act_gate.name == "sigmoid"
    assert any("reinterpreted" in t for t in d.provenance.transforms)


# ----------------------------------------------------------------------------- Keras 3
def _seq(*layers: keras.layers.Layer) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    def apply(x: keras.KerasTensor) -> keras.KerasTensor:
        for layer in layers:
            x = layer(x)
        return x

    return apply


BUILDERS: dict[str, Callable[[], Callable]] = {
    "gru": lambda: _seq(L.GRU(4, return_sequences=True), L.GRU(3, return_sequences=False)),
    "gru_before": lambda: _seq(
        L.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True)
    ),
    "bi_gru": lambda: _seq(
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="ave"),
        L.GRU(2, go_backwards=True, return_sequences=True),
    ),
    "simple": lambda: _seq(
        L.SimpleRNN(4, return_sequences=True),
        L.Bidirectional(L.SimpleRNN(2, activation="relu", return_sequences=True)),
    ),
    "mixed": lambda: _seq(
        L.LSTM(4, return_sequences=True),
        L.GRU(3, return_sequences=True),
        L.SimpleRNN(2, return_sequences=True),
    ),
}
#: Models whose settings are all Keras defaults, so a config-less weights file runs them right.
DEFAULTS_ONLY = ("gru", "mixed")
KINDS = {
    "gru": ["GRU", "GRU"],
    "gru_before": ["GRU"],
    "bi_gru": ["Bidirectional(GRU)", "GRU"],
    "simple": ["SimpleRNN", "Bidirectional(SimpleRNN)"],
    "mixed": ["LSTM", "GRU", "SimpleRNN"],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, list, dict]]:
    folder = tmp_path_factory.mktemp("keras3_gru")
    rng = np.random.default_rng(14)
    recurrent = (L.GRU, L.SimpleRNN, L.LSTM, L.Bidirectional)
    out = {}
    for name, build in BUILDERS.items():
        inp = keras.Input((T, D))
        model = keras.Model(inp, build()(inp), name=name)
        for w in model.weights:
            w.assign(rng.normal(0, 0.6, size=w.shape).astype(w.dtype))
        x = rng.normal(size=(T, D)).astype(np.float32)
        wants = [
            np.asarray(keras.Model(model.inputs, layer.output).predict(x[None], verbose=0))[0]
            for layer in model.layers
            if isinstance(layer, recurrent)
        ]
        paths = {fmt: folder / f"{name}.{fmt}" for fmt in ("keras", "h5", "weights.h5")}
        model.save(paths["keras"])
        model.save(paths["h5"])
        model.save_weights(paths["weights.h5"])
        out[name] = (x, wants, paths)
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_keras3_files_match_keras(saved: dict, name: str, fmt: str) -> None:
    x, wants, paths = saved[name]
    model = lstmviz.load_model(paths[fmt])
    assert [layer.kind for layer in model.layers] == KINDS[name]
    assert model.framework == f"Keras {keras.__version__}"
    check_layers(model, x, wants)


@pytest.mark.parametrize("name", DEFAULTS_ONLY)
def test_keras3_weights_only_matches_keras_defaults(saved: dict, name: str) -> None:
    x, wants, paths = saved[name]
    model = lstmviz.load_model(paths["weights.h5"])
    assert [layer.kind for layer in model.layers] == KINDS[name]
    check_layers(model, x, wants)


def test_keras3_gru_details(saved: dict) -> None:
    before = lstmviz.load_model(saved["gru_before"][2]["keras"]).layers[0].directions[0]
    assert isinstance(before, GRUDirection) and not before.reset_after
    assert before.act_gate.name == "hard_sigmoid_k3"  # Keras 3: slope 1/6
    layer = lstmviz.load_model(saved["bi_gru"][2]["keras"]).layers
    assert layer[0].merge_mode is MergeMode.AVE and layer[0].directions[1].reverse
    assert layer[1].directions[0].reverse and layer[1].output_order is OutputOrder.PROCESSING
    simple = lstmviz.load_model(saved["simple"][2]["h5"]).layers[1].directions[0]
    assert isinstance(simple, RNNDirection) and simple.act_cand.name == "relu"
    names = [t.name for t in simple.provenance.stored]
    assert names[0].endswith("kernel") and simple.provenance.gate_order == ("h",)


def test_keras3_weights_h5_paths_name_the_gru_class(saved: dict) -> None:
    model = lstmviz.load_model(saved["mixed"][2]["weights.h5"])
    stored = [layer.directions[0].provenance.stored[0].name for layer in model.layers]
    assert stored == [
        "layers/lstm/cell/vars/0",
        "layers/gru/cell/vars/0",
        "layers/simple_rnn/cell/vars/0",
    ]


def test_keras3_gru_arrays_are_the_transposed_reordered_kernels(
    saved: dict, tmp_path: Path
) -> None:
    inp = keras.Input((T, D))
    gru = L.GRU(2, return_sequences=True)
    model = keras.Model(inp, gru(inp))
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(w.dtype))
    model.save(tmp_path / "one.keras")
    kernel, rec, bias = (np.asarray(w) for w in gru.get_weights())
    d = lstmviz.load_model(tmp_path / "one.keras").layers[0].directions[0]
    H = 2
    z, r, h = (kernel[:, k * H : (k + 1) * H].T for k in range(3))
    np.testing.assert_array_equal(d.W_x, np.concatenate([r, z, h]))
    np.testing.assert_array_equal(d.b_h[2 * H :], bias[1, 2 * H :])
    np.testing.assert_array_equal(d.W_h[:H], rec[:, H : 2 * H].T)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras3_rnn_of_cells_is_rewritten_as_layers(tmp_path: Path, fmt: str) -> None:
    """``RNN([GRUCell, LSTMCell, SimpleRNNCell])`` runs as the three layers it computes, and
    ``Bidirectional(RNN(GRUCell(reset_after=False)))`` as a Bidirectional GRU."""
    rng = np.random.default_rng(8)
    inp = keras.Input((T, D))
    h = L.RNN([L.GRUCell(4), L.LSTMCell(3), L.SimpleRNNCell(2)], return_sequences=True)(inp)
    out = L.Bidirectional(L.RNN(L.GRUCell(2, reset_after=False), return_sequences=True))(h)
    model = keras.Model(inp, out)
    for w in model.weights:
        w.assign(rng.normal(0, 0.6, size=w.shape).astype(w.dtype))
    x = rng.normal(size=(T, D)).astype(np.float32)
    want = [np.asarray(model.predict(x[None], verbose=0))[0]]
    model.save(tmp_path / f"cells.{fmt}")
    loaded = lstmviz.load_model(tmp_path / f"cells.{fmt}")
    assert [layer.kind for layer in loaded.layers] == [
        "GRU",
        "LSTM",
        "SimpleRNN",
        "Bidirectional(GRU)",
    ]
    assert not loaded.layers[-1].directions[0].reset_after
    trace = lstmviz.run(loaded, x)
    np.testing.assert_allclose(trace.layers[-1].output, want[0], atol=1e-5, rtol=0)


def test_keras1_gru_layout_is_refused_by_name(tmp_path: Path) -> None:
    """Keras 1 saved a GRU as nine arrays (W, U, b per gate z, r, h): named, not misread."""
    import h5py
    from bounded import bounded_load

    path = tmp_path / "k1.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"gru_1"])
        group = f.create_group("gru_1")
        names = [f"gru_1_{a}_{k}" for k in "zrh" for a in "WUb"]
        group.attrs["weight_names"] = np.array([n.encode() for n in names])
        for n in names:
            shape = (3, 4) if "_W_" in n else (4, 4) if "_U_" in n else (4,)
            group.create_dataset(n, data=np.zeros(shape, np.float32))
    bounded_load(path).assert_refused("layer 'gru_1' uses the Keras 1 layout")
