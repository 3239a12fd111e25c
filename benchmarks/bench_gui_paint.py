"""GUI paint costs: a 4096 × 1024 heatmap redraw (≤ 50 ms) and one debugger step at H = 1024 with
three layers in the real ``MainWindow`` (≤ 16 ms).

1. **Heatmap**: a pyqtgraph ``ImageItem`` (row-major, fixed levels, a 256-entry colour map) in a
   1100 × 700 ``GraphicsLayoutWidget`` gets a new 4096 × 1024 float32 array with
   ``setImage(autoLevels=False)`` and is painted with ``widget.grab()`` (render to a pixmap:
   the full paint path, independent of the platform's window flushing). References measured
   in the same run: ``grab()`` of the same widget without new data (paint only), and the
   ``WeightsView`` of ``lstmviz`` showing a real H = 1024 direction (W_h is 4096 × 1024).
2. **Debugger step**: ``MainWindow`` with a 3-layer H = 1024 model (the middle layer
   bidirectional) and a 200-step sequence, debugger tab shown; each step is
   ``debugger.step_forward()`` followed by processing events until the repaint is done, and
   separately by ``window.grab()`` (a forced full repaint of the whole window). Reference:
   ``repaint()`` of an empty widget of the window's size.

Offscreen platform (``QT_QPA_PLATFORM=offscreen``); numbers are min / median over repeats.
Run: ``python benchmarks/bench_gui_paint.py [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _common  # benchmarks/_common.py: shared header helpers

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

HEATMAP_TARGET_MS = 50.0
STEP_TARGET_MS = 16.0


def timed_ms(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def line(name: str, ms: list[float], target: float | None = None, ref: list[float] | None = None):
    text = f"  {name:52s} {min(ms):7.2f} / {statistics.median(ms):7.2f} ms"
    if ref is not None:
        text += f"   ratio {statistics.median(ms) / statistics.median(ref):5.2f}×"
    if target is not None:
        text += (
            f"   target ≤ {target:g} ms: {'ok' if statistics.median(ms) <= target else 'MISSED'}"
        )
    print(text)


def bench_heatmap(app: QApplication, repeat: int) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((4096, 1024), dtype=np.float32) for _ in range(2)]
    widget = pg.GraphicsLayoutWidget()
    widget.resize(1100, 700)
    img = pg.ImageItem(axisOrder="row-major")
    img.setLookupTable(pg.colormap.get("CET-D1").getLookupTable(nPts=256))
    widget.addPlot().addItem(img)
    img.setImage(frames[0], autoLevels=False, levels=(-3, 3))
    widget.show()
    app.processEvents()
    k = iter(range(10**9))

    def redraw() -> None:
        img.setImage(frames[next(k) % 2], autoLevels=False, levels=(-3, 3))
        widget.grab()

    print("\n4096 × 1024 heatmap (pyqtgraph ImageItem in a 1100 × 700 widget), min / median")
    paint_only = timed_ms(widget.grab, repeat)
    redraws = timed_ms(redraw, repeat)
    line("setImage + grab()", redraws, HEATMAP_TARGET_MS, paint_only)
    line("reference: grab() without new data", paint_only)
    widget.close()

    try:
        from lstmviz.core.model import LSTMDirection
        from lstmviz.gui.weights_view import WeightsView
    except ImportError as exc:
        print(f"  lstmviz WeightsView not measured: {exc}")
        return
    H = 1024
    dirs = [
        LSTMDirection(
            W_x=rng.standard_normal((4 * H, 64), dtype=np.float32),
            W_h=rng.standard_normal((4 * H, H), dtype=np.float32) / 32,
            b=rng.standard_normal(4 * H, dtype=np.float32),
        )
        for _ in range(2)
    ]
    view = WeightsView()
    view.resize(1100, 700)
    view.show()
    view.set_direction(dirs[0])
    app.processEvents()

    def show_direction() -> None:
        view.set_direction(dirs[next(k) % 2])
        view.grab()

    line("lstmviz WeightsView.set_direction(H=1024) + grab()", timed_ms(show_direction, repeat))
    line("reference: WeightsView grab() without new data", timed_ms(view.grab, repeat))
    view.close()


def big_model(H: int, D: int):
    from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel

    rng = np.random.default_rng(1)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        s = 1 / np.sqrt(d_in)
        return LSTMDirection(
            W_x=rng.standard_normal((4 * H, d_in), dtype=np.float32) * s,
            W_h=rng.standard_normal((4 * H, H), dtype=np.float32) * s,
            b=rng.standard_normal(4 * H, dtype=np.float32),
            reverse=reverse,
        )

    return LSTMModel(
        (
            LSTMLayer("lstm_0", (direction(D),)),
            LSTMLayer("bidi_1", (direction(H), direction(H, reverse=True))),
            LSTMLayer("lstm_2", (direction(2 * H),)),
        )
    )


def bench_step(app: QApplication, repeat: int, profile: int = 0) -> None:
    try:
        from lstmviz.gui.main_window import MainWindow
    except ImportError as exc:
        print(f"\ndebugger step not measured: {exc}")
        return
    H, D, T = 1024, 32, 200
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    t0 = time.perf_counter()
    window.set_model(big_model(H, D))
    x = np.random.default_rng(2).standard_normal((T, D))
    if not window.set_sequence(x):
        print("\ndebugger step not measured: the window refused the sequence")
        return
    window.go_to_step(0)
    window.tabs.setCurrentIndex(1)  # the debugger tab
    while window.workspace.jobs or window.workspace.trace is None:  # computed in a worker
        app.processEvents()
    app.processEvents()
    setup = (time.perf_counter() - t0) * 1e3
    debugger = window.debug_panel.debugger

    def step_events() -> None:
        if debugger.step >= T - 1:
            debugger.first()
        debugger.step_forward()
        app.processEvents()

    def step_grab() -> None:
        if debugger.step >= T - 1:
            debugger.first()
        debugger.step_forward()
        window.grab()

    print(f"\ndebugger step, MainWindow 1400 × 900, H={H}, 3 layers (middle bidirectional), T={T}")
    print(f"  set_model + set_sequence (trace) + first paint: {setup:.0f} ms")
    empty = QWidget()
    empty.resize(window.size())
    empty.show()
    app.processEvents()
    ref = timed_ms(empty.repaint, repeat)
    line(
        "step_forward + processEvents (repaint)", timed_ms(step_events, repeat), STEP_TARGET_MS, ref
    )
    line("step_forward + window.grab() (full repaint)", timed_ms(step_grab, repeat), None, ref)
    line("reference: empty QWidget.repaint 1400 × 900", ref)
    line("reference: window.grab() without a step", timed_ms(window.grab, repeat))
    if profile:
        print_profile(lambda: [step_events() for _ in range(repeat)], profile)
    window.close()


def print_profile(fn: Callable[[], object], n: int) -> None:
    """The functions a step spends its own time in (cProfile, so slower than above)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(fn)
    st = pstats.Stats(prof)
    rows = sorted(
        (
            (tt, cum, f"{Path(file).name}:{ln}({name})")
            for (file, ln, name), (_c, _n, tt, cum, _) in st.stats.items()
        ),
        reverse=True,
    )
    total = sum(r[0] for r in rows)
    print(f"  cProfile of the steps: {n} functions by own time (total {total:.2f} s)")
    for tt, cum, where in rows[:n]:
        print(f"    {tt / total:5.1%} own, {cum:6.3f} s cumulative  {where}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also print the N functions a debugger step spends most time in",
    )
    args = ap.parse_args()
    commit = _common.commit()
    print(
        f"bench_gui_paint | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | commit "
        f"{commit} | {os.cpu_count()} cpus | load {os.getloadavg()[0]:.2f} | "
        f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']} | pyqtgraph {pg.__version__}"
    )
    app = QApplication.instance() or QApplication(sys.argv[:1])
    bench_heatmap(app, args.repeat)
    bench_step(app, args.repeat, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
