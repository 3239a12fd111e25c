"""Raw NumPy arrays against the frameworks that made them (fixtures/arrays/make_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import OutputOrder
from lstmviz.io import ChoiceRequired, LoadError, find_reader
from lstmviz.io.probe import Probe

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "arrays"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOL = 1e-5


def expected(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(HERE / f"{name}.expected.npz"))


def check(model: lstmviz.LSTMModel, exp: dict[str, np.ndarray]) -> lstmviz.Trace:
    trace = lstmviz.run(model, exp["x"])
    np.testing.assert_allclose(trace.layers[-1].output, exp["output"], atol=TOL, rtol=0)
    if "layer0" in exp:
        np.testing.assert_allclose(trace.layers[0].output, exp["layer0"], atol=TOL, rtol=0)
    if "h_n" in exp:
        h_n = [d.h_last for layer in trace.layers for d in layer.directions]
        c_n = [d.c_last for layer in trace.layers for d in layer.directions]
        np.testing.assert_allclose(np.stack(h_n), exp["h_n"], atol=TOL, rtol=0)
        np.testing.assert_allclose(np.stack(c_n), exp["c_n"], atol=TOL, rtol=0)
    return trace


CASES = [
    # fixture, options, layout, how, layers, bidirectional per layer, framework's gate order
    ("torch_names", {}, "pytorch", "guessed from names", (True, True), ("i", "f", "g", "o")),
    ("torch_shapes", {}, "pytorch", "guessed from shapes", (False, False), ("i", "f", "g", "o")),
    (
        "torch_bidir_shapes",
        {},
        "pytorch",
        "guessed from shapes",
        (True, True),
        ("i", "f", "g", "o"),
    ),
    ("keras_names", {}, "keras", "guessed from names", (True, False), ("i", "f", "c", "o")),
    ("keras_get_weights", {}, "keras", "guessed from shapes", (True, False), ("i", "f", "c", "o")),
    ("keras_shapes", {}, "keras", "guessed from shapes", (False,), ("i", "f", "c", "o")),
    (
        "tf1_names",
        {"forget_bias": 0.5},
        "tf1",
        "guessed from names",
        (False,),
        ("i", "j", "f", "o"),
    ),
    ("onnx_names", {}, "onnx", "guessed from names", (True,), ("i", "o", "f", "c")),
    ("ambiguous_nobias", {"layout": "pytorch"}, "pytorch", "given", (False,), ("i", "f", "g", "o")),
]


@pytest.mark.parametrize(("name", "options", "layout", "how", "bidi", "order"), CASES)
def test_fixture_matches_its_framework(
    name: str, options: dict, layout: str, how: str, bidi: tuple[bool, ...], order: tuple
) -> None:
    model = lstmviz.load_model(HERE / f"{name}.npz", **options)
    fmt = f"NumPy .npz (layout: {layout}, {how})"
    assert model.source_format == fmt
    assert tuple(layer.bidirectional for layer in model.layers) == bidi
    check(model, expected(name))
    for layer in model.layers:
        for d in layer.directions:
            prov = d.provenance
            assert prov.source_format == fmt and prov.gate_order == order
            acts = prov.setting("activations")
            assert acts is not None and acts.assumed and acts.value == "sigmoid, tanh, tanh"


def test_keras_names_pair_forward_and_backward_and_skip_dense() -> None:
    model = lstmviz.load_model(HERE / "keras_names.npz")
    first = model.layers[0]
    assert first.name == "bidirectional" and [d.reverse for d in first.directions] == [False, True]
    stored = {t.role: t for t in first.directions[1].provenance.stored}
    assert stored["W_x"].name == "bidirectional/backward_lstm/lstm_cell/kernel"
    assert stored["W_x"].transposed and stored["W_x"].shape == (3, 16)
    assert [layer.name for layer in model.layers] == ["bidirectional", "lstm_1"]
    unused = [(info.name, info.weights) for info in model.all_layers if not info.is_lstm]
    assert unused == [("dense", (("dense/kernel", (5, 2)), ("dense/bias", (2,))))]
    assert model.layers[1].output_order is OutputOrder.TIME


def test_tf1_forget_bias_is_assumed_1_unless_given() -> None:
    exp = expected("tf1_names")
    assumed = lstmviz.load_model(HERE / "tf1_names.npz")
    setting = assumed.layers[0].directions[0].provenance.setting("forget_bias")
    assert setting is not None and setting.assumed and setting.value == 1.0
    # TF made the fixture with forget_bias=0.5: the assumed default must not match it ...
    out = lstmviz.run(assumed, exp["x"]).layers[-1].output
    assert np.abs(out - exp["output"]).max() > 1e-3
    # ... and giving it folds 0.5 into b_f only.
    given = lstmviz.load_model(HERE / "tf1_names.npz", forget_bias=0.5)
    d0, d1 = assumed.layers[0].directions[0], given.layers[0].directions[0]
    np.testing.assert_allclose(d0.b - d1.b, np.r_[np.zeros(6), np.full(6, 0.5), np.zeros(12)])
    assert not d1.provenance.setting("forget_bias").assumed  # type: ignore[union-attr]
    last = lstmviz.run(given, exp["x"]).layers[0].directions[0]
    np.testing.assert_allclose(last.h_last, exp["h"], atol=TOL, rtol=0)
    np.testing.assert_allclose(last.c_last, exp["c"], atol=TOL, rtol=0)


def test_ambiguous_pair_asks_for_the_layout() -> None:
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(HERE / "ambiguous_nobias.npz")
    err = info.value
    assert err.option == "layout" and set(err.choices) == {"pytorch", "onnx"}
    assert "ambiguous_nobias.npz" in str(err) and "layout=" in str(err)
    # The choice matters: ONNX gate order i,o,f,c gives another network.
    exp = expected("ambiguous_nobias")
    as_onnx = lstmviz.load_model(HERE / "ambiguous_nobias.npz", layout="onnx")
    out = lstmviz.run(as_onnx, exp["x"]).layers[-1].output
    assert np.abs(out - exp["output"]).max() > 1e-3
    assert as_onnx.source_format == "NumPy .npz (layout: onnx, given)"


def test_single_kernel_npy_needs_layout_tf1() -> None:
    path = HERE / "tf1_kernel.npy"
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path)
    assert info.value.choices == ("tf1",) and "(9, 24)" in str(info.value)
    model = lstmviz.load_model(path, layout="tf1", forget_bias=0.5)
    assert model.source_format == "NumPy .npy (layout: tf1, given)"
    full = lstmviz.load_model(HERE / "tf1_names.npz", forget_bias=0.5)
    d, ref = model.layers[0].directions[0], full.layers[0].directions[0]
    np.testing.assert_array_equal(d.W_x, ref.W_x)
    np.testing.assert_array_equal(d.W_h, ref.W_h)
    np.testing.assert_array_equal(d.b, np.r_[np.zeros(6), np.full(6, 0.5), np.zeros(12)])
    assert any("no bias stored" in n for n in d.provenance.notes)


def test_layout_option_overrides_names_and_rejects_misfits() -> None:
    model = lstmviz.load_model(HERE / "torch_shapes.npz", layout="pytorch")
    check(model, expected("torch_shapes"))
    with pytest.raises(LoadError, match=r"do not fit layout keras"):
        lstmviz.load_model(HERE / "torch_shapes.npz", layout="keras")
    with pytest.raises(LoadError, match=r"unknown layout 'caffe'"):
        lstmviz.load_model(HERE / "torch_shapes.npz", layout="caffe")


def test_pytorch_names_reuse_the_state_dict_reader() -> None:
    model = lstmviz.load_model(HERE / "torch_names.npz")
    assert model.framework == "PyTorch layout (NumPy arrays)"
    names = [t.name for t in model.layers[1].directions[1].provenance.stored]
    assert names == [
        "rnn.weight_ih_l1_reverse",
        "rnn.weight_hh_l1_reverse",
        "rnn.bias_ih_l1_reverse",
        "rnn.bias_hh_l1_reverse",
    ]


def test_sniff_claims_only_numpy_files() -> None:
    ours = [HERE / f for f in ("torch_names.npz", "tf1_kernel.npy")]
    assert all(find_reader(Probe.open(p)).name == "NumPy arrays" for p in ours)  # type: ignore[union-attr]
    others = [
        *(FIXTURES / "torch").glob("*.pt"),
        *(FIXTURES / "torch").glob("*.safetensors"),
        FIXTURES / "tf1" / "basic" / "model.ckpt.index",
        *(FIXTURES / "onnx").glob("*.onnx"),
        *(FIXTURES / "keras").glob("*.h5"),
        *(FIXTURES / "keras").glob("*.keras"),
    ]
    for p in others:
        reader = find_reader(Probe.open(p))
        assert reader is None or reader.name != "NumPy arrays", p


def test_two_pytorch_lstms_ask_for_a_prefix(tmp_path: Path) -> None:
    src = np.load(HERE / "torch_names.npz")
    both = {**{k: src[k] for k in src.files}}
    both.update({k.replace("rnn.", "other.", 1): src[k] for k in src.files})
    path = tmp_path / "two.npz"
    np.savez(path, **both)
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path)
    assert info.value.option == "prefix" and set(info.value.choices) == {"rnn", "other"}
    check(lstmviz.load_model(path, prefix="other"), expected("torch_names"))


def test_stored_counts_match_the_file() -> None:
    """Each stored array counted once per model, also ONNX arrays shared by two directions."""
    for name in ("torch_names", "keras_names", "onnx_names", "tf1_names", "torch_shapes"):
        src = np.load(HERE / f"{name}.npz")
        model = lstmviz.load_model(HERE / f"{name}.npz", layout=None)
        used = {
            t.name for layer in model.layers for d in layer.directions for t in d.provenance.stored
        }
        in_file = sum(src[k].size for k in src.files if k in used)
        assert sum(layer.n_stored_params for layer in model.layers) == in_file, name


def test_whole_model_get_weights_uses_the_lstm_run_only() -> None:
    """Embedding (10, 3) before and Dense (5, 2), (2,) after the LSTM arrays are left out."""
    model = lstmviz.load_model(HERE / "keras_get_weights.npz")
    stored = [t.name for t in model.layers[0].directions[1].provenance.stored]
    assert stored == ["arr_4", "arr_5", "arr_6"]  # the backward copy follows the forward one
    note = next(n for n in model.notes if n.startswith("only"))
    assert note == "only 9 of 12 arrays form the LSTM stack; not used: arr_0, arr_10, arr_11"
    unused = {info.name for info in model.all_layers if not info.is_lstm}
    assert unused == {"arr_0", "arr_10", "arr_11"}


def test_equal_shaped_layers_are_stacked_with_a_note(tmp_path: Path) -> None:
    """Two D == H cells fit a 2-layer stack and one bidirectional layer: stack, and say so."""
    src = np.load(HERE / "keras_shapes.npz")
    path = tmp_path / "twice.npz"
    np.savez(path, *[src[k] for k in src.files], *[src[k] for k in src.files])
    model = lstmviz.load_model(path)
    assert [layer.bidirectional for layer in model.layers] == [False, False]
    assert any("could also be the two directions" in n for n in model.notes)


def test_keras2_style_names_with_colon_suffix(tmp_path: Path) -> None:
    src = np.load(HERE / "keras_shapes.npz")
    names = ("kernel:0", "recurrent_kernel:0", "bias:0")
    path = tmp_path / "tfkeras.npz"
    np.savez(
        path,
        **{
            f"model_weights/lstm_1/lstm_1/{n}": src[k]
            for n, k in zip(names, src.files, strict=True)
        },
    )
    model = lstmviz.load_model(path)
    assert model.source_format == "NumPy .npz (layout: keras, guessed from names)"
    assert model.layers[0].name == "model_weights/lstm_1/lstm_1"
    check(model, expected("keras_shapes"))


def test_onnx_names_without_the_direction_axis(tmp_path: Path) -> None:
    """The forward half of the bidirectional fixture, squeezed to 2-D, gives its forward output."""
    src = np.load(HERE / "onnx_names.npz")
    path = tmp_path / "squeezed.npz"
    np.savez(path, **{k.split("/")[-1]: src[k][0] for k in src.files})
    model = lstmviz.load_model(path)
    d = model.layers[0].directions[0]
    assert not model.layers[0].bidirectional and not d.reverse and d.has_peepholes
    assert "direction axis absent: one forward direction" in d.provenance.notes
    exp = expected("onnx_names")
    out = lstmviz.run(model, exp["x"]).layers[0].output
    np.testing.assert_allclose(out, exp["output"][:, :4], atol=TOL, rtol=0)


def test_tf1_bidirectional_names_pair_fw_and_bw_in_sorted_order() -> None:
    """bw is listed first (sorted checkpoint names); the layer is still (forward, backward).
    TF's forward cell used the defaults, so its outputs must match; the bw cell used relu and
    forget_bias 0.25, which bare arrays cannot say."""
    model = lstmviz.load_model(HERE / "tf1_bidi.npz")
    (layer,) = model.layers
    assert layer.name == "bidirectional_rnn" and layer.bidirectional
    fw, bw = layer.directions
    assert "/fw/" in fw.provenance.stored[0].name and "/bw/" in bw.provenance.stored[0].name
    exp = expected("tf1_bidi")
    trace = lstmviz.run(model, exp["x"]).layers[0].directions[0]
    np.testing.assert_allclose(trace.h, exp["out_fw"], atol=TOL, rtol=0)
    np.testing.assert_allclose(trace.h_last, exp["h_fw"], atol=TOL, rtol=0)
    np.testing.assert_allclose(trace.c_last, exp["c_fw"], atol=TOL, rtol=0)


def test_tf1_multi_rnn_cell_stacks_cells_in_order() -> None:
    """cell_0 (BasicLSTMCell, forget_bias 1.0 as assumed) matches TF; cell_1 follows it."""
    model = lstmviz.load_model(HERE / "tf1_multi.npz")
    assert [layer.name for layer in model.layers] == [
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell",
        "rnn/multi_rnn_cell/cell_1/lstm_cell",
    ]
    exp = expected("tf1_multi")
    first = lstmviz.run(model, exp["x"]).layers[0].directions[0]
    np.testing.assert_allclose(first.h_last, exp["h0"], atol=TOL, rtol=0)
    np.testing.assert_allclose(first.c_last, exp["c0"], atol=TOL, rtol=0)


def test_tf1_peepholes_and_projection_match_the_checkpoint_reader(tmp_path: Path) -> None:
    """Same arrays as the TF1 peep_proj checkpoint: identical canonical weights (the clips live
    in the graph only, so they are absent here)."""
    from lstmviz.io.tensorflow.bundle import Bundle

    folder = FIXTURES / "tf1" / "peep_proj"
    bundle = Bundle(folder / "model.ckpt.index")
    path = tmp_path / "peep_proj.npz"
    np.savez(path, **{n: np.asarray(bundle.read(n)) for n in sorted(bundle.entries)})
    ours = lstmviz.load_model(path).layers[0].directions[0]
    ref = lstmviz.load_model(folder).layers[0].directions[0]
    for name in ("W_x", "W_h", "b", "p_i", "p_f", "p_o", "W_p"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, err_msg=name)
    assert ours.cell_clip is None and ref.cell_clip is not None


def test_positional_pytorch_projection_arrays(tmp_path: Path) -> None:
    """np.savez(*state_dict.values()) of a bidirectional nn.LSTM(proj_size): weight_hr last."""
    import torch

    torch.manual_seed(3)
    lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    np.savez(tmp_path / "proj.npz", *[v.detach().numpy() for v in lstm.state_dict().values()])
    model = lstmviz.load_model(tmp_path / "proj.npz")
    d = model.layers[1].directions[1]
    assert d.W_p is not None and d.W_p.shape == (2, 5) and d.input_size == 4
    x = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    with torch.no_grad():
        expected_out = lstm(torch.from_numpy(x)[:, None])[0][:, 0].numpy()
    out = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(out, expected_out, atol=TOL, rtol=0)
