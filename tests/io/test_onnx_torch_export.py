"""torch.onnx.export (TorchScript exporter, dynamo=False) across opsets, run against torch.

Made at test time with torch 2.13 (each export ~0.2 s). Opset 7 is the interesting one: torch
reorders the gate blocks with Slice + Concat + Unsqueeze nodes instead of storing W/R/B as
initializers (onnxruntime cannot even load that file: it uses the removed ConstantFill op),
so lstmviz folds them. The dynamo exporter needs onnxscript, so its files are committed
fixtures (tests/fixtures/onnx/make_fixtures.py dynamo).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstmviz
from lstmviz.io import ChoiceRequired, LoadError

TOL = 1e-5
T, D, H = 5, 3, 4


def export(model: nn.Module, args: tuple, path: Path, opset: int) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation and RNN-export warnings
        torch.onnx.export(model, args, path, dynamo=False, opset_version=opset)
    return path


def reference(lstm: nn.LSTM, x: np.ndarray, state: tuple | None = None) -> np.ndarray:
    with torch.no_grad():
        xt = torch.from_numpy(x)
        xt = xt[None] if lstm.batch_first else xt[:, None]
        y = lstm(xt, state)[0]
    return (y[0] if lstm.batch_first else y[:, 0]).numpy()


CASES = {
    # name: (LSTM kwargs, opset)
    "opset 7 folded gates": ({"num_layers": 2}, 7),
    "opset 9": ({}, 9),
    "opset 17 bidirectional 3 layers": ({"num_layers": 3, "bidirectional": True}, 17),
    "opset 20 batch_first": ({"num_layers": 2, "batch_first": True}, 20),
    "opset 17 no bias bidirectional": ({"bias": False, "bidirectional": True}, 17),
}


@pytest.mark.parametrize("case", list(CASES))
def test_export_matches_torch(tmp_path: Path, case: str) -> None:
    kwargs, opset = CASES[case]
    torch.manual_seed(opset)
    lstm = nn.LSTM(D, H, **kwargs).eval()
    x = np.random.default_rng(opset).standard_normal((T, D)).astype(np.float32)
    shape = (1, T, D) if lstm.batch_first else (T, 1, D)
    path = export(lstm, (torch.zeros(shape),), tmp_path / "lstm.onnx", opset)
    model = lstmviz.load_model(path)
    assert model.framework.startswith(f"ONNX opset {opset} (pytorch ")
    assert len(model.layers) == lstm.num_layers
    notes = model.layers[0].directions[0].provenance.notes
    assert not any("initial_" in n for n in notes), notes  # torch's zero states are zeros
    out = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(out, reference(lstm, x), atol=TOL, rtol=0)
    if opset == 7:
        transforms = model.layers[0].directions[0].provenance.transforms
        assert any("folded from constants through" in t and "Slice" in t for t in transforms)


def test_initial_states_fed_as_graph_inputs(tmp_path: Path) -> None:
    """h0/c0 are graph inputs: noted, and run(h0=, c0=) reproduces torch with the same states."""
    torch.manual_seed(5)
    lstm = nn.LSTM(D, H, num_layers=2).eval()
    h0, c0 = torch.randn(2, 1, H), torch.randn(2, 1, H)
    path = export(lstm, (torch.zeros(T, 1, D), (h0, c0)), tmp_path / "states.onnx", 17)
    model = lstmviz.load_model(path)
    notes = model.layers[0].directions[0].provenance.notes
    assert any(n.startswith("initial_h depends on graph input") for n in notes), notes
    x = np.random.default_rng(5).standard_normal((T, D)).astype(np.float32)
    trace = lstmviz.run(model, x, h0=list(h0[:, 0].numpy()), c0=list(c0[:, 0].numpy()))
    expected = reference(lstm, x, (h0, c0))
    np.testing.assert_allclose(trace.layers[-1].output, expected, atol=TOL, rtol=0)


class EncoderHeadDecoder(nn.Module):
    """Two LSTM stacks with a Linear + tanh between: they cannot be run as one stack."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(D, H, num_layers=2)
        self.bridge = nn.Linear(H, 3)
        self.decoder = nn.LSTM(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.tanh(self.bridge(self.encoder(x)[0])))[0]


