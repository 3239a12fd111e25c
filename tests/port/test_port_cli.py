"""``lstmviz export MODEL --to TARGET OUT``: one summary line and exit 0, or one line and 2."""

from __future__ import annotations

import numpy as np
import port_models as pm
import pytest

import lstmviz
from lstmviz.cli import main
from lstmviz.port import ExportError

PROJ = str(pm.FIXTURES / "torch/proj.pt")


@pytest.mark.parametrize(
    ("target", "name"),
    [("pytorch", "m.pt"), ("pytorch", "m.safetensors"), ("npz", "m.npz"), ("numpy", "m.py")],
)
def test_export_writes_and_prints_one_line(tmp_path, capsys, target, name):
    out = tmp_path / name
    assert main(["export", PROJ, "--to", target, str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [printed[0]] and printed[0].startswith(f"wrote {out}")
    back = lstmviz.load_model(out) if target != "numpy" else None
    if back is not None:
        pm.assert_same_weights(lstmviz.load_model(PROJ), back)


def test_refusal_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["export", PROJ, "--to", "keras", str(tmp_path / "m.weights.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "projection" in err and "export to pytorch" in err
    assert not (tmp_path / "m.weights.h5").exists()


def test_unreadable_model_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["export", str(bad), "--to", "npz", str(tmp_path / "x.npz")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_set_and_option_and_code(tmp_path, capsys):
    onnx_file = str(pm.FIXTURES / "onnx/activations_bidir.onnx")
    out = tmp_path / "a.npz"
    args = ["export", onnx_file, "--to", "npz", str(out), "--set", "layout=tf1"]
    assert main(args) == 2  # hard_sigmoid: bare arrays cannot record it
    capsys.readouterr()
    out = tmp_path / "a.onnx"
    assert main(["export", onnx_file, "--to", "onnx", str(out), "--code"]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime" in text and text.startswith(f"wrote {out}")
    torch_npz = tmp_path / "t.npz"
    assert main(["export", PROJ, "--to", "npz", str(torch_npz), "--set", "layout=tf1"]) == 0
    assert "lstm_cell/kernel" in "".join(np.load(torch_npz).files)


def test_api_refuses_unknown_targets_and_options(tmp_path):
    with pytest.raises(ExportError, match="unknown export target 'tflite'"):
        lstmviz.export(pm.stacked(), "tflite", tmp_path / "x")
    with pytest.raises(ExportError, match="unknown option 'layout'"):
        lstmviz.export(pm.stacked(), "pytorch", tmp_path / "x.pt", layout="tf1")
    result = lstmviz.export(PROJ, "npz", tmp_path / "p.npz")  # a path is loaded first
    assert result.paths == (tmp_path / "p.npz",)
