"""``run`` against ``torch.nn.LSTM`` itself: the core vs a real framework, without any reader.

Random weights are copied by hand into an ``LSTMModel`` (torch stores i, f, g, o like the
canonical form; ``bias_ih + bias_hh`` is the one bias; ``weight_hr`` is ``W_p``), then the
outputs, final states and every recorded step of the trace are compared.
"""

import dataclasses

import numpy as np
import pytest
import torch

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run


def copy_weights(lstm: torch.nn.LSTM) -> LSTMModel:
    sd = {k: v.detach().double().numpy() for k, v in lstm.state_dict().items()}
    layers = []
    for k in range(lstm.num_layers):
        dirs = []
        for suffix, reverse in [("", False), ("_reverse", True)][: 1 + lstm.bidirectional]:
            s = f"_l{k}{suffix}"
            dirs.append(
                LSTMDirection(
                    W_x=sd["weight_ih" + s],
                    W_h=sd["weight_hh" + s],
                    b=sd["bias_ih" + s] + sd["bias_hh" + s],
                    W_p=sd.get("weight_hr" + s),
                    reverse=reverse,
                )
            )
        layers.append(LSTMLayer(f"lstm_{k}", tuple(dirs)))
    return LSTMModel(tuple(layers))


def torch_lstm(bidirectional: bool, proj: int, dtype: torch.dtype, seed: int) -> torch.nn.LSTM:
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=bidirectional, proj_size=proj)
    with torch.no_grad():
        for p in lstm.parameters():
            p.uniform_(-0.8, 0.8)  # larger than the default init, so gates saturate sometimes
    return lstm.to(dtype).eval()


CASES = [(bi, proj) for bi in (False, True) for proj in (0, 3)]


def torch_forward(lstm: torch.nn.LSTM, x: np.ndarray, h0: np.ndarray, c0: np.ndarray):
    """torch's ``(y, (h_n, c_n))`` for ``x (T, D)`` from per-layer ``h0/c0 (L, dirs, n)``,
    batch of one, in the module's own dtype."""
    layers, n_dir = h0.shape[:2]
    with torch.no_grad():
        tx = torch.from_numpy(x).to(lstm.weight_ih_l0.dtype)[:, None]
        th0 = torch.from_numpy(h0.reshape(layers * n_dir, 1, -1)).to(tx.dtype)
        tc0 = torch.from_numpy(c0.reshape(layers * n_dir, 1, -1)).to(tx.dtype)
        return lstm(tx, (th0, tc0))


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype, atol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("bidirectional, proj", CASES)
def test_run_matches_torch_lstm(bidirectional, proj, dtype, atol):
    lstm = torch_lstm(
        bidirectional, proj, torch.float32 if dtype == np.float32 else torch.float64, 7
    )
    model = copy_weights(lstm)
    n_dir, out = 1 + bidirectional, proj or 6
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 4))
    h0 = rng.normal(size=(2, n_dir, out)) * 0.5
    c0 = rng.normal(size=(2, n_dir, 6)) * 0.5
    y, (h_n, c_n) = torch_forward(lstm, x, h0, c0)
    trace = run(model, x, h0, c0, dtype=dtype)
    assert trace.output.dtype == dtype
    np.testing.assert_allclose(trace.output, y[:, 0].numpy(), atol=atol, rtol=0)
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            np.testing.assert_allclose(dt.h_last, h_n[k * n_dir + d, 0].numpy(), atol=atol, rtol=0)
            np.testing.assert_allclose(dt.c_last, c_n[k * n_dir + d, 0].numpy(), atol=atol, rtol=0)


def test_trace_steps_match_torch_cell_by_cell():
    """Every recorded gate of a step equals what torch's own cell math gives from h_prev, c_prev."""
    lstm = torch_lstm(True, 0, torch.float64, 3)
    model = copy_weights(lstm)
    x = np.random.default_rng(2).normal(size=(8, 4))
    trace = run(model, x, dtype=np.float64)
    for k, lt in enumerate(trace.layers):
        for d, dt in enumerate(lt.directions):
            s = f"_l{k}{'_reverse' if d else ''}"
            w = {n: getattr(lstm, n + s).detach() for n in ("weight_ih", "weight_hh", "bias_ih")}
            z = (
                torch.from_numpy(lt.input) @ w["weight_ih"].T
                + torch.from_numpy(dt.h_prev) @ w["weight_hh"].T
                + w["bias_ih"]
                + getattr(lstm, "bias_hh" + s).detach()
            )
            i, f, g, o = z.chunk(4, dim=1)
            c = torch.sigmoid(f) * torch.from_numpy(dt.c_prev) + torch.sigmoid(i) * torch.tanh(g)
            for name, want in [
                ("i", torch.sigmoid(i)),
                ("f", torch.sigmoid(f)),
                ("g", torch.tanh(g)),
                ("o", torch.sigmoid(o)),
                ("c", c),
                ("h", torch.sigmoid(o) * torch.tanh(c)),
                ("pre", z),
            ]:
                np.testing.assert_allclose(
                    getattr(dt, name), want.numpy(), atol=1e-12, err_msg=name
                )


def test_states_the_file_stores_are_the_default_initial_state():
    """ONNX initial_h/initial_c constants: run starts from them unless h0/c0 are passed."""
    lstm = torch_lstm(True, 0, torch.float64, 3)
    model = copy_weights(lstm)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 4))
    h0 = rng.normal(size=(2, 2, 6))
    c0 = rng.normal(size=(2, 2, 6))
    stored = model.replace(
        layers=tuple(
            dataclasses.replace(
                layer,
                directions=tuple(
                    w.replace(h0=h0[k, d], c0=c0[k, d]) for d, w in enumerate(layer.directions)
                ),
            )
            for k, layer in enumerate(model.layers)
        )
    )
    given = run(model, x, list(h0), list(c0), dtype=np.float64)
    np.testing.assert_allclose(run(stored, x, dtype=np.float64).output, given.output, atol=1e-12)
    zeros = [np.zeros((2, 6))] * 2
    plain = run(model, x, dtype=np.float64).output
    np.testing.assert_allclose(run(stored, x, zeros, zeros, dtype=np.float64).output, plain)
