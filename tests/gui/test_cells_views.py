"""Every view works for every cell: GRU, plain RNN and a model mixing LSTM and GRU layers.

Models are built from real ``torch.nn`` modules' weights (PyTorch's canonical orders are
lstmviz's: i,f,g,o and r,z,n), run through the window, and each view's items are checked
against the trace for the cell's own gates; the run itself is checked against torch. Each view
is also rendered to tests/_artifacts/cells_*.png.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmviz.core import GRUDirection, LSTMDirection, LSTMLayer, LSTMModel, RNNDirection
from lstmviz.core.cells import GRU_CELL

D, H = 3, 5


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def gru_direction(module: torch.nn.GRU, suffix: str = "_l0", reverse: bool = False) -> GRUDirection:
    p = dict(module.named_parameters())
    return GRUDirection(
        W_x=_np(p[f"weight_ih{suffix}"]),
        W_h=_np(p[f"weight_hh{suffix}"]),
        b_x=_np(p[f"bias_ih{suffix}"]),
        b_h=_np(p[f"bias_hh{suffix}"]),
        reverse=reverse,
    )


def lstm_direction(module: torch.nn.LSTM, suffix: str = "_l0") -> LSTMDirection:
    p = dict(module.named_parameters())
    return LSTMDirection(
        W_x=_np(p[f"weight_ih{suffix}"]),
        W_h=_np(p[f"weight_hh{suffix}"]),
        b=_np(p[f"bias_ih{suffix}"] + p[f"bias_hh{suffix}"]),
    )


def rnn_direction(module: torch.nn.RNN) -> RNNDirection:
    p = dict(module.named_parameters())
    return RNNDirection(
        W_x=_np(p["weight_ih_l0"]),
        W_h=_np(p["weight_hh_l0"]),
        b=_np(p["bias_ih_l0"] + p["bias_hh_l0"]),
    )


def gru_model(seed: int = 0) -> tuple[LSTMModel, torch.nn.Module]:
    """A bidirectional ``nn.GRU`` (D=3, H=5)."""
    torch.manual_seed(seed)
    gru = torch.nn.GRU(D, H, batch_first=True, bidirectional=True)
    dirs = (gru_direction(gru), gru_direction(gru, "_l0_reverse", reverse=True))
    return LSTMModel(layers=(LSTMLayer("gru", dirs, kind="GRU"),), source_path="gru.pt"), gru


def rnn_model(seed: int = 1) -> tuple[LSTMModel, torch.nn.Module]:
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(D, H, batch_first=True)
    model = LSTMModel(layers=(LSTMLayer("rnn", (rnn_direction(rnn),), kind="RNN"),))
    return model, rnn


def mixed_model(seed: int = 2) -> tuple[LSTMModel, list[torch.nn.Module]]:
    """LSTM (D → H) then GRU (H → H): a model mixing the two cells."""
    torch.manual_seed(seed)
    lstm, gru = torch.nn.LSTM(D, H, batch_first=True), torch.nn.GRU(H, H, batch_first=True)
    layers = (
        LSTMLayer("lstm", (lstm_direction(lstm),), kind="LSTM"),
        LSTMLayer("gru", (gru_direction(gru),), kind="GRU"),
    )
    return LSTMModel(layers=layers, source_path="mixed.pt"), [lstm, gru]


def sequence(T: int = 12, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D))


def open_debugger(window, model: LSTMModel, x: np.ndarray):
    window.set_model(model)
    window.tabs.setCurrentIndex(
        next(k for k in range(window.tabs.count()) if window.tabs.tabText(k) == "Debugger")
    )
    assert window.set_sequence(x)
    return window.debug_panel


# -- the views' items against the trace ------------------------------------------------------------
def check_step_view(panel, dt, t: int) -> None:
    """Every row is the trace's array of that name at ``t``; every gate's breakdown is its
    cell's terms, then their sum."""
    view = panel.step_view
    cell = dt.cell
    assert view._dt is dt
    names = view.row_names
    assert names[: cell.n_gates] == cell.gate_names
    for name in names:
        img = view.images[name]
        assert img.isVisible()
        expected = dt.m[t] if (name == "h" and hasattr(dt, "m")) else dt.value(name)[t]
        np.testing.assert_array_equal(img.image[0], expected, err_msg=name)
    hidden = [n for n, img in view.images.items() if n not in names and img.isVisible()]
    assert not hidden, f"rows of another cell still shown: {hidden}"
    for gate in cell.gate_names:
        rows = view.term_rows(gate)
        terms = dt.terms(gate)
        assert rows.shape[0] == len(terms) + 1
        for r, (_, v) in enumerate(terms):
            np.testing.assert_array_equal(rows[r], v if v.ndim == 1 else v[t])
        np.testing.assert_allclose(rows[:-1].sum(axis=0), rows[-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rows[-1], dt.gate_pre(gate)[t])
    labels = [text for _, text in view.states.getAxis("left")._tickLevels[0]]
    for gate in cell.gate_names:
        act = dt.weights.gate_activation(gate).name
        assert f"{gate} = {act}(·)" in labels


def check_inspector(panel, dt, t: int, u: int) -> list[str]:
    """One line per applying equation of the cell; each gate line ends in the trace's value,
    the state update in the state's value, and its numbers compute that value."""
    lines = panel.unit_inspector.lines()
    gate_lines = [line for line in lines if line.split(" = ")[0] in dt.cell.gate_names]
    assert [line.split(" = ")[0] for line in gate_lines] == list(dt.cell.gate_names)
    for line in gate_lines:
        g = line.split(" = ")[0]
        act = dt.weights.gate_activation(g).name
        assert line.startswith(f"{g} = {act}(")
        assert line.endswith(f"= {dt.gate(g)[t, u]:.3f}")
        assert f"{act}({dt.gate_pre(g)[t, u]:.3f})" in line
    last = lines[-1]
    assert last.startswith("h = ") and last.endswith(f"{dt.h[t, u]:.3f}"), last
    return lines


def check_time_plots(panel, dt, u: int) -> None:
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)  # a tab behind another builds its plots when shown
    assert tuple(tp.gate_lines) == dt.cell.gate_names
    for g, line in tp.gate_lines.items():
        np.testing.assert_array_equal(line.yData, dt.gate(g)[:, u])
    assert "h" in tp.state_lines
    expected_h = dt.m if hasattr(dt, "m") else dt.h
    np.testing.assert_array_equal(tp.state_lines["h"].yData, expected_h[:, u])


