"""The sequence editor's Generate tab for long sequences: a typed million is a million (the
box clamped it to 100,000 without a word), a length past what the app runs is refused in
words, long generations run in the window's worker with progress and Cancel, and what they
make is the core generator's sequence (past ``MAX_VALUES`` values its float32 rounding, in a
memory map of a temporary file as a long text file is, which the workspace takes in place)."""

from __future__ import annotations

import threading

import numpy as np
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtCore import Qt

from lstmviz.core import LSTMLayer, LSTMModel
from lstmviz.core.sequence import generate_sequence
from lstmviz.gui import sequence_generate

D, H = 3, 4


def _window(make_main_window, qtbot, width: int = D):
    rng = np.random.default_rng(1)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, width),)),))
    return debugger_window(make_main_window, qtbot, model, rng.normal(size=(20, width)))


def _type_length(qtbot, editor, text: str) -> None:
    box = editor.length
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    box.interpretText()


def test_a_typed_length_is_kept_or_refused_in_words_never_clamped(make_main_window, qtbot):
    _, panel = _window(make_main_window, qtbot)
    editor = panel.sequence_editor
    _type_length(qtbot, editor, "1000000")
    assert editor.length.value() == 1_000_000  # was 100,000, silently
    assert "at most 10,000,000 steps for D = 3" in editor.length_hint.text()
    assert "10,000,000" in editor.length.toolTip()
    _type_length(qtbot, editor, "20000000")
    assert editor.length.value() == 20_000_000
    assert not editor.generate()
    assert "length 20,000,000 is more than Generate makes" in editor.error_text
    assert "at most 10,000,000" in editor.error_text
    assert "sequence" not in panel.workspace.jobs and panel.trace.n_steps == 20


def test_the_limit_follows_the_width_of_the_model(make_main_window, qtbot):
    _, panel = _window(make_main_window, qtbot, width=512)
    editor = panel.sequence_editor
    limit = 2**30 // (4 * 512)  # 1 GiB of float32
    assert sequence_generate.max_generated_steps(512) == limit == 524_288
    assert f"at most {limit:,} steps for D = 512" in editor.length_hint.text()
    editor.length.setValue(limit + 1)
    assert not editor.generate() and f"at most {limit:,} steps" in editor.error_text
    assert panel.trace.n_steps == 20


def test_a_long_generation_runs_in_the_worker_and_is_the_core_generators(
    make_main_window, qtbot, monkeypatch
):
    window, panel = _window(make_main_window, qtbot)
    window.runner.inline_cost = 0  # in the worker, as a long sequence is
    threads = []
    real = sequence_generate.generate_sequence

    def spy(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(sequence_generate, "generate_sequence", spy)
    editor = panel.sequence_editor
    editor.kind.setCurrentText("random normal")
    editor.length.setValue(3000)
    editor.seed.setValue(7)
    assert editor.generate()
    job = panel.workspace.jobs.get("sequence")
    assert job is not None and job.label == "generating 3,000 steps"  # returned before it ended
    assert "generating 3,000 steps × 3…" in editor.message.text()
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == 3000, timeout=20_000)
    assert threads == [False]
    want = generate_sequence("random normal", 3000, D, 7, 16.0)
    np.testing.assert_array_equal(panel.workspace.sequence, want)
    assert editor.message.text().endswith("3000 steps × 3") and editor.error_text == ""


def test_past_max_values_the_sequence_is_a_float32_map_of_the_same_values(
    make_main_window, qtbot, monkeypatch
):
    window, panel = _window(make_main_window, qtbot)
    window.runner.inline_cost = 0
    monkeypatch.setattr(sequence_generate, "MAX_VALUES", 1000)  # 400 × 3 values is "long"
    editor = panel.sequence_editor
    editor.kind.setCurrentText("sine")
    editor.length.setValue(400)
    editor.period.setValue(37.5)
    assert editor.generate() and "sequence" in panel.workspace.jobs
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.n_steps == 400, timeout=20_000)
    x = panel.workspace.sequence
    assert isinstance(x, np.memmap) and x.dtype == np.float32 and not x.flags.writeable
    want = generate_sequence("sine", 400, D, 0, 37.5).astype(np.float32)
    np.testing.assert_array_equal(x, want)
    np.testing.assert_array_equal(panel.trace.x, want)


def test_progress_and_cancel_in_the_job_bar_keep_the_previous_sequence(
    make_main_window, qtbot, monkeypatch
):
    window, panel = _window(make_main_window, qtbot)
    window.runner.inline_cost = 0
    before = panel.workspace.sequence
    halfway, go_on = threading.Event(), threading.Event()

    def slow(*args, progress, **kwargs):  # a long generation, held at half way
        progress(0.5)
        halfway.set()
        go_on.wait(10)
        progress(1.0)  # raises Cancelled once cancelled
        return generate_sequence(*args, **kwargs)

    monkeypatch.setattr(sequence_generate, "generate_sequence", slow)
    editor = panel.sequence_editor
    editor.length.setValue(5000)
    assert editor.generate()
    assert halfway.wait(10)
    qtbot.waitUntil(lambda: "generating 5,000 steps… 50 %" in panel.busy_label.text())
    assert panel.busy_label.cancel_button.isVisible()
    qtbot.mouseClick(panel.busy_label.cancel_button, Qt.MouseButton.LeftButton)
    go_on.set()
    assert "generating 5,000 steps: cancelled" in editor.message.text()
    assert window.runner.wait(10_000)
    qtbot.wait(50)  # the cancelled result arrives and is dropped
    assert panel.workspace.sequence is before and panel.trace.n_steps == 20
    assert "sequence" not in panel.workspace.jobs and panel.busy_label.text() == ""