def test_separate_stacks_are_a_choice(tmp_path: Path) -> None:
    torch.manual_seed(6)
    net = EncoderHeadDecoder().eval()
    path = export(net, (torch.zeros(T, 1, D),), tmp_path / "encdec.onnx", 17)
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path)
    assert info.value.option == "prefix"
    assert len(info.value.choices) == 2
    assert "separate LSTM stacks" in str(info.value)
    x = np.random.default_rng(6).standard_normal((T, D)).astype(np.float32)
    encoder = lstmviz.load_model(path, prefix="encoder")
    assert len(encoder.layers) == 2
    out = lstmviz.run(encoder, x).layers[-1].output
    np.testing.assert_allclose(out, reference(net.encoder, x), atol=TOL, rtol=0)
    with torch.no_grad():
        x2 = torch.tanh(net.bridge(net.encoder(torch.from_numpy(x)[:, None])[0]))[:, 0].numpy()
    decoder = lstmviz.load_model(path, prefix=info.value.choices[1])
    out = lstmviz.run(decoder, x2).layers[-1].output
    np.testing.assert_allclose(out, reference(net.decoder, x2), atol=TOL, rtol=0)
    notes = {i.name: i.note for i in decoder.all_layers if i.is_lstm}
    assert sum(n.startswith("not shown; load with prefix=") for n in notes.values()) == 2
    with pytest.raises(ChoiceRequired, match="no LSTM node named or under 'head'"):
        lstmviz.load_model(path, prefix="head")


def test_projection_is_not_exportable_so_the_state_dict_is_the_way(tmp_path: Path) -> None:
    """torch refuses to export proj_size; the state_dict of the same LSTM loads instead."""
    lstm = nn.LSTM(D, H, proj_size=2).eval()
    with pytest.raises(Exception, match="LSTMs with projections"):
        export(lstm, (torch.zeros(T, 1, D),), tmp_path / "proj.onnx", 17)
    torch.save(lstm.state_dict(), tmp_path / "proj.pt")
    x = np.random.default_rng(7).standard_normal((T, D)).astype(np.float32)
    out = lstmviz.run(lstmviz.load_model(tmp_path / "proj.pt"), x).layers[-1].output
    np.testing.assert_allclose(out, reference(lstm, x), atol=TOL, rtol=0)


def test_gru_export_opens_as_a_gru(tmp_path: Path) -> None:
    """GRUs open since issue 14 (more: tests/io/test_gru_onnx.py)."""
    gru = nn.GRU(D, H).eval()
    path = export(gru, (torch.zeros(T, 1, D),), tmp_path / "gru.onnx", 17)
    x = np.random.default_rng(3).standard_normal((T, D)).astype(np.float32)
    model = lstmviz.load_model(path)
    assert [layer.kind for layer in model.layers] == ["GRU"]
    with torch.no_grad():
        want = gru(torch.from_numpy(x)[:, None])[0][:, 0].numpy()
    d = model.layers[0].directions[0]
    with torch.no_grad():  # the canonical arrays are torch's own (r, z, n; biases apart)
        np.testing.assert_allclose(d.W_x, gru.weight_ih_l0.numpy(), atol=0)
        np.testing.assert_allclose(d.b_h, gru.bias_hh_l0.numpy(), atol=0)
    out = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(out, want, atol=TOL, rtol=0)


class CellLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(D, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = torch.zeros(1, H)
        out = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            out.append(h)
        return torch.stack(out)


def test_lstm_cell_export_has_no_lstm_node(tmp_path: Path) -> None:
    """Both torch exporters write nn.LSTMCell out as Gemm/Sigmoid/Tanh: said so."""
    path = export(CellLoop().eval(), (torch.zeros(T, 1, D),), tmp_path / "cell.onnx", 17)
    written_out = r"no LSTM, GRU or RNN node \(the cell is written out as Gemm/MatMul"
    with pytest.raises(LoadError, match=written_out):
        lstmviz.load_model(path)


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(11, D)
        self.lstm = nn.LSTM(D, H, batch_first=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lstm(self.emb(ids))[0]


def test_embedding_lookup_in_front_becomes_the_token_table(tmp_path: Path) -> None:
    from lstmviz.core.sequence import embed_tokens

    torch.manual_seed(8)
    net = Tagger().eval()
    ids = torch.tensor([[1, 4, 2, 9, 0]])
    path = export(net, (ids,), tmp_path / "tagger.onnx", 17)
    model = lstmviz.load_model(path)
    assert model.embedding is not None and model.embedding.shape == (11, D)
    assert any(n.startswith("embedding = ") for n in model.notes)
    out = lstmviz.run(model, embed_tokens(ids[0].numpy(), model.embedding)).layers[0].output
    with torch.no_grad():
        expected = net(ids)[0].numpy()
    np.testing.assert_allclose(out, expected, atol=TOL, rtol=0)
