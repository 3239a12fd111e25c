"""What an export wrote: the files, a one-line summary, notes a user must know, and code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExportResult:
    """``summary`` is the CLI's one line; ``code`` builds the target model and loads the file
    (Keras, PyTorch) or runs it (ONNX Runtime, the NumPy script)."""

    target: str
    paths: tuple[Path, ...]
    summary: str
    notes: tuple[str, ...] = ()
    code: str = ""

    @property
    def path(self) -> Path:
        return self.paths[0]
