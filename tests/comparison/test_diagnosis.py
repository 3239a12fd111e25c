"""Each porting mistake, alone and in pairs, applied to real fixture models' canonical arrays,
is named by kind (and detail) at the right layer and direction, and by nothing else."""

from __future__ import annotations

import itertools
from pathlib import Path

import mistakes as M
import pytest

import lstmviz
from lstmviz.comparison import KINDS, compare

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

MODELS = [
    "torch/bidir2.pt",  # PyTorch, 2 layers, bidirectional
    "keras/tfk221_stacked.keras",  # tf.keras, 3 stacked layers, one go_backwards
    "tf1/bidi",  # TF1 bidirectional_dynamic_rnn checkpoint (forget bias folded)
    "onnx/torch_uni2.onnx",  # ONNX, 2 stacked layers (D == H in layer 1)
    "keras/full_hard_sigmoid.h5",  # Keras 2 hard_sigmoid gates, a Dense head
    "onnx/peepholes.onnx",  # ONNX with peepholes
    "torch/proj.pt",  # PyTorch proj_size, bidirectional
]


def _other_sigmoid(d):
    name = "hard_sigmoid_k3" if d.act_gate.name == "hard_sigmoid_k2" else "hard_sigmoid_k2"
    return M.hard_sigmoid(d, name)


#: name: (mistake, kind, family, what the detail or evidence must say). One family per pair.
MISTAKES = {
    "onnx order": (
        lambda d: M.written_in(d, "onnx"),
        "gate_permutation",
        "p",
        "ONNX order i,o,f,c",
    ),
    "tf1 order": (lambda d: M.written_in(d, "tf1"), "gate_permutation", "p", "TF1 order i,j,f,o"),
    "i<->o": (lambda d: M.swap_gates(d, "i", "o"), "gate_permutation", "p", "B's i block = A's o"),
    "reshaped": (M.reshaped_not_transposed, "transposed", "t", "reshaped"),
    "block T": (M.recurrent_blocks_transposed, "transposed", "t", "transposed"),
    "fused": (M.fused_rows_swapped, "fused_rows_swapped", "u", "h"),
    "fb +1": (M.forget_bias, "forget_bias_offset", "f", "+1 for every unit"),
    "fb -1": (lambda d: M.forget_bias(d, -1.0), "forget_bias_offset", "f", "-1 for every unit"),
    "fb 0.5": (lambda d: M.forget_bias(d, 0.5), "forget_bias_offset", "f", "+0.5"),
    "bias x2": (M.bias_scaled, "bias_doubled", "b", "2 × A's b"),
    "bias /2": (lambda d: M.bias_scaled(d, 0.5), "bias_doubled", "b", "½ × A's b"),
    "hard sigmoid": (_other_sigmoid, "activation_mismatch", "a", "hard_sigmoid_k"),
}

SINGLES = list(MISTAKES)
PAIRS = [
    (m1, m2) for m1, m2 in itertools.combinations(MISTAKES, 2) if MISTAKES[m1][2] != MISTAKES[m2][2]
]


def _check(a, b, layer, direction, names) -> str | None:
    c = compare(a, b)
    want = {MISTAKES[n][1] for n in names}
    got = [(d.kind, d.layer, d.direction) for d in c.diagnoses]
    if {k for k, *_ in got} != want or any((lay, dr) != (layer, direction) for _, lay, dr in got):
        return f"{names} at {layer}/{direction}: want {sorted(want)}, got {got}"
    for n in names:
        kind, text = MISTAKES[n][1], MISTAKES[n][3]
        d = next(d for d in c.diagnoses if d.kind == kind)
        scaled = kind == "forget_bias_offset" and any(MISTAKES[m][2] == "b" for m in names)
        if scaled:
            text = "forget"  # B = s·A + c: the offset is counted after scaling
        if text not in d.detail + " " + d.evidence or not d.fix:
            return f"{names}: {kind} says {d.detail!r} / {d.evidence!r}, missing {text!r}"
    if c.equal or c.first_divergence is None:
        return f"{names}: a broken port compared equal"
    return None


