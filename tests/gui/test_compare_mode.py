"""Compare mode in the window: File ▸ Compare with…, ``lstmviz A B``, the Compare dock
following the debugger's step and selection, loading B off the GUI thread."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from lstmviz.gui.compare_dock import go_to

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ARTIFACTS = ROOT / "tests" / "_artifacts"

torch = pytest.importorskip("torch")


def _broken_port(tmp_path: Path) -> Path:
    """bidir2.pt with layer 0's gates written in ONNX order (i,o,f,c) into nn.LSTM names."""
    sd = torch.load(FIXTURES / "torch" / "bidir2.pt", weights_only=True)
    H = sd["weight_hh_l0"].shape[1]

    def onnx_order(m):
        return torch.cat([m[k * H : (k + 1) * H] for k in (0, 3, 1, 2)])

    out = {k: onnx_order(v) if k.endswith("_l0") else v for k, v in sd.items()}
    path = tmp_path / "ported.pt"
    torch.save(out, path)
    return path


def test_compare_with_loads_b_in_a_worker_and_shows_the_dock(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    seen = []
    window.compare.subscribe(seen.append)
    assert window.compare_with(_broken_port(tmp_path))  # returns at once
    assert window.compare.busy and seen == ["busy"]  # the load runs in the pool
    qtbot.waitUntil(lambda: window.compare.comparison is not None, timeout=20000)
    c = window.compare.comparison
    assert window.compare_dock.isVisible()
    assert [d.kind for d in c.diagnoses] == ["gate_permutation"]
    html = window.compare_panel.diagnoses.toPlainText()
    assert "gate_permutation" in html and "ONNX order i,o,f,c" in html and "fix:" in html
    header = window.compare_panel.header.text()
    assert "ported.pt" in header and "first divergence" in header
    assert window.compare_panel.pair_combo.count() == 4  # 2 layers × 2 directions


def test_debugger_step_drives_the_readout_and_cursor(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    assert window.compare_with(_broken_port(tmp_path), wait=True)
    panel = window.compare_panel
    window.go_to_step(7)
    window.workspace.select(layer=0, direction=0, unit=2)
    dd = panel.current_delta()
    assert (dd.layer_a, dd.direction) == (0, 0)
    text = panel.readout.text()
    assert text.startswith("step 7, unit 2")
    a, b = float(dd.a.f[7, 2]), float(dd.b.f[7, 2])
    mantissa, _, exp = f"{b - a:+.1e}".partition("e")
    assert f"{a:+.4f}" in text and f"{b:+.4f}" in text and f"{mantissa}e{int(exp)}" in text
    assert panel.plots.cursors[0].value() == 7 and panel.plots.unit_line.value() == 2
    # B's equations (its own tab) carry B's numbers; the lines that differ from A's in red
    panel.views.setCurrentWidget(panel.equations)
    eq = panel.equations.toPlainText()
    assert eq.startswith("B: i = sigmoid(") and f"= {float(dd.b.f[7, 2]):.3f}" in eq
    assert "#b00020" in panel.equations.toHtml()
    # choosing another pair in the panel selects it in the debugger
    panel.pair_combo.setCurrentIndex(3)
    s = window.workspace.selection
    assert (s.layer, s.direction) == (1, 1)


def test_go_to_first_divergence_and_the_marker(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    window.compare_with(_broken_port(tmp_path), wait=True)
    div = window.compare.comparison.first_divergence
    assert div is not None
    window.compare_panel.go_button.click()
    s = window.workspace.selection
    assert (s.layer, s.direction, s.unit) == (div.layer, div.direction, div.unit)
    assert window.workspace.step == div.step
    plots = window.compare_panel.plots
    assert plots.marks[1].isVisible() and plots.marks[1].value() == div.step
    xs, ys = plots.div_point.getData()
    assert (xs[0], ys[0]) == (div.step, div.unit)


def test_equal_models_and_a_bad_file(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    assert window.compare_with(FIXTURES / "torch" / "bidir2.pt", wait=True)
    assert window.compare.comparison.equal
    assert "equal" in window.compare_panel.header.text()
    assert not window.compare_panel.go_button.isEnabled()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert not window.compare_with(bad, wait=True)
    assert "bad.pt" in window.compare.message
    assert window.compare.comparison.equal  # the previous comparison stays


def test_new_sequence_recomputes_and_repair(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    window.compare_with(_broken_port(tmp_path), wait=True)
    x = np.random.default_rng(1).normal(size=(9, 3))
    window.set_sequence(x)
    c = window.compare.comparison
    assert c.x.shape == (9, 3) and np.allclose(c.x, x)
    window.compare_panel.pairs_edit.setText("1-1")
    window.compare_panel._on_repair()
    assert window.compare.comparison.pairs == ((1, 1),)
    assert window.compare.comparison.diagnoses == []  # layer 1 is untouched


def test_file_menu_entry_and_go_to(make_main_window, monkeypatch, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    from PySide6.QtWidgets import QFileDialog

    path = _broken_port(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    opened = []
    monkeypatch.setattr(window, "compare_with", lambda p: opened.append(p))
    assert window.compare_action.text().replace("&", "") == "Compare with…"
    window.compare_action.trigger()
    assert opened == [str(path)]
    go_to(window, 1, 1, 3, 0)
    assert window.workspace.step == 3 and window.workspace.selection.layer == 1


def test_command_line_a_b(make_main_window, tmp_path, monkeypatch):
    from lstmviz.gui.app import open_from_args

    window = make_main_window()
    args = argparse.Namespace(
        path=str(FIXTURES / "torch" / "bidir2.pt"),
        other=str(_broken_port(tmp_path)),
        sequence=None,
        layer=None,
        step=None,
        example=None,
    )
    assert open_from_args(window, args, {})
    assert window.compare.comparison is not None
    assert window.compare.comparison.kinds == ["gate_permutation"]
    args.other = str(tmp_path / "missing.pt")
    assert not open_from_args(window, args, {})


def test_screenshot_of_compare_mode(make_main_window, save_artifact, tmp_path):
    """Rendered offscreen to tests/_artifacts/compare_mode.png (and looked at)."""
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    window.compare_with(_broken_port(tmp_path), wait=True)
    window.go_to_step(12)
    window.workspace.select(unit=1)
    assert window.tabs.currentIndex() == 1  # compare mode opens on the debugger
    save_artifact(window, "compare_mode")


def test_a_file_dropped_with_shift_opens_as_b(make_main_window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(_broken_port(tmp_path)))])

    def drop(modifier):
        enter = QDragEnterEvent(
            window.rect().center(),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            modifier,
        )
        QApplication.sendEvent(window, enter)  # Qt delivers a drop only after its enter
        event = QDropEvent(
            QPointF(window.rect().center()),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            modifier,
        )
        QApplication.sendEvent(window, event)

    drop(Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.compare.comparison is not None, timeout=20000)
    assert window.compare.comparison.kinds == ["gate_permutation"]
    assert Path(window.model_path).name == "bidir2.pt"  # A stays
    drop(Qt.KeyboardModifier.NoModifier)  # a plain drop still opens the file as A
    qtbot.waitUntil(lambda: Path(window.model_path or "").name == "ported.pt", timeout=20000)


def test_both_models_start_from_the_debuggers_initial_states(make_main_window, tmp_path):
    window = make_main_window()
    window.open_model(FIXTURES / "torch" / "bidir2.pt", wait=True)
    window.compare_with(_broken_port(tmp_path), wait=True)
    h0 = np.full(4, 0.5)
    c0 = np.full(4, -0.25)
    window.workspace.set_states({(1, 0): (h0, c0)})
    c = window.compare.comparison
    for trace in (c.trace_a, c.trace_b):
        np.testing.assert_allclose(trace.layers[1].directions[0].h_prev[0], h0)
        np.testing.assert_allclose(trace.layers[1].directions[0].c_prev[0], c0)
        np.testing.assert_allclose(trace.layers[0].directions[0].h_prev[0], 0.0)
    # A's numbers in the compare readout are the debugger's own
    ws = window.workspace.trace.layers[1].directions[0]
    np.testing.assert_allclose(c.trace_a.layers[1].directions[0].h, ws.h, atol=1e-6)
