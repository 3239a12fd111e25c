"""Every LSTM of a Keras model is reachable (issue 12 item 7): LSTMs on parallel branches, fed
by a second model input, after a fork or after a layer lstmviz cannot run are picked with
``layer=`` (``ChoiceRequired`` without it, which the window turns into a choice dialog) and run
from their own input, matching ``model.predict`` of a sub-model ending at them at 1e-5.

Also what a Keras file without an LSTM is said to be (item 9): GRU, SimpleRNN, Dense only.
Models are made with real Keras 3 here (the torch backend the test extra installs), saved as
``.keras`` and as legacy ``.h5``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

import lstmviz
from lstmviz.io import ChoiceRequired, LoadError, load_model

T = 6
L = keras.layers
FORMATS = ("keras", "h5")


@dataclass
class Branchy:
    """A model, the Keras tensors of its LSTMs' outputs and of what lstmviz is fed per pick."""

    model: keras.Model
    lstms: dict[str, keras.KerasTensor]  # LSTM name → its output tensor
    choices: tuple[str, ...]  # what ChoiceRequired offers without layer=
    feeds: dict[str, keras.KerasTensor] = field(default_factory=dict)  # pick → x tensor
    tokens: bool = False  # the model input is token ids (an Embedding runs inside lstmviz)


def towers() -> Branchy:
    """x → LSTM a → LSTM c, and x → Dense → LSTM b: two towers, concatenated."""
    i = keras.Input((T, 3))
    a = L.LSTM(4, return_sequences=True, name="a")(i)
    c = L.LSTM(3, return_sequences=True, name="c")(a)
    d = L.Dense(5, activation="tanh", name="pre")(i)
    b = L.LSTM(4, return_sequences=True, name="b")(d)
    out = L.Dense(2, name="out")(L.Concatenate()([c, b]))
    return Branchy(keras.Model(i, out), {"a": a, "c": c, "b": b}, ("a", "b"), {"b": d})


def two_inputs() -> Branchy:
    """Tokens → Embedding → LSTM b → Dense head, beside floats → LSTM a: two model inputs."""
    xa = keras.Input((T, 3), name="floats")
    xb = keras.Input((T,), dtype="int32", name="tokens")
    a = L.LSTM(4, name="a")(xa)
    b = L.LSTM(5, return_sequences=True, name="b")(L.Embedding(11, 6, name="emb")(xb))
    head = L.Dense(2, activation="softmax", name="head")(b)
    model = keras.Model([xb, xa], [head, a])
    return Branchy(model, {"a": a, "b": b, "head": head}, ("b", "a"), tokens=True)


def fork() -> Branchy:
    """LSTM a feeds both LSTM b1 and LSTM b2: the fork's second branch is its own choice."""
    i = keras.Input((T, 3))
    a = L.LSTM(4, return_sequences=True, name="a")(i)
    b1 = L.LSTM(3, return_sequences=True, name="b1")(a)
    b2 = L.LSTM(5, return_sequences=True, name="b2")(a)
    return Branchy(keras.Model(i, [b1, b2]), {"a": a, "b1": b1, "b2": b2}, ("a", "b2"))


def blocked() -> Branchy:
    """LSTM a → Conv1D → LSTM c: one chain that lstmviz cannot run through; layer=c runs c
    from the Conv1D's output."""
    i = keras.Input((T, 3))
    a = L.LSTM(4, return_sequences=True, name="a")(i)
    conv = L.Conv1D(6, 2, padding="same", name="conv")(a)
    c = L.LSTM(3, return_sequences=True, name="c")(conv)
    return Branchy(keras.Model(i, c), {"a": a, "c": c}, (), {"c": conv})


MODELS: dict[str, Callable[[], Branchy]] = {
    "towers": towers,
    "two_inputs": two_inputs,
    "fork": fork,
    "blocked": blocked,
}


