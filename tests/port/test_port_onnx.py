"""onnx target: the graph runs in onnx's reference evaluator (in CI) and, when installed,
onnxruntime, and lstmviz's ONNX reader reads it back.

The reference evaluator implements LSTM with its default activations and no clip, so models
using other activations or a clip are checked with onnxruntime only (CI has no onnxruntime:
those tests skip there, and the reference tests below must run)."""

from __future__ import annotations

import numpy as np
import onnx
import port_models as pm
import pytest
from onnx.reference import ReferenceEvaluator

import lstmviz
from lstmviz.core.model import MergeMode
from lstmviz.io.errors import ChoiceRequired
from lstmviz.port import ExportError


def run_onnx(sess, x: np.ndarray) -> list[np.ndarray]:
    return [o[:, 0] for o in sess.run(None, {"x": x[:, None, :]})]


#: sigmoid/tanh, no clip: what the reference evaluator computes exactly.
REFERENCE_CASES = {
    "stacked": pm.stacked,
    "bidirectional": pm.bidirectional,
    "bidirectional_ave": lambda: pm.bidirectional(merge=MergeMode.AVE),
    "bidirectional_mul": lambda: pm.bidirectional(merge=MergeMode.MUL),
    "peephole": pm.peephole,
    "go_backwards": pm.go_backwards,
    "bidirectional_backwards": pm.bidirectional_backwards,
    "dense_head": pm.with_head,
    "norm_layers": pm.with_norms,
    "layer_norm_without_scale": lambda: pm.with_norms(scale=False),
    "keras_bidirectional_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/bidirectional.h5"
    ),
    "onnx_learned_h0_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "onnx/dynamo_learned_h0.onnx"
    ),
}
#: Activations and clip: onnxruntime only.
RUNTIME_CASES = {
    **REFERENCE_CASES,
    "hard_sigmoid_k3": pm.hard_sigmoid,
    "hard_sigmoid_k2": lambda: pm.hard_sigmoid(name="hard_sigmoid_k2"),
    "onnx_activations_bidir_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "onnx/activations_bidir.onnx"
    ),
    "onnx_clip_fixture": lambda: lstmviz.load_model(pm.FIXTURES / "onnx/clip.onnx"),
    # tf.keras 2.21: Bidirectional(go_backwards=True) merged by concat, mul, sum; hard_sigmoid
    "keras_bidi_back_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/tfk221_bidi_back.h5"
    ),
}


