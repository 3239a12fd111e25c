"""keras target: Keras 3 builds the printed model and load_weights takes the .weights.h5."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import port_models as pm
import pytest

import lstmviz
from lstmviz.core.model import MergeMode
from lstmviz.port import ExportError


def keras_model(code: str) -> keras.Model:
    namespace: dict[str, object] = {}
    exec(code, namespace)  # the code export_keras prints: Sequential + load_weights
    return namespace["model"]  # type: ignore[return-value]


CASES = {
    "stacked": pm.stacked,
    "bidirectional": pm.bidirectional,
    "bidirectional_sum": lambda: pm.bidirectional(merge=MergeMode.SUM),
    "go_backwards": pm.go_backwards,
    "bidirectional_backwards": pm.bidirectional_backwards,
    "hard_sigmoid_k3": pm.hard_sigmoid,
    "dense_head": pm.with_head,
    "norm_layers": pm.with_norms,
    "layer_norm_without_scale": lambda: pm.with_norms(scale=False),
    # Keras 2 file: Bidirectional concat/mul/ave and an LSTM(go_backwards=True)
    "keras_bidirectional_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/bidirectional.h5"
    ),
    "torch_bidir2_fixture": lambda: lstmviz.load_model(pm.FIXTURES / "torch/bidir2.pt"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_keras(tmp_path, case):
    model = CASES[case]()
    path = tmp_path / "model.weights.h5"
    result = lstmviz.export(model, "keras", path)
    net = keras_model(result.code)
    x = pm.sequence(model)
    y = keras.ops.convert_to_numpy(net(x[None]))[0]
    trace = lstmviz.run(model, x, dtype=np.float64)
    want = trace.head_output if model.head else trace.layers[-1].output
    np.testing.assert_allclose(y, want, atol=1e-5)
    # weights-only: no config, so the merge modes are told as the reader asks for them
    merges = [
        f"{layer.name}:{layer.merge_mode.value}"
        for layer in model.layers
        if layer.bidirectional and layer.merge_mode is not MergeMode.CONCAT
    ]
    back = lstmviz.load_model(path, **({"merge_mode": ",".join(merges)} if merges else {}))
    for mine, theirs in zip(model.layers, back.layers, strict=True):
        for a, b in zip(mine.directions, theirs.directions, strict=True):
            np.testing.assert_allclose(b.W_x, a.W_x, atol=1e-6)
            np.testing.assert_allclose(b.W_h, a.W_h, atol=1e-6)
            np.testing.assert_allclose(b.b, a.b, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (pm.projected, "projection W_p"),
        (pm.peephole, "peepholes, which keras cannot hold"),
        (lambda: pm.hard_sigmoid(name="hard_sigmoid_k2"), "Keras 3's hard_sigmoid is x/6"),
        (lambda: lstmviz.load_model(pm.FIXTURES / "keras/full_hard_sigmoid.h5"), "k2"),
        (lambda: lstmviz.load_model(pm.FIXTURES / "onnx/clip.onnx"), "gate_clip 0.5"),
    ],
)
def test_refuses_what_keras_lstm_cannot_hold(tmp_path, make, needle):
    with pytest.raises(ExportError, match=needle) as info:
        lstmviz.export(make(), "keras", tmp_path / "x.weights.h5")
    assert "\n" not in str(info.value) and "instead" in str(info.value)


def test_file_name_must_end_in_weights_h5(tmp_path):
    with pytest.raises(ExportError, match=r"\.weights\.h5"):
        lstmviz.export(pm.stacked(), "keras", tmp_path / "x.h5")
