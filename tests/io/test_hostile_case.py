"""The shape of one hostile-file case and the small writers every generator module shares.

``test_hostile_cases_*.py`` hold the generators, one module per family of formats;
``test_hostile_formats.py`` runs them all through ``bounded_load``.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass(frozen=True)
class Case:
    """``make(folder) → path``; ``expect``: "refused" (a one-line refusal) or "bounded" (may
    load); ``check``: run in-process on the path once the child was bounded (the numbers when
    a duplicate is resolved the way the framework resolves it)."""

    attack: str
    reader: str  # the registered reader (``Reader.name``) that must sniff the file
    make: Callable[[Path], Path]
    expect: str = "refused"
    check: Callable[[Path], None] | None = None


# --- zips ------------------------------------------------------------------------------------


def write_zip(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted
        with zipfile.ZipFile(path, "w", method, compresslevel=1) as zf:  # fast to make
            for name, data in members:
                zf.writestr(name, data)
    return path


Bytes = bytes | Callable[[], bytes]  # big contents are made when the case runs
