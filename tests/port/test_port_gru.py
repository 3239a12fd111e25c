"""GRU and plain-RNN layers (and stacks mixing them with LSTMs) through every export target.

Each export is loaded by the real framework (torch ``nn.GRU``/``nn.RNN``, the ONNX reference
evaluator, lstmviz's own npz reader, the standalone NumPy script) and its output compared with
``lstmviz.run`` on the canonical model. Real GRU fixtures: a bidirectional two-layer ``nn.GRU``
(``gru/torch/gru_bidir2.pt``), a Keras ``get_weights()`` GRU, a madmom bidirectional RNN and a
three-GRU ONNX stack (``gru_real/``), a torch LSTM/GRU stack exported to ONNX
(``gru/onnx/torch_mixed.onnx``), an ONNX reset-before bidirectional GRU
(``gru/onnx/gru_lbr0_bidir.onnx``) and the onnxruntime-made ONNX GRU/RNN graphs whose stored
outputs the exports must reproduce (clip, initial states, Relu).
"""

from __future__ import annotations

import runpy

import numpy as np
import port_models as pm
import pytest
import torch

import lstmviz
from lstmviz.core.activations import Activation
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import LSTMLayer, LSTMModel
from lstmviz.core.rnn import RNNDirection
from lstmviz.port import ExportError

F32 = np.float32


def gru(rng: np.random.Generator, D: int, H: int, reverse=False, reset_after=True) -> GRUDirection:
    return GRUDirection(
        W_x=rng.normal(0, 0.5, (3 * H, D)).astype(F32),
        W_h=rng.normal(0, 0.5, (3 * H, H)).astype(F32),
        b_x=rng.normal(0, 0.5, 3 * H).astype(F32),
        b_h=rng.normal(0, 0.5, 3 * H).astype(F32),
        reset_after=reset_after,
        reverse=reverse,
    )


def rnn(rng: np.random.Generator, D: int, H: int, reverse=False, act="tanh") -> RNNDirection:
    return RNNDirection(
        W_x=rng.normal(0, 0.5, (H, D)).astype(F32),
        W_h=rng.normal(0, 0.4, (H, H)).astype(F32),
        b=rng.normal(0, 0.5, H).astype(F32),
        act_cand=Activation(act),
        reverse=reverse,
    )


def gru_stack(seed=0, bidirectional=False, reset_after=True) -> LSTMModel:
    rng = np.random.default_rng(seed)
    layers, D = [], 3
    for k in range(2):
        dirs = [gru(rng, D, 4, reset_after=reset_after)]
        if bidirectional:
            dirs.append(gru(rng, D, 4, reverse=True, reset_after=reset_after))
        layers.append(LSTMLayer(f"g{k}", tuple(dirs)))
        D = 4 * len(dirs)
    return LSTMModel(layers=tuple(layers))


def rnn_stack(seed=1, act="tanh", bidirectional=True) -> LSTMModel:
    rng = np.random.default_rng(seed)
    layers, D = [], 3
    for k in range(2):
        dirs = [rnn(rng, D, 5, act=act)]
        if bidirectional:
            dirs.append(rnn(rng, D, 5, reverse=True, act=act))
        layers.append(LSTMLayer(f"r{k}", tuple(dirs)))
        D = 5 * len(dirs)
    return LSTMModel(layers=tuple(layers))


def mixed(seed=2, bidirectional=False, act="relu") -> LSTMModel:
    """LSTM (4) → GRU (3) → RNN relu (5): kinds and widths differ layer to layer."""
    rng = np.random.default_rng(seed)
    n = 2 if bidirectional else 1

    def both(make, D, H, **kw):
        return tuple(make(rng, D, H, reverse=bool(d), **kw) for d in range(n))

    return LSTMModel(
        layers=(
            LSTMLayer("l0", both(pm.direction, 3, 4)),
            LSTMLayer("g1", both(gru, 4 * n, 3)),
            LSTMLayer("r2", both(rnn, 3 * n, 5, act=act)),
        )
    )


def fixture(name: str) -> LSTMModel:
    return lstmviz.load_model(pm.FIXTURES / name)