def _apply(a, layer, direction, names):
    def fn(d):
        for n in names:
            d = MISTAKES[n][0](d)
        return d

    return M.apply(a, layer, direction, fn)


@pytest.mark.parametrize("path", MODELS)
def test_each_mistake_alone_in_every_layer(path):
    a = lstmviz.load_model(FIXTURES / path)
    failures = []
    for k, layer in enumerate(a.layers):
        for n in SINGLES:
            d = len(layer.directions) - 1
            try:
                b = _apply(a, k, d, [n])
            except ValueError:  # a move the shapes do not allow (blocks not square)
                continue
            failures.append(_check(a, b, k, d, [n]))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


@pytest.mark.parametrize("path", MODELS)
def test_mistakes_in_pairs(path):
    a = lstmviz.load_model(FIXTURES / path)
    k = len(a.layers) - 1
    d = len(a.layers[k].directions) - 1
    failures = []
    for pair in PAIRS:
        try:
            b = _apply(a, k, d, pair)
        except ValueError:
            continue
        failures.append(_check(a, b, k, d, pair))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


@pytest.mark.parametrize("path", ["torch/bidir2.pt", "tf1/bidi", "torch/proj.pt"])
def test_directions_swapped_alone_and_with_another_mistake(path):
    a = lstmviz.load_model(FIXTURES / path)
    b = M.swap_directions(a, 0)
    c = compare(a, b)
    assert [(x.kind, x.layer) for x in c.diagnoses] == [("directions_swapped", 0)]
    assert "backward" in c.diagnoses[0].detail and c.diagnoses[0].fix
    b = M.apply(M.swap_directions(a, 0), 0, 1, lambda d: M.written_in(d, "onnx"))
    assert sorted(compare(a, b).kinds) == ["directions_swapped", "gate_permutation"]
    b = M.apply(M.swap_directions(a, 0), 0, 0, M.forget_bias)
    assert sorted(compare(a, b).kinds) == ["directions_swapped", "forget_bias_offset"]


def test_layers_shifted_in_a_stack_of_equal_layers():
    """A port whose layer loop is off by one: B's layer k holds A's layer k+1 (3 equal layers
    of a PyTorch nn.LSTM made here); also with a permutation on top."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(4, 4, num_layers=3)
    a = _torch_model(lstm.state_dict(), 3)
    rotated = a.replace(layers=(a.layers[1], a.layers[2], a.layers[0]))
    c = compare(a, rotated)
    assert c.pairs == ((0, 0), (1, 1), (2, 2))
    shifted = [(d.layer, d.layer_a) for d in c.diagnoses if d.kind == "layers_shifted"]
    assert shifted == [(0, 1), (1, 2), (2, 0)] and set(c.kinds) == {"layers_shifted"}
    assert "pairs=" in c.diagnoses[0].fix
    b = M.apply(rotated, 1, 0, lambda d: M.written_in(d, "tf1"))
    assert {(d.kind, d.layer) for d in compare(a, b).diagnoses} >= {
        ("layers_shifted", 1),
        ("gate_permutation", 1),
    }
    # re-paired by hand as the fix says, B's layer 0 holds exactly A's layer 1
    assert compare(a, rotated, pairs=[(1, 0)]).matches[0].exact


def _torch_model(sd, layers):
    from test_compare import _from_state_dict

    return _from_state_dict(sd, layers)


def test_equal_pairs_get_no_diagnosis():
    for path in MODELS:
        a = lstmviz.load_model(FIXTURES / path)
        c = compare(a, a)
        assert c.equal and c.diagnoses == [] and c.notes == (), path


def test_vocabulary():
    assert set(KINDS) == {
        "gate_permutation",
        "transposed",
        "fused_rows_swapped",
        "forget_bias_offset",
        "bias_doubled",
        "activation_mismatch",
        "directions_swapped",
        "layers_shifted",
    }
