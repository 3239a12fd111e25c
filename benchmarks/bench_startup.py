"""Launch → first painted window with the bundled example (target: ≤ 1.5 s wall).

Three measurements, each in fresh interpreters, alternated so machine load hits them alike:

* **lstmviz**: a driver runs ``lstmviz.cli.main([])`` exactly as the ``lstmviz`` command does
  (bundled model + sequence), with an application event filter that stops the clock at the
  first ``Paint`` event the main window receives after the model is shown; phases (imports,
  window built, model opened, first paint) are stamped against the parent's clock taken just
  before ``Popen``, so interpreter start-up is included.
* **reference**: the same driver painting a bare ``QMainWindow`` (Python + PySide6 start-up and
  one paint): the floor any Qt app pays here; the ratio tells our share of the time.
* **--screenshot**: ``python -m lstmviz --screenshot out.png`` wall time to exit (includes PNG
  encoding and teardown).

Then ``python -X importtime -c "import lstmviz.gui"`` is broken down by top-level package, and
the benchmark fails (exit 1) if torch, TensorFlow or Keras is imported by ``import lstmviz.gui``
or by the whole launch. Run: ``python benchmarks/bench_startup.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # benchmarks/_common.py: shared header helpers

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "tensorflow", "keras", "tf_keras", "jax")
TARGET_S = 1.5

DRIVER = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
stamps = {"python started": time.time() - t0}
PROFILE = os.environ.get("BENCH_PROFILE")
if PROFILE:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
def out(**extra):
    stamps.update(extra)
    if PROFILE:
        profiler.disable()
        profiler.dump_stats(PROFILE)
    bad = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    print("BENCH" + json.dumps({"stamps": stamps, "forbidden": bad}), flush=True)
    os._exit(0)
FORBIDDEN = set(sys.argv[2].split(","))
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
stamps["PySide6 imported"] = time.time() - t0
app = QApplication(sys.argv[:1])

class FirstPaint(QObject):
    def __init__(self, ready):
        super().__init__()
        self.ready = ready
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and self.ready(obj):
            out(**{"first paint": time.time() - t0})
        return False

if sys.argv[1] == "reference":
    win = QMainWindow()
    win.resize(1400, 900)
    filt = FirstPaint(lambda obj: obj.window() is win)
    app.installEventFilter(filt)
    win.show()
    app.exec()
else:
    import lstmviz.gui.app as gui_app
    import lstmviz.gui.main_window as mw
    stamps["lstmviz.gui imported"] = time.time() - t0
    opened = []
    real_open = gui_app.open_from_args
    def open_from_args(window, args, options):
        stamps["window built"] = time.time() - t0
        ok = real_open(window, args, options)
        stamps["example opened"] = time.time() - t0
        opened.append(window)
        return ok
    gui_app.open_from_args = open_from_args
    filt = FirstPaint(lambda obj: bool(opened) and isinstance(obj.window(), mw.MainWindow))
    app.installEventFilter(filt)
    from lstmviz.cli import main
    main([])
"""


