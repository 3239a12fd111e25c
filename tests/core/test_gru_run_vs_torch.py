"""``run`` on GRU and plain RNN models against ``torch.nn.GRU``/``GRUCell``/``RNN`` themselves.

torch stores r, z, n like the canonical GRU and keeps ``bias_ih``/``bias_hh`` apart (the reset
gate multiplies ``W_hn·h + b_hn``), so the weights are copied as they are; the RNN's two biases
are summed. Outputs, final states and every recorded gate are compared at 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmviz.core import (
    Activation,
    GRUDirection,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    RNNDirection,
    run,
)
from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.compute_cells import run_gru_direction

TOL = 1e-5


def _sd(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def gru_model(gru: torch.nn.GRU) -> LSTMModel:
    sd, layers = _sd(gru), []
    for k in range(gru.num_layers):
        dirs = []
        for suffix, reverse in [("", False), ("_reverse", True)][: 1 + gru.bidirectional]:
            s = f"_l{k}{suffix}"
            W_x, W_h, b_x, b_h = (
                sd[f"{n}{s}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            dirs.append(GRUDirection(W_x, W_h, b_x, b_h, reverse=reverse))
        layers.append(LSTMLayer(f"gru_{k}", tuple(dirs), kind="GRU"))
    return LSTMModel(tuple(layers))


def rnn_model(rnn: torch.nn.RNN) -> LSTMModel:
    sd, layers = _sd(rnn), []
    act = Activation(rnn.nonlinearity)
    for k in range(rnn.num_layers):
        dirs = []
        for suffix, reverse in [("", False), ("_reverse", True)][: 1 + rnn.bidirectional]:
            s = f"_l{k}{suffix}"
            b = sd[f"bias_ih{s}"] + sd[f"bias_hh{s}"]
            dirs.append(RNNDirection(sd[f"weight_ih{s}"], sd[f"weight_hh{s}"], b, act, reverse))
        layers.append(LSTMLayer(f"rnn_{k}", tuple(dirs), kind="RNN"))
    return LSTMModel(tuple(layers))


def _scaled(module: torch.nn.Module, seed: int, scale: float = 0.9) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-scale, scale)  # larger than the default init: gates saturate sometimes
    return module.eval()


def _x(T: int, D: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D)).astype(np.float32)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_stacked_gru_matches_torch(bidirectional: bool, engine: str) -> None:
    gru = _scaled(torch.nn.GRU(4, 6, num_layers=2, bidirectional=bidirectional), seed=3)
    model = gru_model(gru)
    x = _x(300, 4)  # long enough for the compiled engine's ``auto`` threshold too
    dirs = 1 + bidirectional
    h0 = np.random.default_rng(2).normal(size=(2, dirs, 6)).astype(np.float32)
    with torch.no_grad():
        y, h_n = gru(torch.from_numpy(x)[:, None], torch.from_numpy(h0.reshape(2 * dirs, 1, 6)))
    trace = run(model, x, h0=list(h0), engine=engine)
    np.testing.assert_allclose(trace.output, y[:, 0].numpy(), atol=TOL)
    finals = [dt.h_last for lt in trace.layers for dt in lt.directions]
    np.testing.assert_allclose(np.stack(finals), h_n[:, 0].numpy(), atol=TOL)
    assert trace.layers[0].directions[0].cell is GRU_CELL


def test_every_recorded_gate_matches_gru_cell_steps() -> None:
    """r, z, n of each step against the equations evaluated with torch from nn.GRUCell's
    own weights, and h against GRUCell stepping through the sequence."""
    cell = _scaled(torch.nn.GRUCell(3, 5), seed=4)
    sd = _sd(cell)
    w = GRUDirection(sd["weight_ih"], sd["weight_hh"], sd["bias_ih"], sd["bias_hh"])
    x = _x(40, 3)
    dt = run_gru_direction(w, x, engine="numpy")
    h = torch.zeros(1, 5)
    with torch.no_grad():
        for t in range(40):
            xt = torch.from_numpy(x[t : t + 1])
            gi = xt @ cell.weight_ih.T + cell.bias_ih
            gh = h @ cell.weight_hh.T + cell.bias_hh
            r = torch.sigmoid(gi[:, :5] + gh[:, :5])
            z = torch.sigmoid(gi[:, 5:10] + gh[:, 5:10])
            n = torch.tanh(gi[:, 10:] + r * gh[:, 10:])
            np.testing.assert_allclose(dt.gate("r")[t], r[0].numpy(), atol=TOL)
            np.testing.assert_allclose(dt.z[t], z[0].numpy(), atol=TOL)
            np.testing.assert_allclose(dt.n[t], n[0].numpy(), atol=TOL)
            np.testing.assert_allclose(dt.cand_h[t], (r * gh[:, 10:])[0].numpy(), atol=TOL)
            h = cell(xt, h)
            np.testing.assert_allclose(dt.h[t], h[0].numpy(), atol=TOL)


def test_gru_terms_sum_to_the_pre_activation_both_modes() -> None:
    gru = _scaled(torch.nn.GRU(3, 4), seed=5)
    for reset_after in (True, False):
        w = gru_model(gru).layers[0].directions[0].replace(reset_after=reset_after)
        dt = run_gru_direction(w, _x(30, 3), dtype=np.float64)
        for gate in ("r", "z", "n"):
            terms = dt.terms(gate)
            assert [t.key for t, _ in terms] == [t.key for t in dt.cell.gate(gate).terms]
            total = sum(np.broadcast_to(v, (30, 4)) for _, v in terms)
            np.testing.assert_allclose(total, dt.gate_pre(gate), atol=1e-12)
            act = np.tanh if gate == "n" else (lambda a: 1 / (1 + np.exp(-a)))
            np.testing.assert_allclose(act(dt.value(f"pre_{gate}")), dt.gate(gate), atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_matches_torch(nonlinearity: str, bidirectional: bool) -> None:
    rnn = _scaled(
        torch.nn.RNN(4, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=bidirectional),
        seed=6,
        scale=0.5,
    )
    x = _x(60, 4)
    with torch.no_grad():
        y, h_n = rnn(torch.from_numpy(x)[:, None])
    trace = run(rnn_model(rnn), x)
    np.testing.assert_allclose(trace.output, y[:, 0].numpy(), atol=TOL)
    finals = [dt.h_last for lt in trace.layers for dt in lt.directions]
    np.testing.assert_allclose(np.stack(finals), h_n[:, 0].numpy(), atol=TOL)
    dt = trace.layers[0].directions[0]
    assert dt.cell is RNN_CELL and dt.gate("n") is dt.h
    np.testing.assert_allclose(dt.gate_pre("n"), dt.z_x + dt.z_h + dt.b, atol=1e-6)


def test_mixed_lstm_gru_rnn_model_runs_end_to_end() -> None:
    """An LSTM feeding a bidirectional GRU feeding an RNN: each against its torch module."""
    torch.manual_seed(7)
    lstm = _scaled(torch.nn.LSTM(3, 4), seed=7)
    gru = _scaled(torch.nn.GRU(4, 5, bidirectional=True), seed=8)
    rnn = _scaled(torch.nn.RNN(10, 2), seed=9, scale=0.5)
    sd = _sd(lstm)
    lw = LSTMDirection(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"] + sd["bias_hh_l0"])
    model = LSTMModel(
        (LSTMLayer("lstm", (lw,)), gru_model(gru).layers[0], rnn_model(rnn).layers[0])
    )
    x = _x(280, 3)
    with torch.no_grad():
        y = rnn(gru(lstm(torch.from_numpy(x)[:, None])[0])[0])[0][:, 0].numpy()
    for engine in ("numpy", "auto"):
        trace = run(model, x, engine=engine)
        np.testing.assert_allclose(trace.output, y, atol=TOL)
        np.testing.assert_allclose(trace.network_output, y, atol=TOL)
        np.testing.assert_allclose(trace.final_output, y, atol=TOL)
    assert [lt.layer.cell.name for lt in trace.layers] == ["LSTM", "GRU", "RNN"]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("H", [5, 64, 130])
def test_numba_engine_equals_numpy_engine(reset_after: bool, H: int) -> None:
    """Both engines on the same weights (H = 130: the packed blocks end part-way)."""
    gru = _scaled(torch.nn.GRU(7, H, bidirectional=True), seed=10, scale=0.3)
    model = gru_model(gru)
    model = model.replace(
        layers=(
            model.layers[0].__class__(
                "gru",
                tuple(w.replace(reset_after=reset_after) for w in model.layers[0].directions),
            ),
        )
    )
    x = _x(50, 7)
    a, b = run(model, x, engine="numpy"), run(model, x, engine="numba")
    for da, db in zip(a.layers[0].directions, b.layers[0].directions, strict=True):
        for name in ("r", "z", "n", "h"):
            np.testing.assert_allclose(getattr(db, name), getattr(da, name), atol=2e-6)
    ref = run(model, x, dtype=np.float64)
    np.testing.assert_allclose(b.output, ref.output, atol=TOL)
