"""Where every canonical weight sat in the file: matrices for the weights view, and cell lookup.

The canonical form (``W_x (4H, D)``, gates i, f, g, o) hides how a framework stored the weights:
Keras keeps ``kernel [D, 4H]`` in i,f,c,o; TF1 stacks x rows and h rows into one
``kernel [D + H, 4H]`` in i,j,f,o; ONNX keeps ``W [dirs, 4H, D]`` in i,o,f,c. ``Provenance``
(gate order, ``perm``, and each ``StoredTensor``'s ``transposed``/``offset``) is enough to
rebuild the stored picture from the canonical arrays and to name the exact stored index of any
cell, e.g. ``rnn/lstm_cell/kernel[3, 130]``. Qt-free so it can be tested on its own.

Every cell kind is handled alike: the number of gate blocks is ``len(prov.perm)`` and their
canonical names ``prov.shown_as`` (set by the direction from its cell description), so a GRU's
``kernel [D, 3H]`` in z,r,h or a TF1 GRU's two kernels (``StoredTensor.blocks``) read the same
way; the GRU's two biases ``b_x``/``b_h`` are shown apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import long_name
from lstmviz.core.model import (
    LSTMDirection,
    Provenance,
    RecurrentDirection,
    StoredPart,
    StoredRole,
    StoredTensor,
)

FloatArray = npt.NDArray[np.floating]
_MATRIX_ROLES = (StoredRole.W_x, StoredRole.W_h)
_PEEPHOLES = (StoredRole.p_i, StoredRole.p_f, StoredRole.p_o)
#: Canonical bias fields, and the stored roles each may come from.
_BIAS_FIELDS = ("b", "b_x", "b_h")


@dataclass(frozen=True)
class Cell:
    """One weight under the mouse: what it is in both layouts, and its value."""

    panel: str
    role: str  # "W_x", "W_h", "b", "p_i", "W_p", "b_x", ...
    gate: str | None  # canonical gate i/f/g/o, r/z/n (None for W_p)
    unit: int | None  # row inside the gate block
    column: int | None  # input index: x feature, h unit, or W_p column
    stored: str  # e.g. "lstm/lstm_cell/kernel[3, 130]"
    value: float

    def text(self) -> str:
        """The hover tooltip."""
        where = []
        if self.gate is not None:
            where.append(f"gate {self.gate} ({long_name(self.gate)}), unit {self.unit}")
        elif self.unit is not None:
            where.append(f"row {self.unit}")
        if self.column is not None:
            what = {"W_x": "input x", "W_h": "hidden h"}.get(self.role, "column")
            where.append(f"{what}[{self.column}]")
        return "\n".join(
            [
                f"{self.role}: " + ", ".join(where),
                f"stored: {self.stored}",
                f"value: {self.value:.6g}",
            ]
        )


@dataclass(frozen=True)
class Panel:
    """One heatmap: a 2-D array as displayed (row 0 at the top) plus how to read it.

    ``gate_axis`` 0 means the four gate blocks are row ranges of ``hidden`` rows each, 1 means
    column ranges, None means the array has no gate blocks (projection). ``bands`` split the
    other axis into named parts, e.g. the x rows and h rows of a TF1 kernel.
    """

    key: str
    title: str
    data: FloatArray
    gate_axis: int | None
    hidden: int
    block_labels: tuple[str, ...]
    axis_labels: tuple[str, str]  # (rows, columns)
    cell: Callable[[int, int], Cell | None]
    bands: tuple[tuple[int, str], ...] = ()


# ----------------------------------------------------------------------------- stored indices
def stored_rows(prov: Provenance, H: int) -> npt.NDArray[np.intp]:
    """``rows[r]`` = the stored row (before any transpose) of canonical row ``r`` of a
    ``(n·H, ·)`` array, n the cell's gate blocks (4 for the LSTM)."""
    n = len(prov.perm)
    k = np.repeat(np.arange(n), H)
    u = np.tile(np.arange(H), n)
    perm = np.asarray(prov.perm)
    return n * u + perm[k] if prov.interleaved else perm[k] * H + u


