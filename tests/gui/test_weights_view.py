"""The weights view: gate blocks, the stored-layout toggle against hand-made stored arrays,
tooltips naming the exact stored index, linked unit highlight, statistics, shapes text."""

from __future__ import annotations

import time

import numpy as np
import pytest
from model_factories import big_model, keras_like, onnx_like, tf1_like, torch_like
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, Provenance
from lstmviz.core.shapes_text import shapes_explained


def ticks(heatmap, axis: str) -> list[str]:
    levels = heatmap.plot.getAxis(axis)._tickLevels  # what setTicks() fixed
    return [label for _, label in levels[0]] if levels else []


def hover(window, key: str, row: int, col: int):
    """Move the real mouse over displayed cell (row, col) of panel ``key``."""
    view = window.weights_view
    heatmap = view.heatmap(key)
    scene_pos = heatmap.plot.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    QTest.mouseMove(view.graphics.viewport(), view.graphics.mapFromScene(scene_pos))
    QApplication.processEvents()
    return view.last_tooltip


def test_canonical_blocks_are_labelled_and_separated(make_main_window):
    window = make_main_window()
    model, _ = keras_like(D=3, H=2)
    window.set_model(model)
    view = window.weights_view
    assert [p.key for p in view.panels()] == ["W_x", "W_h", "b"]
    w_x = view.heatmap("W_x")
    assert ticks(w_x, "left") == ["i input", "f forget", "g candidate", "o output"]
    assert [line.value() for line in w_x.separators] == [2, 4, 6]
    assert all(line.angle == 0 for line in w_x.separators)
    np.testing.assert_array_equal(
        w_x.image.image, model.layers[0].directions[0].W_x.astype(np.float32)
    )
    assert w_x.image.levels[0] == -w_x.image.levels[1]  # symmetric: zero is the white centre


def test_keras_stored_layout_matches_the_file_arrays(make_main_window):
    window = make_main_window()
    model, stored = keras_like(D=3, H=2)
    window.set_model(model)
    window.weights_view.set_stored_order(True)
    panels = {p.key: p for p in window.weights_view.panels()}
    kernel = window.weights_view.heatmap("layers/lstm/cell/vars/0")
    np.testing.assert_allclose(kernel.image.image, stored["kernel"], rtol=1e-6)
    np.testing.assert_allclose(panels["layers/lstm/cell/vars/1"].data, stored["recurrent_kernel"])
    np.testing.assert_allclose(panels["bias"].data[0], stored["bias"])
    assert ticks(kernel, "bottom") == ["i", "f", "c (= g)", "o"]  # gates along columns now
    assert all(line.angle == 90 for line in kernel.separators)
    # hand-computed: kernel[1, 5] is column 5 = block 2 (c) unit 1 → canonical g, W_x[5, 1]
    text = window.weights_view.tooltip_at("layers/lstm/cell/vars/0", 1, 5)
    assert "gate g (candidate), unit 1" in text and "input x[1]" in text
    assert "layers/lstm/cell/vars/0[1, 5]" in text
    assert f"{stored['kernel'][1, 5]:.6g}" in text
    assert window.stored_action.isChecked()
    window.weights_view.set_stored_order(False)
    assert [p.key for p in window.weights_view.panels()] == ["W_x", "W_h", "b"]


def test_tf1_stored_layout_rebuilds_the_stacked_kernel(make_main_window):
    window = make_main_window()
    D, H = 3, 2
    model, stored = tf1_like(D=D, H=H, forget_bias=1.0)
    window.set_model(model)
    window.weights_view.set_stored_order(True)
    panels = {p.key: p for p in window.weights_view.panels()}
    assert list(panels) == ["rnn/lstm_cell/kernel", "bias"]
    np.testing.assert_allclose(panels["rnn/lstm_cell/kernel"].data, stored["kernel"])
    # the forget bias 1.0 lives in the graph, not the file: the stored bias comes back without it
    np.testing.assert_allclose(panels["bias"].data[0], stored["bias"])
    kernel = window.weights_view.heatmap("rnn/lstm_cell/kernel")
    assert ticks(kernel, "bottom") == ["i", "j (= g)", "f", "o"]
    assert ticks(kernel, "left") == ["x rows", "h rows"]
    assert kernel.bands[0].isVisible() and kernel.bands[0].value() == D
    # kernel[4, 2]: row 4 is h row 1; column 2 = block 1 (j) unit 0 → canonical g → W_h[4, 1]
    text = window.weights_view.tooltip_at("rnn/lstm_cell/kernel", 4, 2)
    assert "W_h: gate g (candidate), unit 0, hidden h[1]" in text
    assert "rnn/lstm_cell/kernel[4, 2]" in text
    w = model.layers[0].directions[0]
    assert f"{w.W_h[4, 1]:.6g}" in text
    # canonical view, f bias: names the stored index and the folded runtime constant
    window.weights_view.set_stored_order(False)
    text = window.weights_view.tooltip_at("b", H, 0)  # canonical row H = f unit 0 = stored col 2H
    assert f"rnn/lstm_cell/bias[{2 * H}] + forget_bias 1" in text


