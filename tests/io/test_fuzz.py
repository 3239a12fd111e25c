"""Every loadable fixture, mutated a few hundred times in all: load or LoadError, each < 1 s;
and sequence files mutated: load or one-line ValueError, bounded.

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


def _sequence_seeds(folder: Path) -> list[Path]:
    """A CSV with a header, a TXT, a .npy, a stored and a deflated .npz: (T=40, 3) each."""
    import io
    import zipfile

    import numpy as np

    x = np.random.default_rng(5).normal(size=(40, 3))
    (folder / "x.csv").write_text("a,b,c\n" + "\n".join(",".join(f"{v:.6g}" for v in r) for r in x))
    (folder / "x.txt").write_text("\n".join(" ".join(f"{v:.6g}" for v in r) for r in x))
    np.save(folder / "x.npy", x)
    np.savez(folder / "x.npz", x=x)
    buf = io.BytesIO()
    np.save(buf, x.astype(np.float32))
    with zipfile.ZipFile(folder / "z.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", buf.getvalue())
    return sorted(folder.iterdir())


def _mutate(data: bytes, rng) -> bytes:
    """One of: flipped bytes, a cut, a duplicated slice, a huge number written into the data."""
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 8)):
            b[rng.integers(len(b))] = rng.integers(256)
    elif kind == 1:
        b = b[: rng.integers(1, len(b))]
    elif kind == 2:
        start = rng.integers(len(b))
        b[start:start] = b[start : start + rng.integers(1, 64)] * int(rng.integers(1, 50))
    else:
        at = rng.integers(len(b))
        b[at : at + 8] = rng.choice([b"\xff" * 8, b"1e999999", b"\x00" * 8, b"9" * 8])
    return bytes(b)


def test_mutated_sequence_files_load_or_raise_one_line_value_error(tmp_path: Path) -> None:
    """The sequence loader under the same promise as the readers: every mutant of a good
    .csv/.txt/.npy/.npz either loads or is one printable ValueError line, bounded."""
    import numpy as np
    from bounded import bounded_load

    rng = np.random.default_rng(20241204)
    (tmp_path / "seeds").mkdir()
    seeds = _sequence_seeds(tmp_path / "seeds")
    kinds: dict[str, int] = {}
    for seed in seeds:
        data = seed.read_bytes()
        for k in range(24):
            mutant = tmp_path / f"m{k}_{seed.name}"
            mutant.write_bytes(_mutate(data, rng))
            out = bounded_load(mutant, kind="sequence", width=3)
            kinds[out.kind] = kinds.get(out.kind, 0) + 1
            if out.kind == "value_error":
                out.assert_refused(mutant.name)
            else:
                out.assert_bounded()
                assert out.kind == "sequence", (seed.name, out)
    assert kinds.get("value_error", 0) > 10 and kinds.get("sequence", 0) > 10, kinds
