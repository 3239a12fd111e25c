"""Which LSTMs of a Keras model lstmviz runs when they do not all feed each other.

A functional model may hold LSTMs on parallel branches (two towers over one input), fed by a
second model input (a seq2seq decoder), or after a layer lstmviz cannot run. Each such LSTM
starts a chain of its own; lstmviz runs one chain, so when a model has several the caller
picks one with ``layer=<name>`` (``ChoiceRequired`` otherwise, which the window turns into a
choice dialog, as PyTorch's ``prefix=``). The chosen LSTM runs from its own input: the chain
from its branch's first LSTM down to it, or, when a layer lstmviz cannot run sits on that path,
from the chosen LSTM itself.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

from lstmviz.io.choices import may_ask
from lstmviz.io.errors import ChoiceRequired
from lstmviz.io.keras.config import LSTM_KINDS
from lstmviz.io.keras.graph import MODEL_INPUT
from lstmviz.io.keras.guard import printable
from lstmviz.io.keras.layers import FoundLayer, Source

_CHOICE: contextvars.ContextVar[str | None] = contextvars.ContextVar("keras_layer", default=None)


def cell_word(f: FoundLayer) -> str:
    """How a message names a recurrent layer: LSTM (also CuDNNLSTM), GRU, SimpleRNN."""
    return "LSTM" if f.base_kind in LSTM_KINDS else f.base_kind.removeprefix("CuDNN")


def kind_word(words: Sequence[str]) -> str:
    """What messages call several recurrent layers: their one kind (``LSTM``, ``GRU``), else
    ``recurrent``, so that an all-LSTM model's messages read as they always have."""
    kinds = set(words)
    return kinds.pop() if len(kinds) == 1 else "recurrent"


@contextlib.contextmanager
def choosing(layer: object) -> Iterator[None]:
    """Make ``layer=`` (an LSTM's name) the choice ``build_model`` follows in this load."""
    token = _CHOICE.set(None if layer is None else str(layer).strip())
    try:
        yield
    finally:
        _CHOICE.reset(token)


def chosen() -> str | None:
    return _CHOICE.get()


class Graph:
    """Functional wiring between found layers, by node id."""

    def __init__(self, found: Sequence[FoundLayer]) -> None:
        self.by_node = {f.wiring.node: f for f in found if f.wiring is not None}
        self.limit = len(found) + 1
        self._ends: dict[str, str | None] = {}  # non-LSTM node → where its data comes from

    def end(self, f: FoundLayer) -> str | None:
        """Where ``trace(f)`` ends, without building the path: each non-LSTM node's answer is
        kept, so many LSTMs fed through one long stack of layers cost one walk, not one
        each (a crafted config of 10,000 of each would otherwise take minutes)."""
        walked: list[str] = []
        wiring, end = f.wiring, None
        for _ in range(self.limit):
            if wiring is None or wiring.source is None:
                break
            if wiring.source == MODEL_INPUT:
                end = MODEL_INPUT
                break
            if wiring.source in self._ends:
                end = self._ends[wiring.source]
                break
            g = self.by_node.get(wiring.source)
            if g is None:
                break
            if g.is_lstm:
                end = g.wiring.node if wiring.source_output == 0 and g.wiring else None
                break
            walked.append(wiring.source)
            wiring = g.wiring
        for node in walked:
            self._ends[node] = end
        return end

    @staticmethod
    def wired(f: FoundLayer) -> bool:
        return f.wiring is not None and f.wiring.source is not None

    def trace(self, f: FoundLayer) -> tuple[list[FoundLayer], str | None]:
        """Non-LSTM layers between ``f`` and what feeds it (nearest first), and the node it
        ends at: an LSTM (only its main output counts), the model input, or None."""
        path: list[FoundLayer] = []
        wiring = f.wiring
        for _ in range(self.limit):
            if wiring is None or wiring.source is None:
                return path, None
            if wiring.source == MODEL_INPUT:
                return path, MODEL_INPUT
            g = self.by_node.get(wiring.source)
            if g is None:
                return path, None
            if g.is_lstm:
                return path, g.wiring.node if wiring.source_output == 0 and g.wiring else None
            path.append(g)
            wiring = g.wiring
        return path, None  # a cycle: not a real model

    def describe(self, end: str | None, last: str) -> str:
        if end == MODEL_INPUT:
            return f"its input comes from a model input, not from {last!r}"
        g = self.by_node.get(end) if end is not None else None
        if g is not None:
            return f"its input comes from {g.name!r}, not from {last!r}"
        return f"its input does not come from {last!r}"


def starts(found: Sequence[FoundLayer], graph: Graph) -> list[int]:
    """Indices of the LSTMs that begin a chain: the first LSTM, each LSTM whose data does
    not come from another LSTM (a model input, a branch off a non-LSTM layer), and each
    second LSTM fed by the same one (a fork)."""
    out: list[int] = []
    fed: set[str] = set()
    for i, f in enumerate(found):
        if not f.is_lstm:
            continue
        if not graph.wired(f):
            if not out:
                out.append(i)
            continue
        end = graph.end(f)
        if end is None or end == MODEL_INPUT or end not in graph.by_node or end in fed:
            out.append(i)
        else:
            fed.add(end)
    return out


def lineage(found: Sequence[FoundLayer], graph: Graph, at: int) -> list[int]:
    """Indices of the LSTMs feeding ``found[at]``, from its branch's first LSTM down to it."""
    index = {f.wiring.node: i for i, f in enumerate(found) if f.wiring is not None}
    out, seen = [at], {at}
    for _ in range(len(found)):
        f = found[out[-1]]
        if not graph.wired(f):
            break
        end = graph.end(f)
        k = index.get(end) if end is not None else None
        if k is None or k in seen:
            break
        out.append(k)
        seen.add(k)
    return out[::-1]


def pick(found: Sequence[FoundLayer], graph: Graph, src: Source, wanted: str | None) -> int | None:
    """The index of the LSTM ``layer=`` names; None when no choice is needed (one chain).
    Raises ``ChoiceRequired`` when several chains exist and none is named, or the name is
    not an LSTM of the file."""
    heads = starts(found, graph)
    lstms = [f.name for f in found if f.is_lstm]
    if wanted is None:
        if len(heads) < 2:
            return None
        names = tuple(found[i].name for i in heads)
        if not may_ask():
            return None  # the first chain, as Keras files always opened (notes name the rest)
        word = kind_word([cell_word(found[i]) for i in heads])
        raise ChoiceRequired(
            f"{src.file}: {src.container} has {len(names)} {word} branches that do not feed "
            f"each other ({_listed(names)}); pick one with layer=",
            option="layer",
            choices=names,
        )
    hit = next((i for i, f in enumerate(found) if f.name == wanted and f.is_lstm), None)
    if hit is None:
        other = next((f for f in found if f.name == wanted), None)
        word = kind_word([cell_word(f) for f in found if f.is_lstm])
        noun = "recurrent layer" if word == "recurrent" else word  # "an LSTM", "a GRU"
        what = "is not a layer of it"
        if other is not None:
            what = f"is a {other.display_kind}, not {'an' if noun == 'LSTM' else 'a'} {noun}"
        raise ChoiceRequired(
            f"{src.file}: layer={printable(wanted, 60)!r} {what}; its {noun}s are {_listed(lstms)}",
            option="layer",
            choices=tuple(lstms),
        )
    return hit


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(repr(printable(n, 40)) for n in names[:8])
    return shown + (f", … ({len(names)} in all)" if len(names) > 8 else "")
