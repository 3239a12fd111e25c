"""numpy target: the script imports only NumPy and its forward(x) is run(model, x) at 1e-6."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys

import numpy as np
import port_models as pm
import pytest

import lstmviz
from lstmviz.core.activations import Activation
from lstmviz.core.dense import DenseLayer, NormLayer
from lstmviz.core.model import LSTMLayer, LSTMModel, MergeMode, OutputOrder
from lstmviz.port import numpy_script


def everything() -> LSTMModel:
    """Peepholes, projection, all clips, initial states, hard sigmoids, every merge, reversed
    outputs, a Dense between layers and a LayerNorm + softmax head."""
    rng = np.random.default_rng(11)
    d = pm.direction
    first = d(rng, 3, 4, 2, cell_clip=0.7, proj_clip=0.3, h0=rng.normal(size=2),
              c0=rng.normal(size=4), **pm.peepholes(rng, 4))  # fmt: skip
    second = d(rng, 3, 4, 2, reverse=True, act_gate=Activation("hard_sigmoid_k2"), gate_clip=1.5)
    third = d(rng, 3, 5, reverse=True, act_cand=Activation("hard_sigmoid_ab", 0.3, 0.4),
              act_cell=Activation("swish"))  # fmt: skip
    dense = DenseLayer("between", rng.normal(size=(3, 2)), rng.normal(size=3), Activation("relu"))
    head = (
        NormLayer("ln", 3, scale=rng.normal(size=3), offset=rng.normal(size=3)),
        DenseLayer("out", rng.normal(size=(2, 3)), None, Activation("softmax")),
    )
    last = (d(rng, 5, 3, reverse=True, act_gate=Activation("hard_sigmoid_k3")), d(rng, 5, 3))
    return LSTMModel(
        layers=(
            LSTMLayer("a", (first, second), merge_mode=MergeMode.MUL),
            LSTMLayer("b", (third,), output_order=OutputOrder.PROCESSING, before=(dense,)),
            LSTMLayer("c", last, merge_mode=MergeMode.AVE, output_order=OutputOrder.PROCESSING),
        ),
        head=head,
    )


CASES = {
    "everything": everything,
    "stacked": pm.stacked,
    "norm_layers": pm.with_norms,
    "bidirectional": pm.bidirectional,
    "projected": pm.projected,
    "peephole": pm.peephole,
    "go_backwards": pm.go_backwards,
    "hard_sigmoid": pm.hard_sigmoid,
    "tf1_peep_proj_fixture": lambda: lstmviz.load_model(pm.FIXTURES / "tf1/peep_proj/model.ckpt"),
    "keras_hard_sigmoid_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/full_hard_sigmoid.h5"
    ),
    "keras_bidirectional_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "keras/bidirectional.h5"
    ),
    "onnx_activations_fixture": lambda: lstmviz.load_model(
        pm.FIXTURES / "onnx/activations_bidir.onnx"
    ),
}


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("embed", ["auto", "false"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_script_reproduces_run(tmp_path, case, embed):
    model = CASES[case]()
    path = tmp_path / "forward_pass.py"
    result = lstmviz.export(model, "numpy", path, embed=embed)
    source = path.read_text()
    assert imported_modules(source) == {"numpy"}
    assert (tmp_path / "forward_pass.npz").exists() == (embed == "false")
    assert len(result.paths) == (2 if embed == "false" else 1)
    namespace = runpy.run_path(str(path))
    x = pm.sequence(model)
    trace = lstmviz.run(model, x, dtype=np.float64)
    np.testing.assert_allclose(namespace["forward"](x), trace.layers[-1].output, atol=1e-6)
    np.testing.assert_allclose(  # and the float32 default run, at the frameworks' tolerance
        namespace["forward"](x), lstmviz.run(model, x).layers[-1].output, atol=1e-5
    )
    if model.head:
        np.testing.assert_allclose(namespace["forward_with_head"](x), trace.head_output, atol=1e-6)
    else:
        assert "forward_with_head" not in namespace


@pytest.mark.parametrize(
    ("fixture", "output"),
    [
        ("tf1/peep_proj/model.ckpt", "output"),  # TensorFlow 1: peepholes, projection, clips
        ("onnx/activations_bidir.onnx", "Y"),  # onnxruntime: HardSigmoid, peepholes
        ("keras/bidirectional.h5", None),  # Keras 2: concat, mul, go_backwards, ave
    ],
)
def test_script_matches_the_framework_outputs_stored_with_fixtures(tmp_path, fixture, output):
    path = pm.FIXTURES / fixture
    expected = np.load(path.parent / "expected.npz" if "tf1" in fixture else
                       path.with_suffix(".expected.npz"))  # fmt: skip
    lstmviz.export(lstmviz.load_model(path), "numpy", tmp_path / "f.py")
    forward = runpy.run_path(str(tmp_path / "f.py"))["forward"]
    want = expected[output] if output else expected["y2"]  # bidirectional.h5: layer 2's output
    if output is None:  # layers 0-2 of 4: compare through the script's own layers
        model = lstmviz.load_model(path)
        model = model.replace(layers=model.layers[:3])
        lstmviz.export(model, "numpy", tmp_path / "g.py")
        forward = runpy.run_path(str(tmp_path / "g.py"))["forward"]
    np.testing.assert_allclose(forward(expected["x"]), want, atol=1e-5)


def test_script_names_gates_and_spells_out_activations(tmp_path):
    lstmviz.export(everything(), "numpy", tmp_path / "f.py")
    source = (tmp_path / "f.py").read_text()
    for text in ("z_i = z[0 * H:1 * H]", "z_f = ", "z_g = ", "z_o = ", "def hard_sigmoid_k2(z)",
                 "np.clip(0.2 * z + 0.5, 0.0, 1.0)", "def swish(z)", "def sigmoid(z)",
                 "y = y[::-1]", "(h_fw + h_bw) / 2", "h_fw * h_bw"):  # fmt: skip
        assert text in source, text


def test_script_runs_alone_in_a_fresh_interpreter(tmp_path):
    """python -I: no lstmviz on the path; only NumPy is imported besides the stdlib."""
    lstmviz.export(pm.peephole(), "numpy", tmp_path / "alone.py")
    code = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1]); import numpy as np; "
        "y = ns['forward'](np.ones((4, 3))); "
        "assert not any(m.startswith(('lstmviz', 'torch', 'keras')) for m in sys.modules); "
        "print(y.shape)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path / "alone.py")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "(4, 6)"


def test_large_models_go_to_a_sibling_npz(tmp_path, monkeypatch):
    monkeypatch.setattr(numpy_script, "EMBED_LIMIT", 10)
    result = lstmviz.export(pm.stacked(), "numpy", tmp_path / "big.py")
    assert [p.name for p in result.paths] == ["big.py", "big.npz"]
    assert np.load(tmp_path / "big.npz")["layer0/forward/W_x"].dtype == np.float32
    x = pm.sequence(pm.stacked())
    forward = runpy.run_path(str(tmp_path / "big.py"))["forward"]
    np.testing.assert_allclose(forward(x), pm.reference(pm.stacked(), x), atol=1e-6)


def test_embedding_table_becomes_embed(tmp_path):
    """tf.keras 2.13 Embedding + LSTMs: forward(embed(tokens)) is what Keras computed."""
    path = pm.FIXTURES / "keras/tf213_embedding_v1.keras"
    expected = np.load(path.with_suffix(".expected.npz"))
    model = lstmviz.load_model(path)
    lstmviz.export(model, "numpy", tmp_path / "e.py")
    ns = runpy.run_path(str(tmp_path / "e.py"))
    np.testing.assert_allclose(ns["embed"](expected["tokens"]), expected["x"], atol=1e-6)
    np.testing.assert_allclose(ns["forward"](ns["embed"](expected["tokens"])), expected["y1"],
                               atol=1e-5)  # fmt: skip
    onnx_result = lstmviz.export(model, "onnx", tmp_path / "e.onnx")
    assert any("Embedding table (9, 3)" in note for note in onnx_result.notes)


@pytest.mark.parametrize("make", [everything, pm.bidirectional, pm.projected])
def test_initial_states_as_run_takes_them(tmp_path, make):
    model = make()
    rng = np.random.default_rng(3)
    h0 = [
        rng.normal(size=(len(la.directions), la.directions[0].output_size)) for la in model.layers
    ]
    c0 = [rng.normal(size=(len(la.directions), la.hidden_size)) for la in model.layers]
    h0[0] = h0[0][0]  # one (n,) array serves every direction of a layer, as in run
    lstmviz.export(model, "numpy", tmp_path / "s.py")
    forward = runpy.run_path(str(tmp_path / "s.py"))["forward"]
    x = pm.sequence(model)
    want = lstmviz.run(model, x, h0=h0, c0=c0, dtype=np.float64).layers[-1].output
    np.testing.assert_allclose(forward(x, h0, c0), want, atol=1e-6)
