"""A sequence dropped as ``.npz`` (a compressed member is inflated to a temporary file) or
``.npy`` shows progress and stops on Cancel like a dropped CSV; one array shaped as the open
model's sequence is read once, as a sequence (it was read whole as weights first, and a
``(T, 4k)`` one made the window ask which TF1 layout to read it in)."""

from __future__ import annotations

import io
import threading
import zipfile

import numpy as np
import pytest
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtCore import Qt
from test_main_window import drop

import lstmviz.io
from lstmviz.core import LSTMLayer, LSTMModel, sequence_files
from lstmviz.workspace import files
from lstmviz.workspace.files import holds_one_sequence

pytestmark = pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")

D, H, T = 256, 4, 12_000  # 12,288,000 bytes of float32: inflated in two 8 MB blocks


def _save_npz(path, x: np.ndarray) -> None:
    """``np.savez_compressed``, at the fastest level (the test writes 12 MB)."""
    buf = io.BytesIO()
    np.save(buf, x)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("x.npy", buf.getvalue())


@pytest.fixture
def long_npz(tmp_path, monkeypatch):
    # a member past MAX_VALUES is inflated to a temporary file, reporting each 8 MB block:
    # lowered so that 3 M values (not 4 M + of a real long sequence) take that path
    monkeypatch.setattr(sequence_files, "MAX_VALUES", 1000)
    x = np.random.default_rng(3).standard_normal((T, D)).astype(np.float32)
    path = tmp_path / "seq.npz"
    _save_npz(path, x)
    return path, x


def _window(make_main_window, qtbot):
    rng = np.random.default_rng(1)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    return debugger_window(make_main_window, qtbot, model, rng.normal(size=(20, D)))


def _spy(monkeypatch, hold: bool = False):
    """Records the fractions the read reports (and holds it after the first with ``hold``)
    and what it raised; counts the calls of the weights reader."""
    seen: dict[str, list] = {"fractions": [], "raised": [], "load_model": []}
    first, go_on = threading.Event(), threading.Event()
    real_read, real_model = files.load_sequence, lstmviz.io.load_model

    def read(*args, progress, **kwargs):
        def hook(fraction: float) -> None:
            seen["fractions"].append(fraction)
            progress(fraction)  # the job's report: raises Cancelled once cancelled
            if hold and len(seen["fractions"]) == 1:
                first.set()
                go_on.wait(10)

        try:
            return real_read(*args, progress=hook, **kwargs)
        except BaseException as exc:
            seen["raised"].append(type(exc).__name__)
            raise

    def load_model(*args, **kwargs):
        seen["load_model"].append(args)
        return real_model(*args, **kwargs)

    monkeypatch.setattr(files, "load_sequence", read)
    monkeypatch.setattr(lstmviz.io, "load_model", load_model)
    return seen, first, go_on


def test_a_dropped_npz_is_read_once_as_a_sequence_with_progress(
    make_main_window, qtbot, monkeypatch, long_npz
):
    path, x = long_npz
    window, panel = _window(make_main_window, qtbot)
    seen, _, _ = _spy(monkeypatch)
    drop(window, path)
    assert "load" in window.workspace.jobs  # returned at once: read in the worker
    qtbot.waitUntil(lambda: f"seq.npz ({T} steps)" in window.status_label.text(), timeout=20_000)
    assert seen["load_model"] == [] and window.last_error == ""  # never read as weights
    assert seen["fractions"] == [pytest.approx((8 << 20) / (T * D * 4)), 1.0]
    seq = window.workspace.sequence
    assert isinstance(seq, np.memmap) and seq.dtype == np.float32
    np.testing.assert_array_equal(seq, x)
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == T, timeout=20_000)


def test_cancel_stops_the_inflating_and_keeps_the_sequence(
    make_main_window, qtbot, monkeypatch, long_npz
):
    path, _ = long_npz
    window, panel = _window(make_main_window, qtbot)
    before = window.workspace.sequence
    seen, first, go_on = _spy(monkeypatch, hold=True)
    drop(window, path)
    assert first.wait(10)
    qtbot.waitUntil(lambda: "reading seq.npz… 68 %" in panel.busy_label.text(), timeout=5_000)
    assert window.busy.isVisible() and window.busy.value() == 68  # the status bar's bar
    qtbot.mouseClick(panel.busy_label.cancel_button, Qt.MouseButton.LeftButton)
    go_on.set()
    assert window.runner.wait(10_000)
    qtbot.wait(50)  # the cancelled result arrives and is dropped
    assert seen["raised"] == ["Cancelled"] and len(seen["fractions"]) == 2  # stopped there
    assert window.workspace.sequence is before and panel.trace.n_steps == 20
    assert window.last_error == "" and "load" not in window.workspace.jobs
    assert window.status_label.text() == "Reading seq.npz cancelled"  # not "Reading…" on


def test_a_dropped_npy_is_a_sequence_without_reading_it_as_weights(
    make_main_window, qtbot, monkeypatch, tmp_path
):
    window, _ = _window(make_main_window, qtbot)
    seen, _, _ = _spy(monkeypatch)
    x = np.random.default_rng(4).standard_normal((300, D))
    np.save(tmp_path / "walk.npy", x)
    drop(window, tmp_path / "walk.npy")
    qtbot.waitUntil(lambda: "walk.npy (300 steps)" in window.status_label.text(), timeout=20_000)
    assert seen["load_model"] == [] and window.last_error == ""
    np.testing.assert_array_equal(window.workspace.sequence, x)


def test_holds_one_sequence_reads_headers_only(tmp_path) -> None:
    def npy(name: str, a: np.ndarray):
        np.save(tmp_path / name, a)
        return str(tmp_path / name)

    assert holds_one_sequence(npy("a.npy", np.zeros((5, 3))), 3)
    assert holds_one_sequence(npy("b.npy", np.zeros((1, 5, 3), np.float32)), 3)
    assert not holds_one_sequence(npy("c.npy", np.zeros((5, 4))), 3)
    assert not holds_one_sequence(npy("d.npy", np.zeros(5, np.int64)), 3)
    assert holds_one_sequence(str(tmp_path / "d.npy"), 3, ids=True)  # token ids
    assert not holds_one_sequence(npy("e.npy", np.zeros((0, 3))), 3)
    np.save(tmp_path / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    assert not holds_one_sequence(str(tmp_path / "o.npy"), 3)
    np.savez(tmp_path / "one.npz", x=np.zeros((5, 3)))
    np.savez(tmp_path / "two.npz", x=np.zeros((5, 3)), y=np.zeros((5, 3)))
    assert holds_one_sequence(str(tmp_path / "one.npz"), 3)
    assert not holds_one_sequence(str(tmp_path / "two.npz"), 3)  # weights decide
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert not holds_one_sequence(str(tmp_path / "bad.npz"), 3)
    assert not holds_one_sequence(str(tmp_path), 3)  # a folder
