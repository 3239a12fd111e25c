"""``lstmviz.run`` (full trace) against ``torch.nn.LSTM`` forward (outputs only), same weights.

Batch 1, float32, T = 1000 by default, one thread unless ``--threads N``. References measured
in the same run, interleaved with the candidates:

- ``torch``: ``nn.LSTM`` under ``no_grad`` as shipped, which on x86 CPUs runs oneDNN's fused
  LSTM kernel (``aten::mkldnn_rnn_layer``: the whole sequence in one C++ call);
- ``torch-aten``: the same module with ``torch.backends.mkldnn.flags(enabled=False)``, i.e.
  ATen's per-step operator loop (what torch does where oneDNN is absent);
- ``naive`` (``--naive``): the straightforward NumPy loop lstmviz started with (float64).

Candidates: ``run`` (gates, c, act_c, m, h recorded; z_x, z_h, pre derived on first use;
``engine="auto"``: the compiled numba loop where it wins when the ``fast`` extra is installed,
else NumPy; the weights' internal layout is prepared by the first run of a model and kept),
``run cold`` (``run`` of a fresh copy of the model each time, preparing the layout again),
``run numpy`` (``engine="numpy"``: the NumPy loop whatever is installed),
``run+all`` (``run`` then ``trace.materialize()``: every array of the trace exists), and
``run f64`` (``dtype=np.float64``, always NumPy). Ratios are candidate / torch on the min, on the
median over ``--repeat`` interleaved rounds, and ``paired``: the median of the per-round ratios.
Outputs are checked against torch (≤ 1e-5).

``--defaults``: what a user gets, nothing pinned. torch at its default thread count (one per
core) and at one thread, ``run`` with no setting (the compiled engine on
``LSTMVIZ_NUM_THREADS`` or every core) and with ``LSTMVIZ_NUM_THREADS=1``, all in the same
interleaved rounds (0.15 s apart, so no library's spinning workers take a core from the next
call), for ``nn.LSTM`` and ``nn.GRU``.

``--simulate 4,8,16``: the team on more cores than this machine has, simulated on one core.
One thread runs the share of the team member with the most work (the same kernel, ``tid`` of
``n``) with the barrier counter preset so that it never waits; its time plus a modelled
barrier (``BARRIER_US_PER_THREAD`` × n per barrier: one contended cache line, each arrival one
transfer) is the team's step time, if the cores do not slow each other down (each share of
``W_h`` is read from that core's own L2 once it fits there). torch cannot be simulated so:
it is given perfect scaling, its measured one-thread time / n, a bound it does not reach.

Run: ``python benchmarks/bench_core.py [--threads 1] [--repeat 7] [--steps 1000] [--naive]``,
``python benchmarks/bench_core.py --defaults [--repeat 7]``,
``python benchmarks/bench_core.py --simulate 2,4,8,16 [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace

from _common import ROOT, header, interleaved, pin_threads, set_torch_threads, stats

DEFAULTS = "--defaults" in sys.argv
if DEFAULTS:  # nothing pinned: every library's own default
    sys.path.insert(0, str(ROOT))
THREADS = 0 if DEFAULTS else pin_threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lstmviz.core import (  # noqa: E402
    GRUDirection,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    compiled,
    run,
    threads,
)

SIZES = ((64, 16), (256, 64), (1024, 256))


def torch_model(H: int, D: int, seed: int = 0) -> tuple[torch.nn.LSTM, LSTMModel]:
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(D, H, batch_first=True).eval()
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    w = LSTMDirection(
        W_x=sd["weight_ih_l0"], W_h=sd["weight_hh_l0"], b=sd["bias_ih_l0"] + sd["bias_hh_l0"]
    )
    return lstm, LSTMModel((LSTMLayer("lstm", (w,)),))


def naive(model: LSTMModel, x: np.ndarray) -> np.ndarray:
    """The textbook NumPy loop (float64, one allocation per intermediate), for context."""
    w = model.layers[0].directions[0]
    W_x, W_h, b = (a.astype(np.float64) for a in (w.W_x, w.W_h, w.b))
    H = w.hidden_size
    z_x = x @ W_x.T
    h, c = np.zeros(H), np.zeros(H)
    hs = np.empty((len(x), H))
    gates = np.empty((len(x), 4 * H))
    for t in range(len(x)):
        z = z_x[t] + W_h @ h + b
        i, f = 1 / (1 + np.exp(-z[:H])), 1 / (1 + np.exp(-z[H : 2 * H]))
        g, o = np.tanh(z[2 * H : 3 * H]), 1 / (1 + np.exp(-z[3 * H :]))
        gates[t] = np.concatenate([i, f, g, o])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs[t] = h
    return hs


def fresh_copy(model: LSTMModel) -> LSTMModel:
    """The same weights in new direction objects: nothing prepared by an earlier run."""
    return replace(
        model,
        layers=tuple(
            replace(layer, directions=tuple(w.replace() for w in layer.directions))
            for layer in model.layers
        ),
    )


def paired(candidate: list[float], reference: list[float]) -> float:
    """Median over rounds of candidate / reference timed in the same round: on a shared
    machine whose memory bandwidth drifts by ±10% over seconds, this moves least."""
    return statistics.median(c / r for c, r in zip(candidate, reference, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--naive", action="store_true")
    ap.add_argument("--sizes", default=",".join(f"{h}x{d}" for h, d in SIZES))
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("--simulate", default="")
    args = ap.parse_args()
    if args.simulate:
        bench_simulated(args)
        return
    if args.defaults:
        bench_defaults(args)
        return
    set_torch_threads(args.threads)
    torch.set_grad_enabled(False)
    print(header("bench_core", args.threads))
    print(f"T = {args.steps}, batch 1, float32, min / median of {args.repeat} interleaved rounds")
    kernel = compiled.recurrence()
    print(
        f"compiled engine (numba, the 'fast' extra): {'available' if kernel else 'not installed'}"
    )
    print(
        f"{'H':>5} {'D':>4} {'candidate':<11} {'min ms':>9} {'med ms':>9} "
        f"{'/torch':>7} {'/torch med':>10} {'paired':>7} {'/aten':>6}"
    )
    for size in args.sizes.split(","):
        H, D = (int(v) for v in size.split("x"))
        bench_size(H, D, args.steps, args.repeat, args.naive, args.threads)


def bench_size(H: int, D: int, T: int, repeat: int, with_naive: bool, threads: int) -> None:
    lstm, model = torch_model(H, D)
    x = np.random.default_rng(1).standard_normal((T, D)).astype(np.float32)
    xt = torch.from_numpy(x)[None]
    want = lstm(xt)[0][0].numpy()
    err = float(np.max(np.abs(run(model, x).output - want)))
    assert err <= 1e-5, f"run differs from torch by {err:.2e} at H={H}"
    err_np = float(np.max(np.abs(run(model, x, engine="numpy").output - want)))
    assert err_np <= 1e-5, f"run numpy differs from torch by {err_np:.2e} at H={H}"

    def aten() -> None:
        with torch.backends.mkldnn.flags(enabled=False):
            lstm(xt)

    fns = {  # run right after torch: the paired ratio compares calls a few ms apart
        "torch": lambda: lstm(xt),
        "run": lambda: run(model, x),
        "run cold": lambda: run(fresh_copy(model), x),
        "run numpy": lambda: run(model, x, engine="numpy"),
        "run+all": lambda: run(model, x).materialize(),
        "run f64": lambda: run(model, x, dtype=np.float64),
        "torch-aten": aten,
    }
    if with_naive:
        fns["naive"] = lambda: naive(model, x.astype(np.float64))
    seconds = interleaved(fns, repeat, settle=0.15 if threads > 1 else 0.0)
    res = {name: stats(sec) for name, sec in seconds.items()}
    ref, ref_med = res["torch"]
    aten_min = res["torch-aten"][0]
    for name, (lo, med) in res.items():
        print(
            f"{H:>5} {D:>4} {name:<11} {lo:9.2f} {med:9.2f} {lo / ref:7.2f} "
            f"{med / ref_med:10.2f} {paired(seconds[name], seconds['torch']):7.2f} "
            f"{lo / aten_min:6.2f}"
        )
    print(f"{H:>5} {D:>4} max |run - torch| = {err:.1e}, numpy engine {err_np:.1e}")


def torch_gru(H: int, D: int, seed: int = 0) -> tuple[torch.nn.GRU, LSTMModel]:
    torch.manual_seed(seed)
    gru = torch.nn.GRU(D, H, batch_first=True).eval()
    sd = {k: v.detach().numpy() for k, v in gru.state_dict().items()}
    w = GRUDirection(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    return gru, LSTMModel((LSTMLayer("gru", (w,), kind="GRU"),))


def one_thread(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with ``LSTMVIZ_NUM_THREADS=1`` (read by each run)."""

    def call() -> object:
        os.environ["LSTMVIZ_NUM_THREADS"] = "1"
        try:
            return fn()
        finally:
            del os.environ["LSTMVIZ_NUM_THREADS"]

    return call


