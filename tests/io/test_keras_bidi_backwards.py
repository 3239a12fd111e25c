"""Keras 3 (KERAS_BACKEND=torch) ``Bidirectional`` whose wrapped layer has ``go_backwards=True``.

Keras runs ``y = forward_layer(x)`` (reading backwards, so ``y`` is in reversed order) and
``y_rev = backward_layer(x)`` (reading forwards), flips ``y_rev`` along time and merges: the
merged sequence comes out time-reversed, and ``return_sequences=False`` merges each
sub-layer's last processed step. Every merge mode, both ``return_sequences``, ``.keras`` and
legacy ``.h5``, against Keras' own outputs at 1e-5. (Keras 3 makes its backward copy with
``go_backwards=True`` and refuses equal values, so the backward layer is given explicitly.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.io import load_model

T, D = 6, 3
L = keras.layers
MERGES = ("concat", "sum", "mul", "ave", None)


def _bidi(units: int, merge: str | None, seq: bool, name: str) -> L.Bidirectional:
    fw = L.LSTM(units, return_sequences=seq, go_backwards=True)
    bw = L.LSTM(units, return_sequences=seq, go_backwards=False, activation="softsign")
    return L.Bidirectional(fw, backward_layer=bw, merge_mode=merge, name=name)


def _predict(model: keras.Model, tensor: keras.KerasTensor, x: np.ndarray) -> np.ndarray:
    y = keras.Model(model.inputs, tensor).predict(x[None], verbose=0)
    if isinstance(y, (list, tuple)):  # merge_mode=None: lstmviz shows the two concatenated
        y = np.concatenate([np.asarray(a) for a in y], axis=-1)
    return np.asarray(y, dtype=np.float32)[0]


def _save(model: keras.Model, folder: Path, name: str) -> dict[str, Path]:
    paths = {fmt: folder / f"{name}.{fmt}" for fmt in ("keras", "h5")}
    model.save(paths["keras"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy .h5 warning
        model.save(paths["h5"])
    return paths


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A stack of every merge mode (return_sequences=True) and, per merge mode, a one-layer
    model with return_sequences=False; random weights big enough for a real signal."""
    folder = tmp_path_factory.mktemp("bidi_backwards")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(T, D)).astype(np.float32)
    i = keras.Input((T, D))
    h, probes = i, []
    for k, merge in enumerate(MERGES):
        if merge is None:
            # merge_mode=None returns two tensors: the stack ends with it
            h = _bidi(2, None, True, f"bi_{k}")(h)
            probes.append(h)
            break
        h = _bidi(3 if k % 2 else 2, merge, True, f"bi_{k}")(h)
        probes.append(h)
    stack = keras.Model(i, probes[-1])
    for w in stack.weights:
        w.assign(rng.normal(0, 0.7, size=w.shape).astype("float32"))
    wants = [_predict(stack, p, x) for p in probes]
    out = {"x": x, "stack": (_save(stack, folder, "stack"), wants)}
    for merge in MERGES:
        i = keras.Input((T, D))
        y = _bidi(3, merge, False, "bi_last")(i)
        m = keras.Model(i, y)
        for w in m.weights:
            w.assign(rng.normal(0, 0.7, size=w.shape).astype("float32"))
        out[str(merge)] = (_save(m, folder, f"last_{merge}"), [_predict(m, y, x)])
    return out


def _check(model: lstmviz.core.model.LSTMModel, x: np.ndarray, wants: list) -> None:
    trace = lstmviz.run(model, x)
    assert len(trace.layers) == len(wants)
    for k, want in enumerate(wants):
        lt = trace.layers[k]
        got = lt.output if want.ndim == 2 else lt.last_output
        assert got.shape == want.shape, k
        assert np.abs(want).max() > 0.02  # a real signal at this tolerance
        if want.ndim == 2:  # the order matters: the sequence is not its own reverse
            assert np.abs(want - want[::-1]).max() > 1e-3
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"layer {k}")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_stack_of_every_merge_mode_matches_keras(built: dict, fmt: str) -> None:
    paths, wants = built["stack"]
    model = load_model(paths[fmt])
    assert [layer.merge_mode for layer in model.layers] == [
        MergeMode.CONCAT, MergeMode.SUM, MergeMode.MUL, MergeMode.AVE, MergeMode.NONE
    ]  # fmt: skip
    for layer in model.layers:
        first, second = layer.directions
        assert first.reverse and not second.reverse
        assert layer.output_order is OutputOrder.PROCESSING
        back = first.provenance.setting("go_backwards")
        assert back is not None and back.value is True and not back.assumed
    _check(model, built["x"], wants)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("merge", [str(m) for m in MERGES])
def test_last_step_only_matches_keras(built: dict, merge: str, fmt: str) -> None:
    paths, wants = built[merge]
    model = load_model(paths[fmt])
    assert not model.layers[0].return_sequences
    _check(model, built["x"], wants)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras"


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_tf_keras_221_fixture_matches_tf_keras(ext: str) -> None:
    """tf_keras 2.21 (made by make_tf_keras_bidi_backwards.py): layers 0 and 2 rely on
    tf.keras' own backward copy (go_backwards inverted, no backward_layer in the config)."""
    want = np.load(FIXTURES / "tfk221_bidi_back.expected.npz")
    model = load_model(FIXTURES / f"tfk221_bidi_back.{ext}")
    assert len(model.layers) == int(want["n_layers"]) == 3
    for k, layer in enumerate(model.layers):
        assert [d.reverse for d in layer.directions] == [True, False]
        bw = layer.directions[1].provenance.setting("go_backwards")
        assert bw is not None and bw.value is False and not bw.assumed
        assert ("inverted" in bw.note) == (k != 1)  # layer 1 has an explicit backward_layer
    _check(model, want["x"], [want[f"y{k}"] for k in range(3)])


def test_weights_only_merge_mode_option(tmp_path: Path) -> None:
    """A weights-only file records no merge_mode: where the next layer takes H inputs the note
    names the option, and merge_mode=name:mode,… runs the whole stack as Keras does."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(T, D)).astype(np.float32)
    i = keras.Input((T, D))
    a = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum", name="bi_a")(i)
    b = L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="mul", name="bi_b")(a)
    c = L.LSTM(2, return_sequences=True)(b)
    m = keras.Model(i, c)
    for w in m.weights:
        w.assign(rng.normal(0, 0.7, size=w.shape).astype("float32"))
    path = tmp_path / "m.weights.h5"
    m.save_weights(path)
    plain = load_model(path)
    assert len(plain.layers) == 1
    assert "pass e.g. merge_mode=bi_a:mul" in plain.notes[0]
    model = load_model(path, merge_mode="bi_a:sum, bi_b:MUL")
    assert [layer.merge_mode for layer in model.layers[:2]] == [MergeMode.SUM, MergeMode.MUL]
    setting = model.layers[1].directions[0].provenance.setting("merge_mode")
    assert setting is not None and setting.value == "mul" and not setting.assumed
    _check(model, x, [_predict(m, t, x) for t in (a, b, c)])
    every = load_model(path, merge_mode="mul")
    assert [layer.merge_mode for layer in every.layers[:2]] == [MergeMode.MUL] * 2
    with pytest.raises(lstmviz.LoadError, match=r"merge_mode='max' is not understood"):
        load_model(path, merge_mode="max")
