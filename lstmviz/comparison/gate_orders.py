"""Each framework's gate order, so a permutation found between two models can be named in
the vocabulary of the files involved ("stored in ONNX order i,o,f,c, read as i,f,g,o").

A porting mistake that permutes gates is always the same story: the arrays were written in
one framework's order X and read in another's order Y. Reading gives ``B[k] = A[σ(k)]``;
knowing Y (B's own file says it) and σ recovers X, which is then named when it is a known
order.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmviz.core.model import GATES, LSTMDirection


@dataclass(frozen=True)
class GateOrder:
    """A storage order: ``gates`` are canonical names (i, f, g, o) in stored order and
    ``letters`` the framework's own names for them (Keras' c, TF1's j)."""

    name: str
    gates: tuple[str, ...]
    letters: tuple[str, ...]

    @property
    def spelled(self) -> str:
        return ",".join(self.letters)


#: Known storage orders, most common first (Keras and PyTorch share one).
KNOWN: tuple[GateOrder, ...] = (
    GateOrder("PyTorch", ("i", "f", "g", "o"), ("i", "f", "g", "o")),
    GateOrder("Keras", ("i", "f", "g", "o"), ("i", "f", "c", "o")),
    GateOrder("ONNX", ("i", "o", "f", "g"), ("i", "o", "f", "c")),
    GateOrder("TF1", ("i", "g", "f", "o"), ("i", "j", "f", "o")),
    GateOrder("Caffe", ("i", "f", "o", "g"), ("i", "f", "o", "g")),
)


def read_order(b: LSTMDirection) -> GateOrder:
    """The order B's file was read in, from its provenance (canonical block k = stored block
    ``perm[k]``); a direction built in memory reads as i,f,g,o."""
    prov = b.provenance
    perm = tuple(prov.perm)
    if sorted(perm) != [0, 1, 2, 3] or len(prov.gate_order) != 4:
        perm, letters = (0, 1, 2, 3), GATES
    else:
        letters = tuple(prov.gate_order)
    gates = tuple(GATES[perm.index(p)] for p in range(4))
    name = prov.framework.split(" ")[0] if prov.framework not in ("", "unknown") else "i,f,g,o"
    for known in KNOWN:
        if known.gates == gates and known.letters == letters:
            name = known.name
            break
    return GateOrder(name, gates, letters)


def written_gates(sigma: tuple[int, ...], read: GateOrder) -> tuple[str, ...]:
    """The canonical order the blocks were really written in: stored position ``p`` (which
    Y reads as gate ``read.gates[p]``) holds A's gate ``σ`` of it."""
    return tuple(GATES[sigma[GATES.index(g)]] for g in read.gates)


def name_orders(gates: tuple[str, ...]) -> list[GateOrder]:
    """Every known order with these canonical gates in this order (Keras and PyTorch share)."""
    return [k for k in KNOWN if k.gates == gates]


def interpretations(sigma: tuple[int, ...], b: LSTMDirection) -> list[tuple[GateOrder, GateOrder]]:
    """Every (written, read) pair of known orders that produces ``B[k] = A[σ(k)]``, the most
    likely first: read in B's own file order, then read as i,f,g,o; Caffe's order last. A
    model changed in memory keeps its source's provenance, so B's file order is a hint only."""
    own = read_order(b)
    reads = [own] + [k for k in KNOWN if k.gates != own.gates or k.letters != own.letters]
    found = []
    for read in reads:
        written = written_gates(sigma, read)
        for w in name_orders(written):
            if w.gates != read.gates:
                found.append((w, read))

    def rank(pair: tuple[GateOrder, GateOrder]) -> tuple[int, int, int]:
        w, r = pair
        caffe = "Caffe" in (w.name, r.name)
        return (caffe, r is not own, r.gates != GATES)

    found.sort(key=rank)
    # Keras and PyTorch share an order: name them together once
    merged: list[tuple[GateOrder, GateOrder]] = []
    for w, r in found:
        if any(w.gates == mw.gates and r.gates == mr.gates for mw, mr in merged):
            continue
        merged.append((w, r))
    return merged


def _names(order: GateOrder) -> str:
    names = [k.name for k in KNOWN if k.gates == order.gates]
    if order.name not in names:
        names = [order.name]
    return "/".join(names)


def _both(order: GateOrder) -> str:
    return f"{_names(order)} order {order.spelled}"


def _read(order: GateOrder) -> str:
    """'i,f,g,o (PyTorch/Keras order)': the letters first, as a user would write them."""
    return f"{order.spelled} ({_names(order)} order)"


def describe_permutation(sigma: tuple[int, ...], b: LSTMDirection) -> tuple[str, str]:
    """``(detail, fix)`` for ``B[k] = A[σ(k)]`` in the vocabulary of the frameworks: which
    order the blocks were written in and which they were read as."""
    pairs = interpretations(sigma, b)
    if not pairs:
        read = read_order(b)
        written = written_gates(sigma, read)
        detail = f"B is stored in order {','.join(written)} (no framework's) read as {_read(read)}"
        idx = [written.index(g) for g in read.gates]
        fix = (
            f"reorder the gate blocks of B's kernels and biases to {read.spelled} before "
            f"writing: take stored blocks [{', '.join(map(str, idx))}]"
        )
        return detail, fix
    (w, r), rest = pairs[0], pairs[1:3]
    detail = f"B is stored in {_both(w)} read as {_read(r)}"
    if rest:
        detail += "; or " + "; or ".join(f"{_both(w2)} read as {_read(r2)}" for w2, r2 in rest)
    idx = [w.gates.index(g) for g in r.gates]
    fix = (
        f"reorder the gate blocks from {w.name} order {w.spelled} to {r.name} order "
        f"{r.spelled} before writing (stored blocks [{', '.join(map(str, idx))}]), for "
        "every kernel and bias of this direction"
    )
    return detail, fix


def block_mapping(sigma: tuple[int, ...]) -> str:
    """'B's f block = A's g block, B's g block = A's f block' for the blocks that moved."""
    moved = [f"B's {GATES[k]} block = A's {GATES[s]} block" for k, s in enumerate(sigma) if s != k]
    return ", ".join(moved)