def bench_defaults(args: argparse.Namespace) -> None:
    """Ratios of ``run`` at the defaults to torch at its defaults and at one thread."""
    os.environ.pop("LSTMVIZ_NUM_THREADS", None)
    torch.set_grad_enabled(False)
    n_torch = torch.get_num_threads()
    print(header("bench_core --defaults", n_torch))
    print(
        f"T = {args.steps}, batch 1, float32, {args.repeat} interleaved rounds; torch threads "
        f"{n_torch} (default), lstmviz threads {threads.requested()} (default: every core), "
        f"compiled engine {'available' if compiled.recurrence() else 'missing'}"
    )

    def torch_one(module: torch.nn.Module, xt: torch.Tensor) -> Callable[[], object]:
        def call() -> object:
            torch.set_num_threads(1)
            try:
                return module(xt)
            finally:
                torch.set_num_threads(n_torch)

        return call

    print(
        f"{'cell':<5} {'H':>5} {'D':>4} {'torch ms':>9} {'torch1 ms':>9} {'run ms':>8} "
        f"{'run1 ms':>8} {'run/torch':>9} {'run/torch1':>10} {'run1/torch1':>11} {'run1/run':>8}"
    )
    for size in args.sizes.split(","):
        H, D = (int(v) for v in size.split("x"))
        x = np.random.default_rng(1).standard_normal((args.steps, D)).astype(np.float32)
        xt = torch.from_numpy(x)[None]
        for cell, (module, model) in (("LSTM", torch_model(H, D)), ("GRU", torch_gru(H, D))):
            err = float(np.max(np.abs(run(model, x).output - module(xt)[0][0].numpy())))
            assert err <= 1e-5, f"{cell} run differs from torch by {err:.2e} at H={H}"
            fns = {
                "torch": lambda m=module, xt=xt: m(xt),
                "torch1": torch_one(module, xt),
                "run": lambda m=model, x=x: run(m, x),
                "run1": one_thread(lambda m=model, x=x: run(m, x)),
            }
            sec = interleaved(fns, args.repeat, settle=0.15)
            lo = {name: stats(v)[0] for name, v in sec.items()}
            print(
                f"{cell:<5} {H:>5} {D:>4} {lo['torch']:9.2f} {lo['torch1']:9.2f} "
                f"{lo['run']:8.2f} {lo['run1']:8.2f} {paired(sec['run'], sec['torch']):9.2f} "
                f"{paired(sec['run'], sec['torch1']):10.2f} "
                f"{paired(sec['run1'], sec['torch1']):11.2f} "
                f"{paired(sec['run1'], sec['run']):8.2f}"
            )
    print("ratios: paired (median over rounds of the ratio within a round); ms: min")


