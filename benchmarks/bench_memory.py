"""Memory of a trace: bytes per step per layer direction, and a T = 10,000, H = 1024 run.

Three designs, measured on the same model in the same run (a 1-layer ``H × D`` LSTM, random
float32 weights):

- ``eager f64``: what the first lstmviz core kept, every array of the trace as its own float64
  buffer (z_x, z_h, pre, gates: 4 × 4H; c, act_c, m, h, h_prev, c_prev: 6H) — 22H values;
- ``run`` (float32 and float64): what ``run`` keeps now, gates and c in one ``(T+1, 5H)``
  buffer, h in ``(T+1, P)``, act_c ``(T, H)`` (m is h without a projection) — 7H values;
- ``run+all``: after ``trace.materialize()`` computes z_x, z_h and pre (+ peep) — 19H values.

Reported per design: ``trace.nbytes`` / T (bytes per step per direction), the
``tracemalloc`` peak while ``run`` works (so temporaries count), and the process's peak RSS.
The reference line is the sequence itself (``x``: D × 4 bytes per step) and the eager design.

Run: ``python benchmarks/bench_memory.py [--steps 10000] [--hidden 1024] [--input 256]``.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from _common import header, pin_threads

THREADS = pin_threads()

import numpy as np  # noqa: E402

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run  # noqa: E402

GIB = 1024**3


def make_model(H: int, D: int) -> LSTMModel:
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    w = LSTMDirection(
        W_x=(rng.uniform(-s, s, (4 * H, D))).astype(np.float32),
        W_h=(rng.uniform(-s, s, (4 * H, H))).astype(np.float32),
        b=rng.uniform(-s, s, 4 * H).astype(np.float32),
    )
    return LSTMModel((LSTMLayer("lstm", (w,)),))


def measure(model: LSTMModel, x: np.ndarray, dtype: type, materialize: bool) -> tuple:
    tracemalloc.start()
    t0 = time.perf_counter()
    trace = run(model, x, dtype=dtype)
    if materialize:
        trace.materialize()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dt = trace.layers[0].directions[0]
    return dt.nbytes, trace.nbytes, peak, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--input", type=int, default=256)
    args = ap.parse_args()
    T, H, D = args.steps, args.hidden, args.input
    model = make_model(H, D)
    x = np.random.default_rng(1).standard_normal((T, D)).astype(np.float32)
    print(header("bench_memory", args.threads))
    print(f"1 layer, H = {H}, D = {D}, T = {T}; bytes per step are per layer direction")
    eager = 22 * H * 8
    print(
        f"{'design':<16} {'B/step':>9} {'xH':>6} {'/eager':>7} {'trace GiB':>10} "
        f"{'peak GiB':>9} {'s':>6}"
    )
    print(f"{'x (reference)':<16} {D * 4:9d} {'':>6} {D * 4 / eager:7.3f}")
    print(f"{'eager f64':<16} {eager:9d} {eager / H:6.1f} {1:7.3f} {eager * T / GIB:10.2f}")
    for name, dtype, full in [
        ("run f32", np.float32, False),
        ("run+all f32", np.float32, True),
        ("run f64", np.float64, False),
        ("run+all f64", np.float64, True),
    ]:
        if dtype == np.float64 and T > 2000:
            sub = x[:2000]  # float64 is measured on 2000 steps and scaled: bytes are linear in T
            d_bytes, t_bytes, peak, sec = measure(model, sub, dtype, full)
            k = T / len(sub)
            d_bytes, t_bytes, peak, sec = d_bytes * k, t_bytes * k, peak * k, sec * k
            name += "*"
        else:
            d_bytes, t_bytes, peak, sec = measure(model, x, dtype, full)
        per = d_bytes / T
        print(
            f"{name:<16} {per:9.0f} {per / H:6.1f} {per / eager:7.3f} {t_bytes / GIB:10.2f} "
            f"{peak / GIB:9.2f} {sec:6.1f}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"process peak RSS {rss / GIB:.2f} GiB (imports, model, x and the largest trace above)")
    print("* float64 rows: measured on 2000 steps, scaled to T (memory is linear in T)")


if __name__ == "__main__":
    main()
