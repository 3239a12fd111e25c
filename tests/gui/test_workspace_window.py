"""The window driven through its workspace: slow runs in a worker with progress, a newer
request wins, breakpoint hits in other layers are followed, notes never move the controls,
hover readouts never outlive a change or reach an export."""

from __future__ import annotations

import numpy as np
from model_factories import keras_like, torch_like
from PySide6.QtCore import QPointF, Qt
from test_debug_panel import make_model

from lstmviz.gui.step_view import HOVER_HINT


def test_a_slow_run_computes_in_a_worker_and_a_newer_one_wins(make_main_window, qtbot):
    window = make_main_window()
    big = torch_like(D=8, H=256, layers=2, seed=5)  # ~10⁹ flops at T = 600: a worker's job
    window.set_model(big)
    x1 = np.random.default_rng(1).normal(size=(600, 8))
    x2 = np.random.default_rng(2).normal(size=(500, 8))
    assert window.set_sequence(x1)
    window.tabs.setCurrentIndex(1)  # returns at once: the run is on the pool
    ws, panel = window.workspace, window.debug_panel
    assert ws.trace is None and "run" in ws.jobs
    assert panel.controls.step_label.text() == "computing…"
    assert panel.busy_label.text().startswith("computing 600 steps")
    assert panel.step_view._dt is None and panel.time_plots._trace is None
    window.set_sequence(x2)  # a newer request: the first result will be dropped
    qtbot.waitUntil(lambda: ws.trace is not None and not ws.jobs, timeout=60_000)
    assert ws.trace.n_steps == 500 and panel.busy_label.text() == ""
    np.testing.assert_allclose(ws.trace.x, x2, rtol=1e-6)
    dt = ws.trace.layers[0].directions[0]
    np.testing.assert_array_equal(panel.step_view.images["f"].image[0], dt.f[0])
    window.set_sequence(x1)  # the next run's progress is estimated from this machine's speed
    assert "≈" in panel.busy_label.text() and "%" in panel.busy_label.text()
    qtbot.waitUntil(lambda: not ws.jobs, timeout=60_000)


def test_cancel_keeps_the_previous_run(make_main_window, qtbot):
    window = make_main_window()
    window.set_model(torch_like(D=8, H=256, layers=2, seed=5))
    window.tabs.setCurrentIndex(1)
    ws, panel = window.workspace, window.debug_panel
    qtbot.waitUntil(lambda: ws.trace is not None and not ws.jobs, timeout=60_000)
    before = ws.trace
    window.set_sequence(np.random.default_rng(3).normal(size=(700, 8)))
    assert "run" in ws.jobs and panel.busy_label.cancel_button.isVisible()
    qtbot.mouseClick(panel.busy_label.cancel_button, Qt.MouseButton.LeftButton)
    assert not ws.jobs and ws.trace is before
    qtbot.wait(50)
    window.runner.wait()
    qtbot.wait(50)  # the cancelled result arrives and is dropped
    assert ws.trace is before


def test_f5_follows_a_hit_into_another_layer_and_direction(make_main_window, qtbot):
    window = make_main_window()
    window.set_model(make_model())
    window.set_sequence(np.random.default_rng(4).normal(size=(20, 3)))
    window.tabs.setCurrentIndex(1)
    ws, panel = window.workspace, window.debug_panel
    dt = ws.trace.layers[1].directions[1]
    cut = float(np.quantile(dt.f.min(axis=1), 0.5))
    ws.add_breakpoint(f"any f < {cut:.6f} in layer 1 backward")
    assert (ws.selection.layer, ws.selection.direction) == (0, 0)
    qtbot.mouseClick(panel.controls.run_button, Qt.MouseButton.LeftButton)  # F5
    assert ws.hits and (ws.selection.layer, ws.selection.direction) == (1, 1)
    assert panel.controls.layer.currentIndex() == 1
    assert panel.controls.direction.currentIndex() == 1
    assert panel.step_view._dt is dt
    marks_x, _ = panel.step_view.hit_markers.getData()
    assert len(marks_x) and ws.selection.unit in set(marks_x)


def test_a_note_never_moves_the_controls(make_main_window, qtbot):
    window = make_main_window(size=(1024, 700))
    window.set_model(make_model())
    window.tabs.setCurrentIndex(1)
    panel = window.debug_panel
    qtbot.wait(20)
    watched = (panel.breakpoint_editor.next_button, panel.views, panel.unit_inspector.plot_widget)
    where = [w.mapTo(panel, w.rect().topLeft()) for w in watched]
    panel.show_notice("Exported 3 files to /a/rather/long/folder/name/that/goes/on " * 5)
    qtbot.wait(20)
    assert panel.hit_banner.isVisible() and "Exported" in panel.hit_banner.text()
    assert [w.mapTo(panel, w.rect().topLeft()) for w in watched] == where
    qtbot.mouseClick(panel.hit_banner.close_button, Qt.MouseButton.LeftButton)
    assert not panel.hit_banner.isVisible()
    qtbot.wait(20)
    assert [w.mapTo(panel, w.rect().topLeft()) for w in watched] == where


def test_hover_readout_is_cleared_by_any_change_and_never_exported(
    make_main_window, qtbot, tmp_path
):
    window = make_main_window()
    window.set_model(keras_like(D=3, H=24, seed=1)[0])
    window.tabs.setCurrentIndex(1)
    ws, view = window.workspace, window.debug_panel.step_view

    def hover(unit: int) -> None:
        view.scene().sigMouseMoved.emit(view.states.vb.mapViewToScene(QPointF(unit, 0.5)))
        assert view.hover.text.startswith(f"unit {unit}:")

    for change in (
        lambda: ws.go_to_step(5),
        lambda: ws.select(unit=3),
        lambda: window.set_sequence(np.zeros((30, 3))),
        lambda: window.set_model(keras_like(D=3, H=8)[0]),
    ):
        hover(7)
        change()
        assert view.hover.text == HOVER_HINT
    hover(2)
    window.debug_panel.export_view(tmp_path / "step.png")
    assert view.hover.text == HOVER_HINT


def test_a_trace_export_runs_as_a_job_and_says_where_it_went(make_main_window, qtbot, tmp_path):
    from lstmviz.gui.trace_export import export_trace

    window = make_main_window()
    window.set_model(make_model())
    window.tabs.setCurrentIndex(1)
    ws, panel = window.workspace, window.debug_panel
    export_trace(ws, tmp_path / "run.npz")
    qtbot.waitUntil(lambda: not ws.jobs, timeout=10_000)
    assert panel.hit_banner.isVisible() and "run.npz" in panel.hit_banner.text()
    with np.load(tmp_path / "run.npz", allow_pickle=False) as saved:
        np.testing.assert_array_equal(
            saved["layer1/backward/f"], ws.trace.layers[1].directions[1].f
        )
    export_trace(ws, tmp_path / "missing" / "deeper" / "run.npz")
    qtbot.waitUntil(lambda: not ws.jobs, timeout=10_000)
    assert "trace not exported" in panel.hit_banner.text()
