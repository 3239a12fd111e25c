"""Pair A's layers with B's by shape and order.

Layers pair when they have the same input width, hidden size, output width and number of
directions; among those the pairing keeps order and pairs as many as it can (a longest common
subsequence), preferring layer k with layer k. Directions inside a pair pair by index. The
user can re-pair by hand (``compare(..., pairs=[(0, 0), (1, 2)])``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lstmviz.core.model import LSTMLayer, LSTMModel

Pairs = tuple[tuple[int, int], ...]


class PairList(tuple):
    """``Comparison.pairs``: (A layer, B layer) tuples that compare equal to the same pairs
    written as a list (``c.pairs == [(0, 0), (1, 2)]``, the form ``pairs=`` takes) as well as
    a tuple, so a script can check the pairing the way it wrote it."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            try:
                return tuple(self) == tuple(tuple(p) for p in other)
            except TypeError:
                return False
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = tuple.__hash__


def shape_of(layer: LSTMLayer) -> tuple[int, int, int, int, str]:
    """(D, H, output width, directions, cell kind): what must agree for two layers to pair."""
    d = layer.directions[0]
    kind = getattr(d, "kind", "LSTM")
    return (d.input_size, d.hidden_size, d.output_size, len(layer.directions), kind)


def compatible(la: LSTMLayer, lb: LSTMLayer) -> bool:
    return shape_of(la) == shape_of(lb)


def pair_layers(a: LSTMModel, b: LSTMModel) -> Pairs:
    """The order-keeping pairing with the most pairs, diagonal pairs preferred on ties."""
    n, m = len(a.layers), len(b.layers)
    ok = [[compatible(a.layers[i], b.layers[j]) for j in range(m)] for i in range(n)]
    # best[i][j] = (pairs, diagonal pairs) for a.layers[i:], b.layers[j:]
    best = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            options = [best[i + 1][j], best[i][j + 1]]
            if ok[i][j]:
                p, d = best[i + 1][j + 1]
                options.append((p + 1, d + (i == j)))
            best[i][j] = max(options)
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if ok[i][j]:
            p, d = best[i + 1][j + 1]
            if (p + 1, d + (i == j)) == best[i][j]:
                out.append((i, j))
                i, j = i + 1, j + 1
                continue
        if best[i + 1][j] == best[i][j]:
            i += 1
        else:
            j += 1
    return tuple(out)


def check_pairs(a: LSTMModel, b: LSTMModel, pairs: Iterable[tuple[int, int]]) -> Pairs:
    """Hand-made pairs, validated: indices in range, each layer used once, shapes equal."""
    out = tuple((int(i), int(j)) for i, j in pairs)
    for i, j in out:
        if not (0 <= i < len(a.layers) and 0 <= j < len(b.layers)):
            raise ValueError(
                f"pair ({i}, {j}) is out of range: A has {len(a.layers)} layers, "
                f"B has {len(b.layers)}"
            )
        if not compatible(a.layers[i], b.layers[j]):
            raise ValueError(
                f"A's layer {i} {_spell(a.layers[i])} and B's layer {j} {_spell(b.layers[j])} "
                "have different shapes; pair layers of the same shape"
            )
    if len({i for i, _ in out}) != len(out) or len({j for _, j in out}) != len(out):
        raise ValueError(f"pairs {list(out)} use a layer twice")
    return out


def _spell(layer: LSTMLayer) -> str:
    D, H, P, n, kind = shape_of(layer)
    proj = "" if P == H else f", P={P}"
    return f"({kind}, D={D}, H={H}{proj}, {n} direction{'s' * (n > 1)})"
