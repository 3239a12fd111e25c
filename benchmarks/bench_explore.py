"""Exploring a corpus (issue 15): run_corpus throughput, GUI-thread stalls, cancel latency,
the on-bit index, match latency at 1,000,000 tokens × H = 512, and peak memory.

Parts, each printed as it finishes:

1. ``run_corpus`` on ``--run-tokens`` tokens (default 20,000) of a 1-layer H = 512 LSTM fed by a
   64-wide embedding, as one stream (chunks of 512) and as 50-token documents; the reference is
   ``torch.nn.LSTM`` on the same tokens in the same run (batch 1, same chunks). While it runs in a
   worker thread (as the GUI runs it) the main thread sleeps 1 ms at a time and records its
   longest wait: the longest stall a GUI thread would see. Then the time from ``cancel.set()``
   to ``Cancelled``.
2. ``--full``: the whole ``--tokens`` corpus through ``run_corpus`` (about 5 minutes for 1M
   tokens on the 2-core reference machine), with progress. Without it, the 1M × 512 states are
   made from a smooth random process (tanh of a random walk, so units stay on for runs of steps
   as real ones do) and stored as ``run_corpus`` stores them (float16 past 1 GiB).
3. The on-bit index at threshold 0.3, then ``match`` for selections of 3-40 units, lengths
   3-50, overlap and cosine: min and median of 5 calls each (the budget is 100 ms).
4. Peak RSS of the process (the budget is 2 GiB).

Run: ``python benchmarks/bench_explore.py [--tokens 1000000] [--full] [--run-tokens 20000]``.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

from _common import header, pin_threads, set_torch_threads, stats

THREADS = pin_threads()

import numpy as np  # noqa: E402

from lstmviz import explore  # noqa: E402
from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel  # noqa: E402

H, D, V = 512, 64, 256


def make_model() -> LSTMModel:
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    w = LSTMDirection(
        W_x=rng.uniform(-s, s, (4 * H, D)),
        W_h=rng.uniform(-s, s, (4 * H, H)),
        b=rng.uniform(-s, s, 4 * H),
    )
    return LSTMModel(layers=(LSTMLayer("lstm", (w,)),), embedding=rng.standard_normal((V, D)))


def torch_reference(model: LSTMModel, ids: np.ndarray) -> float:
    """Seconds for nn.LSTM over ``ids`` in chunks of 512, state carried (batch 1)."""
    import torch

    set_torch_threads(THREADS)
    w = model.layers[0].directions[0]
    lstm = torch.nn.LSTM(D, H, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(w.W_x))
        lstm.weight_hh_l0.copy_(torch.from_numpy(w.W_h))
        lstm.bias_ih_l0.copy_(torch.from_numpy(w.b))
        lstm.bias_hh_l0.zero_()
        x = torch.from_numpy(model.embedding[ids].astype(np.float32))
        t0 = time.perf_counter()
        state = None
        for k in range(0, len(ids), 512):
            _, state = lstm(x[None, k : k + 512], state)
        return time.perf_counter() - t0


def longest_stall(work) -> tuple[float, object]:
    """Run ``work`` in a thread; the main thread's longest wait for a 1 ms sleep (seconds)."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = work()
        except Exception as exc:  # Cancelled, reported by the caller
            result["value"] = exc

    th = threading.Thread(target=target)
    th.start()
    worst = 0.0
    while th.is_alive():
        t0 = time.perf_counter()
        time.sleep(0.001)
        worst = max(worst, time.perf_counter() - t0 - 0.001)
    th.join()
    return worst, result.get("value")


def part_run(model: LSTMModel, n: int) -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, n)
    # the GUI's rule (issue 15): engine="numpy" until compiled.ready(); "auto"'s first call
    # below loads (or compiles) the numba kernels in the worker, holding the GIL meanwhile
    small = explore.Corpus.from_ids([ids[:1024]])
    stall, _ = longest_stall(lambda: explore.run_corpus(model, small, engine="numpy"))
    print(
        "first run_corpus, engine='numpy' (the GUI's until compiled.ready()): 1,024 tokens, "
        f"longest main-thread stall {stall * 1e3:.1f} ms"
    )
    for label, docs in (
        ("one stream (engine auto: its first call loads the kernels)", [ids]),
        ("50-token documents", [ids[k : k + 50] for k in range(0, n, 50)]),
    ):
        corpus = explore.Corpus.from_ids(docs)
        calls: list[int] = []
        t0 = time.perf_counter()
        stall, states = longest_stall(
            lambda c=corpus, k=calls: explore.run_corpus(
                model, c, progress=lambda d, t: k.append(d)
            )
        )
        dt = time.perf_counter() - t0
        assert isinstance(states, explore.CorpusStates), states
        print(
            f"run_corpus {label}: {n:,} tokens in {dt:.2f} s = {n / dt:,.0f} tokens/s "
            f"(1M tokens: {1e6 / (n / dt) / 60:.1f} min); {len(calls)} progress calls; "
            f"longest main-thread stall {stall * 1e3:.1f} ms"
        )
    ref = torch_reference(model, ids)
    print(f"torch.nn.LSTM, same tokens, chunks of 512: {ref:.2f} s = {n / ref:,.0f} tokens/s")
    event = threading.Event()
    corpus = explore.Corpus.from_ids([ids])
    timer = threading.Timer(0.5, event.set)
    timer.start()
    t_set = time.perf_counter() + 0.5
    try:
        explore.run_corpus(model, corpus, cancel=event)
        print("cancel: the run finished before the cancel")
    except explore.Cancelled as exc:
        print(f"cancel: Cancelled {(time.perf_counter() - t_set) * 1e3:.0f} ms after set ({exc})")


