"""``lstmviz A B --info`` prints the comparison (no Qt), a bad B is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

torch = pytest.importorskip("torch")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstmviz", *args], capture_output=True, text=True, timeout=120
    )


def test_info_with_a_second_model(tmp_path):
    sd = torch.load(FIXTURES / "torch" / "plain.pt", weights_only=True)
    sd = {k: v * 2 if k.startswith("bias") else v for k, v in sd.items()}
    torch.save(sd, tmp_path / "doubled.pt")
    out = _cli(str(FIXTURES / "torch" / "plain.pt"), str(tmp_path / "doubled.pt"), "--info")
    assert out.returncode == 0, out.stderr
    assert "compared with" in out.stdout and "bias_doubled (layer 0 dir 0)" in out.stdout
    assert "equal: False" in out.stdout and "PySide6" not in out.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    out = _cli(str(FIXTURES / "torch" / "plain.pt"), str(bad), "--info")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "bad.pt" in out.stderr