@dataclass
class Saved:
    case: Branchy
    inputs: list[np.ndarray]
    paths: dict[str, Path]

    def predict(self, tensor: keras.KerasTensor) -> np.ndarray:
        sub = keras.Model(self.case.model.inputs, tensor)
        return np.asarray(sub.predict([x[None] for x in self.inputs], verbose=0))[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    folder = tmp_path_factory.mktemp("branches")
    out = {}
    for k, (name, build) in enumerate(MODELS.items()):
        rng = np.random.default_rng(100 + k)
        case = build()
        for w in case.model.weights:
            w.assign(rng.normal(0, 0.5, size=w.shape).astype("float32"))
        inputs = []
        for spec in case.model.inputs:
            if spec.dtype.startswith("int"):
                inputs.append(rng.integers(1, 11, size=T).astype("int32"))
            else:
                inputs.append(rng.normal(size=(T, spec.shape[-1])).astype("float32"))
        paths = {fmt: folder / f"{name}.{fmt}" for fmt in FORMATS}
        case.model.save(paths["keras"])
        case.model.save(paths["h5"])
        out[name] = Saved(case, inputs, paths)
    return out


PICKS = [
    ("towers", "a", ["a", "c"]),
    ("towers", "c", ["a", "c"]),
    ("towers", "b", ["b"]),
    ("two_inputs", "a", ["a"]),
    ("two_inputs", "b", ["b"]),
    ("fork", "b1", ["a", "b1"]),
    ("fork", "b2", ["a", "b2"]),
    ("blocked", "c", ["c"]),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("name", "pick", "run"), PICKS)
def test_picked_lstm_matches_keras(
    saved: dict[str, Saved], name: str, pick: str, run: list[str], fmt: str
) -> None:
    s = saved[name]
    model = load_model(s.paths[fmt], layer=pick)
    assert [layer.name for layer in model.layers] == run
    assert model.notes[0].startswith(f"layer={pick!r} chosen")
    if pick in s.case.feeds:
        x = s.predict(s.case.feeds[pick])  # the layers in front of it are not lstmviz's
    elif s.case.tokens and run[0] == "b":
        assert model.embedding is not None  # its own branch's Embedding is run
        x = model.embedding[s.inputs[0]]
    else:
        x = s.inputs[-1] if name == "two_inputs" else s.inputs[0]
    assert x.shape[1] == model.input_size  # its own input width
    trace = lstmviz.run(model, x)
    for k, lstm in enumerate(run):
        want = s.predict(s.case.lstms[lstm])
        got = trace.layers[k].output if want.ndim == 2 else trace.layers[k].last_output
        assert np.abs(want).max() > 0.02
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{name}/{lstm}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_head_on_the_picked_branch_runs(saved: dict[str, Saved], fmt: str) -> None:
    s = saved["two_inputs"]
    model = load_model(s.paths[fmt], layer="b")
    assert [t.name for t in model.head] == ["head"]
    trace = lstmviz.run(model, model.embedding[s.inputs[0]])  # type: ignore[index]
    want = s.predict(s.case.lstms["head"])
    np.testing.assert_allclose(trace.network_output, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [n for n in MODELS if n != "blocked"])
def test_several_chains_ask_which(saved: dict[str, Saved], name: str, fmt: str) -> None:
    s = saved[name]
    with pytest.raises(ChoiceRequired) as info:
        load_model(s.paths[fmt], ask_choices=True)
    assert info.value.option == "layer"
    assert info.value.choices == s.case.choices
    assert "pick one with layer=" in str(info.value)
    assert str(info.value).startswith(f"{s.paths[fmt].name}: ")


def test_one_chain_needs_no_choice_and_names_the_rest(saved: dict[str, Saved]) -> None:
    model = load_model(saved["blocked"].paths["keras"])
    assert [layer.name for layer in model.layers] == ["a"]
    assert any("layer=<name> runs one from its own input" in n for n in model.notes)
    info = {i.name: i.note for i in model.all_layers}
    assert info["c"].startswith("not run")


@pytest.mark.parametrize(
    ("pick", "fragment"),
    [("nope", "is not a layer of it"), ("pre", "is a Dense, not an LSTM")],
)
def test_a_wrong_layer_asks_again(saved: dict[str, Saved], pick: str, fragment: str) -> None:
    with pytest.raises(ChoiceRequired) as info:
        load_model(saved["towers"].paths["keras"], layer=pick)
    assert fragment in str(info.value)
    assert info.value.choices == ("a", "c", "b")


def test_layer_in_a_sequential_chain_keeps_the_chain(tmp_path: Path) -> None:
    model = keras.Sequential(
        [keras.Input((T, 3)), L.LSTM(4, return_sequences=True), L.LSTM(2, name="last")]
    )
    model.save(tmp_path / "s.keras")
    assert len(load_model(tmp_path / "s.keras", layer="last").layers) == 2


def test_decoder_of_a_seq2seq_runs_from_zeros(tmp_path: Path) -> None:
    enc_in, dec_in = keras.Input((T, 3)), keras.Input((T, 2))
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    decoder = L.LSTM(4, return_sequences=True, name="decoder")
    model = keras.Model([enc_in, dec_in], decoder(dec_in, initial_state=[h, c]))
    model.save(tmp_path / "s2s.keras")
    m = load_model(tmp_path / "s2s.keras", layer="decoder")
    assert [layer.name for layer in m.layers] == ["decoder"] and m.input_size == 2
    assert any("starts it from zeros" in n for n in m.notes)
    x = np.random.default_rng(1).normal(size=(T, 2)).astype("float32")
    zero_start = keras.Model(dec_in, decoder(dec_in)).predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(lstmviz.run(m, x).layers[0].output, zero_start, atol=1e-5)


# ----------------------------------------------------------------------------- no LSTM
def _save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("layer", "said"),
    [
        # GRU, SimpleRNN and RNN(GRUCell) open since issue 14 (tests/io/test_gru_keras.py)
        (lambda: L.Dense(4), "a Keras model of Dense layers only, no recurrent layer"),
        (
            lambda: L.TimeDistributed(L.LSTM(2), name="td"),
            "with TimeDistributed(LSTM) layers ('td'); convolutional or per-slice LSTMs",
        ),
    ],
)
def test_a_file_without_an_lstm_says_what_it_is(
    tmp_path: Path, layer: Callable[[], keras.layers.Layer], said: str, fmt: str
) -> None:
    shape = (T, 4, 3) if "TimeDistributed" in said else (T, 3)
    path = _save(keras.Sequential([keras.Input(shape), layer(), L.Dense(1)]), tmp_path / f"m.{fmt}")
    with pytest.raises(LoadError) as info:
        load_model(path)
    assert said in str(info.value), str(info.value)
    assert "no LSTM layer" in str(info.value)