def _check(model, outputs):
    x_ref = lstmviz.run(model, pm.sequence(model), dtype=np.float64)
    np.testing.assert_allclose(outputs[0], x_ref.layers[-1].output, atol=1e-5)
    if model.head:
        np.testing.assert_allclose(outputs[1], x_ref.head_output, atol=1e-5)


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_reference_evaluator_runs_the_export(tmp_path, case):
    model = REFERENCE_CASES[case]()
    path = tmp_path / "model.onnx"
    lstmviz.export(model, "onnx", path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    outputs = run_onnx(ReferenceEvaluator(proto), pm.sequence(model))
    _check(model, outputs)


@pytest.mark.parametrize("case", sorted(RUNTIME_CASES))
def test_onnxruntime_runs_the_export(tmp_path, case):
    ort = pytest.importorskip("onnxruntime")
    model = RUNTIME_CASES[case]()
    path = tmp_path / "model.onnx"
    lstmviz.export(model, "onnx", path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _check(model, run_onnx(sess, pm.sequence(model)))


@pytest.mark.parametrize("case", ["stacked", "bidirectional", "peephole", "onnx_learned_h0"])
def test_lstmviz_reads_the_export_back(tmp_path, case):
    """Concat stacks are joined by layout-only ops, which lstmviz's reader follows."""
    model = REFERENCE_CASES.get(case) or REFERENCE_CASES[f"{case}_fixture"]
    model = model()
    path = tmp_path / "model.onnx"
    lstmviz.export(model, "onnx", path)
    back = lstmviz.load_model(path)
    pm.assert_same_weights(model, back)
    x = pm.sequence(model)
    np.testing.assert_allclose(
        lstmviz.run(back, x).layers[-1].output, pm.reference(model, x), atol=1e-5
    )


@pytest.mark.parametrize("opset", [17, 18, 22])
@pytest.mark.parametrize("make", [pm.bidirectional_backwards, pm.with_norms])
def test_later_opsets(tmp_path, opset, make):
    model = make()
    path = tmp_path / "m.onnx"
    assert f"opset {opset}" in lstmviz.export(model, "onnx", path, opset=opset).summary
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    _check(model, run_onnx(ReferenceEvaluator(proto), pm.sequence(model)))


def read_back_layers(path):
    """Every LSTM layer of the file, in graph order: merges other than concat and reversals
    are not layout-only, so lstmviz reads such a graph as several stacks (``prefix=``)."""
    try:
        return list(lstmviz.load_model(path).layers)
    except ChoiceRequired as choice:
        return [la for c in choice.choices for la in lstmviz.load_model(path, prefix=c).layers]


@pytest.mark.parametrize("case", sorted(RUNTIME_CASES))
def test_every_export_reads_back_layer_by_layer(tmp_path, case):
    model = RUNTIME_CASES[case]()
    path = tmp_path / "model.onnx"
    lstmviz.export(model, "onnx", path)
    layers = read_back_layers(path)
    assert len(layers) == len(model.layers)
    z = np.linspace(-4, 4, 41)
    for mine, theirs in zip(model.layers, layers, strict=True):
        ours = sorted(mine.directions, key=lambda d: d.reverse)  # ONNX: forward first
        back = sorted(theirs.directions, key=lambda d: d.reverse)
        assert [d.reverse for d in ours] == [d.reverse for d in back]
        for a, b in zip(ours, back, strict=True):
            for name in ("W_x", "W_h", "b", "p_i", "p_f", "p_o", "h0", "c0"):
                va, vb = getattr(a, name), getattr(b, name)
                if va is not None:
                    np.testing.assert_allclose(vb, va, atol=1e-6, err_msg=name)
            assert a.gate_clip == b.gate_clip
            for role in ("act_gate", "act_cand", "act_cell"):
                np.testing.assert_allclose(getattr(b, role)(z), getattr(a, role)(z), atol=1e-6)


def test_activation_attributes_read_back(tmp_path):
    model = lstmviz.load_model(pm.FIXTURES / "onnx/activations_bidir.onnx")
    lstmviz.export(model, "onnx", tmp_path / "a.onnx")
    back = lstmviz.load_model(tmp_path / "a.onnx")
    for a, b in zip(model.layers[0].directions, back.layers[0].directions, strict=True):
        z = np.linspace(-4, 4, 41)
        for role in ("act_gate", "act_cand", "act_cell"):
            np.testing.assert_allclose(getattr(b, role)(z), getattr(a, role)(z), atol=1e-6)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (pm.projected, "projection W_p .* onnx cannot hold; export to pytorch"),
        (lambda: lstmviz.load_model(pm.FIXTURES / "tf1/peep_proj/model.ckpt"), "projection"),
    ],
)
def test_refuses_what_onnx_lstm_cannot_hold(tmp_path, make, needle):
    with pytest.raises(ExportError, match=needle) as info:
        lstmviz.export(make(), "onnx", tmp_path / "x.onnx")
    assert "\n" not in str(info.value)


def test_cell_clip_refused_gate_clip_kept(tmp_path):
    rng = np.random.default_rng(0)
    model = lstmviz.LSTMModel(
        layers=(lstmviz.core.model.LSTMLayer("c", (pm.direction(rng, 3, 4, cell_clip=0.5),)),)
    )
    with pytest.raises(ExportError, match=r"cell_clip 0\.5, which onnx cannot hold"):
        lstmviz.export(model, "onnx", tmp_path / "x.onnx")
    clipped = lstmviz.load_model(pm.FIXTURES / "onnx/clip.onnx")
    lstmviz.export(clipped, "onnx", tmp_path / "c.onnx")
    assert lstmviz.load_model(tmp_path / "c.onnx").layers[0].directions[0].gate_clip == 0.5


def test_models_over_the_protobuf_limit_are_refused(tmp_path, monkeypatch):
    from lstmviz.port import onnx as port_onnx

    monkeypatch.setattr(port_onnx, "MAX_BYTES", 100)
    with pytest.raises(ExportError, match="exceed the 2 GB one ONNX file holds"):
        lstmviz.export(pm.stacked(), "onnx", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
