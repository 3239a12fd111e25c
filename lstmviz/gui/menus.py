"""The main window's menus and file dialogs: File (open, recent, screenshot, quit), View, Help.

Kept apart from ``main_window`` so the window module is about state and signals; every action
calls a public ``MainWindow`` method, so menus add no behaviour of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from lstmviz.core.cells import CELLS, LSTM_CELL

if TYPE_CHECKING:
    from lstmviz.gui.main_window import MainWindow

MODEL_FILTERS = ";;".join(
    [
        "All supported (*.keras *.h5 *.hdf5 *.pt *.pth *.bin *.ckpt *.safetensors *.onnx *.index"
        " *.meta *.data-* checkpoint *.npz *.npy)",
        "Keras (*.keras *.h5 *.hdf5)",
        "PyTorch (*.pt *.pth *.bin *.ckpt *.safetensors)",
        "TensorFlow 1 checkpoint (*.index *.meta *.data-* checkpoint)",
        "ONNX (*.onnx)",
        "NumPy arrays (*.npz *.npy)",
        "All files (*)",
    ]
)
SEQUENCE_FILTERS = "Sequences (*.csv *.txt *.tsv *.npy *.npz);;All files (*)"
ABOUT = """<h3>lstmviz</h3><p>A desktop debugger for LSTM internals: weights cut into gate
blocks, and a step-through of every gate. Drop a weights file or a TF checkpoint folder on the
window to open it.</p>"""
CONVENTIONS = """<p>lstmviz shows every LSTM in one canonical form: <b>W_x (4H, D)</b>,
<b>W_h (4H, H)</b>, <b>b (4H,)</b> with row blocks <b>i, f, g, o</b> (input, forget, candidate,
output); all biases summed; a runtime forget bias folded into b_f.</p>
<table border=1 cellpadding=3>
<tr><th>framework</th><th>stored</th><th>order</th></tr>
<tr><td>Keras</td><td>kernel [D, 4H], recurrent_kernel [H, 4H]</td><td>i, f, c, o</td></tr>
<tr><td>TensorFlow 1</td><td>kernel [D + H, 4H] (x rows, then h rows)</td><td>i, j, f, o</td></tr>
<tr><td>PyTorch</td><td>weight_ih [4H, D], weight_hh [4H, H], 2 biases</td><td>i, f, g, o</td></tr>
<tr><td>ONNX</td><td>W [dirs, 4H, D], R [dirs, 4H, H], B [dirs, 8H]</td><td>i, o, f, c</td></tr>
</table><p>Use <i>View ▸ As stored in the file</i> to see the file's own layout.</p>"""


def _other_cells() -> str:
    """The other cells' canonical blocks and stored orders, from their descriptions."""
    rows = []
    for cell in CELLS:
        if cell is LSTM_CELL:
            continue
        n = cell.n_gates
        blocks = ", ".join(f"<b>{g.name}</b> ({g.long_name})" for g in cell.gates)
        orders = "; ".join(
            f"{fw} {','.join(o.names)}" for fw, o in cell.orders.items() if fw != "canonical"
        )
        variant = f" ({cell.variant})" if cell.variant else ""
        rows.append(
            f"<li>{cell.name}{variant}: W_x ({n if n > 1 else ''}H, D), blocks {blocks}; "
            f"stored {orders}</li>"
        )
    return f"<p>Other cells, each in its own canonical form:</p><ul>{''.join(rows)}</ul>"


CONVENTIONS += _other_cells()


def _action(window: MainWindow, menu: QMenu, text: str, slot: Callable, shortcut=None) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(shortcut)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(window: MainWindow) -> tuple[QMenu, QAction]:
    """Create the menu bar; returns (the Open recent menu, the stored-layout action)."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    _action(
        window, file_menu, "&Open model…", lambda: ask_model(window), QKeySequence.StandardKey.Open
    )
    _action(window, file_menu, "Open checkpoint &folder…", lambda: ask_folder(window))
    _action(window, file_menu, "Open &sequence…", lambda: ask_sequence(window))
    recent = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    _action(window, file_menu, "Save screens&hot…", lambda: ask_screenshot(window))
    file_menu.addSeparator()
    _action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    view_menu = bar.addMenu("&View")
    stored = _action(
        window,
        view_menu,
        "As &stored in the file",
        lambda checked: window.workspace.set_options(stored_order=checked),
        "Ctrl+T",
    )
    stored.setCheckable(True)
    view_menu.addSeparator()
    _action(window, view_menu, "&Weights", lambda: window.tabs.setCurrentIndex(0), "Ctrl+1")
    _action(window, view_menu, "&Debugger", lambda: window.tabs.setCurrentIndex(1), "Ctrl+2")
    view_menu.addAction(window.tree_dock.toggleViewAction())
    view_menu.addAction(window.side_dock.toggleViewAction())

    help_menu = bar.addMenu("&Help")
    _action(
        window,
        help_menu,
        "&Conventions",
        lambda: QMessageBox.information(window, "LSTM conventions", CONVENTIONS),
    )
    _action(
        window,
        help_menu,
        "&About lstmviz",
        lambda: QMessageBox.about(window, "About lstmviz", ABOUT),
    )
    return recent, stored


def fill_recent_menu(window: MainWindow, menu: QMenu, files: list[str]) -> None:
    """Newest first, Ctrl+Shift+1… on the first few; a missing file is shown, not hidden."""
    menu.clear()
    for k, path in enumerate(files):
        p = Path(path)
        text = f"{p.name or path}   ({p.parent})"  # the folder tells two model.pt apart
        action = menu.addAction(f"&{k + 1} {text}" if k < 9 else text)
        action.setData(path)
        action.setToolTip(path)
        action.setStatusTip(path)
        if k < 9:
            action.setShortcut(QKeySequence(f"Ctrl+Shift+{k + 1}"))
        action.triggered.connect(lambda _checked=False, p=path: window.open_model(p))
    if files:
        menu.addSeparator()
        menu.addAction("Clear list", window.clear_recent_files)
    menu.setEnabled(bool(files))


def ask_model(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(
        window, "Open model (LSTM, GRU, RNN)", window.settings.last_directory(), MODEL_FILTERS
    )
    if path:
        window.settings.set_last_directory(Path(path).parent)
        window.open_model(path)


def ask_folder(window: MainWindow) -> None:
    path = QFileDialog.getExistingDirectory(
        window, "Open TensorFlow checkpoint folder", window.settings.last_directory()
    )
    if path:
        window.settings.set_last_directory(path)
        window.open_model(path)


def ask_sequence(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(
        window, "Open input sequence", window.settings.last_directory(), SEQUENCE_FILTERS
    )
    if path:
        window.open_sequence(path, wait=False)  # read in a worker; the window paints on


def ask_screenshot(window: MainWindow) -> None:
    path, _ = QFileDialog.getSaveFileName(window, "Save screenshot", "lstmviz.png", "PNG (*.png)")
    if path:
        window.grab().save(path)