def test_onnx_stored_layout_names_direction_axis_and_both_bias_halves(make_main_window):
    window = make_main_window()
    D, H = 3, 2
    model, stored = onnx_like(D=D, H=H)
    window.set_model(model)
    window.weights_view.set_stored_order(True)
    panels = {p.key: p for p in window.weights_view.panels()}
    np.testing.assert_allclose(panels["W"].data, stored["W"][0])
    np.testing.assert_allclose(panels["R"].data, stored["R"][0])
    assert panels["W"].block_labels == ("i", "o", "f", "c (= g)")
    # W[0, 3, 1]: stored row 3 = block 1 (o) unit 1 → canonical o unit 1; Rb half starts at 4H = 8
    text = window.weights_view.tooltip_at("W", 3, 1)
    assert "gate o (output), unit 1" in text and "stored: W[0, 3, 1]" in text
    assert f"{stored['W'][0, 3, 1]:.6g}" in text
    b = np.asarray(panels["bias"].data).ravel()  # shown summed, stored order
    np.testing.assert_allclose(b, stored["B"][0, : 4 * H] + stored["B"][0, 4 * H :])
    assert "stored: B[0, 3] + B[0, 11]" in window.weights_view.tooltip_at("bias", 3, 0)


def test_hover_shows_tooltip_and_outlines_the_unit_in_all_gate_blocks(make_main_window):
    window = make_main_window()
    model, _ = keras_like(D=3, H=4)
    window.set_model(model)
    text = hover(window, "W_h", 4 * 2 + 3, 1)  # row of gate g, unit 3
    w = model.layers[0].directions[0]
    assert "gate g (candidate), unit 3" in text and "hidden h[1]" in text
    assert "layers/lstm/cell/vars/1[1, 11]" in text  # stored rec kernel [H, 4H], column 2H + 3
    assert f"{w.W_h[11, 1]:.6g}" in text
    assert window.details.cell_label.text() == text
    for key in ("W_x", "W_h", "b"):
        rects = window.weights_view.heatmap(key).highlighted_rects()
        assert sorted(r.top() for r in rects) == [3, 7, 11, 15]
    marked = window.weights_view.heatmap("W_h").cursor_cell  # the tooltip's own cell
    assert marked.isVisible() and marked.rect().topLeft().toTuple() == (1.0, 11.0)
    assert not window.weights_view.heatmap("W_x").cursor_cell.isVisible()
    window.weights_view.set_stored_order(True)  # gates along columns: outlines are columns
    text = hover(window, "layers/lstm/cell/vars/0", 2, 5)
    assert "gate f (forget), unit 1" in text
    rects = window.weights_view.heatmap("layers/lstm/cell/vars/0").highlighted_rects()
    assert sorted(r.left() for r in rects) == [1, 5, 9, 13]


def test_projection_and_peepholes_are_shown():
    """Built straight from the core API: W_p [P, H] and the three peephole vectors."""
    from lstmviz.core.stored_layout import canonical_panels

    rng = np.random.default_rng(0)
    H, D, P = 3, 2, 2
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, P)),
        b=np.zeros(4 * H),
        p_i=np.arange(H) + 1.0,
        p_f=np.arange(H) + 10.0,
        p_o=np.arange(H) + 20.0,
        W_p=rng.normal(size=(P, H)),
        provenance=Provenance(framework="core"),
    )
    panels = {p.key: p for p in canonical_panels(w)}
    assert set(panels) == {"W_x", "W_h", "b", "peep", "W_p"}
    peep = panels["peep"]
    assert peep.cell(H + 1, 0).role == "p_f" and peep.cell(H + 1, 0).value == 11.0
    assert peep.cell(2 * H, 0) is None  # no peephole for g
    assert panels["W_p"].data.shape == (P, H)


