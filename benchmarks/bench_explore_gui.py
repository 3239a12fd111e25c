"""Event-loop lag of the window while the explore panel runs a large corpus in the background.

Issue 15's case: a 1,000,000-token corpus at H = 512 (an Embedding of 64 into LSTM(64, 512),
documents of 500 tokens) is matched from the Select and match panel: ``run_corpus`` runs in a
worker and reports its progress to the panel's bar, and the GUI thread must never stall
> 100 ms. A probe QTimer fires every 5 ms and records how late each tick is (as in
``bench_gui_lag.py``). Phases: show the corpus, select units on the current document, click
*Match in corpus* until the run and the match are done, match again (states kept: the query
alone), open a match (its document becomes the sequence), cancel a second run. The reference
is the probe on an idle window (the timer's own jitter); the run's own time is printed beside
``run_corpus`` called without a window (the cost of the progress reports and the panel).
Run: ``python benchmarks/bench_explore_gui.py [--tokens N] [--hidden H]``.

Results on the shared 2-core machine (load 5-9 from other work), 2026-12-04, 1M tokens at
H = 512: while ``run_corpus`` + ``match`` ran in the worker (348 s; 260 s without a window),
the longest GUI-thread stall was 100 ms and no tick came later than that; the second query
on the kept states answered in 0.05 s (14 ms stall); a double-clicked match opened in 0.18 s
(66 ms stall); Cancel stopped the worker 0.06 s after the click. The states take 1,057 MiB
(float16). Before/after of the fixes it drove (50,000 tokens, H = 128 or 512): Select 156 →
37 ms (the compiled kernels' first load is start-up's, see below), opening a match 163 → 33
ms (unit-set lines kept, not re-made), Select at H = 512 193 → 59 ms (one curve per colour
instead of a PlotDataItem per unit). The idle reference was 8 ms on a quieter minute and
711 ms on a busy one: compare phases with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_gui_lag import LagProbe, pump, pump_until
from PySide6.QtWidgets import QApplication

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel


def make_model(vocab: int, D: int, H: int, seed: int = 0) -> LSTMModel:
    """``Embedding(vocab, D) → LSTM(D, H)`` as a PyTorch file gives it (canonical order)."""
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    w = LSTMDirection(
        W_x=rng.uniform(-s, s, (4 * H, D)).astype(np.float32),
        W_h=rng.uniform(-s, s, (4 * H, H)).astype(np.float32),
        b=rng.uniform(-s, s, 4 * H).astype(np.float32),
    )
    table = rng.normal(size=(vocab, D)).astype(np.float32)
    return LSTMModel((LSTMLayer("lstm", (w,)),), embedding=table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--doc-length", type=int, default=500)
    parser.add_argument("--layout-only", action="store_true", help="the long-document phases only")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    from lstmviz.explore import Corpus, Vocabulary, run_corpus
    from lstmviz.gui.explore_dock import show_explore
    from lstmviz.gui.main_window import MainWindow

    chars = "abcdefghijklmnopqrstuvwxyz().,;: "
    vocab = Vocabulary.characters(chars)
    model = make_model(len(chars), args.inputs, args.hidden)
    rng = np.random.default_rng(1)
    n_docs = max(args.tokens // args.doc_length, 1)
    t0 = time.perf_counter()
    ids = [rng.integers(0, len(chars), args.doc_length) for _ in range(n_docs)]
    corpus = Corpus.from_ids(ids, vocab)
    print(f"corpus of {corpus.n_tokens:,} tokens built in {time.perf_counter() - t0:.1f} s")

    # the app resolves the compiled kernels in a background thread after its first paint
    # (gui/app.py); a first run_corpus that imports numba and loads them holds the GIL for
    # ~0.15-0.35 s, which is start-up's cost, not the corpus run's: done before measuring
    from lstmviz.core import compiled

    compiled.prepare_in_background().join()
    probe = LagProbe()
    probe.start()
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    window.set_model(model)
    show_explore(window)
    window.tabs.setCurrentIndex(1)
    pump(app, 1.0)
    probe.reset()
    pump(app, 1.0)
    rows: list[tuple[str, float, float]] = [("idle window (reference)", probe.worst(), 0.0)]
    ws, session, panel = window.workspace, window.explore, window.explore_panel

    def phase(name: str, action, wait=None) -> float:
        probe.reset()
        t0 = time.perf_counter()
        action()
        app.processEvents()
        if wait is not None:
            pump_until(app, wait, limit=3600)
        took = time.perf_counter() - t0
        pump(app, 0.2)
        over = sum(g > 100 for g in probe.gaps)
        rows.append((name + (f" [{over} ticks > 100 ms]" if over else ""), probe.worst(), took))
        return took

    idle = lambda: not ws.jobs and window.runner.idle  # noqa: E731
    canvas = window.text_view.canvas
    stream = [chars[i] for i in np.concatenate(ids).tolist()]  # the corpus as one document
    phase(
        f"lay out one {len(stream):,}-token document (text view)",
        lambda: canvas.set_tokens(stream),
        lambda: not canvas.laying_out,
    )
    wrapped: list[int] = []
    canvas.laid_out.connect(lambda: wrapped.append(1))
    canvas.set_tokens(stream[:10])
    phase("resize the window, short text (reference)", lambda: window.resize(1300, 900))
    canvas.set_tokens(stream)
    pump_until(app, lambda: not canvas.laying_out, limit=600)
    wrapped.clear()
    rewrap = "resize the window: re-wrap it in a thread"
    phase(rewrap, lambda: window.resize(1400, 900), lambda: bool(wrapped))
    canvas.set_tokens(stream[:10])  # short again for the phases below
    if args.layout_only:
        for name, worst, took in rows:
            print(f"{name:62s} {worst:11.0f} ms {took:9.2f} s")
        return
    phase("show the corpus", lambda: session.set_corpus(corpus, "bench corpus"))
    phase("open document 0 (run it)", lambda: session.open_document(0), idle)
    session.selection.set_span(100, 106)
    panel.threshold_slider.setValue(0)
    phase("Select units on steps 100-105", panel.select_button.click, idle)
    if not session.selection.units:
        session.selection.set_units(range(0, args.hidden, 7))
    ran = phase("Match in corpus: run_corpus + match", panel.match_button.click, idle)
    assert session.matches, session.message
    phase("Match again (states kept): the query alone", panel.match_button.click, idle)
    phase("double-click match 3", lambda: panel.matches.open_match(3), idle)
    session.set_corpus(Corpus.from_ids(ids, vocab), "bench corpus (again)")

    def cancel_soon() -> None:
        panel.match_button.click()
        pump_until(app, lambda: (session.progress or 0) > 0.02, limit=600)
        t_cancel = time.perf_counter()
        panel.cancel_button.click()
        pump_until(app, idle, limit=600)
        rows.append(("  (cancel → worker stopped)", 0.0, time.perf_counter() - t_cancel))

    phase("Match in a new corpus, cancel at 2 %", cancel_soon)
    t0 = time.perf_counter()
    states = run_corpus(model, corpus, layer=0, direction=0)
    alone = time.perf_counter() - t0
    print(f"GUI-thread stalls, Embedding({len(chars)}, {args.inputs}) → LSTM({args.inputs}, "
          f"{args.hidden}), {corpus.n_tokens:,} tokens in {n_docs:,} documents")  # fmt: skip
    print(f"{'phase':62s} {'longest stall':>14s} {'took':>10s}")
    for name, worst, took in rows:
        print(f"{name:62s} {worst:11.0f} ms {took:9.2f} s")
    print(f"run_corpus without a window: {alone:.1f} s (in the window: {ran:.1f} s, "
          f"{ran / alone:.2f}x); states {states.nbytes / 2**20:.0f} MiB")  # fmt: skip
    window.close()


if __name__ == "__main__":
    main()
