"""Export ▸ Trace as NPZ/CSV… as a job: writing every array of a large run (hundreds of MB,
compressed) takes seconds, so it runs on the pool while the window stays live; the note bar
says where it went, or why it failed, when it is done."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from lstmviz.core.export import save_trace_csv, save_trace_npz
from lstmviz.core.trace import Trace
from lstmviz.workspace import Job, Workspace
from lstmviz.workspace.files import FILE_COST


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> list[Path]:
    """``*.npz``: every recorded array, named; ``*.csv`` one table; else a folder of CSVs."""
    if str(path).lower().endswith(".npz"):
        return [save_trace_npz(trace, path)]
    return save_trace_csv(trace, path)


def export_trace(workspace: Workspace, path: str | os.PathLike[str], wait: bool = False) -> Job:
    """Write the current run to ``path`` in a job; a NOTE says where, an ERROR why not."""
    trace = workspace.trace
    if trace is None:
        raise ValueError("nothing to export: no model or sequence yet")

    def done(paths: list[Path] | None, error: BaseException | None) -> None:
        if error is not None or not paths:
            workspace.fail(f"trace not exported: {error}", error, "export")
            return
        where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
        workspace.say(f"Trace exported to {where}")

    name = Path(path).name
    return workspace.submit(
        "export", f"exporting {name}", lambda job: write_trace(trace, path), done, FILE_COST, wait
    )


def refusal(trace: Trace, kind: str) -> str | None:
    """Why a long run cannot be exported as ``kind``, in a note that fits the note bar (the
    core's message, with its script advice, was cut at "or a range of …"), or None. Said
    before the file dialog: a 10⁶-step run had the user pick a file to hear it refused."""
    if not getattr(trace, "bounded", False):
        return None
    if kind != "npz":
        return f"Not exported: a run of {trace.n_steps:,} steps keeps only checkpoints; use NPZ"
    from lstmviz.core.bounded_export import EXPORT_LIMIT, export_bytes

    size = export_bytes(trace)  # type: ignore[arg-type]
    if size <= EXPORT_LIMIT:
        return None
    return (
        f"Not exported: {trace.n_steps:,} steps would take {size / 2**30:,.1f} GiB as NPZ, over"
        f" the {EXPORT_LIMIT / 2**30:.0f} GiB lstmviz streams from a long run; export fewer steps"
    )


def ask_export_trace(parent: QWidget, workspace: Workspace, kind: str) -> None:
    if workspace.trace is None:
        return
    why = refusal(workspace.trace, kind)
    if why is not None:
        workspace.fail(why, kind="export")
        return
    filt = "NumPy archive (*.npz)" if kind == "npz" else "CSV table (*.csv)"
    path, _ = QFileDialog.getSaveFileName(parent, "Export trace", f"trace.{kind}", filt)
    if path:
        export_trace(workspace, path)