def synthetic_states(n: int) -> explore.CorpusStates:
    """``n × H`` states stored as run_corpus stores them: each unit a moving average of 16
    white-noise steps through ``tanh``, on (≥ 0.3) about 16% of the time in runs of several
    steps, as real units switch."""
    rng = np.random.default_rng(2)
    corpus = explore.Corpus.from_ids([np.zeros(1000, dtype=np.int64)] * (n // 1000))
    dtype = np.float16 if n * H * 4 > explore.states.MAX_FLOAT32_BYTES else np.float32
    values = np.empty((corpus.n_tokens, H), dtype=dtype)
    block, width = 20_000, 16
    for r in range(0, corpus.n_tokens, block):
        m = min(block, corpus.n_tokens - r)
        noise = rng.standard_normal((m + width, H), dtype=np.float32)
        cs = np.cumsum(noise, axis=0, out=noise)
        z = (cs[width:] - cs[:-width]) / np.float32(np.sqrt(width))
        values[r : r + m] = np.tanh(1.5 * z - 1.2)
    return explore.states_from_arrays(corpus, values)


def part_match(states: explore.CorpusStates) -> None:
    t0 = time.perf_counter()
    stall, _ = longest_stall(lambda: states.index(0.3))
    print(
        f"index at 0.3: {time.perf_counter() - t0:.2f} s (main-thread stall {stall * 1e3:.0f} ms), "
        f"{states.index(0.3).nbytes / 2**20:.0f} MB; states {states.values().dtype} "
        f"{states.values().nbytes / 2**30:.2f} GiB"
    )
    rng = np.random.default_rng(3)
    n = states.corpus.n_tokens
    worst = 0.0
    for n_units in (3, 12, 40):
        for length in (3, 10, 50):
            start = int(rng.integers(0, n - length))
            units = explore.select(states, start, start + length, threshold=0.3)
            if len(units) < n_units:  # pad with random units: the cost depends on |S|
                extra = rng.choice(H, n_units - len(units), replace=False)
                units = units.with_units(np.concatenate([units.units, extra]))
            units = units.with_units(units.units[:n_units])
            for method in ("overlap", "cosine"):
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    found = explore.match(states, units, top=20, method=method)
                    times.append(time.perf_counter() - t0)
                lo, med = stats(times)
                worst = max(worst, med)
                print(
                    f"match {method:7s} |S| = {len(units):2d}, length {length:2d}: "
                    f"min {lo:5.1f} ms, median {med:5.1f} ms; best score "
                    f"{found[0].score:.3f}, {len(found)} matches"
                )
    print(f"slowest median match: {worst:.1f} ms (budget 100 ms)")
    stall, _ = longest_stall(lambda: explore.match(states, units, top=20))
    print(f"a match in a worker thread: longest main-thread stall {stall * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--run-tokens", type=int, default=20_000)
    parser.add_argument("--full", action="store_true", help="run_corpus over all --tokens")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch  # noqa: F401  (for the header's version)

    print(header("bench_explore", THREADS))
    model = make_model()
    part_run(model, args.run_tokens)
    if args.full:
        ids = np.random.default_rng(4).integers(0, V, args.tokens)
        corpus = explore.Corpus.from_ids([ids[k : k + 1000] for k in range(0, len(ids), 1000)])
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                print(f"  {done:,} / {total:,}", flush=True)

        t0 = time.perf_counter()
        stall, states = longest_stall(lambda: explore.run_corpus(model, corpus, progress=progress))
        print(
            f"run_corpus full: {args.tokens:,} tokens in {time.perf_counter() - t0:.0f} s, "
            f"longest main-thread stall {stall * 1e3:.1f} ms"
        )
    else:
        states = synthetic_states(args.tokens)
    part_match(states)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {peak:.2f} GiB (budget 2 GiB)")


if __name__ == "__main__":
    main()
