"""The rest of the core on GRU and plain RNN models: stored layouts, breakpoints on GRU gates,
diagnostics through the update gate, exports, summaries, the debugger's selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmviz.core import (
    GRUDirection,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    Provenance,
    RNNDirection,
    StoredTensor,
    run,
)
from lstmviz.core.breakpoints import parse_breakpoint
from lstmviz.core.debugger import Debugger
from lstmviz.core.diagnostics import (
    first_nonfinite,
    forget_product,
    memory_span,
    report,
    saturation_table,
)
from lstmviz.core.export import save_trace_npz, trace_arrays
from lstmviz.core.gate_stats import gate_stats
from lstmviz.core.shapes_text import shapes_explained
from lstmviz.core.stored_layout import canonical_panels, stored_panels, stored_ref
from lstmviz.core.summary import model_summary

rng = np.random.default_rng(0)
D, H = 3, 4


def keras_like_gru() -> tuple[GRUDirection, np.ndarray, np.ndarray, np.ndarray]:
    """A GRU as a Keras reader would build it from kernel [D, 3H] (z, r, h), recurrent_kernel
    [H, 3H] and bias [2, 3H]: canonical block k = stored block perm[k] = (1, 0, 2)[k]."""
    kernel, rec, bias = (
        rng.normal(size=(D, 3 * H)),
        rng.normal(size=(H, 3 * H)),
        rng.normal(size=(2, 3 * H)),
    )

    def canon(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[..., p * H : (p + 1) * H] for p in (1, 0, 2)], axis=-1)

    prov = Provenance(
        "Keras 3",
        gate_order=("z", "r", "h"),
        perm=(1, 0, 2),
        stored=(
            StoredTensor("W_x", "gru/kernel", (D, 3 * H), transposed=True),
            StoredTensor("W_h", "gru/recurrent_kernel", (H, 3 * H), transposed=True),
            StoredTensor("b", "gru/bias", (2, 3 * H)),
        ),
    )
    w = GRUDirection(canon(kernel).T, canon(rec).T, canon(bias[0]), canon(bias[1]), provenance=prov)
    return w, kernel, rec, bias


def test_stored_panels_of_a_keras_gru_are_the_stored_arrays() -> None:
    w, kernel, rec, bias = keras_like_gru()
    panels = {p.key: p for p in stored_panels(w)}
    np.testing.assert_allclose(panels["gru/kernel"].data, kernel)
    np.testing.assert_allclose(panels["gru/recurrent_kernel"].data, rec)
    np.testing.assert_allclose(panels["b_x"].data[0], bias[0])
    np.testing.assert_allclose(panels["b_h"].data[0], bias[1])
    assert panels["gru/kernel"].block_labels == ("z", "r", "h (= n)")
    cell = panels["gru/kernel"].cell(1, H + 2)  # stored block 1 = r, unit 2, x[1]
    assert (cell.gate, cell.unit, cell.column) == ("r", 2, 1)
    assert "reset" in cell.text()
    assert stored_ref(w, "W_x", 2, 1) == "gru/kernel[1, 6]"  # canonical r row 2 -> stored col H+2
    assert stored_ref(w, "b_h", 2 * H + 1, None) == "gru/bias[1, 9]"
    canon = {p.key: p for p in canonical_panels(w)}
    assert set(canon) == {"W_x", "W_h", "b_x", "b_h"}
    assert canon["W_x"].block_labels == ("r reset", "z update", "n candidate")


def test_tf1_gru_cell_two_kernels_holding_some_blocks() -> None:
    """TF1 GRUCell: gates/kernel [D+H, 2H] holds r, u; candidate/kernel [D+H, H] holds c."""
    gk, ck = rng.normal(size=(D + H, 2 * H)), rng.normal(size=(D + H, H))
    gb, cb = rng.normal(size=2 * H), rng.normal(size=H)
    prov = Provenance(
        "TensorFlow 1",
        gate_order=("r", "u", "c"),
        perm=(0, 1, 2),
        stored=(
            StoredTensor("W_x", "gru_cell/gates/kernel", (D + H, 2 * H), True, blocks=(0, 1)),
            StoredTensor("W_h", "gru_cell/gates/kernel", (D + H, 2 * H), True, D, blocks=(0, 1)),
            StoredTensor("W_x", "gru_cell/candidate/kernel", (D + H, H), True, blocks=(2,)),
            StoredTensor("W_h", "gru_cell/candidate/kernel", (D + H, H), True, D, blocks=(2,)),
            StoredTensor("b", "gru_cell/gates/bias", (2 * H,), blocks=(0, 1)),
            StoredTensor("b", "gru_cell/candidate/bias", (H,), blocks=(2,)),
        ),
    )
    W = np.concatenate([gk, ck], axis=1)  # [D+H, 3H] in r, u, c
    w = GRUDirection(W[:D].T, W[D:].T, np.concatenate([gb, cb]), reset_after=False, provenance=prov)
    panels = {p.key: p for p in stored_panels(w)}
    np.testing.assert_allclose(panels["gru_cell/gates/kernel"].data, gk)
    np.testing.assert_allclose(panels["gru_cell/candidate/kernel"].data, ck)
    assert panels["gru_cell/candidate/kernel"].block_labels == ("c (= n)",)
    assert stored_ref(w, "W_h", 2 * H + 1, 3) == f"gru_cell/candidate/kernel[{D + 3}, 1]"
    assert stored_ref(w, "b_x", 2 * H + 1, None) == "gru_cell/candidate/bias[1]"
    assert stored_ref(w, "b_x", H + 1, None) == "gru_cell/gates/bias[5]"
    text = "\n".join(shapes_explained(w))
    assert "gru_cell/candidate/kernel: (D + H, H)" in text and "shown r,z,n" in text


def _torch_gru_model() -> tuple[LSTMModel, torch.nn.GRU]:
    torch.manual_seed(0)
    gru = torch.nn.GRU(D, H)
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    w = GRUDirection(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    lstm = LSTMDirection(rng.normal(size=(4 * 2, H)), rng.normal(size=(8, 2)), np.zeros(8))
    return LSTMModel((LSTMLayer("gru", (w,), kind="GRU"), LSTMLayer("lstm", (lstm,)))), gru


def test_breakpoints_on_gru_gates_in_a_mixed_model() -> None:
    model, _ = _torch_gru_model()
    trace = run(model, rng.normal(size=(50, D)))
    z = trace.layers[0].directions[0].z
    bp = parse_breakpoint("any z > 0.6")
    np.testing.assert_array_equal(bp.mask(trace), (z > 0.6).any(axis=1))
    t = int(np.flatnonzero(bp.mask(trace))[0])
    (hit,) = bp.hits(trace, t)
    assert hit.layer == 0 and set(hit.units) == set(np.flatnonzero(z[t] > 0.6))
    f = trace.layers[1].directions[0].f  # an LSTM gate: only the LSTM layer is searched
    np.testing.assert_array_equal(parse_breakpoint("any f < 0.5").mask(trace), (f < 0.5).any(1))
    np.testing.assert_array_equal(
        parse_breakpoint("mean pre_n > 0").mask(trace),
        trace.layers[0].directions[0].gate_pre("n").mean(axis=1) > 0,
    )
    assert parse_breakpoint("r saturated > 50%").mask(trace).shape == (50,)
    assert "records" in parse_breakpoint("any z > 0.5 in layer 1").unreachable(trace)
    with pytest.raises(ValueError, match="only gates saturate"):
        parse_breakpoint("n saturated > 50%")


def test_diagnostics_use_the_update_gate() -> None:
    model, _ = _torch_gru_model()
    trace = run(model, rng.normal(size=(30, D)))
    dt = trace.layers[0].directions[0]
    P = forget_product(dt, size=None)
    z = dt.z.astype(np.float64)
    np.testing.assert_allclose(P[3, 7], np.prod(z[4:8], axis=0).mean(), rtol=1e-6)
    assert saturation_table(dt).shape == (2, H) and memory_span(dt).shape == (H,)
    rep = report(trace)[0]
    assert rep.gates == ("r", "z") and "mean z" in rep.summary()
    assert first_nonfinite(trace) is None
    rnn = RNNDirection(rng.normal(size=(2, D)), rng.normal(size=(2, 2)))
    rt = run(LSTMModel((LSTMLayer("rnn", (rnn,)),)), rng.normal(size=(10, D)))
    assert np.isnan(memory_span(rt.layers[0].directions[0])).all()
    assert "mean" not in report(rt)[0].summary()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_nonfinite_in_a_gru_layer_is_found() -> None:
    model, _ = _torch_gru_model()
    x = rng.normal(size=(20, D))
    x[7, 1] = 1e39  # finite in float64, inf in float32: inf in z_x, then NaN
    trace = run(model, x)
    found = first_nonfinite(trace)
    assert found is not None and found.step == 7 and found.layer == 0
    assert parse_breakpoint("NaN anywhere").mask(trace)[7]


def test_export_names_the_gru_arrays(tmp_path) -> None:
    model, _ = _torch_gru_model()
    trace = run(model, rng.normal(size=(12, D)))
    names = [n for n, _ in trace_arrays(trace)]
    gru = [n.split("/")[-1] for n in names if n.startswith("layer0/forward/")]
    assert gru == ["z_x", "z_h", "b", "cand_h", "pre", "r", "z", "n", "h", "h_prev"]
    assert "layer1/forward/c" in names
    data = np.load(save_trace_npz(trace, tmp_path / "t.npz"))
    np.testing.assert_array_equal(data["layer0/forward/z"], trace.layers[0].directions[0].z)


def test_summary_stats_and_debugger_on_gru() -> None:
    model, _ = _torch_gru_model()
    text = model_summary(model)
    assert "recurrent layers: 2 (GRU, LSTM)" in text and "3·(D·H + H·H + 2H) = 108" in text
    assert [s.gate for s in gate_stats(model.layers[0].directions[0])][:3] == ["r", "z", "n"]
    dbg = Debugger(run(model, rng.normal(size=(5, D))))
    assert dbg.selection.gate == "z"  # the default "f" is no GRU gate: the retention gate
    dbg.select(layer=1, gate="o")
    assert dbg.selection.gate == "o"
    dbg.select(layer=0)
    assert dbg.selection.gate == "z"
    dbg.select(gate="r")
    assert dbg.selection.gate == "r"
    with pytest.raises(ValueError, match="one of r, z, n, i, f, g, o"):
        dbg.select(gate="q")


def test_equations_explain_one_unit_of_any_cell() -> None:
    from lstmviz.core.equations import explain

    model, _ = _torch_gru_model()
    trace = run(model, rng.normal(size=(6, D)), dtype=np.float64)
    dt = trace.layers[0].directions[0]
    lines = explain(dt, 3, 1)
    assert [g for g, _ in lines] == ["r", "z", "n", None]
    n_line = lines[2][1]
    assert n_line.startswith("n = tanh(") and n_line.endswith(f"= {dt.n[3, 1]:.3f}")
    z, n, hp = dt.z[3, 1], dt.n[3, 1], dt.h_prev[3, 1]
    assert lines[3][1].startswith("h = (1 − z)·n + z·h_(t-1) = (1 − ")
    assert lines[3][1].endswith(f"= {dt.h[3, 1]:.3f}")
    np.testing.assert_allclose((1 - z) * n + z * hp, dt.h[3, 1])
    lstm = explain(trace.layers[1].directions[0], 3, 0)
    assert [g for g, _ in lstm] == ["i", "f", "g", None, "o", None]
    assert lstm[3][1].startswith("c = f·c_(t-1) + i·g = ")
    assert lstm[5][1].startswith("h = o·tanh(c) = ")


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_and_rnn_gate_clip_limits_every_activation_argument(reset_after: bool) -> None:
    """ONNX ``clip``: the argument of each activation within ±clip; checked against the
    equations written out step by step in float64."""
    H2 = 3
    W_x, W_h = 2 * rng.normal(size=(3 * H2, D)), 2 * rng.normal(size=(3 * H2, H2))
    b_x, b_h = rng.normal(size=3 * H2), rng.normal(size=3 * H2)
    w = GRUDirection(W_x, W_h, b_x, b_h, reset_after=reset_after, gate_clip=0.5)
    x = rng.normal(size=(15, D))
    dt = run(LSTMModel((LSTMLayer("g", (w,)),)), x, dtype=np.float64).layers[0].directions[0]

    def sig(a: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip(a, -0.5, 0.5)))

    h = np.zeros(H2)
    for t in range(15):
        gx, gh = w.W_x @ x[t] + w.b_x, w.W_h @ h + w.b_h
        r, z = sig(gx[:H2] + gh[:H2]), sig(gx[H2 : 2 * H2] + gh[H2 : 2 * H2])
        if reset_after:
            cand = gx[2 * H2 :] + r * gh[2 * H2 :]
        else:
            cand = gx[2 * H2 :] + w.W_h[2 * H2 :] @ (r * h) + w.b_h[2 * H2 :]
        n = np.tanh(np.clip(cand, -0.5, 0.5))
        np.testing.assert_allclose(dt.gate_pre("n")[t], cand, atol=1e-12)
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(dt.h[t], h, atol=1e-12)
    rnn = RNNDirection(W_x[:H2], W_h[:H2, :H2], gate_clip=0.25)
    rt = run(LSTMModel((LSTMLayer("r", (rnn,)),)), x, dtype=np.float64).layers[0].directions[0]
    assert np.abs(rt.h).max() <= np.tanh(0.25) + 1e-12
    np.testing.assert_allclose(rt.h, np.tanh(np.clip(rt.pre, -0.25, 0.25)), atol=1e-12)
    with pytest.raises(ValueError, match="gate_clip must be positive"):
        GRUDirection(W_x, W_h, gate_clip=0.0)
