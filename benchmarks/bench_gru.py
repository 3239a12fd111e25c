"""``lstmviz.run`` on a GRU (full trace) against ``torch.nn.GRU`` forward (outputs only).

Batch 1, float32, T = 1000, H = 64/256/1024. lstmviz runs on ``--threads N`` (default 1: numba,
OpenBLAS); torch is timed in the same interleaved rounds twice: on one thread (``torch 1t``)
and on its default thread count (``torch Nt``: one per core, what a script gets). Candidates:
``run`` (the default engine: the compiled numba loop from 256 steps when installed), ``run
numpy`` (the NumPy loop) and ``run v1`` (the same weights with ``reset_after=False``, which
needs a second, dependent matvec per step; torch has no such GRU, so it is timed against the
same torch references for scale). Ratios: candidate / torch on the min and ``paired`` (median
over rounds of the ratio within a round). Outputs are checked against torch (≤ 1e-5).

Run: ``python benchmarks/bench_gru.py [--repeat 7] [--steps 1000] [--torch-threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics

from _common import header, interleaved, pin_threads, stats

THREADS = pin_threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lstmviz.core import GRUDirection, LSTMLayer, LSTMModel, compiled, run  # noqa: E402

SIZES = ((64, 16), (256, 64), (1024, 256))


def torch_gru(H: int, D: int, seed: int = 0) -> tuple[torch.nn.GRU, LSTMModel, LSTMModel]:
    torch.manual_seed(seed)
    gru = torch.nn.GRU(D, H, batch_first=True).eval()
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    w = GRUDirection(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    v1 = w.replace(reset_after=False)
    return (
        gru,
        LSTMModel((LSTMLayer("gru", (w,), kind="GRU"),)),
        LSTMModel((LSTMLayer("gru", (v1,), kind="GRU"),)),
    )


def paired(candidate: list[float], reference: list[float]) -> float:
    return statistics.median(c / r for c, r in zip(candidate, reference, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--sizes", default=",".join(f"{h}x{d}" for h, d in SIZES))
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print(header("bench_gru", args.threads))
    print(
        f"T = {args.steps}, batch 1, float32, min / median of {args.repeat} interleaved rounds; "
        f"torch on 1 and on {args.torch_threads} threads"
    )
    print(f"compiled engine: {'available' if compiled.recurrence() else 'not installed'}")
    print(
        f"{'H':>5} {'D':>4} {'candidate':<10} {'min ms':>9} {'med ms':>9} "
        f"{'/t1 min':>8} {'/t1 pair':>8} {'/tN min':>8} {'/tN pair':>8}"
    )
    for size in args.sizes.split(","):
        H, D = (int(v) for v in size.split("x"))
        bench_size(H, D, args.steps, args.repeat, args.torch_threads)


def bench_size(H: int, D: int, T: int, repeat: int, torch_threads: int) -> None:
    gru, model, v1 = torch_gru(H, D)
    x = np.random.default_rng(1).standard_normal((T, D)).astype(np.float32)
    xt = torch.from_numpy(x)[None]
    want = gru(xt)[0][0].numpy()
    err = float(np.max(np.abs(run(model, x).output - want)))
    err_np = float(np.max(np.abs(run(model, x, engine="numpy").output - want)))
    assert max(err, err_np) <= 1e-5, f"run differs from torch by {max(err, err_np):.2e}"

    def torch_at(n: int) -> object:
        torch.set_num_threads(n)
        return gru(xt)

    fns = {
        "torch 1t": lambda: torch_at(1),
        "run": lambda: run(model, x),
        f"torch {torch_threads}t": lambda: torch_at(torch_threads),
        "run numpy": lambda: run(model, x, engine="numpy"),
        "run v1": lambda: run(v1, x),
    }
    seconds = interleaved(fns, repeat, settle=0.1)
    torch.set_num_threads(1)
    res = {name: stats(sec) for name, sec in seconds.items()}
    t1, tn = seconds["torch 1t"], seconds[f"torch {torch_threads}t"]
    for name, (lo, med) in res.items():
        print(
            f"{H:>5} {D:>4} {name:<10} {lo:9.2f} {med:9.2f} {lo / min(t1) / 1e3:8.2f} "
            f"{paired(seconds[name], t1):8.2f} {lo / min(tn) / 1e3:8.2f} "
            f"{paired(seconds[name], tn):8.2f}"
        )
    print(f"{H:>5} {D:>4} max |run - torch| = {err:.1e}, numpy engine {err_np:.1e}")


if __name__ == "__main__":
    main()