def _canonical(prov: Provenance, H: int, stored_row: int) -> tuple[str, int]:
    """Inverse of ``stored_rows``: (canonical gate, unit) of a stored row."""
    n = len(prov.perm)
    if prov.interleaved:
        slot, unit = stored_row % n, stored_row // n
    else:
        slot, unit = divmod(stored_row, H)
    return prov.shown_as[list(prov.perm).index(slot)], unit


def _block_rows(t: StoredTensor, H: int) -> npt.NDArray[np.intp] | None:
    """Stored rows (all blocks counted) of a tensor holding only some blocks, in its order
    (TF1 GRU ``gates/kernel``: blocks r, u); None when it holds every block."""
    if not t.blocks:
        return None
    return np.concatenate([np.arange(b * H, (b + 1) * H) for b in t.blocks])


def _holding(ts: list[StoredTensor], srow: int, H: int) -> tuple[StoredTensor, int]:
    """The tensor of ``ts`` holding stored row ``srow`` and the row's index inside it."""
    for t in ts:
        rows = _block_rows(t, H)
        if rows is None:
            return t, srow
        hit = np.flatnonzero(rows == srow)
        if hit.size:
            return t, int(hit[0])
    return ts[0], srow


def _tensors(prov: Provenance, *roles: str) -> list[StoredTensor]:
    return [t for t in prov.stored if t.role in roles]


def _bias_tensors(prov: Provenance) -> list[StoredTensor]:
    return [t for t in prov.stored if t.part is StoredPart.BIAS]


def _fmt(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]"


def _lead(t: StoredTensor, ndim: int, direction: int) -> tuple[int, ...]:
    """Index of the leading per-direction axis (ONNX ``[dirs, ...]``), if the tensor has one."""
    return (direction if t.shape[0] > direction else 0,) if len(t.shape) > ndim else ()


def forget_bias_folded(prov: Provenance) -> float:
    """The runtime forget bias the reader added to ``b_f`` (TF1, Haiku), 0 if none."""
    s = prov.setting("forget_bias")
    try:
        return float(s.value) if s is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _cudnn_index(w: RecurrentDirection, role: str, row: int, col: int) -> tuple[int, int]:
    """CuDNNLSTM (CONVENTIONS §3.1): gate k's kernel columns ``kH:(k+1)H`` hold the C-order bytes
    of ``W_x[k] (H, D)`` reinterpreted as ``[D, H]``; the recurrent kernel keeps ``W_h[k]`` as
    stored, ``W_h[kH + u, j] = recurrent[u, kH + j]``. ``k`` is the stored block
    (``perm``): a CuDNNGRU keeps Keras' z, r, h."""
    H, D = w.hidden_size, w.input_size
    k, u = divmod(row, H)
    k = w.provenance.perm[k]
    if role == "W_x":
        r, c = divmod(u * D + col, H)
        return r, k * H + c
    return u, k * H + col


