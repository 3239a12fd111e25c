"""The command line: ``--info`` never imports Qt; ``--screenshot`` renders headless and exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_PLAIN = ROOT / "tests" / "fixtures" / "torch" / "plain.pt"
TF1_BASIC = ROOT / "tests" / "fixtures" / "tf1" / "basic"


def run(*args: str, env_extra: dict[str, str] | None = None, code: str | None = None, timeout=120):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lstmviz", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def png_is_picture(path: Path) -> bool:
    """Non-blank: decode with Qt (this test process may use Qt) and count colours."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    if image.isNull():
        return False
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 25) for y in range(0, image.height(), 25)
    }
    return len(colours) > 20


def test_info_prints_the_summary_without_importing_qt():
    code = (
        "import sys\n"
        "from lstmviz.cli import main\n"
        f"rc = main(['--info', {str(TF1_BASIC)!r}])\n"
        "qt = sorted(m for m in sys.modules\n"
        "            if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'))\n"
        "print('RC', rc, 'QT', qt)\n"
    )
    out = run(code=code)
    assert out.returncode == 0, out.stderr
    assert "RC 0 QT []" in out.stdout
    assert "rnn/basic_lstm_cell" in out.stdout and "i,j,f,o" in out.stdout


def test_info_on_a_bad_file_is_one_line_on_stderr(tmp_path):
    bad = tmp_path / "empty.pt"
    bad.write_bytes(b"")
    out = run("--info", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("lstmviz: empty.pt") and out.stderr.count("\n") == 1


def test_screenshot_renders_headless_without_display(tmp_path):
    png, npz, seq = tmp_path / "shot.png", tmp_path / "trace.npz", tmp_path / "x.csv"
    x = np.sin(np.arange(24)[:, None] * [0.3, 0.5, 0.7])
    np.savetxt(seq, x, delimiter=",")
    out = run(
        str(TORCH_PLAIN),
        "--layer",
        "0",
        "--sequence",
        str(seq),
        "--step",
        "5",
        "--screenshot",
        str(png),
        "--export-trace",
        str(npz),
    )
    assert out.returncode == 0, out.stderr
    assert png.exists() and png_is_picture(png)
    with np.load(npz) as trace:  # the same run also wrote the trace
        np.testing.assert_allclose(trace["x"], x)
        assert trace["layer0/output"].shape == (24, 5)


def test_screenshot_of_a_bad_file_reports_and_fails(tmp_path):
    bad = tmp_path / "page.h5"
    bad.write_text("<html><body>404</body></html>")
    png = tmp_path / "shot.png"
    out = run(str(bad), "--screenshot", str(png))
    assert out.returncode == 2
    assert "page.h5" in out.stderr


@pytest.mark.parametrize(
    "entry", [["-m", "lstmviz"], ["-c", "from lstmviz.cli import main; main()"]]
)
def test_help_works_from_both_entry_points(entry):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, *entry, "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0
    assert "--screenshot PNG" in out.stdout and "--export-trace NPZ" in out.stdout


def test_no_argument_opens_the_bundled_example():
    out = run("--info")
    assert out.returncode == 0, out.stderr
    assert "sine_lstm.keras" in out.stdout and "LSTM layers: 2; input size 1" in out.stdout
    assert "stored as i,f,c,o (Keras 3" in out.stdout


def test_ambiguous_file_fails_with_the_option_to_pass_instead_of_waiting_for_a_dialog(tmp_path):
    """Nobody can answer the "which LSTM?" dialog of --screenshot: it must not wait forever."""
    two = ROOT / "tests" / "fixtures" / "torch" / "two_lstms.pt"
    env = {"XDG_CONFIG_HOME": str(tmp_path)}  # keep the test's recent files out of the user's
    out = run(str(two), "--screenshot", str(tmp_path / "shot.png"), env_extra=env, timeout=60)
    assert out.returncode == 2
    assert "--option prefix=encoder" in out.stderr and "one of: encoder, decoder" in out.stderr
    info = run(str(two), "--info")
    assert info.returncode == 2 and "--option prefix=encoder" in info.stderr


def test_info_into_a_closed_pipe_exits_quietly():
    """``lstmviz m.h5 --info | head -1``: the reader leaving early is not a crash."""
    code = (
        "import io, sys\n"
        "class Closed(io.TextIOBase):\n"
        "    def write(self, s):\n"
        "        raise BrokenPipeError(32, 'Broken pipe')\n"
        "    def fileno(self):\n"
        "        return 1\n"
        "sys.stdout = Closed()\n"
        "from lstmviz.cli import main\n"
        "sys.stderr.write(f'RC {main([\"--info\"])}')\n"
    )
    out = run(code=code)
    assert "RC 0" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_unknown_option_is_one_line_not_a_traceback():
    r = run(str(TF1_BASIC), "--option", "foo=1", "--info")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "does not take foo=" in r.stderr and "forget_bias=" in r.stderr


def test_a_bad_sequence_file_fails_the_screenshot_run(tmp_path):
    png = tmp_path / "s.png"
    r = run(str(TORCH_PLAIN), "--sequence", str(tmp_path / "missing.csv"), "--screenshot", str(png))
    assert r.returncode == 2
    assert "missing.csv: no such file" in r.stderr


def test_token_ids_file_is_embedded_for_an_embedding_model(tmp_path):
    import lstmviz

    path = ROOT / "tests" / "fixtures" / "keras" / "embedding_weights.h5"
    ids = tmp_path / "tokens.csv"
    ids.write_text("3\n0\n6\n2\n")
    out = tmp_path / "trace.npz"
    r = run(str(path), "--sequence", str(ids), "--export-trace", str(out))
    assert r.returncode == 0, r.stderr
    model = lstmviz.load_model(path)
    with np.load(out) as data:
        np.testing.assert_allclose(data["x"], model.embedding[[3, 0, 6, 2]], rtol=1e-6)
    ids.write_text("3\n9\n")  # outside the vocabulary of 7
    r = run(str(path), "--sequence", str(ids), "--export-trace", str(out))
    assert r.returncode == 2 and "token id 9 at step 1 is outside the vocabulary 0..6" in r.stderr


def _one_line_error(r: subprocess.CompletedProcess, code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    line = r.stderr[:-1]
    assert line.startswith("lstmviz: ") and line.isprintable(), line
    return line


def test_special_and_hostile_files_are_one_line_never_a_traceback(tmp_path):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    line = _one_line_error(run("--info", str(fifo), timeout=30))
    assert "FIFO" in line and "regular file" in line
    assert "character device" in _one_line_error(run("--info", "/dev/zero", timeout=30))
    named = tmp_path / "bad\n\x1b[31mred.pt"  # the file name is file content too
    named.write_bytes(b"")
    line = _one_line_error(run("--info", str(named)))
    assert "bad\\n\\x1b[31mred.pt: file is empty" in line
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F" * 840_067, "shape": [1], "data_offsets": [0, 4]}})
    long = tmp_path / "long.safetensors"
    long.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 4)
    line = _one_line_error(run("--info", str(long)))
    assert len(line) <= 600 and "…" in line


def test_a_fifo_as_sequence_is_one_line(tmp_path):
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    out = tmp_path / "t.npz"
    r = run(str(TORCH_PLAIN), "--sequence", str(fifo), "--export-trace", str(out), timeout=30)
    assert "special file" in _one_line_error(r)
    typo = tmp_path / "typo.csv"
    typo.write_text("1,2,x\n" + "0.5,0.5,0.5\n" * 4)
    r = run(str(TORCH_PLAIN), "--sequence", str(typo), "--export-trace", str(out), timeout=30)
    assert "typo.csv: line 1: 'x' is not a number (column 3)" in _one_line_error(r)
