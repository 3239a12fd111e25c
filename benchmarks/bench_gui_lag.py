"""Event-loop lag of the window on a large model: nothing may stall the GUI thread > 100 ms.

Issue 13's case: ``nn.LSTM(256, 1024, num_layers=3)`` on a 2,000-step sequence. A probe
QTimer fires every 5 ms and records how late each tick is; the longest gap is the longest
time the GUI thread was busy (a frozen window). Phases: open the model, click *Debugger*
(the run computes in a worker), wait for the run, click *Diagnostics* (computed in a worker),
wait, step 20 times, change layer. For each tab the time to its first paint is printed
too. The reference is the same probe on an idle window (the timer's own jitter).
Run: ``python benchmarks/bench_gui_lag.py [--steps T] [--hidden H]``.

Longest stall on the shared 2-core machine, 2026-12-04 (before issue 13 → after; the
run itself takes ~50 s in the worker there): open 545 → 227 ms (the weights heatmaps),
click Debugger until the run is shown 3,402 → 157 ms (building the panel), Diagnostics
53 → 74 ms (the forget-gate product ~35 s before, now 0.4 s in a worker), Over time 554 →
134 ms (building its plots), 20 steps 106 → 11 ms, select layer 2 1,223 → 23 ms; idle 7 ms.

Then (2026-12-04, same machine, before → after): open 276 → 80 ms (pooling on a worker
thread, heatmaps built while idle), click Debugger until the run is shown 174 → 48 ms (the
panel built in two idle turns after the model opens), Over time 212 → 71 ms (plots built
ahead, first paint in its own turn), Diagnostics 79 → 62 ms, 20 steps 21 → 12 ms; idle 6 ms.
"""

from __future__ import annotations

import argparse
import os
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
    """What torch.nn.LSTM(D, H, num_layers=layers) holds, canonical gate order."""
    rng = np.random.default_rng(seed)
    out, d_in = [], D
    for k in range(layers):
        scale = 1 / np.sqrt(H)
        w = LSTMDirection(
            W_x=(rng.uniform(-scale, scale, (4 * H, d_in))).astype(np.float32),
            W_h=(rng.uniform(-scale, scale, (4 * H, H))).astype(np.float32),
            b=(rng.uniform(-scale, scale, 4 * H)).astype(np.float32),
        )
        out.append(LSTMLayer(f"lstm_l{k}", (w,)))
        d_in = H
    return LSTMModel(tuple(out))


class LagProbe:
    """Ticks every ``period`` ms; ``worst()`` is the longest gap between ticks since reset."""

    def __init__(self, period: int = 5) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(period)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.last = 0.0

    def start(self) -> None:
        self.clock.start()
        self.last = 0.0
        self.timer.start()

    def reset(self) -> None:
        self.gaps = []
        self.last = self.clock.nsecsElapsed() / 1e6

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        self.gaps.append(now - self.last)
        self.last = now

    def worst(self) -> float:
        return max(self.gaps, default=0.0)


def pump(app: QApplication, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def pump_until(app: QApplication, done, limit: float = 600.0) -> float:
    t0 = time.perf_counter()
    while not done():
        if time.perf_counter() - t0 > limit:
            raise TimeoutError("gave up waiting")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    from lstmviz.gui.main_window import MainWindow

    probe = LagProbe()
    probe.start()
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    pump(app, 0.5)
    probe.reset()
    pump(app, 1.0)
    rows = [("idle window (reference: timer jitter)", probe.worst(), None)]
    ws = window.workspace

    def phase(name: str, action, wait=None) -> None:
        probe.reset()
        t0 = time.perf_counter()
        action()
        painted = (time.perf_counter() - t0) * 1e3  # the action returned: the window repaints
        app.processEvents()
        if wait is not None:
            pump_until(app, wait)
        pump(app, 0.2)
        rows.append((name, probe.worst(), painted))

    model = make_model(args.inputs, args.hidden, args.layers)
    x = np.random.default_rng(1).standard_normal((args.steps, args.inputs))
    phase("open the model (weights view)", lambda: window.set_model(model))
    phase("set a 2,000-step sequence", lambda: window.set_sequence(x))
    phase(
        "click Debugger (run in a worker) … until done",
        lambda: window.tabs.setCurrentIndex(1),
        lambda: ws.trace is not None and not ws.jobs,
    )
    panel = window.debug_panel
    phase(
        "click Diagnostics (computed in a worker) … until done",
        lambda: panel.views.setCurrentIndex(2),
        lambda: not ws.jobs and panel.diagnostics_page.currentIndex() == 1,
    )
    phase("click Over time", lambda: panel.views.setCurrentIndex(1))
    phase("click This step", lambda: panel.views.setCurrentIndex(0))

    def steps() -> None:
        for _ in range(20):
            ws.step_by(1)
            app.processEvents()

    phase("20 steps forward", steps)
    phase("select layer 2", lambda: ws.select(layer=2))
    print(
        f"GUI-thread stalls, {args.layers} × LSTM({args.inputs}, {args.hidden}), T = {args.steps}"
    )
    print(f"{'phase':55s} {'longest stall':>14s} {'call returned':>14s}")
    for name, worst, painted in rows:
        ret = f"{painted:10.0f} ms" if painted is not None else ""
        print(f"{name:55s} {worst:11.0f} ms {ret:>14s}")
    window.close()


if __name__ == "__main__":
    main()
