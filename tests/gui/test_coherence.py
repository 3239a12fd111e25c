"""Every visible view agrees with the workspace after every user action, in any order.

Hypothesis draws sequences of actions (open models of different sizes, pick layer, direction
and unit, step, add breakpoints and run to them, switch tabs, hover, type sequences, export);
after each one, every view on screen is checked against ``window.workspace``: the arrays it
shows, its titles, the step, the unit, the layer. An exception reaching the event loop (an
``IndexError`` in a slot, say) fails the test through ``sys.excepthook``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_factories import keras_like, tf1_like, torch_like
from PySide6.QtCore import QPointF, Qt
from test_debug_panel import make_model

from lstmviz.gui.step_view import HOVER_HINT

#: Models of different sizes: H from 2 to 160 (the last runs in a worker), 1 to 3 layers,
#: bidirectional or not, D from 2 to 5.
MODELS = (
    lambda: keras_like(D=3, H=2)[0],
    lambda: keras_like(D=3, H=24, seed=1)[0],
    lambda: tf1_like(D=4, H=8)[0],
    lambda: torch_like(D=2, H=5, layers=3, bidirectional=True),
    lambda: make_model(H=12, D=3),
    lambda: torch_like(D=5, H=160, layers=1, seed=3),
)
BREAKPOINTS = (
    "step 3",
    "any f < 0.2",
    "any f < 0.3 in layer 1 backward",
    "|c| > 1.5 in layer 2",
    "any o > 0.9 in unit 1",
    "NaN anywhere",
)
KEYS = (Qt.Key.Key_Right, Qt.Key.Key_Left, Qt.Key.Key_End, Qt.Key.Key_Home)

ACTIONS = st.one_of(
    st.tuples(st.just("model"), st.integers(0, len(MODELS) - 1)),
    st.tuples(st.just("layer"), st.integers(0, 3)),
    st.tuples(st.just("direction"), st.integers(0, 1)),
    st.tuples(st.just("unit"), st.integers(0, 200)),
    st.tuples(st.just("click_unit"), st.integers(0, 30)),
    st.tuples(st.just("step"), st.integers(-3, 130)),
    st.tuples(st.just("key"), st.integers(0, len(KEYS) - 1)),
    st.tuples(st.just("breakpoint"), st.integers(0, len(BREAKPOINTS) - 1)),
    st.tuples(st.just("clear_breakpoints"), st.just(0)),
    st.tuples(st.just("run"), st.booleans()),
    st.tuples(st.just("tab"), st.integers(0, 3)),  # 0-2: debugger views, 3: weights tab
    st.tuples(st.just("tree"), st.integers(0, 3)),
    st.tuples(st.just("hover"), st.integers(0, 30)),
    st.tuples(st.just("sequence"), st.integers(1, 120)),
    st.tuples(st.just("export"), st.just(0)),
    st.tuples(st.just("wait"), st.just(0)),
)


@pytest.fixture
def coherent_window(make_main_window, monkeypatch):
    errors: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, exc, tb: errors.append(exc))
    window = make_main_window(size=(1400, 900))
    window.set_model(MODELS[4]())
    window.tabs.setCurrentIndex(1)
    return window, errors


class Driver:
    """Applies one action the way a user (or a script) would."""

    def __init__(self, window, qtbot, tmp_path) -> None:
        self.window, self.qtbot, self.tmp = window, qtbot, tmp_path
        self.rng = np.random.default_rng(0)
        self.actions = 0

    @property
    def panel(self):
        return self.window.debug_panel

    def apply(self, kind: str, arg) -> None:
        w, ws, panel = self.window, self.window.workspace, self.panel
        self.actions += 1
        if kind == "model":
            w.set_model(MODELS[arg]())
        elif kind == "layer":
            combo = panel.controls.layer
            combo.setCurrentIndex(arg % max(combo.count(), 1))
        elif kind == "direction":
            if panel.controls.direction.isEnabled():
                panel.controls.direction.setCurrentIndex(arg)
            else:
                ws.select(direction=arg)  # clamped: a one-direction layer stays on 0
        elif kind == "unit":
            ws.select(unit=arg)  # may be past H: clamped
        elif kind == "click_unit":
            if ws.trace is not None:
                panel.step_view.unit_clicked.emit(min(arg, ws.model.layers[0].hidden_size - 1))
        elif kind == "step":
            w.go_to_step(arg)
        elif kind == "key":
            panel.step_view.setFocus()
            self.qtbot.keyClick(panel.step_view, KEYS[arg])
        elif kind == "breakpoint":
            ws.add_breakpoint(BREAKPOINTS[arg])
        elif kind == "clear_breakpoints":
            ws.clear_breakpoints()
        elif kind == "run":
            panel.run_to_breakpoint(arg)
        elif kind == "tab":
            if arg == 3:
                w.tabs.setCurrentIndex(0)
            else:
                w.tabs.setCurrentIndex(1)
                panel.views.setCurrentIndex(arg)
        elif kind == "tree":
            w.select_direction(arg // 2, arg % 2)
        elif kind == "hover":
            view = panel.step_view
            pos = view.states.vb.mapViewToScene(QPointF(arg, 0.5))
            view.scene().sigMouseMoved.emit(pos)
        elif kind == "sequence":
            x = self.rng.normal(size=(arg, ws.model.input_size))
            w.set_sequence(x)
        elif kind == "export":
            if ws.trace is not None and w.tabs.currentIndex() == 1:
                path = panel.export_view(self.tmp / "view.png")
                assert path.exists()
                assert panel.step_view.hover.text == HOVER_HINT  # never baked into an export
        elif kind == "wait":
            self.qtbot.waitUntil(lambda: not ws.jobs, timeout=10_000)


def _title(plot) -> str:
    """The whole title (``plot_style.fit_title`` elides what is drawn to the plot's width)."""
    full = getattr(plot, "_fit_title", None)
    return full[0] if full else plot.titleLabel.text


def check(window) -> None:
    """Every view agrees with the workspace (called after every action)."""
    ws = window.workspace
    model, s, trace = ws.model, ws.selection, ws.trace
    lstm = model.layers[s.layer]
    assert 0 <= s.direction < len(lstm.directions)
    w = lstm.directions[s.direction]
    assert 0 <= s.unit < w.hidden_size
    # weights side: the selected direction's matrices when that tab is on top (a hidden
    # weights tab catches up when shown: the "tab" action checks it then)
    if window.tabs.currentIndex() == 0:
        shown = window.weights_view.heatmap("W_x").image.image
        assert shown.shape == w.W_x.shape
        np.testing.assert_array_equal(shown, w.W_x.astype(shown.dtype))
        assert window.stats_panel._weights is w
    assert window.selection == (s.layer, s.direction)
    if window._debug_panel is None:
        return
    panel = window.debug_panel
    c = panel.controls
    assert c.layer.count() == len(model.layers) and c.layer.currentIndex() == s.layer
    assert c.direction.currentIndex() == s.direction
    assert c.direction.isEnabled() == lstm.bidirectional
    assert panel.breakpoint_editor.list.count() == len(ws.breakpoints)
    if trace is None:  # computing: nothing of another run may be on screen
        assert panel.step_view._dt is None and panel.time_plots._trace is None
        assert panel.unit_inspector._dt is None
        assert panel.diagnostics_page.currentIndex() == 0
        assert panel.center.currentIndex() == 1  # "Running the model…" in place of the views
        return
    if "run" in ws.jobs:  # a run computing behind the previous one: the views make way
        # for "Running the model…" and the inspector says computing (no previous numbers)
        steps = "" if ws.sequence is None else f" {len(ws.sequence)} steps"
        assert c.step_label.text() == f"computing{steps}…" and not c.slider.isEnabled()
        assert panel.center.currentIndex() == 1 and panel.unit_inspector._dt is None
        return
    assert panel.center.currentIndex() == 0
    assert trace.model is model and trace.x.shape[1] == model.input_size
    t = ws.step
    assert 0 <= t < trace.n_steps
    dt = trace.layers[s.layer].directions[s.direction]
    assert c.slider.value() == t and c.slider.maximum() == trace.n_steps - 1
    assert c.step_label.text() == f"step {t} of 0–{trace.n_steps - 1}"
    # This step
    sv = panel.step_view
    assert sv._dt is dt
    assert sv.unit_lines[0].value() == s.unit
    if not sv.isHidden():
        np.testing.assert_array_equal(sv.images["f"].image[0], dt.f[t])
        np.testing.assert_array_equal(
            sv.term_rows("g")[-1], dt.pre[t, 2 * w.hidden_size :][: w.hidden_size]
        )
        assert f"step {t} of 0–{trace.n_steps - 1}" in sv.title.text
    hits = [h for h in ws.hits if (h.layer, h.direction) == (s.layer, s.direction)]
    marks_x, _ = sv.hit_markers.getData()
    assert sorted(marks_x) == sorted({u for h in hits for u in h.units})
    # Over time
    tp = panel.time_plots
    if not tp.isHidden():  # a tab behind another takes the run when it is shown
        assert tp._trace is trace
        np.testing.assert_array_equal(tp.gate_lines["f"].yData, dt.f[:, s.unit])
        assert all(cursor.value() == t for cursor in tp._cursors)
        where = f"unit {s.unit} (layer {s.layer} {'backward' if s.direction else 'forward'})"
        assert where in _title(tp._plots[-1]) and where in _title(tp._plots[-2])
    # Unit inspector
    ui = panel.unit_inspector
    assert ui._dt is dt and ui.unit == s.unit and ui._step == t
    assert f"unit {s.unit} · step {t}" in ui.header.text()
    assert _title(ui.plot) == f"pre-activation terms of unit {s.unit}"
    # Diagnostics: the current run and selection, or "computing…"
    page = panel.diagnostics_page
    if page.currentIndex() == 1:
        view = page.view
        assert view._trace is trace and view._sel[:2] == (s.layer, s.direction)
        assert view.saturation.shape == (3, w.hidden_size)
        assert f"layer {s.layer}" in _title(view.sat_plot)
    # the note bar: a hit says where it stopped
    if ws.hits:
        banner = panel.hit_banner  # (on screen once the Debugger tab is)
        assert not banner.isHidden() and f"step {t}" in banner._text


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, min_size=40, max_size=45))
def test_views_follow_the_workspace_whatever_the_order(coherent_window, qtbot, tmp_path, actions):
    window, errors = coherent_window
    driver = Driver(window, qtbot, tmp_path)
    for kind, arg in actions:
        ws = window.workspace
        before = (ws.step, ws.selection, id(ws.trace))
        driver.apply(kind, arg)
        assert not errors, f"exception in the event loop after {kind} {arg}: {errors[0]!r}"
        check(window)
        if kind != "hover" and (ws.step, ws.selection, id(ws.trace)) != before:
            assert window.debug_panel.step_view.hover.text == HOVER_HINT
    qtbot.waitUntil(lambda: not window.workspace.jobs, timeout=10_000)
    check(window)
    assert driver.actions >= 40


def test_the_issue_13_scenario(make_main_window, qtbot, monkeypatch):
    """Unit 15 selected, open an H = 8 model: no IndexError, Diagnostics shows the new model."""
    errors: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, exc, tb: errors.append(exc))
    window = make_main_window()
    window.set_model(keras_like(D=3, H=24, seed=1)[0])
    window.tabs.setCurrentIndex(1)
    window.go_to_step(40)
    panel = window.debug_panel
    panel.views.setCurrentIndex(2)
    panel.step_view.unit_clicked.emit(15)
    assert window.workspace.selection.unit == 15
    window.set_model(keras_like(D=3, H=8)[0])
    assert not errors
    assert window.workspace.selection.unit == 7
    qtbot.waitUntil(lambda: panel.diagnostics_page.currentIndex() == 1)
    assert panel.diagnostics_view.saturation.shape == (3, 8)
    assert "unit 7" in _title(panel.unit_inspector.plot)
    check(window)
