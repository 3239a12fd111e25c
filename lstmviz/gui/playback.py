"""Play/pause: a QTimer that keeps real time and drops frames instead of queueing them.

Each tick computes which step is *due* from the elapsed time and jumps there, so a slow
repaint makes playback skip steps rather than fall behind. Qt never queues timer events, so
ticks cannot pile up either. Playback stops at the end, or at the first enabled breakpoint
between the current and the due step (like *continue* in a code debugger).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, QTimer, Signal

from lstmviz.core.debugger import Debugger


class Playback(QObject):
    """Drives ``Debugger.go_to`` at ``rate`` steps per second while playing."""

    playing_changed = Signal(bool)

    def __init__(
        self,
        debugger: Debugger,
        parent: QObject | None = None,
        stop: Callable[[], object] | None = None,
    ) -> None:
        """``stop()`` lands on the breakpoint that fired (default: the debugger's own
        run_to_breakpoint; the panel passes the workspace's, which also follows the hit)."""
        super().__init__(parent)
        self._debugger = debugger
        self._stop = stop if stop is not None else debugger.run_to_breakpoint
        self._rate = 10.0
        self._stop_at_breakpoints = True
        self._timer = QTimer(self)
        self._timer.setInterval(1)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._clock = QElapsedTimer()
        self._start_step = 0
        self.frames_shown = 0
        self.frames_dropped = 0

    def set_debugger(self, debugger: Debugger) -> None:
        self.pause()
        self._debugger = debugger

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, steps_per_second: float) -> None:
        """Change speed without a jump: the clock restarts from the current step."""
        self._rate = max(0.1, float(steps_per_second))
        self._timer.setInterval(max(1, int(1000 / min(self._rate, 60.0))))  # repaint <= 60 Hz
        if self.is_playing:
            self._restart_clock()

    def set_stop_at_breakpoints(self, stop: bool) -> None:
        self._stop_at_breakpoints = stop

    @property
    def is_playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        if self.is_playing:
            return
        if self._debugger.at_end:
            self._debugger.first()  # play from the start, as media players do
        self.frames_shown = self.frames_dropped = 0
        self._restart_clock()
        self.set_rate(self._rate)
        self._timer.start()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.is_playing:
            self._timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self.is_playing else self.play()

    def _restart_clock(self) -> None:
        self._clock.start()
        self._start_step = self._debugger.step

    def _on_timer_timeout(self) -> None:
        dbg = self._debugger
        due = min(
            self._start_step + int(self._clock.elapsed() * self._rate / 1000.0), dbg.n_steps - 1
        )
        if due <= dbg.step:
            return
        if self._stop_at_breakpoints:
            fired = np.flatnonzero(dbg.breakpoint_mask()[dbg.step + 1 : due + 1])
            if fired.size:
                self._stop()  # lands on the first one, with its hits
                self.pause()
                return
        self.frames_dropped += due - dbg.step - 1
        self.frames_shown += 1
        dbg.go_to(due)
        if dbg.at_end:
            self.pause()
