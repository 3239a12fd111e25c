"""npz target: every layout is read back by lstmviz's own .npz reader to the same model."""

from __future__ import annotations

import numpy as np
import port_models as pm
import pytest

import lstmviz
from lstmviz.port import ExportError

CASES = {
    ("stacked", "canonical"): pm.stacked,
    ("stacked", "keras"): pm.stacked,
    ("stacked", "tf1"): pm.stacked,
    ("bidirectional", "canonical"): pm.bidirectional,
    ("bidirectional", "pytorch"): pm.bidirectional,
    ("bidirectional", "keras"): pm.bidirectional,
    ("bidirectional", "tf1"): pm.bidirectional,
    ("projected", "canonical"): pm.projected,
    ("projected", "pytorch"): pm.projected,
    ("projected", "tf1"): pm.projected,
    ("peephole", "tf1"): pm.peephole,
    ("torch_proj_fixture", "tf1"): lambda: lstmviz.load_model(pm.FIXTURES / "torch/proj.pt"),
    ("keras216_fixture", "keras"): lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/keras216_full.h5"
    ),
}


@pytest.mark.parametrize(("case", "layout"), sorted(CASES))
def test_layout_reads_back(tmp_path, case, layout):
    model = CASES[case, layout]()
    path = tmp_path / f"{case}.npz"
    result = lstmviz.export(model, "npz", path, layout=layout)
    back = lstmviz.load_model(path)
    assert layout.replace("canonical", "pytorch") in back.source_format
    pm.assert_same_weights(model, back, atol=2e-6)
    x = pm.sequence(model)
    np.testing.assert_allclose(
        lstmviz.run(back, x).layers[-1].output, pm.reference(model, x), atol=1e-5
    )
    assert result.summary.startswith(f"wrote {path}")


def test_canonical_is_the_canonical_arrays(tmp_path):
    model = pm.projected()
    lstmviz.export(model, "npz", tmp_path / "c.npz")
    arrays = np.load(tmp_path / "c.npz")
    w = model.layers[1].directions[1]
    np.testing.assert_array_equal(arrays["weight_ih_l1_reverse"], w.W_x)
    np.testing.assert_array_equal(arrays["bias_ih_l1_reverse"], w.b)
    np.testing.assert_array_equal(arrays["weight_hr_l1_reverse"], w.W_p)
    assert "bias_hh_l0" not in arrays


@pytest.mark.parametrize(
    ("make", "layout", "needle"),
    [
        (pm.peephole, "canonical", "peepholes, .* export to onnx, npz \\(layout=tf1\\) or numpy"),
        (pm.peephole, "keras", "peepholes"),
        (pm.projected, "keras", "projection"),
        (pm.hard_sigmoid, "tf1", "activations hard_sigmoid_k3"),
        (pm.go_backwards, "keras", "go_backwards"),
        (lambda: lstmviz.load_model(pm.FIXTURES / "tf1/peep_proj/model.ckpt"), "tf1", "clip"),
        (pm.stacked, "onnx", "unknown layout 'onnx'"),
    ],
)
def test_refusals(tmp_path, make, layout, needle):
    with pytest.raises(ExportError, match=needle) as info:
        lstmviz.export(make(), "npz", tmp_path / "x.npz", layout=layout)
    assert "\n" not in str(info.value)
