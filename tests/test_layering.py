"""core and io must never import Qt: they are used from scripts, notebooks and --info."""

import pkgutil
import subprocess
import sys

import lstmviz.core
import lstmviz.io


def _modules(pkg) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]


def test_core_and_io_import_no_qt():
    modules = [
        "lstmviz",
        "lstmviz.cli",
        "lstmviz.cli_text",
        *_modules(lstmviz.core),
        *_modules(lstmviz.io),
    ]
    assert "lstmviz.core.compute" in modules and "lstmviz.io.probe" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "qt = ('PySide6', 'shiboken6', 'pyqtgraph')\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in qt)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt imported by core/io: {out.stdout}"


def test_layering_check_detects_qt():
    """The check above would notice a Qt import (guards against a test that cannot fail)."""
    code = "import sys, pyqtgraph; print(','.join(k for k in sys.modules if k.startswith('pyqt')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() != ""
