"""Every fixture file of every format present under tests/fixtures/ opened in the window.

Good files: the tree lists each LSTM layer, the weights view shows the canonical W_x, and in the
stored layout every sampled cell's value is the canonical weight its tooltip names. PyTorch and
safetensors files are also compared with the raw arrays torch/safetensors read. Bad files: the
window shows the reader's LoadError and keeps the model it had.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog

from lstmviz.gui.choice_dialog import ChoiceDialog
from lstmviz.io import load_model
from lstmviz.io.errors import ChoiceRequired, LoadError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SKIP_SUFFIXES = {".py", ".json", ".md", ".txt"}
CANONICAL_KEYS = {"W_x", "W_h", "b", "peep", "W_p", "bias"}  # shown when no plain stored layout


def fixture_models(fmt_dir: Path) -> list[Path]:
    """Model files (and checkpoint folders) in one format's fixture folder."""
    out = []
    for p in sorted(fmt_dir.iterdir()):
        if p.name.startswith((".", "_")) or p.suffix in SKIP_SUFFIXES:
            continue
        if p.name.endswith("expected.npz") or p.name == "__pycache__":
            continue
        if p.is_dir() and (p / "expected.npz").exists():  # one case saved several ways (tf/)
            out.extend(fixture_models(p))
            continue
        if p.is_dir() and fmt_dir.parent == FIXTURES and (FIXTURES / p.name).is_dir():
            out.extend(fixture_models(p))  # gru/onnx, gru/torch: a cell's files by format
            continue
        out.append(p)
    return out


#: Fixture folders that hold no model files (fake Qt platform plugins for the start-up checks).
NOT_MODELS = frozenset({"startup"})
FORMATS = sorted(
    d for d in FIXTURES.iterdir() if d.is_dir() and d.name not in NOT_MODELS and fixture_models(d)
)


def raw_arrays(path: Path) -> dict[str, np.ndarray]:
    """The file's own arrays, read by the framework (test-only dependency)."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except (TypeError, ValueError):  # bfloat16 has no NumPy dtype
            return {}
    if path.suffix in {".pt", ".pth", ".bin", ".ckpt"}:
        import torch

        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError):  # TorchScript, quantized packed params
            return {}
        for key in ("model_state_dict", "state_dict"):
            if isinstance(obj, dict) and key in obj:
                obj = obj[key]
        if not isinstance(obj, dict):
            return {}
        return {k: v.float().numpy() for k, v in obj.items() if hasattr(v, "float")}
    return {}


def first_choice(dialog: ChoiceDialog) -> int:
    dialog.select(dialog.choices[0])
    return QDialog.DialogCode.Accepted


def expected_outcome(path: Path):
    """What the reader alone makes of the file (first choice for an ambiguous one)."""
    options: dict[str, str] = {}
    while True:
        try:
            return load_model(path, **options)
        except ChoiceRequired as exc:
            options[exc.option] = exc.choices[0]
        except LoadError as exc:
            return exc


def check_stored_cells(window, model, rng) -> None:
    view = window.weights_view
    view.set_stored_order(True)
    w = model.layers[0].directions[0]
    for panel in view.panels():
        rows, cols = panel.data.shape
        for r, c in zip(rng.integers(0, rows, 12), rng.integers(0, cols, 12), strict=True):
            cell = panel.cell(int(r), int(c))
            if cell is None or cell.role not in ("W_x", "W_h"):
                continue
            canon = getattr(w, cell.role)[
                w.cell.index(cell.gate) * w.hidden_size + cell.unit, cell.column
            ]
            assert cell.value == pytest.approx(float(canon), rel=1e-6, abs=1e-7), (panel.key, r, c)
            if panel.key not in CANONICAL_KEYS:  # a stored array: the tooltip names it
                assert cell.stored.startswith(panel.key), (panel.key, cell.stored)
    view.set_stored_order(False)


@pytest.mark.parametrize("fmt_dir", FORMATS, ids=lambda d: d.name)
def test_every_fixture_opens_or_fails_cleanly(fmt_dir, make_main_window, monkeypatch):
    monkeypatch.setattr(ChoiceDialog, "exec", first_choice)
    window = make_main_window()
    rng = np.random.default_rng(0)
    opened = failed = 0
    for path in fixture_models(fmt_dir):
        previous = window.model
        expected = expected_outcome(path)
        got = window.open_model(path, wait=True)
        if isinstance(expected, LoadError):
            failed += 1
            assert got is None and window.last_error == str(expected), path.name
            assert window.model is previous
            continue
        opened += 1
        assert got is window.model and window.last_error == "", path.name
        lstm_rows = [t for t in window.tree.texts() if t[:1].isdigit()]
        assert len(lstm_rows) == len(got.layers), (path.name, window.tree.texts())
        w = got.layers[0].directions[0]
        np.testing.assert_array_equal(
            window.weights_view.heatmap("W_x").image.image, w.W_x.astype(np.float32)
        )
        check_stored_cells(window, got, rng)
        raw = raw_arrays(path)
        if raw:
            window.weights_view.set_stored_order(True)
            t = next(t for t in w.provenance.stored if t.role == "W_x")
            key = next((k for k in raw if k == t.name or k.endswith("." + t.name)), t.name)
            np.testing.assert_allclose(window.weights_view.panels()[0].data, raw[key], rtol=1e-6)
            window.weights_view.set_stored_order(False)
    assert opened >= 1, f"no loadable fixture in {fmt_dir}"
    assert opened + failed == len(fixture_models(fmt_dir))


def test_bundled_keras_copy_matches_the_pytorch_example(make_main_window):
    """``sine_lstm.keras`` holds the example's weights in Keras layout (i,f,c,o, transposed):
    both files must give the same canonical matrices, and the Keras stored view the kernel."""
    pytest.importorskip(
        "lstmviz.io.keras.archive", reason="the Keras reader is not in this checkout"
    )
    from lstmviz.resources import EXAMPLES

    window = make_main_window()
    torch_model = window.open_model(EXAMPLES / "sine_lstm.pt", wait=True)
    keras_model = window.open_model(EXAMPLES / "sine_lstm.keras", wait=True)
    assert torch_model is not None and keras_model is not None, window.last_error
    for lt, lk in zip(torch_model.layers, keras_model.layers, strict=True):
        wt, wk = lt.directions[0], lk.directions[0]
        for name in ("W_x", "W_h", "b"):
            np.testing.assert_allclose(getattr(wk, name), getattr(wt, name), atol=1e-6)
    window.weights_view.set_stored_order(True)
    kernel = window.weights_view.panels()[0]
    np.testing.assert_allclose(kernel.data, torch_model.layers[0].directions[0].W_x.T, atol=1e-6)