def test_weights_only_gru_file_says_what_it_is(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((T, 3)), L.GRU(4, name="g")])
    model.save_weights(tmp_path / "g.weights.h5")
    assert [layer.kind for layer in load_model(tmp_path / "g.weights.h5").layers] == ["GRU"]


def test_weights_only_file_starts_at_the_picked_lstm(
    saved: dict[str, Saved], tmp_path: Path
) -> None:
    """Without a config nothing tells the wiring: the chain follows the file; a picked LSTM
    the chain does not reach runs from its own input (b after a Dense, on its own width)."""
    s = saved["towers"]
    path = tmp_path / "towers.weights.h5"
    s.case.model.save_weights(path)
    default = load_model(path)
    assert [layer.name for layer in default.layers] == ["a", "c"]
    m = load_model(path, layer="b")
    assert [layer.name for layer in m.layers] == ["b"] and m.input_size == 5
    x = s.predict(s.case.feeds["b"])
    want = s.predict(s.case.lstms["b"])
    np.testing.assert_allclose(lstmviz.run(m, x).layers[0].output, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pick", ["a", "b"])
def test_a_merge_after_either_branch_ends_its_head(tmp_path: Path, pick: str) -> None:
    """Two inputs → two LSTMs → a Dense each → Concatenate → Dense: whichever LSTM is picked,
    its Dense is not the network's output, so no head is run and a note says why."""
    xa, xb = keras.Input((T, 3)), keras.Input((T, 2))
    a = L.Dense(4, name="da")(L.LSTM(4, name="a")(xa))
    b = L.Dense(4, name="db")(L.LSTM(5, name="b")(xb))
    model = keras.Model([xa, xb], L.Dense(2, name="out")(L.Concatenate()([a, b])))
    model.save(tmp_path / "m.keras")
    m = load_model(tmp_path / "m.keras", layer=pick)
    assert m.head == ()
    assert any("merges" in n and "another branch" in n for n in m.notes)