CASES = {
    "gru": gru_stack,
    "gru_bidir": lambda: gru_stack(bidirectional=True),
    "rnn_tanh_bidir": rnn_stack,
    "rnn_relu": lambda: rnn_stack(act="relu", bidirectional=False),
    "mixed": mixed,
    "mixed_bidir": lambda: mixed(bidirectional=True),
    "real_torch_gru_bidir2": lambda: fixture("gru/torch/gru_bidir2.pt"),
    "real_onnx_torch_mixed": lambda: fixture("gru/onnx/torch_mixed.onnx"),
    "real_keras_get_weights_gru": lambda: fixture("gru_real/keras_get_weights_gru.npz"),
    "real_madmom_brnn": lambda: fixture("gru_real/madmom_brnn.pkl"),
    "real_stacked_gru_h_in": lambda: fixture("gru_real/stacked_gru_h_in.onnx"),
}
#: Models with a reset-before GRU (torch and the canonical npz cannot hold them).
RESET_BEFORE = {
    "gru_reset_before": lambda: gru_stack(bidirectional=True, reset_after=False),
    "real_onnx_lbr0_bidir": lambda: fixture("gru/onnx/gru_lbr0_bidir.onnx"),
}


def inputs(model: LSTMModel, T: int = 7) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((T, model.input_size)).astype(F32)


def expected(model: LSTMModel, x: np.ndarray) -> np.ndarray:
    return np.asarray(lstmviz.run(model, x).layers[-1].output, np.float64)


def kinds(model: LSTMModel) -> set[str]:
    return {layer.directions[0].kind for layer in model.layers}


def test_cases_cover_gru_rnn_and_mixed():
    assert kinds(CASES["real_torch_gru_bidir2"]()) == {"GRU"}
    assert kinds(CASES["real_onnx_torch_mixed"]()) == {"LSTM", "GRU"}
    assert kinds(CASES["mixed"]()) == {"LSTM", "GRU", "RNN"}
    assert not RESET_BEFORE["real_onnx_lbr0_bidir"]().layers[0].directions[0].reset_after


# --- pytorch ------------------------------------------------------------------------------


def torch_module(code: str) -> torch.nn.Module:
    """Build the module the export's code text defines (without its load line)."""
    lines = [line for line in code.splitlines() if "load_state_dict" not in line]
    scope: dict[str, object] = {"torch": torch}
    exec("\n".join(lines[1:]), scope)
    return scope["lstm"]  # type: ignore[return-value]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pytorch_round_trip(tmp_path, case):
    model = CASES[case]()
    path = tmp_path / "m.pt"
    result = lstmviz.export(model, "pytorch", path)
    module = torch_module(result.code)
    module.load_state_dict(torch.load(path, weights_only=True))  # strict: names and shapes
    x = inputs(model)
    with torch.no_grad():
        got = module(torch.from_numpy(x)[:, None])
    got = (got[0] if isinstance(got, tuple) else got)[:, 0].double().numpy()
    np.testing.assert_allclose(got, expected(model, x), atol=1e-5)
    if kinds(model) == {"GRU"} and len({layer.hidden_size for layer in model.layers}) == 1:
        assert "torch.nn.GRU(" in result.code and "layers." not in "".join(module.state_dict())
    if len(kinds(model)) > 1:
        assert "class Stack(torch.nn.Module)" in result.code
        assert all(k.startswith("layers.") for k in module.state_dict())


def test_pytorch_rnn_relu_names_nonlinearity(tmp_path):
    result = lstmviz.export(rnn_stack(act="relu"), "pytorch", tmp_path / "m.pt")
    assert "torch.nn.RNN(3, 5, num_layers=2, nonlinearity='relu', bidirectional=True)" in (
        result.code
    )


@pytest.mark.parametrize("case", sorted(RESET_BEFORE))
def test_pytorch_refuses_reset_before_naming_holders(tmp_path, case):
    with pytest.raises(ExportError) as err:
        lstmviz.export(RESET_BEFORE[case](), "pytorch", tmp_path / "m.pt")
    msg = str(err.value)
    assert "\n" not in msg and "reset_after False" in msg
    for holder in ("keras (GRU reset_after=False)", "onnx (linear_before_reset=0)", "npz",
                   "numpy"):  # fmt: skip
        assert holder in msg


