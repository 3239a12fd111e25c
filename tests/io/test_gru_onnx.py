"""ONNX GRU and RNN nodes (tests/fixtures/gru/onnx, made by make_fixtures.py: torch exports
with torch's outputs, onnx.helper graphs with onnxruntime's) load as canonical GRU/RNN
directions and reproduce the frameworks."""

from __future__ import annotations

import numpy as np
import pytest
from test_gru_common import FIXTURES, check

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.core.rnn import RNNDirection

HERE = FIXTURES / "onnx"

CASES = [
    # stem, layer kinds, reset_after of the GRU layers (None: not a GRU)
    ("torch_gru_bidir2", ["GRU (bidirectional)"] * 2, True),
    ("torch_rnn_relu", ["RNN", "RNN"], None),
    ("torch_mixed", ["LSTM", "GRU (bidirectional)"], True),
    ("gru_lbr0_bidir", ["GRU (bidirectional)"], False),
    ("gru_lbr1", ["GRU"], True),
    ("gru_reverse_nobias", ["GRU"], False),
    ("rnn_bidir", ["RNN (bidirectional)"], None),
    ("rnn_relu", ["RNN"], None),
    ("gru_clip", ["GRU"], True),
    ("rnn_clip", ["RNN (bidirectional)"], None),
    ("gru_h0", ["GRU (bidirectional)"], False),
]


@pytest.mark.parametrize(("stem", "kinds", "reset_after"), CASES)
def test_fixture_matches_the_framework(stem: str, kinds: list[str], reset_after: bool) -> None:
    model = lstmviz.load_model(HERE / f"{stem}.onnx")
    assert [layer.kind for layer in model.layers] == kinds
    assert model.framework.startswith("ONNX opset 14")
    for d in (d for layer in model.layers for d in layer.directions):
        if isinstance(d, GRUDirection):
            assert d.reset_after is reset_after
    exp = np.load(HERE / f"{stem}.expected.npz")
    skip = 1 if stem == "torch_mixed" else 0  # Y_h is the GRU's only
    dirs = sum(len(layer.directions) for layer in model.layers[:skip])
    check(model, exp["x"], exp["Y"], None)
    from test_gru_common import reference

    _, last = reference(model, exp["x"])
    np.testing.assert_allclose(np.stack(last[dirs:]), exp["Y_h"], atol=1e-5, rtol=0)


def test_gru_blocks_are_reordered_and_biases_split() -> None:
    import onnx
    from onnx import numpy_helper

    arrays = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load(HERE / "gru_lbr0_bidir.onnx").graph.initializer
    }
    W, B = arrays["W"], arrays["B"]
    H = 4
    bw = lstmviz.load_model(HERE / "gru_lbr0_bidir.onnx").layers[0].directions[1]
    assert isinstance(bw, GRUDirection) and bw.reverse and not bw.reset_after
    np.testing.assert_array_equal(bw.W_x[:H], W[1, H : 2 * H])  # r = stored block 1
    np.testing.assert_array_equal(bw.W_x[H : 2 * H], W[1, :H])  # z = stored block 0
    np.testing.assert_array_equal(bw.b_h[2 * H :], B[1, 5 * H :])  # Rb_h
    prov = bw.provenance
    assert prov.gate_order == ("z", "r", "h") and prov.perm == (1, 0, 2)
    lbr = prov.setting("linear_before_reset")
    assert lbr is not None and lbr.assumed and lbr.value == 0


def test_clip_and_stored_initial_state_are_read() -> None:
    gru = lstmviz.load_model(HERE / "gru_clip.onnx").layers[0].directions[0]
    assert gru.gate_clip == pytest.approx(0.5)
    assert not gru.provenance.setting("clip").assumed  # type: ignore[union-attr]
    rnn = lstmviz.load_model(HERE / "rnn_clip.onnx").layers[0].directions[1]
    assert rnn.gate_clip == pytest.approx(0.4)
    import onnx
    from onnx import numpy_helper

    h0 = next(
        numpy_helper.to_array(t)
        for t in onnx.load(HERE / "gru_h0.onnx").graph.initializer
        if t.name == "h0"
    )
    fw, bw = lstmviz.load_model(HERE / "gru_h0.onnx").layers[0].directions
    np.testing.assert_array_equal(fw.h0, h0[0, 0])
    np.testing.assert_array_equal(bw.h0, h0[1, 0])


def test_rnn_activation_and_summed_bias() -> None:
    d = lstmviz.load_model(HERE / "rnn_relu.onnx").layers[0].directions[0]
    assert isinstance(d, RNNDirection) and d.act_cand.name == "relu"
    acts = d.provenance.setting("activations")
    assert acts is not None and not acts.assumed
    assert "B split into Wb + Rb and summed" in d.provenance.transforms


def test_reference_evaluator_agrees_where_it_runs() -> None:
    """onnxruntime wrote Y; onnx's reference evaluator, where it implements the graph, gave
    the same (both saved), so the expected values are not one runtime's quirk."""
    for stem in ("gru_lbr0_bidir", "gru_lbr1", "gru_reverse_nobias", "rnn_bidir"):
        exp = np.load(HERE / f"{stem}.expected.npz")
        np.testing.assert_allclose(exp["ref_Y"], exp["Y"], atol=1e-5)
        assert str(exp["runner"]).startswith("onnxruntime")
