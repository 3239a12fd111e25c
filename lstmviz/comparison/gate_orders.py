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
            name = _framework_name(prov.framework, known.name)
            break
    return GateOrder(name, gates, letters)


def _framework_name(framework: str, fallback: str) -> str:
    low = framework.lower()
    for key, name in (
        ("keras", "Keras"),
        ("torch", "PyTorch"),
        ("onnx", "ONNX"),
        ("tensorflow", "TF1"),
        ("madmom", "madmom"),
    ):
        if key in low:
            return name
    return fallback


def written_gates(sigma: tuple[int, ...], read: GateOrder) -> tuple[str, ...]:
    """The canonical order the blocks were really written in: stored position ``p`` (which
    Y reads as gate ``read.gates[p]``) holds A's gate ``σ`` of it."""
    return tuple(GATES[sigma[GATES.index(g)]] for g in read.gates)


def name_orders(gates: tuple[str, ...]) -> list[GateOrder]:
    """Every known order with these canonical gates in this order (Keras and PyTorch share)."""
    return [k for k in KNOWN if k.gates == gates]


def describe_permutation(sigma: tuple[int, ...], b: LSTMDirection) -> tuple[str, str]:
    """``(detail, fix)`` for ``B[k] = A[σ(k)]`` in the vocabulary of B's file and the order
    the arrays were written in."""
    read = read_order(b)
    written = written_gates(sigma, read)
    known = [k for k in name_orders(written) if k.gates != read.gates]
    if known:
        names = "/".join(k.name for k in known)
        source = f"{names} order {known[0].spelled}"
    else:
        source = "order " + ",".join(written) + " (no framework's)"
    detail = f"B is stored in {source} read as {read.name} order {read.spelled}"
    idx = [written.index(g) for g in read.gates]
    fix = (
        f"reorder the gate blocks of B's kernels and biases to {read.name} order "
        f"{read.spelled} before writing: stored blocks [{', '.join(map(str, idx))}] "
        f"of the {source.split(' (')[0]} arrays"
    )
    return detail, fix


def block_mapping(sigma: tuple[int, ...]) -> str:
    """'B's f block = A's g block, B's g block = A's f block' for the blocks that moved."""
    moved = [f"B's {GATES[k]} block = A's {GATES[s]} block" for k, s in enumerate(sigma) if s != k]
    return ", ".join(moved)
