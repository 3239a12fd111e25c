""" "Shapes explained": why each stored array has its shape, and the parameter count with this
model's numbers, in the framework's own layout (TF1 stacks x and h rows, PyTorch keeps two biases).

Qt-free text; the GUI's shapes panel renders it. ``summary.param_explanation`` gives the
canonical view; this module answers "why is *my file's* kernel ``(76, 256)``?".
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import (
    LSTMLayer,
    RecurrentDirection,
    StoredPart,
    StoredRole,
    StoredTensor,
)
from lstmviz.core.stored_layout import forget_bias_folded
from lstmviz.core.summary import activations_text


def _gsym(G: int) -> str:
    """``G·H`` in symbols: ``4·H`` (LSTM), ``3·H`` (GRU), ``H`` (plain RNN)."""
    return f"{G}·H" if G > 1 else "H"


def _sym(t: StoredTensor, stacked: bool, X: str, H: int, G: int = 4) -> str:
    """The shape of ``t`` in symbols D, H, P (X is the width of h: H or P; G the cell's gate
    blocks). A TF1 GRU array holding some blocks (``t.blocks``) counts only those."""
    part = t.part
    is_vector = part in (StoredPart.BIAS, StoredPart.PEEPHOLE)
    lead = "dirs, " if len(t.shape) == 3 or (is_vector and len(t.shape) == 2) else ""
    g = len(t.blocks) or G
    if t.role in (StoredRole.W_x, StoredRole.W_h):
        inner = f"D + {X}" if stacked else ("D" if part is StoredPart.INPUT_WEIGHTS else X)
        return f"({lead}{inner}, {_gsym(g)})" if t.transposed else f"({lead}{_gsym(g)}, {inner})"
    if part is StoredPart.BIAS:
        if len(t.shape) == 2 and t.shape[0] == 2 and t.shape[-1] == g * H:  # Keras GRU (2, 3H)
            return f"(2, {_gsym(g)})"
        two = bool(t.shape) and t.shape[-1] == 2 * g * H
        return f"({lead}{_gsym(2 * g if two else g)},)"
    if t.role is StoredRole.P:
        return f"({lead}3·H)"
    if part is StoredPart.PEEPHOLE:
        return "(H,)"
    if part is StoredPart.PROJECTION:
        return "(H, P)" if t.transposed else "(P, H)"
    return str(tuple(t.shape))


def _rows(t: StoredTensor, D: int, P: int) -> int:
    """How many rows of a stacked kernel ``t`` holds: D for the x side, P (= H) for h."""
    return D if t.part is StoredPart.INPUT_WEIGHTS else P


def _bias_count(w: RecurrentDirection) -> int:
    """How many G·H bias vectors the file keeps (PyTorch, ONNX, CuDNNLSTM, Keras GRU with
    reset_after: 2): the stored bias values of one direction over G·H."""
    G, H = w.cell.n_gates, w.hidden_size
    values = sum(
        int(np.prod(t.shape)) // t.shared_by
        for t in w.provenance.stored
        if t.part is StoredPart.BIAS and t.offset == 0
    )
    return max(1, round(values / (G * H)))


#: Canonical arrays whose dimensions are named by role, not guessed from their sizes (with
#: D = H a ``W_x (4H, D)`` would otherwise read ``4H·H``): G is the cell's gate blocks, X the
#: width of h (H, or P under a projection).
_ROLE_DIMS = {"W_x": ("G", "D"), "W_h": ("G", "X"), "W_p": ("P", "H")}


def _dim(role: str, size: int, w: RecurrentDirection) -> tuple[str, int]:
    """A dimension in symbols: ``3H`` (G·H), ``H``, ``P``, ``D``; by size when the array is
    not one of ``_ROLE_DIMS`` (biases, peepholes, a new cell's arrays), else as a number."""
    G, H, D, P = w.cell.n_gates, w.hidden_size, w.input_size, w.output_size
    gh = f"{G}H" if G > 1 else "H"
    named = {"G": (gh, G * H), "D": ("D", D), "H": ("H", H), "P": ("P", P)}
    named["X"] = named["P"] if getattr(w, "W_p", None) is not None else named["H"]
    if role in named and named[role][1] == size:
        return named[role][0], size
    for sym, value in (named["G"], named["H"], named["P"], named["D"]):
        if value == size:
            return sym, size
    return str(size), size


def canonical_count(w: RecurrentDirection) -> tuple[str, str, int]:
    """``(formula, numbers, total)`` of the parameters lstmviz keeps, one term per canonical
    array of the direction (``array_fields`` but the initial states), so it is ``n_params``
    for every cell: a GRU's ``3H·D + 3H·H + 3H + 3H`` (``b_x`` and ``b_h`` kept apart), an
    LSTM's ``4H·D + 4H·H + 4H`` (+ ``H`` per peephole, ``4H·P + P·H`` with a projection)."""
    formula, numbers, total = [], [], 0
    for name in w.array_fields:
        arr = getattr(w, name, None)
        if arr is None or name in ("h0", "c0"):
            continue
        roles = _ROLE_DIMS.get(name, ("",) * arr.ndim)
        dims = [_dim(role, n, w) for role, n in zip(roles, arr.shape, strict=False)]
        formula.append("·".join(sym for sym, _ in dims))
        numbers.append("·".join(str(n) for _, n in dims))
        total += int(arr.size)
    return " + ".join(formula), " + ".join(numbers), total


def _numbers(sym: str, D: int, H: int, P: int) -> str:
    return sym.replace("D", str(D)).replace("H", str(H)).replace("P", str(P))


def shapes_explained(
    w: RecurrentDirection, layer: LSTMLayer | None = None, direction: int = 0
) -> list[str]:
    """Lines: sizes, each stored array's shape in symbols and numbers, the total, what was done."""
    prov = w.provenance
    D, H = w.input_size, w.hidden_size
    P = w.output_size
    G = w.cell.n_gates
    W_p = getattr(w, "W_p", None)
    X = "P" if W_p is not None else "H"
    lines = [
        f"D = {D} input feature{'s' if D != 1 else ''}, H = {H} unit{'s' if H != 1 else ''}"
        + (f", P = {P} projected outputs" if W_p is not None else "")
    ]
    lines.append(
        f"Framework: {prov.framework}" + (f" — {prov.source_format}" if prov.source_format else "")
    )
    names: dict[str, list[StoredTensor]] = {}
    for t in prov.stored:
        names.setdefault(t.name, []).append(t)
    if names:
        lines.append("Stored arrays:")
    for name, ts in names.items():
        t = ts[0]
        stacked = {s.role for s in ts} >= {StoredRole.W_x, StoredRole.W_h}
        sym = _sym(t, stacked, X, H, G)
        size = int(np.prod(t.shape))
        num = _numbers(sym, D, H, P).replace("dirs", str(t.shape[0]))
        lines.append(f"  {name}: {sym} = {num} = {tuple(t.shape)} → {size:,} values")
        if stacked:
            rows = ", ".join(
                f"rows {s.offset}…{s.offset + _rows(s, D, P) - 1} → {s.role}"
                for s in sorted(ts, key=lambda s: s.offset)
            )
            lines.append(f"    x rows and h rows stacked in one kernel: {rows}")
    nb = _bias_count(w)
    terms = ["D·H", f"{X}·H", "H" if nb == 1 else f"{nb}·H"]
    nums = [f"{D}·{H}", f"{P}·{H}", f"{H}" if nb == 1 else f"{nb}·{H}"]
    k = f"{G}·" if G > 1 else ""
    formula = f"{k}({' + '.join(terms)})"
    numbers = f"{k}({' + '.join(nums)})"
    total = G * (D * H + P * H + nb * H)
    if w.has_peepholes:
        formula, numbers, total = formula + " + 3·H", numbers + f" + 3·{H}", total + 3 * H
    if W_p is not None:
        formula, numbers, total = formula + " + P·H", numbers + f" + {P}·{H}", total + P * H
    sizes = [int(np.prod(ts[0].shape)) for ts in names.values()]
    parts = f"{' + '.join(f'{n:,}' for n in sizes)} = " if len(sizes) > 1 else ""
    canon = canonical_count(w)
    if prov.stored:
        lines.append(f"Parameters (stored): {formula} = {numbers} = {parts}{total:,}")
    else:  # no file layout to explain: the direction's own arrays
        formula, numbers, total = canon
        lines.append(f"Parameters (canonical): {formula} = {numbers} = {total:,}")
    if nb == 2 and "b_h" in w.array_fields:
        lines.append(
            "  two bias vectors are stored and kept apart: the reset gate acts on W_h·h + b_h"
        )
    elif nb == 2:
        lines.append(
            f"  two bias vectors are stored; lstmviz sums them, so the canonical count is "
            f"{w.n_params:,}"
        )
    if total != w.n_params and not (nb == 2 and "b_h" not in w.array_fields):
        lines.append(f"  lstmviz keeps {canon[0]} = {canon[1]} = {canon[2]:,} (canonical)")
    if prov.stored and total != w.n_stored_params:
        lines.append(f"  (the file's arrays hold {w.n_stored_params:,} values)")
    if layer is not None and layer.bidirectional:
        lines.append(f"  × 2 directions = {2 * total:,} for the layer")
    lines.append(
        f"Gate order: stored {','.join(prov.gate_order)} → shown {','.join(w.cell.gate_names)}"
        f" (canonical block k = stored block perm[k], perm = {list(prov.perm)})"
    )
    fb = forget_bias_folded(prov)
    if fb:
        lines.append(f"Forget bias {fb:g} is added at run time, not stored: folded into b_f")
    if prov.transforms:
        lines.append("Transforms applied by the reader:")
        lines += [f"  • {tr}" for tr in prov.transforms]
    if prov.settings:
        lines.append("Settings:")
        for s in prov.settings:
            src = "ASSUMED default" if s.assumed else "read from file"
            lines.append(f"  • {s.name} = {s.value} ({src})" + (f" — {s.note}" if s.note else ""))
    lines.append(f"Activations: {activations_text(w)}")
    lines += [f"Note: {n}" for n in prov.notes]
    return lines
