"""QApplication setup and the windowed half of the command line (``cli.main`` calls ``launch``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lstmviz.gui import display_check

WINDOW_SIZE = (1400, 900)


def _prepare_headless(args: argparse.Namespace) -> None:
    """``--screenshot`` must work on a server: no display → Qt's offscreen platform."""
    if args.screenshot and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def check_display(args: argparse.Namespace) -> int | None:
    """Before any QApplication: an exit code and one line on stderr when no window can open
    (Qt itself would abort with a core dump); None to go on. A headless run that does not need
    a window (``--screenshot``, ``--export-trace``) falls back to Qt's offscreen platform."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:  # already running (tests, an embedding script)
        return None
    verdict = display_check.check()
    if verdict.platform is not None:
        os.environ["QT_QPA_PLATFORM"] = verdict.platform
    if verdict.problem is None:
        return None
    if args.screenshot or args.export_trace:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return None
    print(verdict.problem, file=sys.stderr)
    return display_check.EXIT_CODE


def application():
    """The one QApplication (reused when it exists, e.g. under pytest-qt)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("lstmviz")
    app.setOrganizationName("lstmviz")
    return app


def fit_to_screen(app, size: tuple[int, int]) -> tuple[int, int]:
    """``size`` shrunk to the primary screen's free area: a 1400 × 900 window on a 1280 × 800
    laptop would put the right dock and the status bar off screen."""
    screen = app.primaryScreen()
    if screen is None:
        return size
    free = screen.availableGeometry()
    return min(size[0], free.width()), min(size[1], free.height())


def save_screenshot(window, path: str | Path) -> Path:
    """Render the whole window (menus, docks, status bar) to a PNG."""
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def open_from_args(window, args: argparse.Namespace, options: dict[str, object]) -> bool:
    """Apply PATH, --sequence, --layer and --step to a window; False if the model or the
    sequence the user named failed."""
    from lstmviz.resources import apply_example, default_model_path, default_sequence_path

    try:
        apply_example(args)  # --example NAME: its model and sequence
    except ValueError as exc:
        print(f"lstmviz: {exc}", file=sys.stderr)
        return False
    path = args.path or str(default_model_path())
    model = window.open_model(path, wait=True, **options)
    if model is None:
        return False
    if getattr(args, "example", None):  # a text example's vocabulary, corpus, annotations
        from lstmviz.gui.explore_dock import open_example_extras

        open_example_extras(window, args.example)
    seq = args.sequence or default_sequence_path(path)
    if seq is not None and not window.open_sequence(seq):
        print(f"lstmviz: {window.last_error}", file=sys.stderr)
        if args.sequence:  # the user's own file failed: a screenshot would show another input
            return False
    other = getattr(args, "other", None)  # lstmviz A B: compare mode
    if other and not window.compare_with(other, wait=True):
        print(f"lstmviz: {window.compare.message}", file=sys.stderr)
        return False
    if args.layer is not None:
        n = len(model.layers)
        kinds = {layer.cell.name for layer in model.layers}  # "LSTM", "GRU": what it holds
        word = kinds.pop() if len(kinds) == 1 else "recurrent"
        if not 0 <= args.layer < n:
            print(
                f"lstmviz: --layer {args.layer}: the model has {n} {word} layer"
                f"{'s' if n != 1 else ''} (0–{n - 1}); showing the nearest",
                file=sys.stderr,
            )
        window.select_layer(args.layer)
    if args.step is not None:
        window.go_to_step(args.step)
        window.tabs.setCurrentIndex(1)  # the debugger tab
        if window.debug_panel.current_step != args.step:
            print(
                f"lstmviz: --step {args.step}: the sequence has steps 0–"
                f"{window.debug_panel.trace.n_steps - 1}; showing step "
                f"{window.debug_panel.current_step}",
                file=sys.stderr,
            )
    return True


def launch(args: argparse.Namespace, options: dict[str, object]) -> int:
    """Open the window (or render it to ``--screenshot`` and exit). Returns the exit code."""
    _prepare_headless(args)
    code = check_display(args)
    if code is not None:
        return code
    app = application()
    from lstmviz.gui.main_window import MainWindow

    window = MainWindow()
    window.interactive = not (args.screenshot or args.export_trace)
    window.resize(*WINDOW_SIZE if args.screenshot else fit_to_screen(app, WINDOW_SIZE))
    geometry, state = window.settings.window_state()
    if geometry is not None and not (args.screenshot or args.export_trace):
        # screenshots always use the documented 1400 × 900
        window.restore_layout(geometry, state)
    window.show()
    if window.interactive:  # compile (or load) the numba kernels while the user looks around
        from PySide6.QtCore import QTimer

        from lstmviz.core import compiled

        QTimer.singleShot(0, compiled.prepare_in_background)
    ok = open_from_args(window, args, options)
    if args.screenshot or args.export_trace:
        if window.error_box is not None:
            window.error_box.close()
        code = 0 if ok else 2
        if not ok and window.model is None:
            print(f"lstmviz: {window.last_error}", file=sys.stderr)
        if args.screenshot:
            save_screenshot(window, args.screenshot)
        if ok and args.export_trace:
            from lstmviz.cli_text import run_text

            code = run_text(argparse.Namespace(**{**vars(args), "info": False}), options)
        window.close()
        return code
    return app.exec()
