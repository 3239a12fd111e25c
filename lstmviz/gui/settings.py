"""The one QSettings wrapper: recent files and window layout. Tests pass an isolated QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


class AppSettings:
    """Typed access to the few things lstmviz remembers between runs."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._q = qsettings if qsettings is not None else QSettings("lstmviz", "lstmviz")

    @classmethod
    def at(cls, path: str | Path) -> AppSettings:
        """Settings stored in one INI file (tests, portable installs)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    def recent_files(self) -> list[str]:
        value = self._q.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns a lone entry as a plain string
            value = [value]
        return [str(v) for v in value or []]

    def add_recent_file(self, path: str | Path) -> list[str]:
        """Put ``path`` first, drop duplicates, keep at most MAX_RECENT."""
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self._q.setValue("recent_files", files[:MAX_RECENT])
        self._q.sync()
        return files[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self._q.setValue("recent_files", [])

    def last_directory(self) -> str:
        return str(self._q.value("last_directory", ""))

    def set_last_directory(self, path: str | Path) -> None:
        self._q.setValue("last_directory", str(path))

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self._q.value("window/geometry"), self._q.value("window/state")

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._q.setValue("window/geometry", geometry)
        self._q.setValue("window/state", state)
        self._q.sync()