def test_large_matrix_loads_without_freezing(make_main_window):
    window = make_main_window()
    window.set_model(keras_like()[0])
    start = time.perf_counter()
    window.set_model(big_model(H=1024, D=1024))
    elapsed = time.perf_counter() - start
    heatmap = window.weights_view.heatmap("W_x")
    assert heatmap.image.image.shape == (4096, 1024)
    window.weights_view.graphics.grab()  # paint: the image is pooled to about screen size
    rows, cols = heatmap.image.factors
    assert rows > 1 and cols > 1
    assert heatmap.image.qimage.height() <= 4096 // rows + 1
    assert elapsed < 5.0, f"switching to a 4096×1024 model took {elapsed:.1f} s"


def test_large_matrix_is_pooled_off_the_gui_thread_then_drawn(make_main_window, qtbot):
    """A 4096 × 1024 kernel is pooled on a worker (0.05-0.1 s each froze the first paint):
    the paint shows every n-th cell at once, then the max-|w| copy when it arrives; a newer
    matrix drops the older one's copies."""
    from lstmviz.gui.pooled_image import pool_max_abs

    window = make_main_window()
    window.set_model(big_model(H=1024, D=1024))
    image = window.weights_view.heatmap("W_x").image
    window.weights_view.graphics.grab()
    factors = image.factors
    assert factors != (1, 1) and image.preview  # its result can only arrive via the loop
    qtbot.waitUntil(lambda: factors in image._cache, timeout=10000)
    window.weights_view.graphics.grab()
    assert image.factors == factors and not image.preview
    expected = pool_max_abs(image.image, *factors)
    np.testing.assert_array_equal(image._cache[factors], expected)
    assert (image.qimage.height(), image.qimage.width()) == expected.shape
    big = image.image
    window.set_model(keras_like()[0])
    assert window.weights_view.heatmap("W_x").image is image  # items are reused
    image._on_pooled_ready(big, (2, 2), np.zeros((1, 1)))  # a late result for the old one
    assert (2, 2) not in image._cache


def test_shrunk_heatmaps_keep_the_largest_weight_of_each_block_not_the_mean():
    """Averaging 40 weights of a 4096×1024 kernel per pixel cancels them to a flat grey and
    hides a lone large weight; pooling keeps each block's largest |w| with its sign."""
    from lstmviz.gui.pooled_image import pool_max_abs

    a = np.zeros((7, 5))
    a[1, 1], a[4, 3], a[6, 4] = -3.0, 2.0, np.nan
    pooled = pool_max_abs(a, 3, 2)
    assert pooled.shape == (3, 3)
    assert pooled[0, 0] == -3.0 and pooled[1, 1] == 2.0  # the spikes survive, signed
    assert np.isnan(pooled[2, 2]) and np.isfinite(pooled[:2]).all()  # a NaN stays visible
    assert pool_max_abs(a, 1, 1) is a


