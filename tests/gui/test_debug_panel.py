"""The debugger panel driven like a user would: keys, buttons, breakpoints, the inspector.

Displayed item data is compared with the Trace at the cursor; screenshots of every view go to
tests/_artifacts/ and must not be blank.
"""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QUrl

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.core.activations import Activation
from lstmviz.gui.debug_panel import DebugPanel
from lstmviz.gui.step_view import STATE_ROWS

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"


def make_model(H: int = 12, D: int = 3, seed: int = 0) -> LSTMModel:
    """Three layers, the middle one bidirectional, random weights."""
    rng = np.random.default_rng(seed)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)),
            W_h=rng.normal(size=(4 * H, H)) * 0.4,
            b=rng.normal(size=4 * H),
            reverse=reverse,
        )

    return LSTMModel(
        layers=(
            LSTMLayer("encoder", (direction(D),)),
            LSTMLayer("bidi", (direction(H), direction(H, reverse=True))),
            LSTMLayer("top", (direction(2 * H),)),
        )
    )


@pytest.fixture
def panel(qtbot):
    p = DebugPanel()
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    qtbot.waitExposed(p)
    p.set_model(make_model())
    x = np.random.default_rng(4).normal(size=(20, 3))
    assert p.set_sequence(x)
    p.step_view.setFocus()
    return p


def displayed(panel: DebugPanel) -> dict[str, np.ndarray]:
    return {name: panel.step_view.images[name].image[0] for name in STATE_ROWS}


def assert_shows_step(panel: DebugPanel, t: int, layer: int = 0, direction: int = 0) -> None:
    dt = panel.trace.layers[layer].directions[direction]
    shown = displayed(panel)
    for name in STATE_ROWS:
        np.testing.assert_array_equal(shown[name], getattr(dt, name)[t], err_msg=name)
    for k, gate in enumerate("ifgo"):
        sl = slice(k * 12, (k + 1) * 12)
        rows = panel.step_view.term_rows(gate)
        np.testing.assert_array_equal(rows[0], dt.z_x[t, sl])
        np.testing.assert_array_equal(rows[1], dt.z_h[t, sl])
        np.testing.assert_array_equal(rows[2], dt.b[sl])
        np.testing.assert_array_equal(rows[-1], dt.pre[t, sl])
    assert panel.controls.slider.value() == t
    assert panel.controls.step_label.text() == f"step {t} of 0–{panel.trace.n_steps - 1}"


def test_keys_move_the_cursor_and_the_display_follows(panel, qtbot):
    assert_shows_step(panel, 0)
    with qtbot.waitSignal(panel.step_changed) as sig:
        qtbot.keyClick(panel.step_view, Qt.Key.Key_Right)
    assert sig.args == [1] and panel.current_step == 1
    assert_shows_step(panel, 1)
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Right)
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Left)
    assert_shows_step(panel, 1)
    qtbot.keyClick(panel.step_view, Qt.Key.Key_End)
    assert_shows_step(panel, 19)
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Home)
    assert_shows_step(panel, 0)
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Space)
    assert panel.playback.is_playing and panel.controls.play_button.isChecked()
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Space)
    assert not panel.playback.is_playing and panel.controls.play_button.text() == "Play"


def test_buttons_slider_and_layer_selector(panel, qtbot):
    qtbot.mouseClick(panel.controls.forward_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.controls.forward_button, Qt.MouseButton.LeftButton)
    assert panel.current_step == 2
    qtbot.mouseClick(panel.controls.back_button, Qt.MouseButton.LeftButton)
    assert panel.current_step == 1
    panel.controls.slider.setValue(7)
    assert_shows_step(panel, 7)
    panel.controls.layer.setCurrentIndex(1)
    assert panel.controls.direction.isEnabled()
    panel.controls.direction.setCurrentIndex(1)
    assert panel.debugger.selection.layer == 1 and panel.debugger.selection.direction == 1
    assert_shows_step(panel, 7, layer=1, direction=1)
    panel.controls.layer.setCurrentIndex(2)
    assert not panel.controls.direction.isEnabled()
    assert_shows_step(panel, 7, layer=2)


