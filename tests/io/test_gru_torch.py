"""PyTorch GRU and plain-RNN files (tests/fixtures/gru/torch, made by torch 2.13 with
make_fixtures.py) load as canonical GRU/RNN directions and reproduce torch's outputs."""

from __future__ import annotations

import numpy as np
import pytest
from test_gru_common import FIXTURES, check

import lstmviz
from lstmviz.core.gru import GRUDirection
from lstmviz.core.rnn import RNNDirection
from lstmviz.io import ChoiceRequired, LoadError

HERE = FIXTURES / "torch"

CASES = [
    # file, expected stem, layers, bidirectional, kind, load options
    ("gru.pt", "gru", 1, False, "GRU", {}),
    ("gru_bidir2.pt", "gru_bidir2", 2, True, "GRU", {}),
    ("gru_cell.pt", "gru_cell", 1, False, "GRUCell", {}),
    ("gru_nobias.pt", "gru_nobias", 1, False, "GRU", {}),
    ("gru_model.pt", "gru_model", 2, False, "GRU", {}),
    ("gru_script.pt", "gru_script", 1, True, "GRU", {}),
    ("gru_half.pt", "gru_half", 1, True, "GRU", {}),
    ("gru_st.safetensors", "gru_st", 2, False, "GRU", {}),
    ("rnn_tanh.pt", "rnn_tanh", 2, False, "RNN", {}),
    ("rnn_cell.pt", "rnn_cell", 1, False, "RNNCell", {}),
    ("rnn_relu_model.pt", "rnn_relu_model", 1, True, "RNN", {}),
    ("rnn_relu_script.pt", "rnn_relu_script", 1, False, "RNN", {}),
    ("rnn_relu.pt", "rnn_relu", 1, True, "RNN", {"nonlinearity": "relu"}),
    ("mixed.pt", "mixed", 1, False, "GRU", {"prefix": "gru"}),
    ("mixed.pt", "mixed", 1, False, "LSTM", {"prefix": "lstm"}),
]


def _expected(stem: str, key: str = "") -> dict[str, np.ndarray]:
    data = np.load(HERE / f"{stem}.expected.npz")
    prefix = f"{key}/" if key else ""
    return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


@pytest.mark.parametrize(("name", "stem", "n_layers", "bidir", "kind", "options"), CASES)
def test_fixture_matches_torch(
    name: str, stem: str, n_layers: int, bidir: bool, kind: str, options: dict
) -> None:
    model = lstmviz.load_model(HERE / name, **options)
    assert len(model.layers) == n_layers
    assert all(layer.bidirectional == bidir and layer.kind == kind for layer in model.layers)
    assert model.framework == "PyTorch"
    exp = _expected(stem, options.get("prefix", ""))
    check(model, exp["x"], exp["output"], exp["h_n"])


def test_gru_arrays_are_torch_weights_as_stored() -> None:
    """r, z, n is the canonical order: W_x is weight_ih itself, the biases stay apart."""
    import torch

    sd = torch.load(HERE / "gru_bidir2.pt", weights_only=True)
    model = lstmviz.load_model(HERE / "gru_bidir2.pt")
    d = model.layers[1].directions[1]
    assert isinstance(d, GRUDirection) and d.reset_after and d.reverse
    np.testing.assert_array_equal(d.W_x, sd["weight_ih_l1_reverse"].numpy())
    np.testing.assert_array_equal(d.W_h, sd["weight_hh_l1_reverse"].numpy())
    np.testing.assert_array_equal(d.b_x, sd["bias_ih_l1_reverse"].numpy())
    np.testing.assert_array_equal(d.b_h, sd["bias_hh_l1_reverse"].numpy())
    prov = d.provenance
    assert prov.gate_order == ("r", "z", "n") and prov.perm == (0, 1, 2)
    roles = {t.role.value: t.name for t in prov.stored}
    assert roles == {
        "W_x": "weight_ih_l1_reverse",
        "W_h": "weight_hh_l1_reverse",
        "b_x": "bias_ih_l1_reverse",
        "b_h": "bias_hh_l1_reverse",
    }
    assert any("kept apart" in t for t in prov.transforms)