def test_statistics_flag_nan_and_inf_in_red(make_main_window):
    window = make_main_window()
    model, _ = keras_like(D=3, H=2)
    w = model.layers[0].directions[0]
    W_x = np.array(w.W_x)
    W_x[2, 0], W_x[3, 1] = np.nan, np.inf  # both in the f block
    bad = model.replace(layers=(LSTMLayer("lstm", (w.replace(W_x=W_x),)),))
    window.set_model(bad)
    stats = window.stats_panel
    assert [(stats.stats[r].matrix, stats.stats[r].gate) for r in stats.bad_rows()] == [
        ("W_x", "f")
    ]
    row = stats.bad_rows()[0]
    cell = stats.table.item(row, stats.table.columnCount() - 1)
    assert cell.text() == "1/1" and cell.background().color() == QColor(220, 40, 40)
    i_stats = stats.stats[0]
    np.testing.assert_allclose(i_stats.l2, np.linalg.norm(W_x[:2]))
    assert np.isfinite(stats.stats[1].mean)  # NaN/Inf excluded from the f-gate mean
    # in the heatmap the NaN cell is dark, not the white of a zero weight
    heatmap = window.weights_view.heatmap("W_x")
    image = window.weights_view.graphics.grab().toImage()

    def pixel(row: int, col: int) -> QColor:
        scene = heatmap.plot.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))
        return QColor(image.pixel(window.weights_view.graphics.mapFromScene(scene)))

    assert pixel(2, 0).lightness() < 90 and pixel(0, 0).lightness() > 90


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (keras_like(D=2, H=1)[0], "= 4·(2·1 + 1·1 + 1) = 8 + 4 + 4 = 16"),
        (tf1_like(D=12, H=64)[0], "(D + H, 4·H) = (12 + 64, 4·64) = (76, 256) → 19,456 values"),
        (tf1_like(D=12, H=64)[0], "= 19,456 + 256 = 19,712"),
        (torch_like(D=12, H=64, layers=1), "4·(D·H + H·H + 2·H) = 4·(12·64 + 64·64 + 2·64)"),
        (torch_like(D=12, H=64, layers=1), "= 19,968"),
    ],
)
def test_shapes_explained_uses_the_models_numbers(model: LSTMModel, expected: str):
    lines = shapes_explained(model.layers[0].directions[0], model.layers[0])
    assert any(expected in line for line in lines), "\n".join(lines)


def test_model_without_recorded_layout_falls_back_to_canonical(make_main_window):
    window = make_main_window()
    window.set_model(big_model(H=8, D=4))  # Provenance(framework="synthetic"), nothing stored
    window.weights_view.set_stored_order(True)
    assert [p.key for p in window.weights_view.panels()] == ["W_x", "W_h", "b"]
    assert "(file layout not recorded)" in window.weights_view.tooltip_at("W_x", 9, 2)
    assert window.weights_view.tooltip_at("W_x", 99, 2) == ""  # outside the matrix


def test_cudnn_tooltips_name_the_exact_reinterpreted_stored_cell():
    """CuDNNLSTM stores each gate's W_x bytes reinterpreted, not transposed: every canonical
    cell's tooltip index must point at the same value in the raw HDF5 arrays."""
    import re
    from pathlib import Path

    import h5py

    from lstmviz.core.stored_layout import canonical_panels
    from lstmviz.io import load_model

    path = Path(__file__).resolve().parents[1] / "fixtures" / "keras" / "cudnn_lstm.h5"
    if not path.exists():
        pytest.skip("Keras fixtures not present")
    w = load_model(path).layers[0].directions[0]
    panels = {p.key: p for p in canonical_panels(w)}
    with h5py.File(path, "r") as f:
        for key in ("W_x", "W_h"):
            rows, cols = panels[key].data.shape
            for r in range(rows):
                for c in range(cols):
                    cell = panels[key].cell(r, c)
                    name, i, j = re.fullmatch(r"(.+)\[(\d+), (\d+)\]", cell.stored).groups()
                    assert f[name][int(i), int(j)] == pytest.approx(cell.value), cell.stored


@pytest.mark.parametrize("name", ["onnx/peepholes.onnx", "tf1/peep_proj"])
def test_stored_peepholes_line_up_with_the_stored_gate_blocks(name):
    """ONNX stores blocks i,o,f,c, TF1 i,j,f,o with gates along columns: the peephole strip
    must follow the same order and orientation, empty for the candidate block."""
    from pathlib import Path

    from lstmviz.core.stored_layout import stored_panels
    from lstmviz.io import load_model

    path = Path(__file__).resolve().parents[1] / "fixtures" / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    w = load_model(path).layers[0].directions[0]
    panels = stored_panels(w)
    peep = next(p for p in panels if p.key == "peep")
    assert peep.gate_axis == panels[0].gate_axis and peep.block_labels == panels[0].block_labels
    values = peep.data.ravel()
    for i, v in enumerate(values):
        cell = peep.cell(*((0, i) if peep.gate_axis == 1 else (i, 0)))
        assert (cell is None) == bool(np.isnan(v))
        if cell is not None:
            assert cell.value == v == pytest.approx(float(getattr(w, cell.role)[cell.unit]))
            assert panels[0].cell(*((0, i) if peep.gate_axis == 1 else (i, 0))).gate == cell.gate
