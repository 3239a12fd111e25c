"""The text view: token colours are the run's values, hover and click, drag, never stale."""

from __future__ import annotations

import numpy as np
import pytest
from model_factories import keras_like
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from lstmviz.explore import Vocabulary
from lstmviz.gui import plot_style as ps

ALPHABET = "ab()c"


def one_hot(ids) -> np.ndarray:
    return np.eye(len(ALPHABET))[np.asarray(ids)]


def expected_rgb(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The diverging map looked up by hand: value → position in the 512-entry table."""
    table = ps.lut(ps.SIGNED_CMAP)
    k = np.round(np.clip((values - lo) / (hi - lo), 0, 1) * (len(table) - 1)).astype(int)
    return np.asarray(table)[k, :3]


@pytest.fixture
def text_window(make_main_window):
    window = make_main_window()
    window.set_model(keras_like(D=len(ALPHABET), H=8)[0])
    ids = np.random.default_rng(0).integers(0, len(ALPHABET), 300)
    window.set_sequence(one_hot(ids))
    window.explore.set_vocabulary(Vocabulary.characters(ALPHABET), "chars")
    window.text_dock.show()
    window.workspace.ensure_trace(wait=True)
    return window, ids


def test_tokens_are_the_vocabulary_text_coloured_by_the_unit(text_window, qtbot):
    window, ids = text_window
    view, ws = window.text_view, window.workspace
    assert view.canvas.labels == [ALPHABET[i] for i in ids]
    for unit, q, (lo, hi) in ((0, "h", (-1, 1)), (5, "h", (-1, 1)), (3, "f", (0, 1))):
        ws.select(unit=unit)
        window.explore.selection.set_quantity(q)
        values = getattr(ws.trace.layers[0].directions[0], q)[:, unit]
        assert view.levels == (lo, hi)
        np.testing.assert_array_equal(view.canvas.rgb, expected_rgb(values, lo, hi))
    assert view.quantity_box.currentData() == "f"
    # c: symmetric around zero at the largest |c| of the whole run (all units)
    view.quantity_box.setCurrentIndex(1)
    c = ws.trace.layers[0].directions[0].c
    assert window.explore.selection.quantity == "c"
    assert view.levels == pytest.approx((-np.abs(c).max(), np.abs(c).max()))
    np.testing.assert_array_equal(view.canvas.rgb, expected_rgb(c[:, 3], *view.levels))


def test_hover_names_token_step_value_and_click_jumps(text_window, qtbot):
    window, ids = text_window
    view, ws = window.text_view, window.workspace
    ws.select(unit=2)
    canvas = view.canvas
    t = 17
    rect = canvas.token_rect(t)
    QTest.mouseMove(canvas, rect.center())
    h = ws.trace.layers[0].directions[0].h[t, 2]
    assert view.hover_text == f"{ALPHABET[ids[t]]!r} · step {t} · h[2] = {h:.4g}"
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=rect.center())
    assert ws.step == t
    assert canvas.step == t
    # the debugger's step moves the mark too
    ws.go_to_step(40)
    assert canvas.step == 40


def test_drag_over_tokens_selects_a_span(text_window, qtbot):
    window, _ids = text_window
    canvas = window.text_view.canvas
    a, b = canvas.token_rect(5).center(), canvas.token_rect(11).center()
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    QTest.mouseMove(canvas, b)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    assert window.explore.selection.span == (5, 12)
    assert window.explore_panel.start_box.value() == 5
    assert window.explore_panel.stop_box.value() == 11
    assert window.workspace.step == 0  # a drag is not a click


def test_numbers_without_a_vocabulary_show_step_numbers(make_main_window):
    window = make_main_window()
    window.set_model(keras_like(D=3, H=4)[0])
    x = np.random.default_rng(1).normal(size=(30, 3))
    window.set_sequence(x)
    window.text_dock.show()
    window.workspace.ensure_trace(wait=True)
    assert window.text_view.canvas.labels == [str(t) for t in range(30)]
    np.testing.assert_array_equal(
        window.text_view.values, window.workspace.trace.layers[0].directions[0].h[:, 0]
    )


class HeldRunner:
    """Keeps submitted jobs until ``release()``: the state between a request and its run."""

    def __init__(self) -> None:
        self.jobs = []

    def submit(self, job) -> None:
        self.jobs.append(job)

    def release(self) -> None:
        while self.jobs:
            job = self.jobs.pop(0)
            job.done(*job.execute())


def test_never_a_stale_colour_on_new_sequence_or_model(text_window, qtbot):
    window, _ids = text_window
    ws, view = window.workspace, window.text_view
    held = HeldRunner()
    ws.runner = held
    new_ids = np.arange(40) % len(ALPHABET)
    ws.set_sequence(one_hot(new_ids))
    # the old run is still the workspace's trace, but it is not the run of these tokens
    assert view.canvas.labels == [ALPHABET[i] for i in new_ids]
    assert view.values is None and view.canvas.rgb is None
    assert "computing" in view.status.text()
    held.release()
    h = ws.trace.layers[0].directions[0].h[:, 0]
    np.testing.assert_array_equal(view.values, h)
    np.testing.assert_array_equal(view.canvas.rgb, expected_rgb(h, -1, 1))
    # another model: grey while it computes, then its own values
    ws.set_model(keras_like(D=len(ALPHABET), H=6, seed=5)[0])
    assert view.canvas.rgb is None
    ws.ensure_trace()
    held.release()
    h2 = ws.trace.layers[0].directions[0].h[:, 0]
    np.testing.assert_array_equal(view.values, h2)
    assert not np.array_equal(h, h2)


def test_long_sequence_lays_out_once_and_paints_only_what_shows(make_main_window, qtbot):
    import time

    window = make_main_window()
    window.set_model(keras_like(D=len(ALPHABET), H=8)[0])
    ids = np.random.default_rng(2).integers(0, len(ALPHABET), 50_000)
    window.explore.set_vocabulary(Vocabulary.characters(ALPHABET), "chars")
    window.text_dock.show()
    t0 = time.perf_counter()
    window.set_sequence(one_hot(ids))
    window.workspace.ensure_trace(wait=True)
    canvas = window.text_view.canvas
    assert canvas.layout_.rows > 100
    t0 = time.perf_counter()
    window.workspace.select(unit=4)  # recolour: one array op, no layout
    assert time.perf_counter() - t0 < 0.3  # ~5 ms quiet; 50,000 items would take seconds
    t0 = time.perf_counter()
    canvas.grab(canvas.visibleRegion().boundingRect())
    assert time.perf_counter() - t0 < 0.3  # ~5 ms quiet; 50,000 items would take seconds
    assert canvas.token_at(QPoint(3, 3)) == 0


def test_a_gru_model_is_coloured_by_its_own_gates(text_window, qtbot):
    """The quantity lists are the selected layer's cell's (GRU: h, r, z, n); a quantity the
    new model's cell lacks (c) falls back to h; gates sit in [0, 1], the candidate at ±1."""
    import torch

    from lstmviz.core import GRUDirection, LSTMLayer, LSTMModel

    window, ids = text_window
    view, ws = window.text_view, window.workspace
    window.explore.selection.set_quantity("c")
    torch.manual_seed(0)
    gru = torch.nn.GRU(len(ALPHABET), 6)
    p = {k: v.detach().numpy() for k, v in gru.named_parameters()}
    w = GRUDirection(p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    window.set_model(LSTMModel((LSTMLayer("gru", (w,), kind="GRU"),)))
    window.set_sequence(one_hot(ids))
    ws.ensure_trace(wait=True)
    names = [view.quantity_box.itemText(k) for k in range(view.quantity_box.count())]
    assert names == ["h (hidden state)", "r (reset gate)", "z (update gate)", "n (candidate)"]
    panel_box = window.explore_panel.quantity_box
    assert [panel_box.itemData(k) for k in range(panel_box.count())] == ["h", "r", "z", "n"]
    assert window.explore.selection.quantity == "h" == view.quantity_box.currentData()
    dt = ws.trace.layers[0].directions[0]
    for q, levels in (("z", (0, 1)), ("n", (-1, 1))):
        ws.select(unit=2)
        view.quantity_box.setCurrentIndex(view.quantity_box.findData(q))
        assert window.explore.selection.quantity == q and view.levels == levels
        np.testing.assert_array_equal(view.canvas.rgb, expected_rgb(dt.value(q)[:, 2], *levels))