def stored_ref(
    w: RecurrentDirection, role: str, row: int, col: int | None, direction: int = 0
) -> str:
    """The stored name and index of canonical ``role[row, col]`` (``col`` None for vectors)."""
    prov, H = w.provenance, w.hidden_size
    n = len(prov.perm)
    if role in _MATRIX_ROLES:
        ts = _tensors(prov, role)
        cudnn = _tensors(
            prov, StoredRole.KERNEL_CUDNN if role == "W_x" else StoredRole.RECURRENT_CUDNN
        )
        if not ts and cudnn:
            return _fmt(cudnn[0].name, _cudnn_index(w, role, row, col))
        if not ts:
            if prov.stored:  # a layout this module does not know: name the source arrays
                src = [
                    t.name
                    for t in prov.stored
                    if t.role.is_matrix
                    and (t.part is StoredPart.RECURRENT_WEIGHTS) == (role == "W_h")
                ]
                names = ", ".join(dict.fromkeys(src)) or "the file"
                return f"{role}[{row}, {col}] (from {names}; no one-to-one stored index)"
            return f"{role}[{row}, {col}] (file layout not recorded)"
        t, srow = _holding(ts, int(stored_rows(prov, H)[row]), H)
        idx = (col + t.offset, srow) if t.transposed else (srow, col + t.offset)
        return _fmt(t.name, _lead(t, 2, direction) + idx)
    if role in ("b_x", "b_h"):
        return _gru_bias_ref(w, role, row, direction)
    if role == "b":
        ts, srow = _bias_tensors(prov), int(stored_rows(prov, H)[row])
        parts = []
        for t in ts:
            lead = _lead(t, 1, direction)
            if t.shape and t.shape[-1] == 2 * n * H:  # two biases in one array (ONNX B, cuDNN)
                parts += [_fmt(t.name, (*lead, srow)), _fmt(t.name, (*lead, n * H + srow))]
            else:
                t, brow = _holding([t], srow, H)
                parts.append(_fmt(t.name, (*lead, brow)))
        fb = forget_bias_folded(prov)
        if fb and prov.shown_as[row // H] == "f":
            parts.append(f"forget_bias {fb:g} (added at run time, not stored)")
        return " + ".join(parts) if parts else f"b[{row}] (file layout not recorded)"
    if role in _PEEPHOLES:
        ts = _tensors(prov, role)
        if ts:
            return _fmt(ts[0].name, (*_lead(ts[0], 1, direction), row))
        packed = _tensors(prov, StoredRole.P)  # ONNX P [dirs, 3H] in i, o, f
        if packed:
            t = packed[0]
            return _fmt(t.name, (*_lead(t, 1, direction), "iof".index(role[-1]) * H + row))
        return f"{role}[{row}] (file layout not recorded)"
    if role == "W_p":
        ts = _tensors(prov, "W_p")
        if not ts:
            return f"W_p[{row}, {col}] (file layout not recorded)"
        t = ts[0]
        return _fmt(t.name, _lead(t, 2, direction) + ((col, row) if t.transposed else (row, col)))
    return f"{role}[{row}]"


def _gru_bias_ref(w: RecurrentDirection, role: str, row: int, direction: int) -> str:
    """Where canonical ``b_x[row]``/``b_h[row]`` of a GRU sat: its own array (PyTorch
    ``bias_ih``/``bias_hh``, roles b_x/b_h), a row of Keras' ``bias [2, 3H]``, or the first or
    second half of ONNX's ``B [dirs, 6H]`` (role b)."""
    prov, H = w.provenance, w.hidden_size
    n, srow = len(prov.perm), int(stored_rows(prov, H)[row])
    own = _tensors(prov, role)
    if own:
        t, brow = _holding(own, srow, H)
        return _fmt(t.name, (*_lead(t, 1, direction), brow))
    second = role == "b_h"
    singles = []
    for t in _bias_tensors(prov):
        if t.role is not StoredRole.b:
            continue
        if len(t.shape) == 2 and t.shape[0] == 2 and t.shape[-1] == n * H:  # Keras (2, 3H)
            return _fmt(t.name, (int(second), srow))
        if t.shape and t.shape[-1] == 2 * n * H:  # ONNX B: W biases, then R biases
            return _fmt(t.name, (*_lead(t, 1, direction), n * H * second + srow))
        singles.append(t)
    if singles and not second:  # one stored bias (Keras reset_after=False, TF1): b_h is zero
        t, brow = _holding(singles, srow, H)
        return _fmt(t.name, (*_lead(t, 1, direction), brow))
    return f"{role}[{row}] (not stored: zero)" if prov.stored else f"{role}[{row}]"


# ----------------------------------------------------------------------------- canonical panels
def _gate_labels(w: RecurrentDirection) -> tuple[str, ...]:
    return tuple(f"{g.name} {g.long_name}" for g in w.cell.gates)


def _gate_of(w: RecurrentDirection, r: int) -> str:
    return w.cell.gate_names[r // w.hidden_size]


def _matrix_cell(w: RecurrentDirection, key: str, role: str, a: FloatArray, direction: int):
    H = w.hidden_size

    def cell(r: int, c: int) -> Cell | None:
        if not (0 <= r < a.shape[0] and 0 <= c < a.shape[1]):
            return None
        return Cell(
            key, role, _gate_of(w, r), r % H, c, stored_ref(w, role, r, c, direction),
            float(a[r, c]),
        )  # fmt: skip

    return cell


def _vector_cell(
    w: RecurrentDirection, key: str, direction: int, data: FloatArray, roles: dict[int, str]
):
    """Cells of a (n·H, 1) column: ``roles`` maps gate index → role (b, b_x, b_h, or
    p_i/p_f/p_o)."""
    H = w.hidden_size
    n = w.cell.n_gates

    def cell(r: int, c: int) -> Cell | None:
        if not (0 <= r < n * H and c == 0) or r // H not in roles:
            return None
        role, unit = roles[r // H], r % H
        row = r if role in _BIAS_FIELDS else unit
        return Cell(
            key,
            role,
            _gate_of(w, r),
            unit,
            None,
            stored_ref(w, role, row, None, direction),
            float(data[r, 0]),
        )

    return cell


def _bias_fields(w: RecurrentDirection) -> tuple[str, ...]:
    """The direction's canonical bias arrays: ``b`` (LSTM, RNN), ``b_x`` and ``b_h`` (GRU)."""
    return tuple(n for n in _BIAS_FIELDS if n in w.array_fields)


def canonical_panels(w: RecurrentDirection, direction: int = 0) -> list[Panel]:
    """W_x, W_h, b (and peepholes, W_p) as lstmviz computes with them: rows in the cell's
    canonical gate order (i, f, g, o; r, z, n with the GRU's b_x and b_h)."""
    H, D, P = w.hidden_size, w.input_size, w.output_size
    n = w.cell.n_gates
    labels = _gate_labels(w)
    rows = "gate block · unit"
    W_p = getattr(w, "W_p", None)
    h_name = "projected h" if W_p is not None else "h"
    panels = [
        Panel(
            "W_x",
            f"W_x  input kernel  {n * H}×{D}",
            w.W_x,
            0,
            H,
            labels,
            (rows, "input feature x[d]"),
            _matrix_cell(w, "W_x", "W_x", w.W_x, direction),
        ),
        Panel(
            "W_h",
            f"W_h  recurrent kernel  {n * H}×{P}",
            w.W_h,
            0,
            H,
            labels,
            (rows, f"previous {h_name}[j]"),
            _matrix_cell(w, "W_h", "W_h", w.W_h, direction),
        ),
    ]
    for name in _bias_fields(w):
        b = np.asarray(getattr(w, name))[:, None]
        panels.append(
            Panel(
                name,
                f"{name}  {n * H}",
                b,
                0,
                H,
                labels,
                (rows, "bias"),
                _vector_cell(w, name, direction, b, {k: name for k in range(n)}),
            )
        )
    if isinstance(w, LSTMDirection) and w.has_peepholes:
        peep = np.full((4 * H, 1), np.nan)
        roles = {}
        for k, name in ((0, "p_i"), (1, "p_f"), (3, "p_o")):
            p = getattr(w, name)
            if p is not None:
                peep[k * H : (k + 1) * H, 0] = p
                roles[k] = name
        panels.append(
            Panel(
                "peep",
                "peepholes",
                peep,
                0,
                H,
                labels,
                (rows, "none for g"),
                _vector_cell(w, "peep", direction, peep, roles),
            )
        )
    if isinstance(w, LSTMDirection) and w.W_p is not None:
        panels.append(_projection_panel(w, direction, stored=False))
    return panels


def _projection_panel(w: LSTMDirection, direction: int, stored: bool) -> Panel:
    assert w.W_p is not None
    ts = _tensors(w.provenance, "W_p")
    transposed = stored and bool(ts) and ts[0].transposed
    data = w.W_p.T if transposed else w.W_p
    P, H = w.W_p.shape
    title = f"W_p  projection  {P}×{H}"
    if transposed:
        title = f"{ts[0].name}  {tuple(ts[0].shape)}  stored transposed (H, P)"

    def cell(r: int, c: int) -> Cell | None:
        if not (0 <= r < data.shape[0] and 0 <= c < data.shape[1]):
            return None
        pr, pc = (c, r) if transposed else (r, c)
        return Cell(
            "W_p",
            "W_p",
            None,
            pr,
            pc,
            stored_ref(w, "W_p", pr, pc, direction),
            float(w.W_p[pr, pc]),
        )

    axes = ("unit", "projection") if transposed else ("projection", "unit")
    return Panel("W_p", title, data, None, H, (), axes, cell)


def stored_panels(w: RecurrentDirection, direction: int = 0) -> list[Panel]:
    """The arrays as the file holds them (``lstmviz.core.stored_panels``, which builds on
    this module and so is imported when first used)."""
    from lstmviz.core import stored_panels as module

    return module.stored_panels(w, direction)