#: Modelled cost of one barrier per thread taking part (µs): measured 0.20 µs a step for two
#: threads here (``threads_kernels._barrier``), i.e. one cache-line transfer per arrival.
BARRIER_US_PER_THREAD = 0.1


def simulated_share(model: LSTMModel, x: np.ndarray, n: int) -> tuple[float, int]:
    """Seconds for the busiest of ``n`` team members to run its share of one LSTM direction
    (input terms and recurrence) alone, and the team size ``run`` would use."""
    from lstmviz.core import compute, threads_kernels

    f32 = np.dtype(np.float32)
    w = model.layers[0].directions[0]
    T, H = x.shape[0], w.hidden_size
    Wk = compute._packed_recurrent(w, f32)
    Wxk = compiled.pack(compute._input_weights_array(w, f32, True))
    team = max(1, min(n, H // compiled.PACK_LANES, Wk.nbytes // threads.MIN_BYTES_PER_THREAD))
    buf = compute._Buffers(w, T, f32)
    buf.R[:] = 0.0
    buf.Hb[:] = 0.0
    xa = compute._with_ones(x, f32)
    empty = np.empty((0, 0), np.float32)
    ro = empty.copy()
    ro.setflags(write=False)
    scratch = np.zeros(Wk.shape[0] * compiled.PACK_LANES, np.float32)
    nan = float("nan")

    def once() -> None:
        sync = np.zeros(threads._SYNC_LEN, np.int64)
        sync[threads_kernels._COUNT] = 1 << 62  # every barrier already met: never waits
        sync[threads_kernels._INPUTS_DONE] = 1 << 62
        # blocks are claimed from a shared counter: leave this thread an n-th of them
        sync[threads_kernels._CLAIM] = Wxk.shape[0] - -(-Wxk.shape[0] // team)
        threads_kernels.lstm_direction_team(
            Wxk, xa, buf.R, buf.Hb, buf.act_c, empty, Wk, ro, nan, nan, False, scratch, sync,
            team - 1, team,
        )  # fmt: skip

    once()
    return min(time_call(once) for _ in range(3)), team


def time_call(fn: Callable[[], object]) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_simulated(args: argparse.Namespace) -> None:
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    print(header("bench_core --simulate", 1))
    counts = [int(v) for v in args.simulate.split(",")]
    print(
        f"T = {args.steps}, LSTM; one core runs the busiest team member's share; barrier "
        f"modelled at {BARRIER_US_PER_THREAD} µs × threads; torch: 1-thread time / n"
    )
    print(
        f"{'H':>5} {'D':>4} {'n':>3} {'team':>4} {'share ms':>9} {'barriers ms':>11} "
        f"{'sim ms':>8} {'torch1/n ms':>11} {'sim/(torch1/n)':>14}"
    )
    for size in args.sizes.split(","):
        H, D = (int(v) for v in size.split("x"))
        lstm, model = torch_model(H, D)
        x = np.random.default_rng(1).standard_normal((args.steps, D)).astype(np.float32)
        xt = torch.from_numpy(x)[None]
        run(model, x)
        lstm(xt)
        torch1 = min(time_call(lambda m=lstm, xt=xt: m(xt)) for _ in range(args.repeat))
        for n in counts:
            share, team = simulated_share(model, x, n)
            barriers = args.steps * BARRIER_US_PER_THREAD * team * 1e-6 if team > 1 else 0.0
            sim = share + barriers
            print(
                f"{H:>5} {D:>4} {n:>3} {team:>4} {share * 1e3:9.2f} {barriers * 1e3:11.2f} "
                f"{sim * 1e3:8.2f} {torch1 / n * 1e3:11.2f} {sim / (torch1 / n):14.2f}"
            )


if __name__ == "__main__":
    main()
