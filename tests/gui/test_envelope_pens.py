"""Envelope lines of a long run are drawn with a thin solid pen (a zigzag of plot-tall
strokes painted ~100× slower dashed, ~10× at 1.5–2 px), and each line gets its own pen
(width, dash) back when zoomed in to exact values."""

from __future__ import annotations

import numpy as np
from long_sequence_setup import debugger_window, random_lstm
from PySide6.QtCore import Qt

from lstmviz.core import LSTMLayer, LSTMModel

T, D, H = 6000, 3, 4


def _styles(lines: dict) -> dict[str, tuple[Qt.PenStyle, float]]:
    return {n: (line.opts["pen"].style(), line.opts["pen"].widthF()) for n, line in lines.items()}


def test_envelopes_are_thin_and_solid_and_zooming_in_gives_each_line_its_pen(
    make_main_window, monkeypatch, qtbot
) -> None:
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")  # a bounded trace
    rng = np.random.default_rng(3)
    model = LSTMModel((LSTMLayer("lstm", (random_lstm(rng, H, D),)),))
    x = rng.normal(size=(T, D)).astype(np.float32)
    _window, panel = debugger_window(make_main_window, qtbot, model, x)
    tp = panel.time_plots
    panel.views.setCurrentWidget(tp)
    panel.workspace.select(layer=0, unit=1)
    lines = {**tp.gate_lines, **tp.state_lines}
    assert len(tp.state_lines["h"].yData) < T  # an envelope, not every step
    own = {n: (line.own_pen.style(), line.own_pen.widthF()) for n, line in lines.items()}
    assert Qt.PenStyle.DashLine in {s for s, _ in own.values()}  # c is dashed on its own
    assert max(w for _, w in own.values()) >= 1.5
    assert set(_styles(lines).values()) == {(Qt.PenStyle.SolidLine, 1.0)}
    tp._plots[0].setXRange(3000, 3200, padding=0)
    qtbot.waitUntil(lambda: len(tp.state_lines["h"].yData) == 201, timeout=5_000)
    assert _styles(lines) == own
    colours = {n: line.opts["pen"].color().name() for n, line in lines.items()}
    tp._plots[0].setXRange(0, T, padding=0)
    qtbot.waitUntil(lambda: len(tp.state_lines["h"].yData) != 201, timeout=5_000)
    assert set(_styles(lines).values()) == {(Qt.PenStyle.SolidLine, 1.0)}
    assert {n: line.opts["pen"].color().name() for n, line in lines.items()} == colours