def check_weights(window, w) -> None:
    """Canonical blocks named by the cell's gates, one separator between two blocks, a unit
    outlined once per block; the statistics have one row per matrix and gate."""
    view = window.weights_view
    window.tabs.setCurrentWidget(view)
    view.set_stored_order(False)
    cell = w.cell
    assert f"Canonical {','.join(cell.gate_names)}" in view.canonical_button.text()
    heat = view.heatmap("W_x")
    np.testing.assert_array_equal(heat.image.image, w.W_x.astype(np.float32))
    assert [lab.split(" ")[0] for lab in heat.panel.block_labels] == list(cell.gate_names)
    assert sum(line.isVisible() for line in heat.separators) == cell.n_gates - 1
    view.highlight_unit(1)
    assert len(heat.highlighted_rects()) == cell.n_gates
    stats = window.stats_panel
    rows = stats.stats
    assert {s.gate for s in rows} == set(cell.gate_names)
    assert stats.table.rowCount() == len(rows)
    assert tuple(stats.curves) == cell.gate_names
    choices = [stats.matrix_choice.itemText(k) for k in range(stats.matrix_choice.count())]
    assert choices[:2] == ["W_x", "W_h"]
    for name in choices:  # every histogram of every gate counts its whole block
        stats.matrix_choice.setCurrentText(name)
        total = sum(int(c.yData.sum()) for c in stats.curves.values())
        assert total == getattr(w, name).size


@pytest.mark.parametrize("make", [gru_model, rnn_model])
def test_gru_and_rnn_views_show_the_trace_of_their_own_gates(
    make, make_main_window, qtbot, tmp_path, save_artifact
):
    model, module = make()
    x = sequence()
    window = make_main_window()
    panel = open_debugger(window, model, x)
    trace = panel.trace
    # the model is the torch module's: lstmviz's run reproduces it (so the views show truth)
    with torch.no_grad():
        ref, _ = module(torch.tensor(x[None], dtype=torch.float32))
    np.testing.assert_allclose(trace.output, ref[0].numpy(), rtol=1e-5, atol=1e-5)
    t, u = 6, 2
    window.go_to_step(t)
    panel.workspace.select(unit=u)
    for d in range(len(model.layers[0].directions)):
        window.select_direction(0, d)
        dt = trace.layers[0].directions[d]
        check_step_view(panel, dt, t)
        lines = check_inspector(panel, dt, t, u)
        check_time_plots(panel, dt, u)
    panel.views.setCurrentWidget(panel.step_view)
    save_artifact(window, f"cells_{dt.cell.name.lower()}_step")
    if dt.cell is GRU_CELL:
        # h = (1 − z)·n + z·h_(t-1) with this step's numbers, which give h
        z, n, hp = dt.z[t, u], dt.n[t, u], dt.h_prev[t, u]
        assert lines[-1].startswith("h = (1 − z)·n + z·h_(t-1) = ")
        assert f"(1 − {z:.3f})" in lines[-1]
        np.testing.assert_allclose((1 - z) * n + z * hp, dt.h[t, u], rtol=1e-5, atol=1e-6)
        # n's terms: W_x·x_t, b_x and r⊙(W_h·h_(t-1) + b_h), summing to its pre-activation
        terms = dt.gate_terms_at("n", t, u)
        assert list(terms) == ["z_x", "b", "cand_h"]
        w = dt.weights
        H = w.hidden_size
        cand = dt.r[t, u] * (w.W_h[2 * H + u] @ dt.h_prev[t] + w.b_h[2 * H + u])
        np.testing.assert_allclose(terms["cand_h"], cand, rtol=1e-5, atol=1e-6)
    else:
        assert lines == [lines[0], f"h = n = {dt.h[t, u]:.3f}"]
    assert panel.unit_inspector.legend.text().count("■") == len(
        {t.key for g in dt.cell.gate_names for t, _ in dt.terms(g)}
    )
    check_weights(window, dt.weights)  # the direction selected last
    save_artifact(window, f"cells_{dt.cell.name.lower()}_weights")
    assert f"shown {','.join(dt.cell.gate_names)}" in window.status_label.text()
    assert dt.cell.name in window.details.text.toPlainText()