def test_conditional_breakpoint_stops_and_highlights(panel, qtbot):
    dt = panel.trace.layers[1].directions[1]
    threshold = float(np.quantile(dt.f.min(axis=1), 0.3))
    expected = [t for t in range(20) if (dt.f[t] < threshold).any()]
    first = next(t for t in expected if t > 0)
    editor = panel.breakpoint_editor
    qtbot.keyClicks(editor.entry, f"any f < {threshold:.17g} in layer 1 backward")
    qtbot.keyClick(editor.entry, Qt.Key.Key_Return)
    assert editor.list.count() == 1 and editor.error.text() == ""
    assert f"({len(expected)} step" in editor.list.item(0).text()
    panel.controls.layer.setCurrentIndex(1)
    panel.controls.direction.setCurrentIndex(1)
    qtbot.mouseClick(panel.controls.run_button, Qt.MouseButton.LeftButton)
    assert panel.current_step == first
    units = [u for u in range(12) if dt.f[first, u] < threshold]
    assert panel.hit_banner.isVisible()
    assert (
        f"step {first}" in panel.hit_banner.text() and "layer 1 backward" in panel.hit_banner.text()
    )
    marks_x, _ = panel.step_view.hit_markers.getData()
    assert sorted(marks_x) == units
    qtbot.keyClick(panel.step_view, Qt.Key.Key_Right)
    assert not panel.hit_banner.isVisible()  # any other move clears the hit


def test_bad_breakpoint_text_shows_message(panel, qtbot):
    qtbot.keyClicks(panel.breakpoint_editor.entry, "f is small")
    qtbot.keyClick(panel.breakpoint_editor.entry, Qt.Key.Key_Return)
    assert "cannot read breakpoint 'f is small'" in panel.breakpoint_editor.error.text()
    assert panel.debugger.breakpoints == ()


def test_wrong_width_keeps_previous_sequence(panel, qtbot):
    before_x, before_trace = panel.sequence.copy(), panel.trace
    panel.go_to_step(5)
    assert not panel.set_sequence(np.zeros((8, 4)))
    message = panel.sequence_editor.message.text()
    assert "4 values per timestep, but the model's first layer expects 3" in message
    assert "previous sequence is kept" in message and panel.sequence_editor.message.isVisible()
    np.testing.assert_array_equal(panel.sequence, before_x)
    assert panel.trace is before_trace and panel.current_step == 5
    # typed text: a non-number
    panel.sequence_editor.text.setPlainText("1, 2, 3\n4, five, 6")
    qtbot.mouseClick(panel.sequence_editor.apply_button, Qt.MouseButton.LeftButton)
    assert "line 2: 'five' is not a number" in panel.sequence_editor.error_text
    assert panel.trace is before_trace
    # and a good one is taken
    panel.sequence_editor.text.setPlainText("1, 2, 3\n4, 5, 6")
    qtbot.mouseClick(panel.sequence_editor.apply_button, Qt.MouseButton.LeftButton)
    assert panel.trace.n_steps == 2 and panel.current_step == 1
    assert panel.sequence_editor.error_text == ""


