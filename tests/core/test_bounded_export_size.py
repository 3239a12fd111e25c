"""``--export-trace`` of a run too long to export says so before running it (10⁶ steps ran
35 s, then were refused); the size it predicts is the one the export would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstmviz.core import bounded_export, compute
from lstmviz.core.bounded_run import run_bounded

ROOT = Path(__file__).resolve().parents[2]
TORCH_PLAIN = ROOT / "tests" / "fixtures" / "torch" / "plain.pt"


def test_a_too_large_export_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    from lstmviz.cli import main
    from lstmviz.io import load_model

    model = load_model(TORCH_PLAIN)
    T = 5000
    seq = tmp_path / "x.npy"
    np.save(seq, np.random.default_rng(1).normal(size=(T, model.input_size)))  # float64
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "10000")  # a bounded trace
    size = bounded_export.estimated_export_bytes(model, T, np.float64)
    monkeypatch.setattr(bounded_export, "EXPORT_LIMIT", size - 1)
    runs = []
    real = compute.run

    def spy(model, x, *args, **kwargs):
        runs.append(len(x))
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(compute, "run", spy)
    out = tmp_path / "t.npz"
    assert main([str(TORCH_PLAIN), "--sequence", str(seq), "--export-trace", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the trace of {T:,} steps would take" in err
    assert T not in runs and not out.exists()
    monkeypatch.setattr(bounded_export, "EXPORT_LIMIT", size)  # just fits: written
    rc = main([str(TORCH_PLAIN), "--sequence", str(seq), "--export-trace", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert T in runs
    with np.load(out) as npz:
        assert sum(npz[k].nbytes for k in npz.files) == size


@pytest.mark.parametrize("name", ["lstm_bi_stacked_head", "gru_after", "mixed", "rnn"])
def test_the_predicted_size_is_the_bounded_traces(name):
    from test_bounded_trace import MODELS, _x

    model = MODELS[name]
    for T in (2, 7, 600):
        bt = run_bounded(model, _x(model, T), chunk=4)
        assert bounded_export.estimated_export_bytes(model, T) == bounded_export.export_bytes(bt)
