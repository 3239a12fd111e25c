"""Every loadable fixture, mutated a few hundred times in all: load or LoadError, each < 1 s.

The fixtures are globbed (``tests/fixtures/**``), so formats added later are fuzzed too. The
run happens in a child process (``benchmarks/fuzz_files.py``, the same tool as the bigger
benchmark) so that a crash in a native library (h5py, zlib) is reported with the mutant that
caused it instead of killing the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "fuzz_files.py"
TORCH_FIXTURES = {
    f"torch/{name}"
    for name in ("plain.pt", "checkpoint.pth", "bidir2.pt", "two_lstms.pt", "lstm.safetensors")
}
#: The decoding paths of the hand-written ONNX parser: raw, float16, folded, external data.
ONNX_FIXTURES = {
    f"onnx/{name}.onnx"
    for name in ("torch_bidir2", "dynamo_bidir2", "float16", "folded_wr", "external", "states")
}
TOTAL = 400  # spread over all seeds (at least 4 each)
BUDGET = 25.0  # seconds of loading; the run stops early rather than slow the suite down


def test_mutated_fixtures_load_or_raise_load_error_quickly() -> None:
    cmd = [sys.executable, str(SCRIPT), "--json", "--progress", "--seed", "20240611"]
    cmd += ["--total", str(TOTAL), "--budget", str(BUDGET), "--limit", "1.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    last = proc.stderr.strip().splitlines()[-1:] or ["(no progress line)"]
    assert proc.returncode in (0, 1), f"fuzzer died ({proc.returncode}) at: {last[0]}"
    summary = json.loads(proc.stdout)
    seeds = set(summary["seeds"])
    assert seeds >= TORCH_FIXTURES, f"torch fixtures not loadable: {TORCH_FIXTURES - seeds}"
    assert seeds >= ONNX_FIXTURES, f"onnx fixtures not loadable: {ONNX_FIXTURES - seeds}"
    assert summary["mutants"] >= min(200, 4 * len(seeds)), summary["results"]
    failures = summary["failures"]
    shown = "\n".join(
        f"{f['fixture']} {f['mutation']}: {f['result']} after {f['seconds']} s {f['detail']}"
        for f in failures[:10]
    )
    assert not failures, (
        f"{len(failures)} mutants neither loaded nor raised LoadError in 1 s:\n{shown}"
    )
    assert summary["results"].get("LoadError", 0) > 0  # the mutations do reach the readers