def driver(kind: str, profile: Path | None = None) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("KERAS_BACKEND", None)
    if profile is not None:
        env["BENCH_PROFILE"] = str(profile)
    t0 = time.time()
    env["BENCH_T0"] = repr(t0)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, kind, ",".join(FORBIDDEN)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH")), None)
    if line is None:
        raise RuntimeError(f"{kind} driver gave no result:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[5:])


def screenshot_wall(png: Path) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lstmviz", "--screenshot", str(png)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.perf_counter() - t0


def import_breakdown(top: int = 12) -> tuple[float, list[tuple[str, float]], list[str]]:
    """Total import time of ``lstmviz.gui``, the slowest top-level packages, forbidden ones."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lstmviz.gui"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
    )
    per_pkg: dict[str, float] = {}
    total = 0.0
    seen: list[str] = []
    for ln in proc.stderr.splitlines():
        if not ln.startswith("import time:") or "self [us]" in ln:
            continue
        self_us, cumulative, raw = ln[len("import time:") :].split("|", 2)
        name = raw[1:]  # nested imports are indented further
        seen.append(name.strip())
        pkg = name.strip().split(".")[0]
        if pkg == "lstmviz":  # lstmviz's own modules one by one
            pkg = name.strip()
        per_pkg[pkg] = per_pkg.get(pkg, 0.0) + int(self_us) / 1e6
        if not name.startswith(" "):  # a top-level import: its cumulative time adds up
            total += int(cumulative) / 1e6
    bad = sorted({n for n in seen if n.split(".")[0] in FORBIDDEN})
    return total, sorted(per_pkg.items(), key=lambda kv: -kv[1])[:top], bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="print the N slowest lstmviz functions (cumulative) of one launch under cProfile",
    )
    args = ap.parse_args()
    commit = _common.commit()
    print(
        f"bench_startup | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | commit {commit}"
        f" | {os.cpu_count()} cpus | load {os.getloadavg()[0]:.2f} | QT_QPA_PLATFORM=offscreen"
    )
    runs: dict[str, list[dict]] = {"lstmviz": [], "reference": []}
    shots: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        driver("lstmviz")  # warm the file cache (first launch after a build is not the case)
        for _ in range(args.repeat):
            for kind in runs:
                runs[kind].append(driver(kind))
            shots.append(screenshot_wall(Path(tmp) / "shot.png"))
    failed = False
    for kind, results in runs.items():
        print(f"\n{kind}: seconds since Popen (min / median of {args.repeat})")
        for phase in results[0]["stamps"]:
            vals = [r["stamps"][phase] for r in results]
            print(f"  {phase:22s} {min(vals):6.3f} / {statistics.median(vals):6.3f}")
        bad = sorted({m for r in results for m in r["forbidden"]})
        if bad:
            print(f"  FAIL: imported {', '.join(bad[:8])}")
            failed = True
    ours = [r["stamps"]["first paint"] for r in runs["lstmviz"]]
    ref = [r["stamps"]["first paint"] for r in runs["reference"]]
    ok = min(ours) <= TARGET_S
    print(
        f"\nfirst paint with the example: {min(ours):.3f} s min, {statistics.median(ours):.3f} s"
        f" median (target ≤ {TARGET_S} s: {'ok' if ok else 'MISSED'}); bare Qt window "
        f"{min(ref):.3f} s; ratio {min(ours) / min(ref):.2f}×"
    )
    print(
        f"lstmviz --screenshot (to exit): {min(shots):.3f} s min, "
        f"{statistics.median(shots):.3f} s median"
    )
    total, pkgs, bad = import_breakdown()
    print(f"\nimport lstmviz.gui: {total:.3f} s (python -X importtime, self time by package)")
    for name, sec in pkgs:
        print(f"  {name:40s} {sec * 1e3:7.1f} ms")
    if bad:
        print(f"FAIL: import lstmviz.gui imported {', '.join(bad[:8])}")
        failed = True
    else:
        print(f"import lstmviz.gui and the whole launch import none of {', '.join(FORBIDDEN)}")
    if args.profile:
        print_profile(args.profile)
    return 1 if failed else 0


def print_profile(n: int) -> None:
    """One launch under cProfile: lstmviz functions by cumulative time (where start-up goes)."""
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "launch.prof"
        driver("lstmviz", prof)
        st = pstats.Stats(str(prof))
    rows = [
        (cum, f"{Path(file).relative_to(ROOT)}:{line}({fn})")
        for (file, line, fn), (_cc, _nc, _tt, cum, _callers) in st.stats.items()
        if str(ROOT / "lstmviz") in file
    ]
    print(f"\none launch under cProfile (slower than above): {n} lstmviz functions by cumulative s")
    for cum, where in sorted(rows, reverse=True)[:n]:
        print(f"  {cum:6.3f}  {where}")


if __name__ == "__main__":
    sys.exit(main())