# --- onnx ---------------------------------------------------------------------------------


def _reference_rnn_class() -> type:
    """The reference evaluator's RNN knows Tanh and Affine only; this one also knows Relu
    (ONNX's ``Relu(x) = max(0, x)``), so relu RNN nodes are checked in CI too. Its GRU always
    runs sigmoid/tanh and ignores ``clip`` (the exported GRUs here use exactly those)."""
    from onnx.reference.ops.op_rnn import RNN_14

    class RNN(RNN_14):  # the op type the evaluator looks the class up by
        op_domain = ""

        def choose_act(self, name, alpha, beta):
            if name in ("Relu", "relu"):
                return lambda x: np.maximum(x, 0)
            return super().choose_act(name, alpha, beta)

    return RNN


def onnx_run(path, x: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(str(path), new_ops=[_reference_rnn_class()])
    return np.asarray(sess.run(["y"], {"x": x[:, None, :]})[0][:, 0], np.float64)


ONNX_CASES = {**CASES, **RESET_BEFORE}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_reference_evaluator(tmp_path, case):
    import onnx

    model = ONNX_CASES[case]()
    path = tmp_path / "m.onnx"
    result = lstmviz.export(model, "onnx", path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert ops == [layer.directions[0].kind for layer in model.layers]
    recurrent = [n for n in proto.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    for node, layer in zip(recurrent, model.layers, strict=True):
        if node.op_type == "GRU":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["linear_before_reset"] == int(layer.directions[0].reset_after)
    x = inputs(model)
    np.testing.assert_allclose(onnx_run(path, x), expected(model, x), atol=1e-5)
    assert "GRU" in result.summary or "RNN" in result.summary


def _onnxruntime_run(path, x: np.ndarray) -> np.ndarray | None:
    """onnxruntime's y, or None where it is not installed (CI installs no onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(["y"], {"x": x[:, None, :]})[0][:, 0], np.float64)


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_runs_in_onnxruntime_where_installed(tmp_path, case):
    """onnxruntime when importable (1.32: every case within 2.4e-7 of run, clip and initial
    state fixtures included), else the reference evaluator again: never skipped."""
    model = ONNX_CASES[case]()
    path = tmp_path / "m.onnx"
    lstmviz.export(model, "onnx", path)
    x = inputs(model)
    got = _onnxruntime_run(path, x)
    got = onnx_run(path, x) if got is None else got
    np.testing.assert_allclose(got, expected(model, x), atol=1e-5)


def test_onnx_relu_rnn_names_relu(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    lstmviz.export(rnn_stack(act="relu"), "onnx", path)
    node = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "RNN")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["activations"] == [b"Relu", b"Relu"]


def test_onnx_round_trips_through_lstmviz_reader(tmp_path):
    """lstmviz's own ONNX reader reads the export back (GRU reset modes and RNN included)."""
    for make in (mixed, RESET_BEFORE["gru_reset_before"]):
        model = make()
        path = tmp_path / "m.onnx"
        lstmviz.export(model, "onnx", path)
        x = inputs(model)
        np.testing.assert_allclose(expected(lstmviz.load_model(path), x), expected(model, x),
                                   atol=1e-5)  # fmt: skip


# --- numpy --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_numpy_script_reproduces_run(tmp_path, case):
    model = ONNX_CASES[case]()
    path = tmp_path / "forward.py"
    lstmviz.export(model, "numpy", path)
    forward = runpy.run_path(str(path))["forward"]
    x = inputs(model)
    np.testing.assert_allclose(forward(x), expected(model, x), atol=1e-6)


def test_numpy_script_spells_out_gru_and_rnn_equations(tmp_path):
    rng = np.random.default_rng(9)
    model = LSTMModel(
        layers=(
            LSTMLayer("a", (gru(rng, 3, 4),)),
            LSTMLayer("b", (gru(rng, 4, 4, reset_after=False),)),
            LSTMLayer("c", (rnn(rng, 4, 2, act="relu"),)),
        )
    )
    lstmviz.export(model, "numpy", tmp_path / "f.py")
    source = (tmp_path / "f.py").read_text()
    for text in ("x_r = z_x[t, 0 * H:1 * H]  # reset gate", "x_z = z_x[t, 1 * H:2 * H]",
                 "n = act_cand(clip(x_n + r * h_n))", "W_h[2 * H:3 * H] @ (r * h)",
                 "h = (1.0 - z) * n + z * h", "reset_after=True", "reset_after=False",
                 "def rnn_direction(", "act=relu", "GRU reset before",
                 "h = act(W_x @ x_t"):  # fmt: skip
        assert text in source, text


# --- npz ----------------------------------------------------------------------------------

#: Bare arrays cannot say relu: the npz cases' plain RNNs are tanh.
NPZ_CASES = {k: v for k, v in ONNX_CASES.items() if k not in ("rnn_relu", "mixed", "mixed_bidir")}
NPZ_CASES["mixed_tanh"] = lambda: mixed(act="tanh")
NPZ_CASES["mixed_tanh_bidir"] = lambda: mixed(bidirectional=True, act="tanh")


@pytest.mark.parametrize("layout", ["canonical", "pytorch", "keras"])
@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_npz_read_back_by_lstmviz(tmp_path, case, layout):
    model = NPZ_CASES[case]()
    path = tmp_path / "w.npz"
    reset_before = any(
        layer.directions[0].kind == "GRU" and not layer.directions[0].reset_after
        for layer in model.layers
    )
    if reset_before and layout != "keras":
        with pytest.raises(ExportError, match="layout=keras"):
            lstmviz.export(model, "npz", path, layout=layout)
        return
    modules = (
        len({layer.directions[0].kind for layer in model.layers}) > 1
        or len({layer.hidden_size for layer in model.layers}) > 1
    )
    if modules and layout == "canonical":
        with pytest.raises(ExportError, match="layout=keras"):
            lstmviz.export(model, "npz", path, layout=layout)
        return
    lstmviz.export(model, "npz", path, layout=layout)
    x = inputs(model)
    if (
        modules and layout == "pytorch"
    ):  # layers.k.: lstmviz's state_dict reader takes one module at a time
        ran = lstmviz.run(model, x)
        for k, layer in enumerate(model.layers):
            part = lstmviz.load_model(path, prefix=f"layers.{k}")
            assert part.layers[0].directions[0].kind == layer.directions[0].kind
            x_k = x if k == 0 else np.asarray(ran.layers[k - 1].output, F32)
            np.testing.assert_allclose(expected(part, x_k), ran.layers[k].output, atol=1e-5)
        return
    back = lstmviz.load_model(path)
    assert [la.directions[0].kind for la in back.layers] == [
        la.directions[0].kind for la in model.layers
    ]
    np.testing.assert_allclose(expected(back, x), expected(model, x), atol=1e-5)


def test_npz_keras_gru_layout_is_z_r_h(tmp_path):
    model = gru_stack(reset_after=True)
    lstmviz.export(model, "npz", tmp_path / "w.npz", layout="keras")
    stored = np.load(tmp_path / "w.npz")
    w, H = model.layers[0].directions[0], 4
    assert stored["layer0/bias"].shape == (2, 3 * H)
    np.testing.assert_array_equal(stored["layer0/kernel"][:, :H], w.W_x[H : 2 * H].T)  # z
    np.testing.assert_array_equal(stored["layer0/bias"][1, H : 2 * H], w.b_h[:H])  # r


@pytest.mark.parametrize("layout", ["canonical", "pytorch", "keras", "tf1"])
def test_npz_refuses_relu_rnn_and_tf1_gru(tmp_path, layout):
    with pytest.raises(ExportError) as err:
        lstmviz.export(rnn_stack(act="relu"), "npz", tmp_path / "w.npz", layout=layout)
    assert "\n" not in str(err.value) and "npz" in str(err.value)


# --- onnxruntime / torch outputs stored with the ONNX GRU/RNN fixtures ---------------------

#: ONNX fixtures whose ``expected.npz`` holds onnxruntime's (or torch's) ``Y``: clip, initial
#: states, Relu, reverse and bias-free GRUs — what the reference evaluator cannot check.
STORED = ("gru_clip", "gru_h0", "rnn_clip", "rnn_relu", "gru_lbr1", "gru_reverse_nobias",
          "rnn_bidir", "torch_rnn_relu", "torch_gru_bidir2")  # fmt: skip


@pytest.mark.parametrize("name", STORED)
def test_exports_reproduce_the_stored_framework_outputs(tmp_path, name):
    model = fixture(f"gru/onnx/{name}.onnx")
    stored = np.load(pm.FIXTURES / f"gru/onnx/{name}.expected.npz")
    x, want = stored["x"].astype(F32), stored["Y"].astype(np.float64)
    if name.startswith("torch_"):  # a stack: Y is the last node's
        want = want[:, -model.output_size :]
    # ONNX: the exported graph, read back by lstmviz's ONNX reader
    lstmviz.export(model, "onnx", tmp_path / "m.onnx")
    np.testing.assert_allclose(expected(lstmviz.load_model(tmp_path / "m.onnx"), x), want,
                               atol=1e-5)  # fmt: skip
    # NumPy script
    lstmviz.export(model, "numpy", tmp_path / "f.py")
    forward = runpy.run_path(str(tmp_path / "f.py"))["forward"]
    np.testing.assert_allclose(forward(x), want, atol=1e-5)
    # PyTorch, where nn.GRU/nn.RNN can hold it (no clip, no stored initial state)
    try:
        result = lstmviz.export(model, "pytorch", tmp_path / "m.safetensors")
    except ExportError as exc:
        assert "\n" not in str(exc)
        assert any(w in str(exc) for w in ("clip", "initial state", "reset", "backwards"))
        return
    from safetensors.torch import load_file

    module = torch_module(result.code)
    module.load_state_dict(load_file(tmp_path / "m.safetensors"))
    with torch.no_grad():
        got = module(torch.from_numpy(x)[:, None])[0][:, 0].double().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_pytorch_notes_the_summed_bias_only_where_there_is_one(tmp_path):
    assert not lstmviz.export(gru_stack(), "pytorch", tmp_path / "g.pt").notes
    assert any("bias_hh" in n for n in lstmviz.export(mixed(), "pytorch", tmp_path / "m.pt").notes)


def test_numpy_script_takes_initial_states_per_layer_with_none_for_the_rest(tmp_path):
    model = mixed()
    lstmviz.export(model, "numpy", tmp_path / "f.py")
    forward = runpy.run_path(str(tmp_path / "f.py"))["forward"]
    x, h0 = inputs(model), np.linspace(-0.5, 0.5, 3)
    zeros = [np.zeros(4), h0, np.zeros(5)]  # run takes every layer's; None = zeros here
    want = lstmviz.run(model, x, h0=zeros).layers[-1].output
    np.testing.assert_allclose(forward(x, h0=[None, h0, None]), want, atol=1e-6)
    assert not np.allclose(want, expected(model, x))


# --- command line -------------------------------------------------------------------------


def test_cli_exports_a_gru_and_refuses_reset_before_in_one_line(tmp_path, capsys):
    from lstmviz.port.cli import main

    src = str(pm.FIXTURES / "gru/torch/gru_bidir2.pt")
    assert main([src, "--to", "onnx", str(tmp_path / "g.onnx")]) == 0
    assert "2 GRU nodes" in capsys.readouterr().out
    assert main([src, "--to", "pytorch", str(tmp_path / "g.pt"), "--code"]) == 0
    assert "torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)" in capsys.readouterr().out
    lbr0 = str(pm.FIXTURES / "gru/onnx/gru_lbr0_bidir.onnx")
    assert main([lbr0, "--to", "pytorch", str(tmp_path / "r.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "linear_before_reset=0" in err
