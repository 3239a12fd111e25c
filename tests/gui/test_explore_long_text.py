"""A long single document in the text view: the wrap against a plain per-token greedy wrap
(the reference written out here), and a text over SYNC_TOKENS laid out in its thread, the
window's thread never blocked for it, a late result for an older text dropped."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QScrollArea

from lstmviz.gui import text_canvas, text_layout
from lstmviz.gui.text_canvas import TextCanvas, prepare_tokens
from lstmviz.gui.text_layout import wrap


def greedy(widths, breaks, available):
    """The definition: a token goes on the current line unless it would pass ``available``
    (a line's first tokens always fit), a break ends its line."""
    x, row, cur, r = [], [], 0, 0
    for w, b in zip(widths, breaks, strict=True):
        if cur and cur + w > available:
            r, cur = r + 1, 0
        x.append(cur)
        row.append(r)
        cur += w
        if b:
            r, cur = r + 1, 0
    return np.asarray(x, dtype=np.int64), np.asarray(row, dtype=np.int64)


@pytest.mark.parametrize("vector_rows", [text_layout.WRAP_VECTOR_ROWS, 0])
def test_wrap_is_the_greedy_wrap(monkeypatch, vector_rows):
    monkeypatch.setattr(text_layout, "WRAP_VECTOR_ROWS", vector_rows)
    rng = np.random.default_rng(7)
    for _ in range(400):
        T = int(rng.integers(0, 150))
        w = rng.integers(0, 50, T) * (rng.random(T) < rng.choice([1.0, 0.7]))
        b = rng.random(T) < rng.random() * 0.3
        avail = int(rng.integers(0, 120))
        lay = wrap(w, b, avail)
        x, row = greedy(w.tolist(), b.tolist(), avail)
        np.testing.assert_array_equal(lay.x, x)
        np.testing.assert_array_equal(lay.row, row)
        assert lay.rows == (int(row[-1]) + 1 if T else 0)
        np.testing.assert_array_equal(lay.row_start, np.searchsorted(row, np.arange(lay.rows + 1)))


def test_a_million_tokens_wrap_in_well_under_a_second():
    rng = np.random.default_rng(0)
    w = rng.integers(5, 12, 1_000_000)
    b = rng.random(1_000_000) < 0.01
    t0 = time.perf_counter()
    lay = wrap(w, b, 800)
    took = time.perf_counter() - t0
    assert lay.rows > 10_000 and took < 2.0  # 0.06-0.2 s on the shared 2-core machine
    k = rng.integers(0, 1_000_000, 50)  # spot-check against the definition on a slice
    for t in k.tolist():
        r = int(lay.row[t])
        a, z = int(lay.row_start[r]), int(lay.row_start[r + 1])
        assert (lay.x[t] == w[a:t].sum() and w[a:z].sum() <= 800) or z - a == 1


def test_long_text_is_laid_out_in_a_thread(qtbot, monkeypatch):
    monkeypatch.setattr(text_canvas, "SYNC_TOKENS", 1000)
    area = QScrollArea()
    area.setWidgetResizable(True)
    canvas = TextCanvas()
    area.setWidget(canvas)
    area.resize(600, 300)
    area.show()
    qtbot.addWidget(area)
    rng = np.random.default_rng(3)
    alphabet = list("ab() c\n")
    labels = [alphabet[i] for i in rng.integers(0, len(alphabet), 300_000)]
    older = [alphabet[i] for i in rng.integers(0, 3, 200_000)]
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    canvas.set_tokens(older)
    with qtbot.waitSignal(canvas.laid_out, timeout=30000):
        canvas.set_tokens(labels)  # supersedes ``older`` before its thread is done
        assert canvas.laying_out and canvas.layout_.rows == 0
        assert canvas.token_rect(0) is None  # nothing drawn from a layout not yet made
    timer.stop()
    assert not canvas.laying_out and canvas.labels is labels
    codes, distinct, widths, breaks = prepare_tokens(labels, canvas.font())
    want = wrap(widths, breaks, canvas._wrap_width())
    np.testing.assert_array_equal(canvas.layout_.x, want.x)
    np.testing.assert_array_equal(canvas.layout_.row, want.row)
    assert [canvas.shown(t) for t in (0, 5, 299_999)] == [
        text_canvas.display(labels[t]) for t in (0, 5, 299_999)
    ]
    assert breaks.sum() == labels.count("\n") and distinct[codes[1]] == text_canvas.display(
        labels[1]
    )
    assert max(gaps, default=0) < 1.0  # the thread never held the window (100 ms is the aim)
    # a new width re-wraps in the thread too
    with qtbot.waitSignal(canvas.laid_out, timeout=30000):
        area.resize(400, 300)
    np.testing.assert_array_equal(
        canvas.layout_.row, wrap(widths, breaks, canvas._wrap_width()).row
    )
