"""A million steps at H = 1024: the bounded trace's run time, memory, jumps and scans.

Issue 17's case: one ``LSTM(64, 1024)`` layer on T = 1,000,000 steps, where a full trace
would hold ~53 GB. ``run(trace="bounded")`` keeps the states every K steps and a min/max
overview, and recomputes any step on demand (bitwise the full trace's values, see
``tests/core/test_bounded_trace.py``).

Core part (default): in one process, in this order so the peak RSS is the bounded run's
alone: (1) the bounded run over ``--steps`` steps read from a memory-mapped ``.npy``,
(2) peak RSS, (3) jumps to random steps (every quantity the step view reads at that step),
(4) breakpoint scans: ``any f < -1`` over the whole run (the overview proves it never fires,
nothing is recomputed) and ``mean h > 2`` (no overview can rule out a mean: every window is
recomputed) up to ``--scan-steps``; then (5) full-trace and bounded runs of
``--interleaved-steps`` steps interleaved. The bounded run is compared with full-trace runs
of ``--full-steps`` steps (10⁵: 2.8 GB) in a child process just before and just after it, per
step (the full trace of 10⁶ steps, 28 GB, does not fit; a full run's time is linear in T).
GUI part (``--gui``): a real ``MainWindow`` opens the model and the memory-mapped sequence,
runs it in its worker (the same bounded run), then, on the *This step* and *Over time* tabs
and with the explore Text dock open, jumps to random steps and steps forward, timing each
until every event it posted has been processed, repaints included (paint events are counted
to show they happened); a tab's own first paint is timed apart, before its jumps. Peak RSS
of the whole GUI process.

Run: ``python benchmarks/bench_long.py [--steps T] [--hidden H] [--gui]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
import numpy as np

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel


def make_model(D: int, H: int, seed: int = 0) -> LSTMModel:
    """What torch.nn.LSTM(D, H) holds (uniform ±1/√H), canonical gate order."""
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    w = LSTMDirection(
        W_x=rng.uniform(-s, s, (4 * H, D)).astype(np.float32),
        W_h=rng.uniform(-s, s, (4 * H, H)).astype(np.float32),
        b=rng.uniform(-s, s, 4 * H).astype(np.float32),
    )
    return LSTMModel((LSTMLayer("lstm", (w,)),))


def make_sequence(path: Path, T: int, D: int) -> np.ndarray:
    """A (T, D) float32 .npy written a block at a time, returned memory-mapped."""
    if not path.exists():
        out = np.lib.format.open_memmap(path, "w+", np.float32, (T, D))
        rng = np.random.default_rng(1)
        for a in range(0, T, 65536):
            out[a : a + 65536] = rng.standard_normal((min(65536, T - a), D), np.float32)
        out.flush()
        del out
    from lstmviz.core.sequence import load_sequence

    return load_sequence(path, D)


def _full_reference(args: argparse.Namespace, n: int) -> float:
    """Seconds of ``run(model, x[:n], trace="full")`` in a child process (same model, same
    memory-mapped sequence)."""
    sizes = ("--steps", str(args.steps), "--hidden", str(args.hidden), "--inputs", str(args.inputs))
    cmd = [sys.executable, __file__, "--full-only", "--full-steps", str(n), *sizes]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


STEP_VIEW = ("i", "f", "g", "o", "c", "act_c", "h", "z_x", "z_h", "pre")


def core(args: argparse.Namespace, x: np.ndarray, model: LSTMModel) -> None:
    from lstmviz.core import compiled, run
    from lstmviz.core.breakpoints import parse_breakpoint
    from lstmviz.core.trace_scan import next_hit

    compiled.recurrence()  # a compile is not the run's cost
    T = x.shape[0]
    n = min(args.full_steps, T)
    # the full-trace reference in a child process (its trace of n steps would set this
    # process's peak RSS), right before and right after the bounded run: the same minutes
    before = _full_reference(args, n)
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    bt = run(model, x, trace="bounded")
    run_s = time.perf_counter() - t0
    rss = peak_rss_mib()
    after = _full_reference(args, n)
    print(f"bounded run, T = {T:,}: {run_s:.1f} s ({run_s / T * 1e6:.0f} µs/step), K = {bt.K},"
          f" {bt.n_chunks:,} checkpoints, overview block {bt.overview_block},"
          f" held {bt.nbytes / 2**20:,.0f} MiB; peak RSS {rss:,.0f} MiB"
          f" (before the run {rss0:,.0f} MiB)")  # fmt: skip
    full_step = (before + after) / 2 / n
    print(f"full-trace run of T = {n:,} in a child just before and after: {before:.1f} s and"
          f" {after:.1f} s ({full_step * 1e6:.0f} µs/step); the bounded run of {T:,} steps"
          f" per step / the full trace's per step: {run_s / T / full_step:.2f}×")  # fmt: skip
    dt = bt.layers[0].directions[0]
    rng = np.random.default_rng(3)
    lat = []
    for t in rng.integers(0, T, args.jumps):
        t1 = time.perf_counter()
        for name in STEP_VIEW:
            np.asarray(getattr(dt, name)[int(t)])
        lat.append(time.perf_counter() - t1)
    lat_ms = np.array(lat) * 1e3
    print(f"jump to a random step ({args.jumps} jumps, every step-view quantity):"
          f" median {np.median(lat_ms):.1f} ms, max {lat_ms.max():.1f} ms")  # fmt: skip
    bp = parse_breakpoint("any f < -1")
    t1 = time.perf_counter()
    found = next_hit(bt, [bp], 0)
    print(f"scan 'any f < -1' over all {T:,} steps (pruned by the overview):"
          f" {time.perf_counter() - t1:.2f} s, hit: {found}")  # fmt: skip
    S = min(args.scan_steps, T - 1)
    bps = [parse_breakpoint("mean h > 2"), parse_breakpoint(f"step {S}")]
    t1 = time.perf_counter()
    next_hit(bt, bps, 0)
    scan_s = time.perf_counter() - t1
    print(f"scan 'mean h > 2' over {S:,} steps (recomputed): {scan_s:.2f} s"
          f" ({scan_s / S * 1e6:.0f} µs/step; the whole run: {scan_s / S * T:.0f} s)")  # fmt: skip
    del bt
    n = min(args.interleaved_steps, T)
    xs = np.array(x[:n])
    full_s, bounded_s = [], []
    for _ in range(args.repeat):
        t1 = time.perf_counter()
        tr = run(model, xs, trace="full")
        full_s.append(time.perf_counter() - t1)
        del tr
        t1 = time.perf_counter()
        tr = run(model, xs, trace="bounded")
        bounded_s.append(time.perf_counter() - t1)
        del tr
    f, b = min(full_s), min(bounded_s)
    print(f"T = {n:,}, interleaved ×{args.repeat}, best: full trace {f:.2f} s"
          f" ({f / n * 1e6:.0f} µs/step), bounded {b:.2f} s ({b / n * 1e6:.0f} µs/step):"
          f" bounded/full {b / f:.2f}×")  # fmt: skip


class _PaintCounter:
    """Counts paint events the window's widgets receive (an application event filter), so
    each timed action is shown to have repainted, not only to have updated its data."""

    active: _PaintCounter  # the one installed by ``gui``

    def __init__(self, app: object) -> None:
        from PySide6.QtCore import QEvent, QObject

        counter = self

        class Filter(QObject):
            def eventFilter(self, _obj: object, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint:
                    counter.n += 1
                return False

        self.n = 0
        self.filter = Filter()
        app.installEventFilter(self.filter)  # type: ignore[attr-defined]


def _settle(app: object, quiet_s: float = 0.3, limit_s: float = 30.0) -> float:
    """Process events until nothing has been painted for ``quiet_s`` (a tab's first paint
    is queued a turn later, see ``TimePlots.showEvent``); the seconds that took."""
    t0 = time.perf_counter()
    counter = _PaintCounter.active
    last, seen = t0, counter.n
    while time.perf_counter() - last < quiet_s and time.perf_counter() - t0 < limit_s:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.005)
        if counter.n != seen:
            last, seen = time.perf_counter(), counter.n
    return last - t0


def _timed(app: object, action: Callable[[], None]) -> tuple[float, int]:
    """Seconds from ``action()`` until every event it posted (the repaints included) has
    been processed, and how many paint events that was."""
    counter = _PaintCounter.active
    before = counter.n
    t1 = time.perf_counter()
    action()
    app.processEvents()  # type: ignore[attr-defined]
    return time.perf_counter() - t1, counter.n - before


class _GcPauses:
    """Garbage collections on any thread while installed (``gc.callbacks``): a long one
    inside a timed action is the likeliest cause of an outlier."""

    def __init__(self) -> None:
        import gc

        self.ms: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.ms.append((time.perf_counter() - self._start) * 1e3)

    def take(self) -> list[float]:
        out, self.ms = self.ms, []
        return out


def _report(name: str, rows: list[tuple[float, int]], what: str, gcs: _GcPauses) -> None:
    ms = np.array([r[0] for r in rows]) * 1e3
    paints = min(r[1] for r in rows)
    pauses = gcs.take()
    gc_text = f"{len(pauses)} collections, longest {max(pauses):.0f} ms" if pauses else "none"
    print(f"GUI ({name}): {what} ({len(rows)}×) median {np.median(ms):.0f} ms,"
          f" p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms;"
          f" ≥ {paints} paint events each; garbage collections meanwhile: {gc_text}")  # fmt: skip


def gui(args: argparse.Namespace, x: np.ndarray, model: LSTMModel) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from lstmviz.core import compiled

    app = QApplication.instance() or QApplication([])
    _PaintCounter.active = _PaintCounter(app)
    from lstmviz.gui.main_window import MainWindow

    compiled.recurrence()  # the app compiles in the background; here it is ready first
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    ws = window.workspace
    t0 = time.perf_counter()
    window.set_model(model)
    window.set_sequence(x)
    window.tabs.setCurrentIndex(1)  # Debugger: the run starts in a worker
    while ws.trace is None or ws.jobs:
        app.processEvents()
        time.sleep(0.01)
    run_s = time.perf_counter() - t0
    trace = ws.trace
    print(f"GUI: open + run T = {x.shape[0]:,} ({type(trace).__name__}) until shown:"
          f" {run_s:.1f} s; peak RSS {peak_rss_mib():,.0f} MiB")  # fmt: skip
    panel = window.debug_panel
    rng = np.random.default_rng(4)
    gcs = _GcPauses()
    cases = [("This step", 0, False), ("Over time", 1, False), ("This step + Text dock", 0, True)]
    for name, tab, text in cases:
        if text:
            from lstmviz.gui.explore_dock import show_text

            show_text(window)
        shown = _timed(app, lambda tab=tab: panel.views.setCurrentIndex(tab))[0]
        shown += _settle(app)
        print(f"GUI ({name}): tab shown and painted in {shown * 1e3:.0f} ms")
        steps = [int(t) for t in rng.integers(0, x.shape[0], args.jumps)]
        gcs.take()
        jumps = [_timed(app, lambda t=t: window.go_to_step(t)) for t in steps]
        _report(name, jumps, "jump to a random step", gcs)
        forward = [_timed(app, lambda: ws.step_by(1)) for _ in range(20)]
        _report(name, forward, "one step forward", gcs)
        _settle(app)
    print(f"GUI: peak RSS after stepping {peak_rss_mib():,.0f} MiB")
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--full-steps", type=int, default=100_000)
    parser.add_argument("--interleaved-steps", type=int, default=20_000)
    parser.add_argument("--full-only", action="store_true", help="(the child's part)")
    parser.add_argument("--scan-steps", type=int, default=20_000)
    parser.add_argument("--jumps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--gui", action="store_true")
    args = parser.parse_args()
    print(header("bench_long"))
    path = Path(tempfile.gettempdir()) / f"lstmviz_bench_long_{args.steps}x{args.inputs}.npy"
    x = make_sequence(path, args.steps, args.inputs)
    model = make_model(args.inputs, args.hidden)
    if args.full_only:
        from lstmviz.core import compiled, run

        compiled.recurrence()
        xs = np.array(x[: args.full_steps])
        t0 = time.perf_counter()
        run(model, xs, trace="full")
        print(time.perf_counter() - t0)
        return
    (gui if args.gui else core)(args, x, model)


if __name__ == "__main__":
    main()
