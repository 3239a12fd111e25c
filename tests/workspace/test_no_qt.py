"""The workspace is Qt-free: scripts and notebooks drive it without a display."""

import subprocess
import sys


def test_workspace_imports_no_qt():
    code = (
        "import sys, pkgutil, importlib, lstmviz.workspace as w\n"
        "for m in pkgutil.walk_packages(w.__path__, 'lstmviz.workspace.'):\n"
        "    importlib.import_module(m.name)\n"
        "qt = ('PySide6', 'shiboken6', 'pyqtgraph')\n"
        "print(','.join(sorted(k for k in sys.modules if k.split('.')[0] in qt)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt imported by the workspace: {out.stdout}"
