"""The bounded-load harness itself: it sees a crash, a hang, a memory bomb and a good load."""

from __future__ import annotations

import os
import zipfile

import numpy as np
from bounded import BASE_BUDGET_MB, bounded_load


def test_a_good_file_loads_within_budget(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "w.npz"
    np.savez(
        path,
        kernel=rng.normal(size=(3, 16)),
        recurrent_kernel=rng.normal(size=(4, 16)),
        bias=np.zeros(16),
    )
    out = bounded_load(path)
    out.assert_bounded()
    assert out.kind == "model", out


def test_a_fifo_never_hangs_the_suite(tmp_path):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    out = bounded_load(fifo)
    assert out.kind != "crash"  # a hang is reported as "timeout", not waited on forever


def test_a_memory_cap_stops_a_runaway_load(tmp_path):
    # a sequence file of 10**7 rows would take far more than the cap given here
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((10**6, 8)))
    out = bounded_load(path, kind="sequence", cap_mb=20, width=8)
    assert out.kind in ("memory_error", "crash", "value_error", "other"), out
    assert BASE_BUDGET_MB == 200.0


def test_sequence_kind_reports_a_shape(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2\n3,4\n")
    out = bounded_load(path, kind="sequence", width=2)
    assert out.kind == "sequence" and out.message == "(2, 2)", out


def test_zip_member_written_twice_is_distinguishable(tmp_path):
    path = tmp_path / "t.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/data.pkl", b"\x80\x02}q\x00.")
    out = bounded_load(path)
    out.assert_bounded()
