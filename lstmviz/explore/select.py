"""Select: the units that express a hypothesis about a range (LSTMVis' "select" step).

A user marks a range they believe means something ("inside the brackets") and a threshold; the
units whose value stays at or above the threshold at every step of the range are the hypothesis'
units. "Off just before / after" keeps only units that are below the threshold at each of the
``off_before`` steps before the range and the ``off_after`` steps after it, i.e. units that switch
on with the range and off with it rather than being on everywhere. Steps before a document starts
count as off (the state is zero there); the window never reaches into a neighbouring document.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from lstmviz.explore.index import at_least

DEFAULT_THRESHOLD = 0.3  # LSTMVis' default activation threshold


def _units_array(units: npt.ArrayLike) -> np.ndarray:
    arr = np.unique(np.asarray(units, dtype=np.int64).ravel())
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class UnitSet:
    """A hypothesis: ``units`` (sorted, unique int64) and how they were chosen.

    Editable by making a new one: ``with_units``, ``adding``, ``removing`` (the GUI's unit list
    edits go through these, so every selection stays a value).
    """

    units: np.ndarray
    start: int
    stop: int
    threshold: float = DEFAULT_THRESHOLD
    off_before: int = 0
    off_after: int = 0
    quantity: str = "h"
    edited: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _units_array(self.units))
        if self.units.size and self.units[0] < 0:
            raise ValueError(f"unit {self.units[0]}: units count from 0")
        if self.stop <= self.start:
            raise ValueError(f"empty range [{self.start}, {self.stop})")

    def __len__(self) -> int:
        return int(self.units.size)

    def __contains__(self, unit: object) -> bool:
        return bool(np.isin(unit, self.units).all())

    @property
    def length(self) -> int:
        return self.stop - self.start

    def with_units(self, units: npt.ArrayLike) -> UnitSet:
        return replace(self, units=_units_array(units), edited=True)

    def adding(self, *units: int) -> UnitSet:
        return self.with_units(np.concatenate([self.units, np.asarray(units, dtype=np.int64)]))

    def removing(self, *units: int) -> UnitSet:
        return self.with_units(np.setdiff1d(self.units, np.asarray(units, dtype=np.int64)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnitSet):
            return NotImplemented
        return np.array_equal(self.units, other.units) and (
            self.start,
            self.stop,
            self.threshold,
            self.off_before,
            self.off_after,
            self.quantity,
        ) == (
            other.start,
            other.stop,
            other.threshold,
            other.off_before,
            other.off_after,
            other.quantity,
        )

    def __hash__(self) -> int:
        return hash((self.units.tobytes(), self.start, self.stop, self.threshold))


def select(
    states: object,
    start: int,
    stop: int,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    off_before: int = 0,
    off_after: int = 0,
    quantity: str = "h",
) -> UnitSet:
    """Units of ``states.values(quantity)`` at or above ``threshold`` at every position of
    ``[start, stop)`` (global corpus positions), and below it at each of the ``off_before``
    positions before and ``off_after`` after (within the same document)."""
    values = states.values(quantity)  # type: ignore[attr-defined]
    corpus = states.corpus  # type: ignore[attr-defined]
    N = values.shape[0]
    if not 0 <= start < stop <= N:
        raise ValueError(f"range [{start}, {stop}) is not inside the corpus of {N:,} positions")
    if off_before < 0 or off_after < 0:
        raise ValueError("off_before and off_after count steps: they must be >= 0")
    on = np.all(at_least(values[start:stop], threshold), axis=0)
    d0, _ = corpus.locate(start)
    d1, _ = corpus.locate(stop - 1)
    lo = max(int(corpus.doc_starts[d0]), start - off_before)
    hi = min(int(corpus.doc_starts[d1 + 1]), stop + off_after)
    if lo < start:
        on &= ~np.any(at_least(values[lo:start], threshold), axis=0)
    if stop < hi:
        on &= ~np.any(at_least(values[stop:hi], threshold), axis=0)
    return UnitSet(
        np.flatnonzero(on), start, stop, float(threshold), off_before, off_after, quantity
    )
