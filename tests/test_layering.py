"""core and io must never import Qt: they are used from scripts, notebooks and --info."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

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


# Import contracts (in the spirit of import-linter's "layers" contract, checked on the source so a
# lazy import inside a function counts too): core ← io ← {comparison, port, explore} ← workspace
# ← gui, never the other way. Packages of one rank may not import each other either.
PACKAGE = Path(lstmviz.__file__).parent
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("io",),
    ("comparison", "port", "explore"),
    ("workspace",),
    ("gui",),
)


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _layer_violations() -> list[str]:
    bad = []
    for rank, group in enumerate(LAYERS):
        above = [name for upper in LAYERS[rank + 1 :] for name in upper]
        for layer in group:
            folder = PACKAGE / layer
            files = sorted(folder.rglob("*.py")) if folder.is_dir() else []
            files += [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else []
            siblings = [name for name in group if name != layer]
            forbidden = {f"lstmviz.{name}" for name in above + siblings}
            for path in files:
                for name in _imported_modules(path):
                    if any(name == h or name.startswith(h + ".") for h in forbidden):
                        bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return bad


def test_layers_import_only_downwards():
    assert (PACKAGE / "core" / "compute.py").exists()
    assert _layer_violations() == []


def test_io_packages_are_grouped_by_framework():
    """Readers live in one package per framework; the io top level keeps only shared plumbing."""
    top = sorted(p.stem for p in (PACKAGE / "io").glob("*.py"))
    assert top == ["__init__", "choices", "convert", "errors", "probe", "registry"], top
    for pkg in ("keras", "tensorflow", "torch", "onnx", "arrays", "madmom", "wire"):
        assert (PACKAGE / "io" / pkg / "__init__.py").exists(), pkg


def test_layer_contract_detects_an_upward_import(tmp_path, monkeypatch):
    """The contract check notices core importing io (guards against a test that cannot fail)."""
    fake = tmp_path / "lstmviz"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("def f():\n    from lstmviz.io import load_model\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = _layer_violations()
    assert found and all(v.startswith("core/bad.py imports lstmviz.io") for v in found)
