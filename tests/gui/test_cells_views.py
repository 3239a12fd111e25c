"""Every view works for every cell: GRU, plain RNN and a model mixing LSTM and GRU layers.

Models are built from real ``torch.nn`` modules' weights (PyTorch's canonical orders are
lstmviz's: i,f,g,o and r,z,n), run through the window, and each view's items are checked
against the trace for the cell's own gates; the run itself is checked against torch. Each view
is also rendered to tests/_artifacts/cells_*.png.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from lstmviz.core import GRUDirection, LSTMDirection, LSTMLayer, LSTMModel, RNNDirection
from lstmviz.core.cells import GRU_CELL, LSTM_CELL

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
    window.side_tabs.setCurrentWidget(window.stats_panel)
    save_artifact(window, f"cells_{dt.cell.name.lower()}_statistics")
    window.side_tabs.setCurrentWidget(window.shapes_panel)
    assert f"shown {','.join(dt.cell.gate_names)}" in "\n".join(window.shapes_panel.lines)
    panel.views.setCurrentWidget(panel.time_plots)
    window.tabs.setCurrentIndex(1)
    save_artifact(window, f"cells_{dt.cell.name.lower()}_time")
    window.tabs.setCurrentWidget(window.weights_view)
    assert f"shown {','.join(dt.cell.gate_names)}" in window.status_label.text()
    assert dt.cell.name in window.details.text.toPlainText()


def _title(plot) -> str:
    return plot.titleLabel.toolTip() or plot.titleLabel.text


def show_diagnostics(panel, qtbot):
    page = panel.diagnostics_page
    panel.views.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.currentIndex() == 1 and page.shown is not None, timeout=10_000)
    return page.view


def check_diagnostics(panel, qtbot, dt, layer: int) -> None:
    """Saturation rows are the cell's gates; the product is its retention gate's."""
    from lstmviz.core import diagnostics as diag

    view = show_diagnostics(panel, qtbot)
    gates = tuple(g.name for g in dt.cell.gates if g.role == "gate")
    H = dt.weights.hidden_size
    assert view.saturation.shape == (len(gates), H)
    for k, g in enumerate(gates):
        np.testing.assert_array_equal(view.saturation[k], diag.saturation(dt, g))
    ticks = [text for _, text in view.sat_plot.getAxis("left")._tickLevels[0]]
    assert ticks == list(gates)
    assert f"layer {layer}" in _title(view.sat_plot)
    keep = dt.cell.retention_gate
    if keep is None:
        assert np.isnan(view.product).all()
        assert "no retention product" in _title(view.prod_plot)
        assert not view.product_mode.isEnabled()
    else:
        long_name = dt.cell.gate(keep).long_name
        assert f"{long_name}-gate product" in _title(view.prod_plot)
        assert f"∏ {keep}(s+1…t)" in _title(view.prod_plot)
        np.testing.assert_array_equal(view.product, diag.forget_product(dt))
        # the product is the retention gate's own: one step back, it is that gate's value
        f = dt.gate(keep)[::-1] if dt.reverse else dt.gate(keep)
        steps = diag.product_steps(dt.n_steps)
        s, t = int(steps[1]), int(steps[2])
        np.testing.assert_allclose(
            view.product[1, 2], np.mean(np.prod(f[s + 1 : t + 1], axis=0)), rtol=1e-5
        )


def test_a_model_mixing_lstm_and_gru_layers(make_main_window, qtbot, tmp_path, save_artifact):
    model, (lstm, gru) = mixed_model()
    x = sequence(T=16)
    window = make_main_window()
    panel = open_debugger(window, model, x)
    trace = panel.trace
    with torch.no_grad():
        y, _ = lstm(torch.tensor(x[None], dtype=torch.float32))
        y, _ = gru(y)
    np.testing.assert_allclose(trace.output, y[0].numpy(), rtol=1e-5, atol=1e-5)
    assert [layer.cell for layer in model.layers] == [LSTM_CELL, GRU_CELL]
    assert "layers LSTM, GRU; layer 0 stored" in window.status_label.text()
    combo = panel.controls.layer
    names = [combo.itemText(k) for k in range(combo.count())]
    assert names == ["0: lstm (LSTM, H=5)", "1: gru (GRU, H=5)"]
    t, u = 9, 3
    window.go_to_step(t)
    panel.workspace.select(unit=u)
    for layer in (1, 0, 1):  # GRU, back to the LSTM, GRU again: nothing of the other stays
        window.select_direction(layer, 0)
        dt = trace.layers[layer].directions[0]
        panel.views.setCurrentWidget(panel.step_view)
        check_step_view(panel, dt, t)
        assert f"({dt.cell.name})" in panel.step_view.title.text
        check_inspector(panel, dt, t, u)
        check_time_plots(panel, dt, u)
        check_diagnostics(panel, qtbot, dt, layer)
        assert panel.workspace.selection.gate in dt.cell.gate_names
    panel.views.setCurrentWidget(panel.step_view)
    save_artifact(window, "cells_mixed_step")
    panel.views.setCurrentWidget(panel.diagnostics_page)
    save_artifact(window, "cells_mixed_diagnostics")

    # a breakpoint on the GRU's update gate, and one on the LSTM's forget gate
    gru_z = trace.layers[1].directions[0].z
    threshold = float(np.quantile(gru_z.max(axis=1), 0.6))
    editor = panel.breakpoint_editor
    assert "z" in editor.entry.toolTip() and "f" in editor.entry.toolTip()
    editor.entry.setText(f"any z > {threshold:.4f}")
    assert editor.add_from_entry(), editor.error.text()
    expected = (gru_z > float(f"{threshold:.4f}")).any(axis=1)
    assert 0 < expected.sum() < len(expected)
    np.testing.assert_array_equal(panel.debugger.breakpoint_mask(), expected)
    window.go_to_step(0)
    panel.workspace.run_to_breakpoint(True)
    first = int(np.flatnonzero(expected[1:])[0]) + 1
    assert panel.current_step == first
    assert f"({expected.sum()} step" in editor.list.item(0).text()

    # exports: every recorded array of both cells, by the cell's names
    paths = panel.export_trace(tmp_path / "mixed.npz")
    with np.load(paths[0], allow_pickle=False) as npz:
        for k, lt in enumerate(trace.layers):
            dt = lt.directions[0]
            for name in (*dt.cell.gate_names, "h"):
                np.testing.assert_array_equal(npz[f"layer{k}/forward/{name}"], dt.value(name))
        assert "layer0/forward/c" in npz and "layer1/forward/c" not in npz
    for suffix in ("png", "svg"):
        out = panel.export_view(tmp_path / f"step.{suffix}", panel.step_view)
        assert out.stat().st_size > 1000


def test_switching_between_an_lstm_and_a_gru_model_leaves_nothing_stale(make_main_window, qtbot):
    """LSTM → GRU → RNN → GRU → LSTM in one window: each view shows the open model's cell
    only."""
    from model_factories import keras_like

    lstm_model = keras_like(D=D, H=4, seed=5)[0]
    gru, _ = gru_model(seed=6)
    rnn, _ = rnn_model(seed=8)
    window = make_main_window()
    x = sequence(T=10, seed=7)
    for model in (lstm_model, gru, rnn, gru, lstm_model):
        panel = open_debugger(window, model, x)
        trace = panel.trace
        window.go_to_step(5)
        panel.workspace.select(unit=1)
        dt = trace.layers[0].directions[0]
        panel.views.setCurrentWidget(panel.step_view)
        check_step_view(panel, dt, 5)
        check_inspector(panel, dt, 5, 1)
        check_time_plots(panel, dt, 1)
        check_diagnostics(panel, qtbot, dt, 0)
        tab = "h0 / c0" if "c" in dt.cell.state_names else "h0"
        editor = panel.sequence_editor
        assert editor.tabs.tabText(editor.states_index) == tab
        assert editor._state_form.isRowVisible(editor.c0) == ("c" in dt.cell.state_names)
        keep = dt.cell.retention_gate or dt.cell.gate_names[0]
        assert f"any {keep} " in panel.breakpoint_editor.examples.text()
        check_weights(window, dt.weights)
        tree = window.tree.texts()
        assert any(dt.cell.name in text for text in tree), tree


# -- a made-up fourth cell: no view knows it ---------------------------------------------------
def _made_up_cell():
    """A "minimal gated unit" no view has heard of: a keep gate u, a candidate k that sees the
    kept state, h = u·h_(t-1) + (1 − u)·k, and an extra array a = (1 − u)·k."""
    from lstmviz.core.cells import CellDescription, Equation, Gate, State, StoredOrder, Term

    x, hh, b = Term("z_x", "W_x·x_t"), Term("z_h", "W_h·h_(t-1)"), Term("b", "b")
    u = Gate("u", "keep", "gate", (x, hh, b))
    k = Gate("k", "proposal", "candidate", (x, Term("cand_h", "W_h·(u⊙h_(t-1))"), b))
    equations = (
        Equation("u", "u = act_gate(W_x·x_t + W_h·h_(t-1) + b)",
                 "{act_gate}({z_x} + {z_h} + {b})", "u"),
        Equation("k", "k = act_cand(W_x·x_t + W_h·(u⊙h_(t-1)) + b)",
                 "{act_cand}({z_x} + {cand_h} + {b})", "k"),
        Equation("a", "a = (1 − u)·k", "(1 − {u})·{k}"),
        Equation("h", "h = u·h_(t-1) + a", "{u}·{h_prev} + {a}"),
    )  # fmt: skip
    orders = {"canonical": StoredOrder(("u", "k"), (0, 1))}
    return CellDescription(
        "MGU", (u, k), (State("h", "hidden state"),), equations, orders,
        extras=("a",), retention_gate="u",
    )  # fmt: skip


def _made_up_classes(cell):
    from lstmviz.core.activations import SIGMOID, TANH, Activation
    from lstmviz.core.model import Provenance, RecurrentDirection
    from lstmviz.core.trace import CellTrace

    @dataclass(frozen=True)
    class MGUDirection(RecurrentDirection):
        W_x: np.ndarray
        W_h: np.ndarray
        b: np.ndarray
        act_gate: Activation = SIGMOID
        act_cand: Activation = TANH
        reverse: bool = False
        provenance: Provenance = field(default_factory=lambda: Provenance(framework="made up"))
        h0: np.ndarray | None = None
        array_fields: ClassVar[tuple[str, ...]] = ("W_x", "W_h", "b", "h0")

        def __post_init__(self) -> None:
            self._freeze_fields()

        @property
        def output_size(self) -> int:
            return self.hidden_size

        @property
        def has_peepholes(self) -> bool:
            return False

    MGUDirection.cell = cell

    @dataclass(frozen=True, eq=False)
    class MGUTrace(CellTrace):
        derived_names: ClassVar[tuple[str, ...]] = ("z_x", "z_h", "cand_h", "pre")
        weights: MGUDirection
        x: np.ndarray
        b: np.ndarray
        u: np.ndarray
        k: np.ndarray
        a: np.ndarray
        h: np.ndarray
        h_prev: np.ndarray

        @cached_property
        def z_x(self):
            return self.x @ self.weights.W_x.T

        @cached_property
        def z_h(self):
            return self.h_prev @ self.weights.W_h.T

        @cached_property
        def cand_h(self):
            H = self.weights.hidden_size
            return (self.u * self.h_prev) @ self.weights.W_h[H:].T

        @cached_property
        def pre(self):
            H = self.weights.hidden_size
            out = self.z_x + self.b
            out[:, :H] += self.z_h[:, :H]
            out[:, H:] += self.cand_h
            return out

    return MGUDirection, MGUTrace


def _made_up_runner(trace_class):
    """The made-up cell's forward pass, step by step as its equations say, in the form
    ``compute.register`` takes: ``runner(w, x, h0, *, dtype, engine) -> trace``."""

    def run_made_up(w, x, h0, *, dtype, engine):
        H = w.hidden_size
        x = np.asarray(x, float)
        T = len(x)
        u, k, a, h = (np.zeros((T, H)) for _ in range(4))
        prev = np.zeros(H) if h0 is None else np.asarray(h0, float)
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        for t in range(T):
            zx = w.W_x @ x[t] + w.b
            u[t] = sig(zx[:H] + w.W_h[:H] @ prev)
            k[t] = np.tanh(zx[H:] + w.W_h[H:] @ (u[t] * prev))
            a[t] = (1 - u[t]) * k[t]
            h[t] = u[t] * prev + a[t]
            prev = h[t]
        h_prev = np.vstack([np.zeros((1, H)) if h0 is None else [h0], h[:-1]])
        return trace_class(w, x, np.asarray(w.b, float), u, k, a, h, h_prev)

    return run_made_up


def test_a_made_up_fourth_cell_renders_in_every_view_without_a_view_change(
    make_main_window, qtbot, tmp_path, save_artifact
):
    """A cell described only in this test (gates u, k; state h; extra a) goes through the
    step view, inspector, time plots, diagnostics, breakpoints, weights, statistics, tree,
    details and exports: the views read the description, not a list of known cells. It is
    made known by one ``compute.register`` call, and no module of lstmviz names it."""
    from lstmviz.core import compute
    from lstmviz.core.cells import registered

    root = Path(compute.__file__).parents[1]
    for package in ("core", "workspace", "gui"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "MGU" not in text, f"{path.relative_to(root)} names the made-up cell"
    cell = _made_up_cell()
    direction_class, trace_class = _made_up_classes(cell)
    rng = np.random.default_rng(11)
    w = direction_class(
        W_x=rng.normal(0, 0.6, (2 * H, D)), W_h=rng.normal(0, 0.6, (2 * H, H)),
        b=rng.normal(0, 0.3, 2 * H),
    )  # fmt: skip
    model = LSTMModel(layers=(LSTMLayer("mgu", (w,), kind="MGU"),), source_path="made_up")
    # the one registration a new cell kind needs (its description comes with the class)
    compute.register(direction_class, _made_up_runner(trace_class))
    try:
        _check_made_up_cell(make_main_window, qtbot, tmp_path, save_artifact, model, w)
    finally:
        compute.unregister(direction_class)
    assert cell not in registered()


def _check_made_up_cell(make_main_window, qtbot, tmp_path, save_artifact, model, w):
    window = make_main_window()
    x = sequence(T=14, seed=12)
    panel = open_debugger(window, model, x)
    dt = panel.trace.layers[0].directions[0]
    t, u = 7, 4
    window.go_to_step(t)
    panel.workspace.select(unit=u)
    panel.views.setCurrentWidget(panel.step_view)
    check_step_view(panel, dt, t)
    assert panel.step_view.row_names == ("u", "k", "a", "h")
    lines = check_inspector(panel, dt, t, u)
    a_line = next(line for line in lines if line.startswith("a = "))
    assert a_line == (
        f"a = (1 − u)·k = (1 − {dt.u[t, u]:.3f})·{dt.k[t, u]:.3f} = {dt.a[t, u]:.3f}"
        if dt.k[t, u] >= 0
        else f"a = (1 − u)·k = (1 − {dt.u[t, u]:.3f})·({dt.k[t, u]:.3f}) = {dt.a[t, u]:.3f}"
    )
    check_time_plots(panel, dt, u)
    assert tuple(panel.time_plots.state_lines) == ("a", "h")
    check_diagnostics(panel, qtbot, dt, 0)
    panel.views.setCurrentWidget(panel.step_view)
    save_artifact(window, "cells_made_up_step")
    # a breakpoint on its gate, by the name the description gives it
    threshold = float(np.quantile(dt.u.max(axis=1), 0.5))
    panel.workspace.add_breakpoint(f"any u > {threshold:.4f}")
    expected = (dt.u > float(f"{threshold:.4f}")).any(axis=1)
    np.testing.assert_array_equal(panel.debugger.breakpoint_mask(), expected)
    assert "u" in panel.breakpoint_editor.entry.toolTip()
    # its arrays in an export, by their names
    paths = panel.export_trace(tmp_path / "made_up.npz")
    with np.load(paths[0], allow_pickle=False) as npz:
        for name in ("u", "k", "a", "h", "cand_h"):
            np.testing.assert_array_equal(npz[f"layer0/forward/{name}"], getattr(dt, name))
    check_weights(window, w)
    assert "MGU" in window.details.text.toPlainText()
    assert "shown u,k" in window.status_label.text()
    save_artifact(window, "cells_made_up_weights")


# -- real files written by the frameworks (the GRU readers' fixtures) -------------------------
GRU_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gru"


@pytest.mark.parametrize(
    ("name", "stored_blocks"),
    [
        ("tf/keras2/mixed.h5", [["z", "r", "h"]]),  # Keras 2: LSTM, GRU, LSTM
        ("tf/tf1/gru_cell", [["r", "u"], ["c"]]),  # TF1 GRUCell: gates/ and candidate/ kernels
        ("onnx/gru_lbr0_bidir.onnx", [["z", "r", "h"]]),
    ],
)
def test_real_gru_files_in_every_view(name, stored_blocks, make_main_window, qtbot, save_artifact):
    """A GRU layer of a real file: its weights as stored (the framework's block names and
    arrays) and canonical (r, z, n), and the debugger's rows, for the file's own run."""
    path = GRU_FIXTURES / name
    window = make_main_window()
    model = window.open_model(path, wait=True)
    assert model is not None, window.last_error
    k = next(i for i, layer in enumerate(model.layers) if layer.cell.name == "GRU")
    w = model.layers[k].directions[0]
    window.select_direction(k, 0)
    check_weights(window, w)
    view = window.weights_view
    view.set_stored_order(True)
    kernels = [p for p in view.panels() if p.gate_axis is not None and p.data.shape[0] > 1]
    labels = [[lab.split(" ")[0] for lab in p.block_labels] for p in kernels]
    for blocks in stored_blocks:
        assert blocks in labels, labels
    for panel in kernels:  # every sampled stored cell is the canonical weight it names
        rows, cols = panel.data.shape
        for r in range(0, rows, max(1, rows // 7)):
            for c in range(0, cols, max(1, cols // 5)):
                cell = panel.cell(r, c)
                if cell is None or cell.role not in ("W_x", "W_h"):
                    continue
                canon = getattr(w, cell.role)[w.cell.index(cell.gate) * w.hidden_size + cell.unit]
                assert cell.value == pytest.approx(float(canon[cell.column]), rel=1e-6, abs=1e-7)
    stem = path.name.split(".")[0]
    save_artifact(window, f"cells_real_{stem}_stored")
    view.set_stored_order(False)
    panel = open_debugger(window, model, sequence(T=8, seed=9)[:, : model.input_size])
    window.select_direction(k, 0)
    dt = panel.trace.layers[k].directions[0]
    window.go_to_step(3)
    panel.views.setCurrentWidget(panel.step_view)
    check_step_view(panel, dt, 3)
    check_inspector(panel, dt, 3, 0)
    save_artifact(window, f"cells_real_{stem}_step")


def test_inspector_equations_recompute_their_numbers_and_say_when_a_clip_acted():
    """The state update's numbers are recomputed from the line's own terms: an LSTM whose
    cell_clip binds says "clipped to" instead of an equation that does not add up."""
    from lstmviz.core import run
    from lstmviz.core.equations import explain

    rng = np.random.default_rng(0)
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * 3, 3)) * 2, W_h=rng.normal(size=(12, 3)), b=np.ones(12),
        cell_clip=0.2,
    )  # fmt: skip
    trace = run(LSTMModel(layers=(LSTMLayer("l", (w,)),)), rng.normal(size=(5, 3)))
    dt = trace.layers[0].directions[0]
    clipped = 0
    for t in range(5):
        for u in range(3):
            c_line = next(line for _, line in explain(dt, t, u) if line.startswith("c = "))
            raw = dt.f[t, u] * dt.c_prev[t, u] + dt.i[t, u] * dt.g[t, u]
            if abs(raw) > 0.2 + 1e-6:
                clipped += 1
                assert c_line.endswith(f"{raw:.3f}  → clipped to {dt.c[t, u]:.3f}"), c_line
            else:
                assert c_line.endswith(f"= {dt.c[t, u]:.3f}") and "clipped" not in c_line
    assert clipped > 0


# -- any order of user actions on GRU, RNN and mixed models ---------------------------------------
CELL_MODELS = (
    lambda: gru_model(seed=20)[0],
    lambda: rnn_model(seed=21)[0],
    lambda: mixed_model(seed=22)[0],
    lambda: __import__("model_factories").keras_like(D=D, H=6, seed=23)[0],
)
CELL_BREAKPOINTS = ("any z > 0.6", "r saturated > 50%", "|h| > 0.5", "any n > 0.5 in layer 1",
                    "any f < 0.3", "step 3")  # fmt: skip


def _cell_actions():
    from hypothesis import strategies as st

    return st.one_of(
        st.tuples(st.just("model"), st.integers(0, len(CELL_MODELS) - 1)),
        st.tuples(st.just("layer"), st.integers(0, 2)),
        st.tuples(st.just("direction"), st.integers(0, 1)),
        st.tuples(st.just("unit"), st.integers(0, 8)),
        st.tuples(st.just("step"), st.integers(-2, 60)),
        st.tuples(st.just("breakpoint"), st.integers(0, len(CELL_BREAKPOINTS) - 1)),
        st.tuples(st.just("run"), st.booleans()),
        st.tuples(st.just("tab"), st.integers(0, 3)),
        st.tuples(st.just("hover"), st.integers(0, 6)),
        st.tuples(st.just("sequence"), st.integers(1, 40)),
        st.tuples(st.just("wait"), st.just(0)),
    )


def check_cells(window) -> None:
    """Every view on screen shows the selected direction's own cell (after every action)."""
    ws = window.workspace
    trace, s = ws.trace, ws.selection
    w = ws.model.layers[s.layer].directions[s.direction]
    assert s.gate in w.cell.gate_names
    if window.tabs.currentIndex() == 0:
        heat = window.weights_view.heatmap("W_x")
        np.testing.assert_array_equal(heat.image.image, w.W_x.astype(np.float32))
        assert sum(line.isVisible() for line in heat.separators) == w.cell.n_gates - 1
        return
    if window._debug_panel is None or trace is None:
        return
    panel = window.debug_panel
    dt = trace.layers[s.layer].directions[s.direction]
    t = ws.step
    if panel.views.currentWidget() is panel.step_view:
        check_step_view(panel, dt, t)
    if panel.unit_inspector._dt is dt:
        check_inspector(panel, dt, t, s.unit)
    tp = panel.time_plots
    if panel.views.currentWidget() is tp and tp._trace is trace:
        assert tuple(tp.gate_lines) == dt.cell.gate_names
        for g, line in tp.gate_lines.items():
            np.testing.assert_array_equal(line.yData, dt.gate(g)[:, s.unit])
    page = panel.diagnostics_page
    if panel.views.currentWidget() is page and page.currentIndex() == 1:
        view = page.view
        if view._trace is trace and view._sel[:2] == (s.layer, s.direction):
            gates = [g.name for g in dt.cell.gates if g.role == "gate"]
            assert view.saturation.shape == (len(gates), dt.weights.hidden_size)


def test_views_follow_any_order_of_actions_on_gru_rnn_and_mixed_models(
    make_main_window, qtbot, tmp_path, monkeypatch
):
    import sys

    import test_coherence as tc
    from hypothesis import HealthCheck, given, settings

    monkeypatch.setattr(tc, "MODELS", CELL_MODELS)
    monkeypatch.setattr(tc, "BREAKPOINTS", CELL_BREAKPOINTS)
    errors: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, exc, tb: errors.append(exc))
    window = make_main_window(size=(1400, 900))
    window.set_model(CELL_MODELS[2]())
    window.tabs.setCurrentIndex(1)

    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(actions=__import__("hypothesis").strategies.lists(_cell_actions(), min_size=25,
                                                              max_size=30))  # fmt: skip
    def run(actions):
        driver = tc.Driver(window, qtbot, tmp_path)
        for kind, arg in actions:
            try:
                driver.apply(kind, arg)
            except ValueError as exc:  # only a breakpoint's text may be refused
                assert kind == "breakpoint", exc
            assert not errors, f"exception in the event loop after {kind} {arg}: {errors[0]!r}"
            check_cells(window)
        assert driver.actions == len(actions)

    run()
