"""The weights as the file holds them: stored gate order, orientation and stacking.

Split from ``stored_layout`` (which re-exports ``stored_panels``): that module maps single
weights between the canonical and the stored layout, this one draws whole stored arrays.
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import LSTMDirection, Provenance, RecurrentDirection, StoredPart
from lstmviz.core.provenance import StoredTensor
from lstmviz.core.stored_layout import (
    _MATRIX_ROLES,
    Cell,
    Panel,
    _bias_fields,
    _bias_tensors,
    _block_rows,
    _canonical,
    _fmt,
    _lead,
    _projection_panel,
    canonical_panels,
    forget_bias_folded,
    stored_ref,
    stored_rows,
)


def _stored_block_labels(prov: Provenance, blocks: tuple[int, ...] = ()) -> tuple[str, ...]:
    """Stored block s named as the file names it, with its canonical gate when different;
    only ``blocks`` when the array holds only those."""
    labels = []
    for s, name in enumerate(prov.gate_order):
        if blocks and s not in blocks:
            continue
        k = list(prov.perm).index(s) if s in prov.perm else s
        canon = prov.shown_as[k] if k < len(prov.shown_as) else name
        labels.append(name if name == canon else f"{name} (= {canon})")
    if blocks:
        labels = [labels[sorted(blocks).index(b)] for b in blocks]
    return tuple(labels)


def _stored_matrix_panel(
    w: RecurrentDirection, name: str, ts: list[StoredTensor], direction: int
) -> Panel:
    prov, H = w.provenance, w.hidden_size
    rows = stored_rows(prov, H)
    transposed = ts[0].transposed
    keep = _block_rows(ts[0], H)  # the stored rows this array holds (TF1 GRU: some blocks)
    parts = []
    for t in ts:
        a = np.asarray(getattr(w, t.role.canonical), dtype=np.float64)
        s = np.empty_like(a)
        s[rows] = a
        if keep is not None:
            s = s[keep]
        parts.append((t, s.T if transposed else s))
    n_rows = len(rows) if keep is None else len(keep)
    n_in = max(t.offset + (p.shape[0] if transposed else p.shape[1]) for t, p in parts)
    data = np.full((n_in, n_rows) if transposed else (n_rows, n_in), np.nan)
    for t, p in parts:
        if transposed:
            data[t.offset : t.offset + p.shape[0], :] = p
        else:
            data[:, t.offset : t.offset + p.shape[1]] = p
    by_offset = sorted(parts, key=lambda tp: tp[0].offset)

    def cell(r: int, c: int) -> Cell | None:
        if not (0 <= r < data.shape[0] and 0 <= c < data.shape[1]):
            return None
        srow, pos = (c, r) if transposed else (r, c)
        owner = next((t for t, _ in reversed(by_offset) if t.offset <= pos), None)
        if owner is None or np.isnan(data[r, c]):
            return None
        gate, unit = _canonical(prov, H, srow if keep is None else int(keep[srow]))
        idx = (*_lead(owner, 2, direction), r, c)
        return Cell(
            name,
            owner.role,
            gate,
            unit,
            pos - owner.offset,
            _fmt(owner.name, idx),
            float(data[r, c]),
        )

    order = ",".join(prov.gate_order)
    title = f"{name}  {tuple(ts[0].shape)}"
    del order  # the block labels and the caption say the order; titles stay short
    bands = ()
    if len(parts) > 1:
        bands = tuple(
            (t.offset, f"{'x' if t.part is StoredPart.INPUT_WEIGHTS else 'h'} ({t.role})")
            for t, _ in by_offset
        )
    x_side = ts[0].part is StoredPart.INPUT_WEIGHTS
    in_axis = "input (x then h)" if len(parts) > 1 else ("input x" if x_side else "h")
    gate_axis_label = "stored gate block · unit"
    axes = (in_axis, gate_axis_label) if transposed else (gate_axis_label, in_axis)
    labels = _stored_block_labels(prov, ts[0].blocks)
    return Panel(name, title, data, 1 if transposed else 0, H, labels, axes, cell, bands)


def _stored_bias_panel(
    w: RecurrentDirection,
    ts: list[StoredTensor],
    transposed: bool,
    direction: int,
    field: str = "b",
) -> Panel:
    """The bias ``field`` in stored gate order (the GRU's ``b_x`` and ``b_h`` one panel each)."""
    prov, H = w.provenance, w.hidden_size
    n = len(prov.perm)
    b = np.asarray(getattr(w, field), dtype=np.float64).copy()
    fb = forget_bias_folded(prov) if isinstance(w, LSTMDirection) else 0.0
    b[H : 2 * H] -= fb  # canonical f block: what the file holds before the runtime forget bias
    s = np.empty_like(b)
    s[stored_rows(prov, H)] = b
    data = s[None, :] if transposed else s[:, None]
    key = "bias" if field == "b" else field

    def cell(r: int, c: int) -> Cell | None:
        srow = c if transposed else r
        if not (0 <= r < data.shape[0] and 0 <= c < data.shape[1]):
            return None
        gate, unit = _canonical(prov, H, srow)
        row = prov.shown_as.index(gate) * H + unit
        ref = stored_ref(w, field, row, None, direction)
        return Cell(key, field, gate, unit, None, ref, float(s[srow]))

    names = " + ".join(dict.fromkeys(t.name for t in ts)) or field
    title = f"{names}  ({n * H},)"
    if field != "b":
        title = f"{field}: {title}"
    elif len(ts) > 1 or any(t.shape and t.shape[-1] == 2 * n * H for t in ts):
        title += "  shown summed"
    if fb:
        title += f"  (forget bias {fb:g} not stored)"
    axes = ("", "stored gate block · unit") if transposed else ("stored gate block · unit", "")
    return Panel(
        key, title, data, 1 if transposed else 0, H, _stored_block_labels(prov), axes, cell
    )


def _stored_peephole_panel(w: LSTMDirection, transposed: bool, direction: int) -> Panel:
    """Peepholes lined up with the stored gate blocks (and oriented like them), so a unit's
    peephole sits beside its kernel rows; the candidate block has none (NaN, drawn empty)."""
    prov, H = w.provenance, w.hidden_size
    canon = next(p for p in canonical_panels(w, direction) if p.key == "peep")
    values = np.asarray(canon.data, dtype=np.float64)[:, 0]
    s = np.empty_like(values)
    s[stored_rows(prov, H)] = values
    data = s[None, :] if transposed else s[:, None]
    to_canonical = np.argsort(stored_rows(prov, H))

    def cell(r: int, c: int) -> Cell | None:
        srow = c if transposed else r
        if not (0 <= r < data.shape[0] and 0 <= c < data.shape[1]):
            return None
        return canon.cell(int(to_canonical[srow]), 0)

    axes = ("", "stored gate block · unit") if transposed else ("stored gate block · unit", "")
    labels = _stored_block_labels(prov)
    return Panel("peep", "peepholes", data, 1 if transposed else 0, H, labels, axes, cell)


def stored_panels(w: RecurrentDirection, direction: int = 0) -> list[Panel]:
    """The arrays as the file holds them: stored gate order, orientation and stacking.

    Arrays the canonical form summed (two biases) are shown summed, in stored order; a runtime
    forget bias folded into ``b_f`` is taken out again. Without recorded stored tensors this is
    the canonical picture.
    """
    prov = w.provenance
    matrices = [t for t in prov.stored if t.role in _MATRIX_ROLES]
    if not matrices or prov.interleaved:
        return canonical_panels(w, direction)
    groups: dict[str, list[StoredTensor]] = {}
    for t in matrices:
        groups.setdefault(t.name, []).append(t)
    panels = [_stored_matrix_panel(w, name, ts, direction) for name, ts in groups.items()]
    biases = _bias_tensors(prov)
    for name in _bias_fields(w):
        panels.append(_stored_bias_panel(w, biases, matrices[0].transposed, direction, name))
    if not isinstance(w, LSTMDirection):
        return panels
    if w.has_peepholes:
        panels.append(_stored_peephole_panel(w, matrices[0].transposed, direction))
    if w.W_p is not None:
        panels.append(_projection_panel(w, direction, stored=True))
    return panels
