"""The h0 / c0 tab starts from the states a file stores (ONNX initial_h/initial_c), as
onnxruntime does; typed states override one layer/direction, the others keep the file's.

The fixture is ``tests/fixtures/onnx/states_bidir_b2.onnx`` with onnxruntime's outputs.
"""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lstmviz.core.compute import run
from lstmviz.gui.debug_panel import DebugPanel
from lstmviz.io import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
H = 4


@pytest.fixture
def loaded(qtbot):
    with np.load(FIXTURES / "states_bidir_b2.expected.npz") as data:
        exp = dict(data)
    model = load_model(FIXTURES / "states_bidir_b2.onnx")
    panel = DebugPanel()
    qtbot.addWidget(panel)
    panel.set_model(model)
    assert panel.set_sequence(exp["x"])
    return panel, model, exp


def test_defaults_are_the_files_states(loaded):
    panel, model, exp = loaded
    ed = panel.sequence_editor
    np.testing.assert_allclose(panel.trace.layers[0].output, exp["Y"], atol=1e-5)
    assert "stored in the file" in ed.states_hint.text()
    assert ed.reset_states_button.text() == "File's states"
    assert not ed.zero_states_button.isHidden()
    ed.state_target.setCurrentIndex(1)  # backward
    stored = model.layers[0].directions[1].c0
    assert ed.c0.placeholderText().startswith("from the file: ")
    shown = np.array([float(v) for v in ed.c0.placeholderText().split(": ")[1].split(",")])
    np.testing.assert_allclose(shown, stored, atol=1e-5)


def test_typed_state_overrides_one_direction_only(loaded, qtbot):
    panel, model, exp = loaded
    ed = panel.sequence_editor
    ed.state_target.setCurrentIndex(0)
    ed.c0.setText(" ".join(["0.5"] * H))  # h0 left empty: stays the file's
    qtbot.mouseClick(ed.states_button, Qt.MouseButton.LeftButton)
    fw = model.layers[0].directions[0]
    h0 = [np.stack([fw.h0, model.layers[0].directions[1].h0])]
    c0 = [np.stack([np.full(H, 0.5), model.layers[0].directions[1].c0])]
    want = run(model, exp["x"], h0=h0, c0=c0).layers[0].output
    got = panel.trace.layers[0].output
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got[:, H:], exp["Y"][:, H:], atol=1e-5)  # backward: the file's
    assert np.abs(got[:, :H] - exp["Y"][:, :H]).max() > 1e-3
    qtbot.mouseClick(ed.zero_states_button, Qt.MouseButton.LeftButton)
    zeros = [np.zeros((2, H))]
    want = run(model, exp["x"], h0=zeros, c0=zeros).layers[0].output
    np.testing.assert_allclose(panel.trace.layers[0].output, want, atol=1e-6)
    qtbot.mouseClick(ed.reset_states_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(panel.trace.layers[0].output, exp["Y"], atol=1e-5)
