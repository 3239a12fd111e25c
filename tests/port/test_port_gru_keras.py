"""keras target with GRU (reset_after both ways) and SimpleRNN layers, Bidirectional and mixed
stacks: Keras 3 builds the printed Sequential, load_weights takes the .weights.h5, and its
output is lstmviz.run's; the file's groups, names and shapes are the ones Keras 3's own
save_weights writes for the same model."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import keras
import numpy as np
import pytest
import test_port_gru as tg

import lstmviz
from lstmviz.port import ExportError

CASES = {
    **{k: tg.CASES[k] for k in ("gru", "gru_bidir", "rnn_tanh_bidir", "rnn_relu", "mixed",
                                "mixed_bidir", "real_torch_gru_bidir2", "real_onnx_torch_mixed",
                                "real_keras_get_weights_gru", "real_madmom_brnn")},
    **tg.RESET_BEFORE,
}  # fmt: skip


def keras_model(code: str) -> keras.Model:
    namespace: dict[str, object] = {}
    exec(code, namespace)  # the code export_keras prints: Sequential + load_weights
    return namespace["model"]  # type: ignore[return-value]


def tree(path) -> dict[str, object]:
    """Every group's attributes and every dataset's shape, by path. A layer's own ``vars``
    name is left out: Keras numbers it per session (``gru_3``), the export keeps the source's
    layer name (and the Sequential's); load_weights reads neither. Cell names are kept."""
    out: dict[str, object] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj.shape
            return
        attrs = dict(obj.attrs)
        if not str(attrs.get("name", "")).endswith("_cell"):
            attrs.pop("name", None)
        out[name] = attrs

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_keras(tmp_path, case):
    model = CASES[case]()
    path = tmp_path / "model.weights.h5"
    result = lstmviz.export(model, "keras", path)
    net = keras_model(result.code)
    x = tg.inputs(model)
    y = keras.ops.convert_to_numpy(net(x[None]))[0]
    trace = lstmviz.run(model, x, dtype=np.float64)
    want = trace.head_output if model.head else trace.layers[-1].output  # the head is written
    np.testing.assert_allclose(y, want, atol=1e-5)
    # the layout Keras 3 itself writes for this model
    net.save_weights(tmp_path / "keras.weights.h5")
    assert tree(path) == tree(tmp_path / "keras.weights.h5")


def test_code_names_reset_after_and_simple_rnn(tmp_path):
    model = tg.RESET_BEFORE["gru_reset_before"]()
    result = lstmviz.export(model, "keras", tmp_path / "a.weights.h5")
    assert "keras.layers.GRU(4, return_sequences=True, reset_after=False)" in result.code
    result = lstmviz.export(tg.rnn_stack(act="relu"), "keras", tmp_path / "b.weights.h5")
    assert "keras.layers.SimpleRNN(5, return_sequences=True, activation='relu')" in result.code
    with h5py.File(tmp_path / "a.weights.h5") as f:
        assert f["layers/bidirectional/forward_layer/cell/vars/2"].shape == (12,)  # [3H] summed
        assert f["layers/bidirectional/forward_layer/vars"].attrs["name"] == "forward_gru"


def test_keras_refuses_a_gru_initial_state_in_one_line(tmp_path):
    model = tg.gru_stack()
    layer = model.layers[0]
    d = layer.directions[0].replace(h0=np.ones(4, np.float32))
    model = type(model)(layers=(type(layer)(layer.name, (d,)), *model.layers[1:]))
    with pytest.raises(ExportError) as err:
        lstmviz.export(model, "keras", tmp_path / "m.weights.h5")
    assert "\n" not in str(err.value) and "initial state h0" in str(err.value)
