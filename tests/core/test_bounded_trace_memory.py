"""Memory of a bounded trace stays bounded: a run whose full trace would hold ~700 MB, read
from a memory-mapped ``.npy``, measured in a fresh interpreter (peak RSS, not time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

T, D, H = 100_000, 16, 128

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
    from lstmviz.core.checkpointed_trace import estimated_full_bytes
    from lstmviz.core.sequence import load_sequence

    def rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    path, D, H = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    w = LSTMDirection(rng.normal(0, 0.3, (4 * H, D)).astype(np.float32),
                      rng.normal(0, 0.1, (4 * H, H)).astype(np.float32),
                      rng.normal(0, 0.1, 4 * H).astype(np.float32))
    model = LSTMModel((LSTMLayer("l", (w,)),))
    x = load_sequence(path, D)
    run(model, np.asarray(x[:300]), trace="full")  # imports and warm-up: the baseline
    base = rss()
    trace = run(model, x)  # auto: bounded past LSTMVIZ_FULL_TRACE_LIMIT
    kind = type(trace).__name__
    dt = trace.layers[0].directions[0]
    for t in np.random.default_rng(1).integers(0, x.shape[0], 50):
        dt.unit_values(int(t), 3)
    print(json.dumps({"base": base, "peak": rss(), "full": estimated_full_bytes(model, len(x)),
                      "held": trace.nbytes, "x": x.nbytes, "auto": kind}))
    """
)


def test_peak_memory_of_a_bounded_run_is_far_below_the_full_trace(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(2).standard_normal((T, D)).astype(np.float32))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(D), str(H)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "LSTMVIZ_FULL_TRACE_LIMIT": str(256 * 2**20)},
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(r)
    assert r["auto"] == "BoundedTrace"  # 700 MB in full: past the limit set here
    grown = r["peak"] - r["base"]
    # what it holds: checkpoints, the overview (at most 192 MiB) and cached chunks
    assert r["held"] < 300 * 2**20
    # plus one first-pass call's rows (FIRST_PASS_BYTES = 64 MiB) and its temporaries
    assert grown < r["held"] + 160 * 2**20, r
    assert grown < r["full"] / 2, r  # the full trace would be ~700 MB
