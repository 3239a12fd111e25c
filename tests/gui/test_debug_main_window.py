"""The debugger panel inside the real main window: model, sequence and step flow through it."""

import numpy as np
from PySide6.QtCore import Qt
from test_debug_panel import ARTIFACTS, _not_blank, make_model


def test_main_window_drives_the_debugger(make_main_window, qtbot):
    window = make_main_window()
    model = make_model()
    window.set_model(model)
    panel = window.debug_panel
    tab = next(k for k in range(window.tabs.count()) if window.tabs.tabText(k) == "Debugger")
    window.tabs.setCurrentIndex(tab)  # the panel may sit inside a scroll area
    assert panel.isVisible()
    x = np.random.default_rng(8).normal(size=(15, 3))
    window.set_sequence(x)
    np.testing.assert_array_equal(panel.trace.x, x.astype(panel.trace.x.dtype))
    with qtbot.waitSignal(panel.step_changed):
        window.go_to_step(6)
    assert panel.current_step == 6
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    panel.step_view.setFocus()
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Right)
    assert panel.current_step == 7
    np.testing.assert_array_equal(
        panel.step_view.images["f"].image[0], panel.trace.layers[0].directions[0].f[7]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "debug_in_main_window.png"
    window.grab().save(str(path))
    _not_blank(path)


def test_choosing_a_direction_in_the_tree_moves_the_debugger(make_main_window):
    window = make_main_window()
    window.set_model(make_model())
    window.set_sequence(np.random.default_rng(2).normal(size=(9, 3)))
    window.select_direction(1, 1)  # what a click on "1: bidi / backward" in the tree does
    window.tabs.setCurrentIndex(1)  # the debugger opens on the layer chosen in the tree
    selection = window.debug_panel.debugger.selection
    assert (selection.layer, selection.direction) == (1, 1)
    assert window.debug_panel.step_view._dt is window.debug_panel.trace.layers[1].directions[1]
    window.select_direction(0, 0)  # and follows the tree once it is open
    assert window.debug_panel.debugger.selection.layer == 0


def test_debugger_is_built_and_run_only_when_needed(make_main_window):
    """Opening a model shows its weights at once; the trace waits for the Debugger tab."""
    window = make_main_window()
    window.set_model(make_model())
    x = np.random.default_rng(5).normal(size=(11, 3))
    assert window.set_sequence(x)
    assert window._debug_panel is None
    assert not window.set_sequence(np.zeros((4, 2)))  # still checked right away
    window.tabs.setCurrentIndex(1)
    trace = window.debug_panel.trace
    np.testing.assert_array_equal(trace.x, x.astype(trace.x.dtype))


def test_showing_the_debugger_runs_the_model_once(make_main_window, monkeypatch):
    import lstmviz.workspace.workspace as workspace  # the workspace runs the model

    calls = []
    real_run = workspace.run
    monkeypatch.setattr(workspace, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    window = make_main_window()
    window.set_model(make_model())
    window.set_sequence(np.random.default_rng(6).normal(size=(8, 3)))
    window.tabs.setCurrentIndex(1)
    assert len(calls) == 1 and window.debug_panel.trace.n_steps == 8


def test_debugger_is_built_while_idle_but_runs_only_when_shown(make_main_window, qtbot):
    """Built on the click, the debugger froze a 3 × 1024-unit window ~0.17 s: it is built in
    idle event-loop turns after a model opens (step view, then the rest), and still runs
    nothing until the Debugger tab is shown; the Over time plots are built ahead too."""
    window = make_main_window()
    window.set_model(make_model())
    window.set_sequence(np.random.default_rng(5).normal(size=(11, 3)))
    assert window._debug_panel is None
    qtbot.waitUntil(lambda: window._debug_panel is not None, timeout=5000)
    panel = window._debug_panel
    assert window._prebuilt_step_view is None and panel.step_view.workspace is window.workspace
    assert window.workspace.trace is None and not window.workspace.jobs
    qtbot.waitUntil(lambda: len(panel.time_plots._spare) > 0, timeout=5000)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.workspace.trace is not None, timeout=5000)
    assert window.debug_panel is panel and panel.step_view._dt is not None
    panel.views.setCurrentIndex(1)
    assert panel.time_plots._trace is window.workspace.trace
