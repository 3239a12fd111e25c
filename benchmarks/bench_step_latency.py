"""Step latency of the debugger panel at H = 1024 × 3 layers (one bidirectional).

Latency = ``debugger.step_forward()`` + processing events until the window has repainted
(``QApplication.processEvents`` with the offscreen backing store flushes the paint). The
reference, measured in the same run on the same machine, is the cheapest thing that paints
the same data: one ``setImage`` of the 7 × H state rows into a plain pyqtgraph ImageItem of
the same size, plus the same event processing; and ``repaint()`` of an empty widget of the
panel's size. Run: ``python benchmarks/bench_step_latency.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication, QWidget

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.gui.debug_panel import DebugPanel


def make_model(H: int, D: int, seed: int = 0) -> LSTMModel:
    rng = np.random.default_rng(seed)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        scale = 1 / np.sqrt(d_in)
        return LSTMDirection(
            W_x=(rng.standard_normal((4 * H, d_in)) * scale).astype(np.float32),
            W_h=(rng.standard_normal((4 * H, H)) * scale).astype(np.float32),
            b=rng.standard_normal(4 * H).astype(np.float32),
            reverse=reverse,
        )

    return LSTMModel(
        layers=(
            LSTMLayer("lstm_0", (direction(D),)),
            LSTMLayer("bidi_1", (direction(H), direction(H, reverse=True))),
            LSTMLayer("lstm_2", (direction(2 * H),)),
        )
    )


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def describe(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"{name:44s} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=1024)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    H, D, T = args.hidden, 32, args.steps + 2
    model = make_model(H, D)
    x = np.random.default_rng(1).standard_normal((T, D))

    panel = DebugPanel()
    panel.resize(1400, 900)
    panel.show()
    t0 = time.perf_counter()
    panel.set_model(model)
    assert panel.set_sequence(x)
    while panel.workspace.jobs or panel.trace is None:  # the run is computed in a worker
        app.processEvents()
    app.processEvents()
    setup = time.perf_counter() - t0
    panel.controls.layer.setCurrentIndex(1)  # the bidirectional layer, forward
    app.processEvents()

    def step() -> None:
        panel.debugger.step_forward()
        app.processEvents()

    def step_back() -> None:
        panel.debugger.step_back()
        app.processEvents()

    def on_tab(index: int) -> list[float]:
        panel.views.setCurrentIndex(index)
        panel.debugger.first()
        app.processEvents()
        return timed(step, args.steps)

    step_ms = on_tab(0)
    back_ms = timed(step_back, args.steps)
    time_ms = on_tab(1)
    panel.views.setCurrentIndex(0)

    # Reference 1: the same 7 × H rows into one bare ImageItem of the same size.
    ref = pg.GraphicsLayoutWidget()
    ref.resize(760, 820)
    img = pg.ImageItem(axisOrder="row-major")
    ref.addPlot().addItem(img)
    ref.show()
    dt = panel.trace.layers[1].directions[0]
    rows = np.stack([dt.i, dt.f, dt.g, dt.o, dt.c, dt.act_c, dt.m], axis=1)  # (T, 7, H)
    k = iter(range(10**9))

    def bare() -> None:
        img.setImage(rows[next(k) % T], autoLevels=False, levels=(-1, 1))
        app.processEvents()

    bare_ms = timed(bare, args.steps)
    # Reference 2: repaint of an empty widget of the panel's size.
    empty = QWidget()
    empty.resize(panel.size())
    empty.show()
    app.processEvents()
    empty_ms = timed(empty.repaint, args.steps)

    print(f"lstmviz step latency: H={H}, 3 layers (layer 1 bidirectional), T={T}, window 1400x900")
    print(f"set_model + run + first paint: {setup * 1000:.0f} ms")
    print(describe("step forward, 'This step' tab", step_ms))
    print(describe("step back (no recomputation)", back_ms))
    print(describe("step forward, 'Over time' tab", time_ms))
    print(describe("reference: bare ImageItem.setImage 7×H", bare_ms))
    print(describe("reference: empty QWidget.repaint 1400×900", empty_ms))
    med = statistics.median
    print(f"ratio step / bare setImage : {med(step_ms) / med(bare_ms):.2f}")
    print(f"ratio step / empty repaint : {med(step_ms) / med(empty_ms):.2f}")
    print(f"max steady play rate ≈ {1000 / med(step_ms):.0f} steps/s (a 60 Hz frame is 16.7 ms)")


if __name__ == "__main__":
    main()