def test_rnn_state_dict_assumes_tanh_and_says_so() -> None:
    """A state dict does not record nn.RNN's nonlinearity: tanh is assumed (and shown as
    assumed), which for the relu model gives other numbers than torch; nonlinearity=relu
    or a whole pickled module (it records the attribute) gives torch's."""
    exp = _expected("rnn_relu")
    model = lstmviz.load_model(HERE / "rnn_relu.pt")
    d = model.layers[0].directions[0]
    assert isinstance(d, RNNDirection) and d.act_cand.name == "tanh"
    setting = d.provenance.setting("nonlinearity")
    assert setting is not None and setting.assumed and setting.value == "tanh"
    from test_gru_common import reference

    assert not np.allclose(reference(model, exp["x"])[0][-1], exp["output"], atol=1e-3)
    whole = lstmviz.load_model(HERE / "rnn_relu_model.pt").layers[0].directions[0]
    setting = whole.provenance.setting("nonlinearity")
    assert whole.act_cand.name == "relu" and setting is not None and not setting.assumed


def test_rnn_sums_its_two_biases() -> None:
    import torch

    sd = torch.load(HERE / "rnn_tanh.pt", weights_only=True)
    d = lstmviz.load_model(HERE / "rnn_tanh.pt").layers[1].directions[0]
    np.testing.assert_allclose(d.b, (sd["bias_ih_l1"] + sd["bias_hh_l1"]).numpy(), rtol=1e-6)
    assert d.provenance.gate_order == ("h",)
    assert "bias_ih + bias_hh summed into b" in d.provenance.transforms


def test_mixed_lstm_and_gru_is_a_choice_and_lists_both() -> None:
    with pytest.raises(ChoiceRequired, match=r"2 recurrent modules \(lstm, gru\)") as info:
        lstmviz.load_model(HERE / "mixed.pt")
    assert info.value.choices == ("lstm", "gru")
    model = lstmviz.load_model(HERE / "mixed.pt", prefix="gru")
    listed = {i.name: i for i in model.all_layers}
    assert listed["gru"].note == "shown" and listed["gru"].is_lstm
    assert listed["lstm"].note == "not shown; load with prefix='lstm'"


def test_float16_gru_is_widened_and_recorded() -> None:
    d = lstmviz.load_model(HERE / "gru_half.pt").layers[0].directions[0]
    assert d.W_x.dtype == np.float32
    assert "float16 widened to float32" in d.provenance.transforms
    assert {t.dtype for t in d.provenance.stored} == {"float16"}


def test_bad_nonlinearity_is_refused() -> None:
    with pytest.raises(LoadError, match="nonlinearity 'gelu' is not tanh or relu"):
        lstmviz.load_model(HERE / "rnn_tanh.pt", nonlinearity="gelu")


def test_safetensors_rnn_takes_nonlinearity(tmp_path) -> None:
    """safetensors records no nonlinearity either: relu is given, and then torch matches."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(5)
    rnn = torch.nn.RNN(3, 4, nonlinearity="relu")
    save_file({k: v.contiguous() for k, v in rnn.state_dict().items()}, tmp_path / "r.safetensors")
    x = torch.randn(6, 3)
    with torch.no_grad():
        out, h = rnn(x)
    model = lstmviz.load_model(tmp_path / "r.safetensors", nonlinearity="relu")
    assert model.layers[0].directions[0].act_cand.name == "relu"
    check(model, x.numpy(), out.numpy(), h.numpy())


def test_torch_export_pt2_of_a_gru(tmp_path) -> None:
    """``torch.export.save`` archives keep the GRU's parameters under their module names."""
    import warnings

    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gru(x)[0]

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(6, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(net, (x,)), tmp_path / "gru.pt2")
    with torch.no_grad():
        out, h = net.gru(x)
    model = lstmviz.load_model(tmp_path / "gru.pt2")
    assert [layer.kind for layer in model.layers] == ["GRU", "GRU"]
    check(model, x.numpy(), out.numpy(), h.numpy())


def test_dynamic_quantized_gru_is_read_dequantized(tmp_path) -> None:
    """``quantize_dynamic(model, {nn.GRU}, qint8)`` packs the GRU like an LSTM: read
    dequantized, it runs like a float GRU with the weights torch itself dequantizes."""
    import warnings

    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, num_layers=2)

    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(Net().eval(), {torch.nn.GRU}, torch.qint8)
        torch.save(q.state_dict(), tmp_path / "qgru.pt")
        packed = q.gru._weight_bias()
    flat = {**packed["weight"], **packed["bias"]}
    ref = torch.nn.GRU(3, 4, num_layers=2)
    ref.load_state_dict({k: v.dequantize() if v.is_quantized else v for k, v in flat.items()})
    x = torch.randn(6, 3)
    with torch.no_grad():
        out, h = ref(x)
    model = lstmviz.load_model(tmp_path / "qgru.pt")
    assert [layer.kind for layer in model.layers] == ["GRU", "GRU"]
    assert any(n.startswith("dynamic-quantized GRU (qint8)") for n in model.notes)
    check(model, x.numpy(), out.numpy(), h.numpy())
