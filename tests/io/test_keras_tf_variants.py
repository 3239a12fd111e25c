"""tf.keras 2.21 (tf_keras), 2.15 and 2.13 files of variants that revealed reader bugs, against
the outputs tf.keras computed for them (``make_tf_keras_variants.py`` made all three).

Each ``.expected.npz`` holds ``x`` (what lstmviz runs), ``n_layers`` (LSTM layers lstmviz
must chain) and ``y<k>`` for the lstmviz layers whose output tf.keras exposes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.io import ChoiceRequired, load_model

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
NAMES = [
    "nested_weights.h5",
    "stacked_cells.h5",
    "stacked_cells_weights.h5",
    "branch.h5",
    "seq2seq.keras",
    "leaky_relu.h5",
    "cudnn.keras",
    "cudnn.weights.h5",
    "mixed.h5",
    "embedding_v1.keras",
    "stacked.keras",
]
TAGS = ("tfk221", "tf215", "tf213")  # tf.keras 2.13/2.15: only the containers that differ
FILES = sorted(p.name for tag in TAGS for p in HERE.glob(f"{tag}_*") if
               p.name.split("_", 1)[1] in NAMES)  # fmt: skip


def _expected(name: str) -> dict[str, np.ndarray]:
    stem = name.rsplit(".", 1)[0]
    with np.load(HERE / f"{stem}.expected.npz") as data:
        return dict(data)


def test_every_keras_2_version_is_present() -> None:
    assert {f.split("_", 1)[0] for f in FILES} == set(TAGS)
    assert len(FILES) == len(NAMES) + 2 * 7


def test_tf_keras_213_tree_numbers_duplicates_its_own_way() -> None:
    """tf.keras 2.13 writes ``_layer_checkpoint_dependencies/lstm, lstm_2, lstm_4``: the
    second LSTM is ``lstm_2``, not the third."""
    model = load_model(HERE / "tf213_stacked.keras")
    stored = [layer.directions[0].provenance.stored[0].name for layer in model.layers]
    assert [s.split("/")[1] for s in stored] == ["lstm", "lstm_2", "lstm_4"]
    assert stored[0].startswith("_layer_checkpoint_dependencies/")
    assert model.framework == "tf.keras 2.13.1"


@pytest.mark.parametrize("name", FILES)
def test_outputs_match_tf_keras(name: str) -> None:
    model = load_model(HERE / name, **_LAYER.get(name.split("_", 1)[1], {}))
    exp = _expected(name)
    assert len(model.layers) == int(exp["n_layers"])
    trace = lstmviz.run(model, exp["x"])
    ys = [k for k in exp if k.startswith("y")]
    assert ys
    for key in ys:
        k, want = int(key[1:]), exp[key]
        got = trace.layers[k].output if want.ndim == 2 else trace.layers[k].last_output
        assert got.shape == want.shape, (name, k)
        assert np.abs(want).max() > 0.02
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{name} layer {k}")


#: Models whose LSTMs form two chains: the expected outputs are those of this one.
_LAYER = {"branch.h5": {"layer": "a"}, "seq2seq.keras": {"layer": "encoder"}}


def _notes(name: str) -> str:
    return " | ".join(load_model(HERE / name, **_LAYER.get(name.split("_", 1)[1], {})).notes)


def test_nested_weights_are_two_layers_not_a_bidirectional() -> None:
    model = load_model(HERE / "tfk221_nested_weights.h5")
    assert [layer.kind for layer in model.layers] == ["LSTM", "LSTM", "LSTM"]
    assert [layer.name for layer in model.layers] == ["lstm", "lstm_1", "outer"]
    assert "group 'inner' holds 2 layers" in _notes("tfk221_nested_weights.h5")


@pytest.mark.parametrize("tag", TAGS)
def test_stacked_cells_settings(tag: str) -> None:
    first, second, bi = load_model(HERE / f"{tag}_stacked_cells.h5").layers
    assert first.directions[0].reverse and first.output_order is OutputOrder.PROCESSING
    assert not second.directions[0].reverse
    assert second.directions[0].act_gate.name == "hard_sigmoid_k2"
    assert bi.merge_mode is MergeMode.CONCAT and bi.kind == "Bidirectional(LSTM)"


def test_branch_is_not_chained() -> None:
    with pytest.raises(ChoiceRequired) as info:
        load_model(HERE / "tfk221_branch.h5", ask_choices=True)
    assert info.value.option == "layer" and info.value.choices == ("a", "b")
    default = load_model(HERE / "tfk221_branch.h5")  # a script gets the first chain, noted
    assert [layer.name for layer in default.layers] == ["a", "c"]
    assert "the first runs (layer='a')" in default.notes[0]
    model = load_model(HERE / "tfk221_branch.h5", layer="a")
    assert [layer.name for layer in model.layers] == ["a", "c"]
    assert "LSTM 'b' is not run: its input comes from a model input" in _notes("tfk221_branch.h5")


@pytest.mark.parametrize("tag", TAGS)
def test_seq2seq_decoder_is_noted(tag: str) -> None:
    notes = _notes(f"{tag}_seq2seq.keras")
    assert "LSTM 'decoder' is not run" in notes


def test_leaky_relu_alpha_and_keras2_hard_sigmoid() -> None:
    w = load_model(HERE / "tfk221_leaky_relu.h5").layers[0].directions[0]
    assert w.act_cand.name == "leaky_relu" and w.act_cand.alpha == pytest.approx(0.2)
    assert w.act_gate.name == "hard_sigmoid_k2"


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("ext", ["keras", "weights.h5"])
def test_cudnn_in_keras3_style_containers(tag: str, ext: str) -> None:
    layer = load_model(HERE / f"{tag}_cudnn.{ext}").layers[0]
    assert layer.kind == "CuDNNLSTM"
    assert any("CuDNN biases summed" in t for t in layer.directions[0].provenance.transforms)


def test_mixed_precision_is_noted_and_close_to_keras_own() -> None:
    model = load_model(HERE / "tfk221_mixed.h5")
    notes = model.layers[0].directions[0].provenance.notes
    assert any("dtype policy 'mixed_float16'" in n for n in notes)
    exp = _expected("tfk221_mixed.h5")
    got = lstmviz.run(model, exp["x"]).output
    np.testing.assert_allclose(got, exp["keras_own"], atol=1e-2, rtol=0)


@pytest.mark.parametrize("tag", TAGS)
def test_embedding_and_v1_lstm_default(tag: str) -> None:
    model = load_model(HERE / f"{tag}_embedding_v1.keras")
    exp = _expected(f"{tag}_embedding_v1.keras")
    assert model.embedding is not None
    np.testing.assert_array_equal(model.embedding[exp["tokens"]], exp["x"])
    v1, bi = model.layers
    gate = v1.directions[0].provenance.setting("recurrent_activation")
    assert gate is not None and gate.value == "hard_sigmoid_k2" and not gate.assumed
    assert bi.merge_mode is MergeMode.AVE
    assert "mask_zero=True" in " ".join(model.notes)
    assert model.framework.startswith("tf.keras 2.")
