"""Compare mode at H = 1024 × 3 layers for both models: step + repaint, and GUI stalls.

Model A is ``nn.LSTM``-like (3 stacked layers, D = 32, H = 1024), model B the same weights
with layer 0's gates in ONNX order (a broken port), so the comparison has a diagnosis and a
divergence to draw. The window is 1400 × 900 on the Debugger tab with the Compare dock shown.

- *compare*: how long loading B + running both + diagnosing takes (in a worker), and the
  longest gap of a 5 ms probe timer meanwhile: the longest the GUI thread was blocked.
- *step + repaint*: ``workspace.step_by(1)`` + processing events until the window has
  repainted, with the Compare dock (readout and cursors follow the step) and, as the
  reference, the same window with the dock closed. The bar is 16 ms (a 60 Hz frame).

Run: ``python benchmarks/bench_compare_gui.py [--steps N] [--hidden H]``. Reported numbers
are medians and p95 in ms and the ratio of the two; nothing is asserted.

Shared 2-core machine, 2026-12-04 (load average 3.7): step + repaint 10.4 ms with the dock,
8.2 ms without (ratio 1.27; the panel's own cursors + readout + repaint 5.8 ms when timed
alone); load B + run both + diagnose 4.1 s in the worker, longest GUI stall 153 ms (showing
the dock the first time). Under load 9 the same run gave 42.7 vs 35.6 ms (ratio 1.20).
Before the readout was a painted table (a rich-text QLabel relaid out the dock at every
step): 19.2 vs 8.4 ms. Diagnosing two unrelated 3 x 1024-unit models: 5.2 s before each move
checked one row per gate block first, 0.11 s after.
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
from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel


def make_model(D: int, H: int, layers: int, seed: int = 0) -> LSTMModel:
    rng = np.random.default_rng(seed)
    out, d_in = [], D
    for k in range(layers):
        scale = 1 / np.sqrt(H)
        w = LSTMDirection(
            W_x=rng.uniform(-scale, scale, (4 * H, d_in)).astype(np.float32),
            W_h=rng.uniform(-scale, scale, (4 * H, H)).astype(np.float32),
            b=rng.uniform(-scale, scale, 4 * H).astype(np.float32),
        )
        out.append(LSTMLayer(f"lstm_l{k}", (w,)))
        d_in = H
    return LSTMModel(tuple(out))


def onnx_ordered(model: LSTMModel) -> LSTMModel:
    """Layer 0 written in ONNX order i,o,f,c and read as i,f,g,o."""
    d = model.layers[0].directions[0]
    H = d.hidden_size

    def move(m):
        return np.concatenate([m[k * H : (k + 1) * H] for k in (0, 3, 1, 2)])

    d2 = d.replace(W_x=move(d.W_x), W_h=move(d.W_h), b=move(d.b))
    layer0 = LSTMLayer(model.layers[0].name, (d2,))
    return model.replace(layers=(layer0, *model.layers[1:]))


class LagProbe:
    """Ticks every 5 ms; ``worst`` is the longest gap between ticks (a blocked GUI thread)."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.worst = 0.0
        self.last = 0

    def start(self) -> None:
        self.clock.start()
        self.last = 0
        self.worst = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


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
    return f"{name:46s} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=1024)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    from lstmviz.gui.main_window import MainWindow
    from lstmviz.gui.settings import AppSettings

    H, D, T = args.hidden, 32, args.steps + 2
    a = make_model(D, H, 3)
    b = onnx_ordered(a)
    x = np.random.default_rng(1).standard_normal((T, D))
    window = MainWindow(AppSettings.at(Path("/tmp/lstmviz_bench_compare.ini")))
    window.resize(1400, 900)
    window.show()
    window.set_model(a)
    window.set_sequence(x)
    window.tabs.setCurrentIndex(1)
    while window.workspace.trace is None or window.workspace.jobs:
        app.processEvents()
    app.processEvents()

    probe = LagProbe()
    probe.start()
    t0 = time.perf_counter()
    window.compare_with(b)
    while window.compare.comparison is None:
        app.processEvents()
    app.processEvents()
    compare_s = time.perf_counter() - t0
    stall = probe.stop()
    c = window.compare.comparison
    assert window.compare_dock.isVisible()
    window.workspace.go_to_step(0)
    app.processEvents()

    def step() -> None:
        window.workspace.step_by(1)
        app.processEvents()

    # Rounds of 10 steps, with the dock shown and hidden in turn, so the load of the shared
    # machine drifts into both alike; the panel hears the steps either way (hidden: no paint).
    with_dock, without = [], []
    for r in range(2 * max(args.steps // 10, 1)):
        shown = r % 2 == 0
        window.compare_dock.setVisible(shown)
        window.workspace.go_to_step(0 if shown else 40)
        app.processEvents()
        (with_dock if shown else without).extend(timed(step, 10))
    window.compare_dock.show()
    app.processEvents()
    panel = window.compare_panel

    ticks = iter(range(10**9))

    def panel_only() -> None:  # the panel's own share: cursors, readout and their repaint
        t = next(ticks) % T
        panel.plots.set_step(t)
        panel._update_readout()
        app.processEvents()

    panel_ms = timed(panel_only, args.steps)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine load average (1 min): {load:.1f} on {os.cpu_count()} cores")
    print(f"compare mode: H={H}, 3 layers, D={D}, T={T}, both models, window 1400x900")
    print(f"kinds found: {c.kinds}; first divergence {tuple(c.first_divergence)}")
    print(
        f"load B + run both + diagnose (worker): {compare_s * 1000:.0f} ms; "
        f"longest GUI stall meanwhile {stall:.0f} ms"
    )
    print(describe("step + repaint, Compare dock shown", with_dock))
    print(describe("step + repaint, Compare dock hidden (reference)", without))
    print(describe("the compare panel's own update + repaint", panel_ms))
    med = statistics.median
    print(f"ratio with / without the dock: {med(with_dock) / med(without):.2f}")
    print(f"16 ms frame budget met (median): {med(with_dock) <= 16.0}")
    window.close()


if __name__ == "__main__":
    main()
