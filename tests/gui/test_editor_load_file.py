"""The sequence editor's Load file… reads in the window's worker (a 1 GB CSV takes ~12 s to
parse), then shows what it read; a refused file is said next to the editor, the run kept."""

from __future__ import annotations

import numpy as np
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtWidgets import QFileDialog

from lstmviz.core import LSTMLayer, LSTMModel, sequence

D, H = 3, 4


def _window(make_main_window, qtbot):
    rng = np.random.default_rng(1)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    return debugger_window(make_main_window, qtbot, model, rng.normal(size=(20, D)))


def test_load_file_reads_in_the_worker_and_shows_the_file(
    make_main_window, qtbot, monkeypatch, tmp_path
) -> None:
    window, panel = _window(make_main_window, qtbot)
    x = np.random.default_rng(2).normal(size=(300, D))
    path = tmp_path / "long.csv"
    np.savetxt(path, x, delimiter=",")
    threads = []
    real = sequence.load_sequence

    def spy(*args, **kwargs):
        import threading

        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr("lstmviz.workspace.files.load_sequence", spy)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.runner.inline_cost = 0  # in a worker, as a large file is
    editor = panel.sequence_editor
    editor.load_button.click()
    assert "sequence" in panel.workspace.jobs and "reading long.csv" in editor.message.text()
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == 300, timeout=20_000)
    assert threads == [False]
    np.testing.assert_allclose(panel.workspace.sequence, x)
    qtbot.waitUntil(lambda: editor.message.text() == "long.csv: 300 steps × 3", timeout=5_000)


def test_a_refused_file_is_said_next_to_the_editor_and_the_run_kept(
    make_main_window, qtbot, monkeypatch, tmp_path
) -> None:
    _, panel = _window(make_main_window, qtbot)
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n4,5\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    panel.sequence_editor.load_button.click()
    qtbot.waitUntil(lambda: "⚠" in panel.sequence_editor.message.text(), timeout=20_000)
    assert "line 2" in panel.sequence_editor.error_text
    assert panel.trace.n_steps == 20
