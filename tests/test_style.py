"""The house style is checked, not hoped for: ``ruff check`` and ``ruff format --check`` clean."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args):
    r = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_test_files_have_unique_names():
    """pytest imports test files by basename (rootdir/prepend mode, which lets tests import
    shared helpers such as ``test_tf1_bad_files``): two ``test_x.py`` in different folders
    stop the whole run at collection."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert len(seen) > 50 and clashes == [], clashes
