"""The one QObject that turns Debugger callbacks into Qt signals.

The Debugger stays Qt-free (usable from scripts and tests); views connect to these signals,
one handler per kind of change.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from lstmviz.core.debugger import Change, Debugger


class DebuggerBridge(QObject):
    """Re-emits ``Change`` flags as signals; ``detach()`` stops listening."""

    step_changed = Signal(int)
    breakpoints_changed = Signal()
    hit_changed = Signal()
    selection_changed = Signal()
    trace_changed = Signal()

    def __init__(self, debugger: Debugger, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.debugger = debugger
        self.detach = debugger.subscribe(self._forward)

    def _forward(self, change: Change) -> None:
        # A new trace first, so views rebuild before they are asked to show a step.
        if Change.TRACE in change:
            self.trace_changed.emit()
        if Change.SELECTION in change:
            self.selection_changed.emit()
        if Change.STEP in change:
            self.step_changed.emit(self.debugger.step)
        if Change.BREAKPOINTS in change:
            self.breakpoints_changed.emit()
        if Change.HIT in change:
            self.hit_changed.emit()