def test_generate_and_initial_state(panel, qtbot):
    ed = panel.sequence_editor
    ed.kind.setCurrentText("random normal")
    ed.length.setValue(30)
    ed.seed.setValue(9)
    qtbot.mouseClick(ed.generate_button, Qt.MouseButton.LeftButton)
    want = np.random.default_rng(9).standard_normal((30, 3))
    np.testing.assert_array_equal(panel.trace.x, want.astype(panel.trace.x.dtype))
    ed.state_target.setCurrentIndex(0)
    ed.c0.setText(" ".join(["0.5"] * 12))
    qtbot.mouseClick(ed.states_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(panel.trace.layers[0].directions[0].c_prev[0], np.full(12, 0.5))
    ed.h0.setText("1 2")
    assert not ed.apply_states()
    assert "h0: 2 values, expected 12" in ed.error_text


def test_token_ids_use_the_embedding(qtbot):
    emb = np.arange(10 * 3, dtype=float).reshape(10, 3) / 30
    model = make_model().replace(embedding=emb)
    p = DebugPanel()
    qtbot.addWidget(p)
    p.set_model(model)
    ed = p.sequence_editor
    assert ed.tabs.isTabEnabled(ed.tokens_index)
    ed.tokens.setText("3 1 4 1 5")
    assert ed.embed()
    np.testing.assert_array_equal(p.trace.x, emb[[3, 1, 4, 1, 5]].astype(p.trace.x.dtype))
    ed.tokens.setText("3 10")
    assert (
        not ed.embed() and "token id 10 at step 1 is outside the vocabulary 0..9" in ed.error_text
    )


def test_playback_reaches_the_end_and_stops_at_breakpoints(panel, qtbot):
    panel.controls.speed.setValue(240)
    panel.toggle_play()
    qtbot.waitUntil(lambda: not panel.playback.is_playing, timeout=3000)
    assert panel.current_step == 19
    pb = panel.playback
    assert pb.frames_shown + pb.frames_dropped == 19  # every step shown or knowingly skipped
    panel.debugger.add_breakpoint("step 11")
    panel.toggle_play()  # from the end, play restarts at 0
    qtbot.waitUntil(lambda: not panel.playback.is_playing, timeout=3000)
    assert panel.current_step == 11 and panel.hit_banner.isVisible()


def test_unit_inspector_text_for_a_known_step(qtbot):
    """One unit, hand-set weights, hard_sigmoid_k2 gates: numbers checked by hand."""
    hs = Activation("hard_sigmoid_k2")
    w = LSTMDirection(
        W_x=np.array([[0.2], [0.31], [0.5], [-0.4]]),
        W_h=np.array([[1.0], [-2.0], [0.5], [0.25]]),
        b=np.array([0.1, 1.0, 0.0, 0.3]),
        act_gate=hs,
    )
    p = DebugPanel()
    qtbot.addWidget(p)
    p.set_model(LSTMModel(layers=(LSTMLayer("one", (w,)),)))
    assert p.set_sequence(np.array([[1.0], [0.0]]))
    lines = p.unit_inspector.lines()
    # i = clip(0.2*0.3+0.5) = 0.56; f = 0.2*1.31+0.5 = 0.762; g = tanh(0.5) = 0.462117;
    # c = 0.56*0.462117 = 0.258786; o = clip(0.2*(-0.1)+0.5) = 0.48; h = 0.48*tanh(c) = 0.12160
    assert lines == [
        "i = hard_sigmoid_k2(0.200 + 0.000 + 0.100) = hard_sigmoid_k2(0.300) = 0.560",
        "f = hard_sigmoid_k2(0.310 + 0.000 + 1.000) = hard_sigmoid_k2(1.310) = 0.762",
        "g = tanh(0.500 + 0.000 + 0.000) = tanh(0.500) = 0.462",
        "c = f·c_(t-1) + i·g = 0.762·0.000 + 0.560·0.462 = 0.259",
        "o = hard_sigmoid_k2((-0.400) + 0.000 + 0.300) = hard_sigmoid_k2(-0.100) = 0.480",
        "h = o·tanh(c) = 0.480·tanh(0.259) = 0.480·0.253 = 0.122",
    ]
    p.go_to_step(1)  # x = 0, h_prev = 0.12160: z_h terms appear
    assert p.unit_inspector.lines()[1].startswith("f = hard_sigmoid_k2(0.000 + (-0.243) + 1.000)")
    with qtbot.waitSignal(p.weights_link_requested) as sig:
        p.unit_inspector.browser.anchorClicked.emit(QUrl("weights:f"))
    assert sig.args == [0, 0, "f", 0]


def test_clicking_a_unit_selects_it(panel, qtbot):
    panel.views.setCurrentWidget(panel.step_view)
    vb = panel.step_view.states.vb
    scene_pos = vb.mapViewToScene(pg_point(7.2, 1.5))
    view_pos = panel.step_view.mapFromScene(scene_pos)
    qtbot.mouseClick(panel.step_view.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert panel.debugger.selection.unit == 7
    assert panel.unit_inspector.unit == 7
    assert panel.step_view.unit_lines[0].value() == 7


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_exports(panel, tmp_path):
    (npz,) = panel.export_trace(tmp_path / "t.npz")
    with np.load(npz, allow_pickle=False) as data:
        np.testing.assert_array_equal(
            data["layer1/backward/f"], panel.trace.layers[1].directions[1].f
        )
    (csv,) = panel.export_trace(tmp_path / "t.csv")
    assert csv.read_text().startswith("step,x[0]")
    png = panel.export_view(tmp_path / "v.png")
    svg = panel.export_view(tmp_path / "v.svg")
    assert png.stat().st_size > 5000
    assert (
        svg.read_text(errors="replace").lstrip().startswith("<?xml") and svg.stat().st_size > 5000
    )


def _not_blank(path: Path) -> None:
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull() and img.width() >= 1000
    arr = np.frombuffer(img.convertToFormat(QImage.Format.Format_RGB32).constBits(), np.uint8)
    assert arr.std() > 20, f"{path.name} looks blank"
    assert len(np.unique(arr.reshape(-1, 4)[::97], axis=0)) > 50, f"{path.name} has too few colours"


def test_screenshots(panel, qtbot):
    ARTIFACTS.mkdir(exist_ok=True)
    f = panel.trace.layers[1].directions[1].f
    cut = float(np.quantile(f.min(axis=1), 0.5))
    panel.debugger.add_breakpoint(f"any f < {cut:.3f} in layer 1 backward")
    panel.controls.layer.setCurrentIndex(1)
    panel.controls.direction.setCurrentIndex(1)
    panel.debugger.select(unit=4)
    assert panel.debugger.run_to_breakpoint()
    assert panel.hit_banner.isVisible()
    for index, name in enumerate(("step", "time", "diagnostics")):
        panel.views.setCurrentIndex(index)
        qtbot.wait(10)
        path = ARTIFACTS / f"debug_{name}.png"
        panel.grab().save(str(path))
        _not_blank(path)


def test_weights_with_nan_and_inf_still_step(qtbot):
    """A diverged model (NaN/Inf weights) must be debuggable: that is when users need it most."""
    rng = np.random.default_rng(9)
    W_x = rng.normal(size=(8, 2))
    W_x[0, 0], W_x[5, 1] = np.nan, np.inf
    w = LSTMDirection(W_x, rng.normal(size=(8, 2)), np.zeros(8))
    model = LSTMModel((LSTMLayer("l", (w,)),))
    p = DebugPanel()
    qtbot.addWidget(p)
    p.set_model(model)
    assert p.set_sequence(rng.normal(size=(6, 2)))
    p.go_to_step(3)
    assert p.current_step == 3
    assert np.isnan(p.step_view.images["i"].image[0, 0])


def test_the_panel_never_waits_for_the_compiled_engine(qtbot, monkeypatch):
    """Until numba's kernels are resolved (compiled in the background on a first launch) the
    panel runs the NumPy engine; afterwards ``auto``. Both give the frameworks' numbers."""
    from lstmviz.core import compiled
    from lstmviz.workspace import workspace  # the workspace runs the model for the panel

    engines = []

    def spy(*args, engine, **kw):
        engines.append(engine)
        return workspace.run.__wrapped__(*args, engine=engine, **kw)

    spy.__wrapped__ = workspace.run
    monkeypatch.setattr(workspace, "run", spy)
    monkeypatch.setattr(compiled, "ready", lambda: False)
    p = DebugPanel()
    qtbot.addWidget(p)
    p.set_model(make_model())
    x = np.random.default_rng(4).normal(size=(300, 3))
    assert p.set_sequence(x)
    slow = p.trace.layers[-1].output
    monkeypatch.setattr(compiled, "ready", lambda: True)
    assert p.set_sequence(x + 0.0)
    assert set(engines[:-1]) == {"numpy"} and engines[-1] == "auto"
    np.testing.assert_allclose(p.trace.layers[-1].output, slow, atol=1e-5)


def test_a_breakpoint_kept_for_a_smaller_model_says_why_it_never_fires(panel, qtbot):
    editor = panel.breakpoint_editor
    qtbot.keyClicks(editor.entry, "|c| > 0.01 in unit 11")
    qtbot.keyClick(editor.entry, Qt.Key.Key_Return)
    assert editor.list.item(0).text().endswith("steps)")  # 12 units: it fires
    panel.set_model(make_model(H=4))
    item = editor.list.item(0)
    assert "never fires here: the layers in its scope have 4 units (0–3)" in item.text()
    assert "4 units" in item.toolTip()


def test_projected_h_has_its_own_row_in_this_step(qtbot):
    rng = np.random.default_rng(6)
    H, P = 8, 3
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, 2)),
        W_h=rng.normal(size=(4 * H, P)) * 0.4,
        b=rng.normal(size=4 * H),
        W_p=rng.normal(size=(P, H)),
    )
    p = DebugPanel()
    qtbot.addWidget(p)
    p.set_model(LSTMModel((LSTMLayer("proj", (w,)),)))
    assert p.set_sequence(rng.normal(size=(15, 2)))
    p.go_to_step(6)
    view, dt = p.step_view, p.trace.layers[0].directions[0]
    assert view.proj_image.isVisible()
    np.testing.assert_array_equal(view.proj_image.image[0], dt.h[6])  # P values
    np.testing.assert_array_equal(view.images["h"].image[0], dt.m[6])  # H values: m_t
    p.set_model(make_model())  # no projection: the row goes away
    assert not p.step_view.proj_image.isVisible()
