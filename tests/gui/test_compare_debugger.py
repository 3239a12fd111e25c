"""Compare mode in the debugger: the step view shows B's rows and Δ = B − A under A's, the
unit inspector B's equation lines under A's; every change of step, unit, layer, pairing or B
updates them or says they are computing; leaving compare mode restores the single-model views.

The expected numbers come from ``lstmviz.run`` of each model on the debugger's sequence,
independently of the comparison the views draw from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

import lstmviz
from lstmviz.core.model import LSTMLayer
from lstmviz.gui import cell_rows
from lstmviz.gui.compare_dock import go_to

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

torch = pytest.importorskip("torch")


def _onnx_order_layer0(tmp_path: Path) -> Path:
    """bidir2.pt with layer 0's gates written in ONNX order (i,o,f,c) into nn.LSTM names."""
    sd = torch.load(FIXTURES / "torch" / "bidir2.pt", weights_only=True)
    H = sd["weight_hh_l0"].shape[1]

    def onnx_order(m):
        return torch.cat([m[k * H : (k + 1) * H] for k in (0, 3, 1, 2)])

    out = {k: onnx_order(v) if k.endswith("_l0") else v for k, v in sd.items()}
    path = tmp_path / "ported.pt"
    torch.save(out, path)
    return path


def _open_pair(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    assert window.compare_with(_onnx_order_layer0(tmp_path), wait=True)
    rows, _ = window.compare_debugger
    return window, rows, window.debug_panel.unit_inspector


def _runs(window):
    """Both models run by ``lstmviz.run`` on the debugger's sequence (zero initial states)."""
    x = np.asarray(window.workspace.sequence, dtype=np.float32)
    return lstmviz.run(window.model, x), lstmviz.run(window.compare.model_b, x)


def test_step_view_shows_b_and_delta_of_the_paired_direction(make_main_window, tmp_path):
    window, rows, _ = _open_pair(make_main_window, tmp_path)
    ta, tb = _runs(window)
    for layer, direction, t in ((0, 0, 7), (1, 1, 12), (0, 1, 3)):
        window.workspace.select(layer=layer, direction=direction, unit=1)
        window.go_to_step(t)
        da, db = ta.layers[layer].directions[direction], tb.layers[layer].directions[direction]
        for name in ("i", "f", "g", "o", "c", "h"):
            want = getattr(db, name)[t] - getattr(da, name)[t]
            np.testing.assert_allclose(rows.delta_row(name)[0], want, atol=1e-5)
            np.testing.assert_allclose(rows.b_row(name)[0], getattr(db, name)[t], atol=1e-5)
        np.testing.assert_allclose(
            rows.delta_row("act_c")[0], np.tanh(db.c[t]) - np.tanh(da.c[t]), atol=1e-5
        )
        if (layer, direction) == (0, 0):  # the broken direction (its reverse is intact)
            assert np.abs(rows.delta_row("g")).max() > 0.01
        if (layer, direction) == (0, 1):
            assert not rows.delta_row("g").any()
    axis = window.debug_panel.step_view.states.getAxis("left")
    labels = [text for _, text in axis._tickLevels[0]]
    assert labels[0].startswith("A i") and "B i" in labels
    assert any(s.startswith("Δ f ±") for s in labels)


def test_first_divergence_is_starred_at_its_step(make_main_window, tmp_path):
    window, rows, _ = _open_pair(make_main_window, tmp_path)
    div = window.compare.comparison.first_divergence
    go_to(window, div.layer, div.direction, div.step, div.unit)
    assert rows.marker.isVisible()
    x, _ = rows.marker.getData()
    assert list(x) == [div.unit]
    assert rows.title.startswith(f"★ first divergence: step {div.step}, unit {div.unit}")
    assert window.debug_panel.step_view.states.titleLabel.text.startswith("★ first")
    window.go_to_step(div.step + 1)
    assert not rows.marker.isVisible()


def test_inspector_fills_in_both_equations(make_main_window, tmp_path):
    window, _, inspector = _open_pair(make_main_window, tmp_path)
    ta, tb = _runs(window)
    window.workspace.select(layer=0, direction=0, unit=2)
    window.go_to_step(5)
    text = inspector.browser.toPlainText()
    da, db = ta.layers[0].directions[0], tb.layers[0].directions[0]
    assert "compare B = ported.pt, layer 0" in text
    lines = text.splitlines()
    f_a = next(k for k, s in enumerate(lines) if s.startswith("f = sigmoid("))
    # B's f line right under A's, with B's number; ONNX order puts A's o block in B's f
    assert lines[f_a + 1].startswith("B: f = sigmoid(")
    assert f"= {float(da.f[5, 2]):.3f}" in lines[f_a]
    assert f"= {float(db.f[5, 2]):.3f}" in lines[f_a + 1]
    assert "≠" in lines[f_a + 1] and "W_x·x_t" in lines[f_a + 1]
    # i is stored where PyTorch reads it: at step 0 (h_(t-1) = 0 in both) B's i line is A's
    window.go_to_step(0)
    i_b = next(s for s in inspector.browser.toPlainText().splitlines() if s.startswith("B: i = "))
    assert "≠" not in i_b and f"= {float(db.i[0, 2]):.3f}" in i_b
    assert "#b00020" in inspector.browser.toHtml()
    # B's pre-activation sums beside A's in the bar chart (step 0 now)
    _, companion = window.compare_debugger
    _, y = companion.sums_b.getData()
    want = [float(db.gate_pre(g)[0, 2]) for g in db.cell.gate_names]
    assert companion.sums_b.isVisible()
    np.testing.assert_allclose(y, want, atol=1e-5)
    # a step and a unit update both sides
    window.workspace.select(unit=3)
    window.go_to_step(6)
    text = inspector.browser.toPlainText()
    assert f"B: h = o·tanh(c) = {float(db.o[6, 3]):.3f}" in text


def test_never_a_stale_number(make_main_window, qtbot, tmp_path):
    window, rows, inspector = _open_pair(make_main_window, tmp_path)
    view = window.debug_panel.step_view
    window.workspace.select(layer=1, direction=0, unit=0)
    window.go_to_step(4)
    before = rows.delta_row("h").copy()
    window.go_to_step(5)
    assert not np.array_equal(before, rows.delta_row("h"))  # the step swapped the data
    # stepped behind another tab, the step view's B and Δ rows are the step's when shown
    views = window.debug_panel.views
    views.setCurrentIndex(1)
    window.go_to_step(9)
    views.setCurrentWidget(view)
    dd = window.compare.comparison.deltas[2]  # layer 1 forward
    assert (dd.layer_a, dd.direction) == (1, 0)
    np.testing.assert_allclose(rows.delta_row("h")[0], dd.b.h[9] - dd.a.h[9], atol=1e-6)
    # a new B: until the compare job is in, no B or Δ row and the views say so
    assert window.compare_with(FIXTURES / "torch" / "bidir2.pt")  # A itself, in a worker
    assert window.compare.busy
    assert rows.delta_row("h") is None and rows.b_row("h") is None
    assert rows.title.startswith("B: computing")
    assert view.states.titleLabel.text.startswith("B: co")  # elided in a narrow view
    assert "B: computing" in inspector.browser.toPlainText()
    qtbot.waitUntil(lambda: window.compare.comparison is not None and not window.compare.busy)
    assert window.compare.comparison.equal
    np.testing.assert_array_equal(rows.delta_row("h"), 0)  # the same file: Δ is 0
    b_lines = [s for s in inspector.browser.toPlainText().splitlines() if s.startswith("B: ")]
    assert b_lines and not any("≠" in s for s in b_lines)
    # re-paired so that A's layer 0 has no partner: said, not drawn
    window.compare.set_pairs([(1, 1)], wait=True)
    window.workspace.select(layer=0)
    assert rows.delta_row("h") is None
    assert "no partner" in rows.title
    assert "no partner" in inspector.browser.toPlainText()
    window.workspace.select(layer=1)
    assert rows.delta_row("h") is not None


def test_leaving_compare_mode_restores_the_single_model_views(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    window.workspace.select(layer=0, direction=1, unit=2)
    window.go_to_step(9)
    view, inspector = window.debug_panel.step_view, window.debug_panel.unit_inspector
    ticks = view.states.getAxis("left")._tickLevels
    y_range = view.states.vb.viewRange()[1]
    html = inspector.browser.toHtml()
    assert window.compare_with(_onnx_order_layer0(tmp_path), wait=True)
    rows, _ = window.compare_debugger
    assert view.states.getAxis("left")._tickLevels != ticks
    # the dock's box hides B and Δ in the debugger (A's views as outside compare mode)...
    window.compare_panel.debugger_box.setChecked(False)
    assert view.states.getAxis("left")._tickLevels == ticks
    assert inspector.browser.toHtml() == html and not rows.image.isVisible()
    window.compare_panel.debugger_box.setChecked(True)  # ... and shows them again
    assert rows.image.isVisible() and "B: f = " in inspector.browser.toPlainText()
    window.compare_panel.close_requested.emit()
    assert view.states.getAxis("left")._tickLevels == ticks
    assert view.states.vb.viewRange()[1] == y_range
    assert inspector.browser.toHtml() == html
    assert inspector.browser.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAsNeeded
    assert not rows.image.isVisible() and rows.delta_row("h") is None
    assert not rows.marker.isVisible() and not window.compare_debugger[1].sums_b.isVisible()
    window.go_to_step(10)  # stepping on leaves them hidden
    assert not rows.image.isVisible()


def _gru_reordered(a):
    """Layer 1 of a PyTorch GRU stored in Keras order (z, r, n read as r, z, n)."""
    layer = a.layers[1]
    d = layer.directions[0]
    H = d.hidden_size

    def swap(m):
        return np.concatenate([m[H : 2 * H], m[:H], m[2 * H :]])

    d2 = d.replace(W_x=swap(d.W_x), W_h=swap(d.W_h), b_x=swap(d.b_x), b_h=swap(d.b_h))
    layers = list(a.layers)
    layers[1] = LSTMLayer(**{**vars(layer), "directions": (d2,)})
    return a.replace(layers=tuple(layers))


def test_gru_equations_and_rows(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "gru" / "torch" / "gru_model.pt", wait=True)
    assert window.compare_with(_gru_reordered(window.model), wait=True)
    rows, _ = window.compare_debugger
    inspector = window.debug_panel.unit_inspector
    window.workspace.select(layer=1, direction=0, unit=1)
    window.go_to_step(3)
    ta, tb = _runs(window)
    da, db = ta.layers[1].directions[0], tb.layers[1].directions[0]
    for name in ("r", "z", "n", "h"):
        np.testing.assert_allclose(
            rows.delta_row(name)[0], getattr(db, name)[3] - getattr(da, name)[3], atol=1e-5
        )
    text = inspector.browser.toPlainText()
    assert "B: h = (1 − z)·n + z·h_(t-1)" in text and "B: r = " in text
    assert f"{float(db.h[3, 1]):.3f}" in text
    # the dock's curve names the GRU's quantities, not an LSTM's
    assert "(r, z, n, h)" in window.compare_panel.plots.curve_plot.titleLabel.text


def _bias_doubled(model, k):
    layer = model.layers[k]
    d = layer.directions[0]
    if hasattr(d, "b_x"):
        d2 = d.replace(b_x=2 * np.asarray(d.b_x), b_h=2 * np.asarray(d.b_h))
    else:
        d2 = d.replace(b=2 * np.asarray(d.b))
    layers = list(model.layers)
    layers[k] = LSTMLayer(**{**vars(layer), "directions": (d2, *layer.directions[1:])})
    return model.replace(layers=tuple(layers))


@pytest.mark.parametrize(
    "fixture", [("torch", "proj.pt"), ("gru", "torch", "rnn_tanh.pt"), ("gru", "torch", "gru.pt")]
)
def test_every_cell_gets_b_rows_and_b_lines(make_main_window, fixture):
    """A projected LSTM, a plain RNN, a GRU: Δ rows are run(B) − run(A), and every equation
    line of A's has B's under it."""
    window = make_main_window()
    window.open_model(FIXTURES.joinpath(*fixture), wait=True)
    assert window.compare_with(_bias_doubled(window.model, 0), wait=True)
    rows, _ = window.compare_debugger
    inspector = window.debug_panel.unit_inspector
    window.workspace.select(layer=0, direction=0, unit=1)
    window.go_to_step(2)
    ta, tb = _runs(window)
    da, db = ta.layers[0].directions[0], tb.layers[0].directions[0]
    shown = [r.name for r in cell_rows.rows(da)]
    for r in cell_rows.rows(da):
        if r.name.startswith("act_"):
            continue
        want = getattr(db, r.attr)[2] - getattr(da, r.attr)[2]
        np.testing.assert_allclose(rows.delta_row(r.name)[0], want, atol=1e-5, err_msg=r.name)
    assert shown and np.abs(rows.delta_row(shown[-1])).max() > 0  # the bias moved h
    b_lines = [s for s in inspector.browser.toPlainText().splitlines() if s.startswith("B: ")]
    assert len(b_lines) == len(inspector.lines()) and any("≠" in s for s in b_lines)
