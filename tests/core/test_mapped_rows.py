"""A bounded run over a memory-mapped sequence lets go of the rows it has read: the file's
pages leave the resident set (they counted 244 MiB at 10⁶ × 64 steps), the values stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.mapped_rows import release_rows
from lstmviz.core.sequence import load_sequence


def _resident_mib(path: Path) -> float:
    """Resident MiB of this process's mappings of ``path`` (``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and ":" not in line.split(" ", 1)[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total / 1024


def _mapped(tmp_path: Path, T: int, D: int) -> np.ndarray:
    path = tmp_path / "x.npy"
    out = np.lib.format.open_memmap(path, "w+", np.float32, (T, D))
    out[:] = np.random.default_rng(0).normal(size=(T, D)).astype(np.float32)
    out.flush()
    del out
    x = load_sequence(path, D)
    assert isinstance(x, np.memmap) and x.mode == "r"
    return x


def test_read_rows_leave_the_resident_set_and_read_back_the_same(tmp_path):
    x = _mapped(tmp_path, 200_000, 64)  # 49 MiB
    total = float(np.asarray(x, dtype=np.float64).sum())  # every page read
    path = tmp_path / "x.npy"
    assert _resident_mib(path) > 45
    release_rows(x[1000:], 0, len(x) - 1000)  # a slice of the map, as the trace holds
    release_rows(x, 0, 1000)
    assert _resident_mib(path) < 1
    assert float(np.asarray(x, dtype=np.float64).sum()) == total


def test_only_read_only_maps_are_touched(tmp_path):
    x = _mapped(tmp_path, 1001, 4_000)  # past the 4 M values read whole: mapped
    for other in (np.array(x), np.memmap(tmp_path / "x.npy", mode="c", dtype=np.uint8)):
        release_rows(other, 0, 10)  # nothing to do: no error, no change
    copy = np.memmap(tmp_path / "x.npy", mode="c", dtype=np.uint8)
    copy[200] = 7  # a private change is never dropped
    release_rows(copy.reshape(-1, 8)[:, :], 0, 100)
    assert copy[200] == 7


def test_a_bounded_run_over_a_map_keeps_little_of_it(tmp_path):
    rng = np.random.default_rng(1)
    H, D = 8, 64
    w = LSTMDirection(rng.normal(0, 0.3, (4 * H, D)), rng.normal(0, 0.3, (4 * H, H)),
                      rng.normal(0, 0.1, 4 * H))  # fmt: skip
    model = LSTMModel((LSTMLayer("lstm", (w,)),))
    x = _mapped(tmp_path, 200_000, D)  # 49 MiB, checked on opening a block at a time
    path = tmp_path / "x.npy"
    assert _resident_mib(path) < 1
    bt = run(model, x, trace="bounded")
    assert _resident_mib(path) < 1  # every row was read, none is kept
    full = run(model, np.array(x[:3000]), trace="full")
    np.testing.assert_array_equal(bt.layers[0].output[2500:2600], full.layers[0].output[2500:2600])
