"""Compare mode at H = 1024 × 3 layers for both models: step + repaint, and GUI stalls.

Model A is ``nn.LSTM``-like (3 stacked layers, D = 32, H = 1024), model B the same weights
with layer 0's gates in ONNX order (a broken port), so the comparison has a diagnosis and a
divergence to draw. The window is 1400 × 900 on the Debugger tab with the Compare dock shown.

- *compare*: how long loading B + running both + diagnosing takes (in a worker), and the
  longest gap of a 5 ms probe timer meanwhile: the longest the GUI thread was blocked.
- *step + repaint*: ``workspace.step_by(1)`` + processing events until the window has
  repainted, with the Compare dock (readout and cursors follow the step) and, as the
  reference, the same window with the dock closed. The bar is 16 ms (a 60 Hz frame).

- *side by side*: the same step with B's and Δ's rows in the step view and B's equations in
  the unit inspector (the debugger in compare mode), against the one-model debugger (the
  Compare dock's "B, Δ in debugger" box off) in alternating rounds, on the broken layer 0
  and the top layer 2 at the first divergence's unit; and those two views' own update.

Every step line also gives the GUI thread's CPU time (``time.thread_time``): on a shared
machine the wall time includes waiting for a core; offscreen, all painting happens on the GUI
thread, so its CPU time is what a step costs on a quiet machine.

Run: ``python benchmarks/bench_compare_gui.py [--steps N] [--hidden H]``. Reported numbers
are medians and p95 in ms and the ratio of the two; nothing is asserted.

Shared 2-core machine, 2026-12-04 (load average 3.7): step + repaint 10.4 ms with the dock,
8.2 ms without (ratio 1.27; the panel's own cursors + readout + repaint 5.8 ms when timed
alone); load B + run both + diagnose 4.1 s in the worker, longest GUI stall 153 ms (showing
the dock the first time). Under load 9 the same run gave 42.7 vs 35.6 ms (ratio 1.20).
Side by side, 2026-12-04 (load average 4.7-6.5 on the 2 cores, wall times 1.4-3x the CPU
times), four runs: step + repaint side by side median 12.2-16.0 ms CPU (17-52 ms wall), the
one-model debugger in the same runs 9.7-12.5 ms CPU (12-37 ms wall), ratio 1.34-1.46; with
the Compare dock shown too 13.9-16.0 ms CPU. B's and Δ's rows + B's equations with their
repaint 6.8-8.7 ms CPU, of which the rows ~1.2 ms (one RGBA image: 14 one-row images took
2.4 ms) and the inspector's second set of lines ~2.5 ms. Load B + run both + diagnose: longest
GUI stall 136 ms once A's terms were derived in the worker too (the inspector derived them on
the GUI thread: 0.14 s more).
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


#: GUI-thread CPU ms of every call ``timed`` measured, by the list its wall times went to:
#: on a shared machine the wall time includes waiting for a core, the CPU time is what the
#: step costs (offscreen, painting happens on the GUI thread), i.e. its quiet-machine time.
CPU: dict[int, list[float]] = {}


def timed(fn, n: int, into: list[float] | None = None) -> list[float]:
    out = [] if into is None else into
    cpu = CPU.setdefault(id(out), [])
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return out


def describe(name: str, ms: list[float]) -> str:
    """Median and p95 wall ms, and the GUI thread's CPU ms when ``timed`` measured ``ms``."""

    def stats(values: list[float]) -> tuple[float, float]:
        values = sorted(values)
        return statistics.median(values), values[int(0.95 * (len(values) - 1))]

    med, p95 = stats(ms)
    text = f"{name:46s} median {med:7.2f} ms   p95 {p95:7.2f} ms"
    if CPU.get(id(ms)):
        med, p95 = stats(CPU[id(ms)])
        text += f"   CPU median {med:6.2f} p95 {p95:6.2f}"
    return text


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
        timed(step, 10, with_dock if shown else without)
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

    # the debugger side by side: B's and Δ's rows in the step view, B's equations in the
    # inspector, at the unit of the first divergence, each update with its repaint
    rows, _ = window.compare_debugger
    inspector = window.debug_panel.unit_inspector
    window.workspace.select(layer=0, direction=0, unit=int(c.first_divergence.unit))
    app.processEvents()
    assert rows.active and rows.delta_row("h") is not None

    def debugger_only() -> None:
        t = next(ticks) % T
        rows.show_step(t)
        inspector.show_step(t)
        app.processEvents()

    debugger_ms = timed(debugger_only, args.steps)
    # Side by side against the one-model debugger in alternate rounds of 10 steps (the box
    # "B, Δ in debugger" of the Compare dock), so the shared machine's load drifts into both
    box = panel.debugger_box
    side, single = [], []
    for layer in (0, 2):  # the broken layer, the top one
        window.workspace.select(layer=layer)
        for r in range(2 * max(args.steps // 10, 1)):
            box.setChecked(r % 2 == 0)
            window.workspace.go_to_step(0 if r % 2 == 0 else 40)
            app.processEvents()
            timed(step, 10, side if r % 2 == 0 else single)
    box.setChecked(True)
    steps_ms = {"step + repaint, side by side (layers 0 and 2)": side}
    # leaving compare mode restores the single-model views
    window.compare_panel.close_requested.emit()
    app.processEvents()
    assert not rows.active

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
    print(describe("B and Δ rows + B's equations + repaint", debugger_ms))
    for name, ms in steps_ms.items():
        print(describe(name, ms))
    print(describe("step + repaint, B and Δ not in the debugger", single))
    med = statistics.median
    print(f"ratio with / without the dock: {med(with_dock) / med(without):.2f}")
    print(f"ratio side by side / one model: {med(side) / med(single):.2f}")
    print(f"16 ms frame budget met (median wall): {max(med(with_dock), med(side)) <= 16.0}")
    cpu = max(med(CPU[id(with_dock)]), med(CPU[id(side)]))
    print(f"16 ms frame budget met (median GUI-thread CPU, a quiet machine's): {cpu <= 16.0}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine load average (1 min) at the end: {load:.1f}")
    window.close()


if __name__ == "__main__":
    main()
