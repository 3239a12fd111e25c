"""A reader is a name, a content sniffer and a loader; the list of readers is the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lstmviz.core.model import LSTMModel
from lstmviz.io.probe import Probe


@dataclass(frozen=True)
class Reader:
    """``sniff`` looks at content only, is cheap and never raises; ``load`` returns a model
    or raises LoadError. ``priority``: higher is tried first when several sniff true."""

    name: str
    sniff: Callable[[Probe], bool]
    load: Callable[..., LSTMModel]
    priority: int = 0
    options: tuple[str, ...] = ()  # keyword options the loader understands

    def __call__(self, probe: Probe, **options: Any) -> LSTMModel:
        return self.load(probe, **options)
