"""ONNX ``GRU`` and ``RNN`` nodes → canonical GRU and plain-RNN layers (CONVENTIONS.md §7).

``GRU`` stores ``W [dirs, 3H, D]``, ``R [dirs, 3H, H]`` with blocks z, r, h and
``B [dirs, 6H]`` (``Wb`` then ``Rb``); index 0 of ``dirs`` is the forward direction. The blocks
are reordered to r, z, n (``GRU_CELL.stored_order("onnx")``) and the two biases kept apart:
``linear_before_reset=1`` is the reset-after GRU (torch exports so), the default 0 the
reset-before one, in which ``Rbh`` is added outside the reset exactly as ``GRUDirection``'s
``b_h`` is. ``RNN`` stores ``W [dirs, H, D]``, ``R [dirs, H, H]``, ``B [dirs, 2H]`` (summed).
Activations: two per direction for the GRU (f for z and r, g for the candidate; default
Sigmoid, Tanh), one for the RNN (default Tanh), read as onnxruntime reads them. ``clip`` clips
every activation's argument (``gate_clip``), as for the LSTM node.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import LSTMLayer, MergeMode, OutputOrder, Provenance, Setting, StoredTensor
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.convert import reorder_gates
from lstmviz.io.errors import LoadError
from lstmviz.io.onnx.layer import _text
from lstmviz.io.onnx.layer import activations as onnx_activations

#: ONNX ops read here, and their defaults.
OPS = frozenset({"GRU", "RNN"})
_DEFAULTS = {"GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}
_ROLES = {"GRU": "f (z and r), g (candidate)", "RNN": "f (the state)"}


def activations(
    op: str, attrs: dict[str, Any], dirs: int, where: str
) -> tuple[list[tuple[Activation, ...]], Setting]:
    """The activations of each direction of a GRU or RNN node (``layer.activations`` with
    the op's defaults and roles)."""
    return onnx_activations(attrs, dirs, where, _DEFAULTS[op], _ROLES[op])


def clip_of(attrs: dict[str, Any], where: str) -> tuple[float | None, Setting]:
    """``clip`` (a positive float) and how it is shown."""
    clip = attrs.get("clip")
    if clip is not None and not clip > 0:
        raise LoadError(f"{where} has clip={clip}; a clip threshold must be positive")
    note = "clips each activation's argument"
    return (None if clip is None else float(clip)), Setting("clip", clip, clip is None, note)


def gru_rnn_layer(
    op: str,
    name: str,
    where: str,
    arrays: dict[str, tuple[np.ndarray, str]],
    direction: str,
    attrs: dict[str, Any],
    base: Provenance,
    dtypes: dict[str, str],
) -> LSTMLayer:
    """One layer from an ONNX GRU or RNN node's ``arrays`` {"W", "R", optional "B"}; ``base``
    holds framework, format, settings, notes and transforms already done."""
    dirs = 2 if direction == "bidirectional" else 1
    n = 3 if op == "GRU" else 1
    W, R = arrays["W"][0], arrays["R"][0]
    if W.ndim != 3 or W.shape[0] != dirs or W.shape[1] % n or W.shape[1] == 0:
        raise LoadError(f"{where}: W has shape {W.shape}, expected ({dirs}, {n}H, D)")
    H = W.shape[1] // n
    if int(attrs.get("hidden_size", H)) != H:
        raise LoadError(
            f"{where}: hidden_size={attrs['hidden_size']} but W has shape {W.shape}, "
            f"expected ({dirs}, {n} * hidden_size, D)"
        )
    if R.shape != (dirs, n * H, H):
        raise LoadError(f"{where}: R has shape {R.shape}, expected {(dirs, n * H, H)}")
    acts, act_setting = activations(op, attrs, dirs, where)
    clip, clip_setting = clip_of(attrs, where)

    def record(role: str, key: str) -> StoredTensor:
        arr, stored_name = arrays[key]
        dtype = dtypes.get(stored_name, str(arr.dtype))
        return StoredTensor(role, stored_name, arr.shape, dtype=dtype, shared_by=dirs)

    stored = [record("W_x", "W"), record("W_h", "R")]
    transforms = list(base.transforms)
    notes = list(base.notes)
    settings = [act_setting, clip_setting, *base.settings]
    if "B" in arrays:
        B = arrays["B"][0]
        if B.shape != (dirs, 2 * n * H):
            raise LoadError(f"{where}: B has shape {B.shape}, expected {(dirs, 2 * n * H)}")
        stored.append(record("b", "B"))
    else:
        B = np.zeros((dirs, 2 * n * H), dtype=W.dtype)
        notes.append("B absent: biases = 0 (ONNX default)")
    cell = GRU_CELL if op == "GRU" else RNN_CELL
    order = cell.stored_order("onnx")
    reset_after = False
    if op == "GRU":
        lbr = attrs.get("linear_before_reset", 0)
        reset_after = bool(int(lbr))
        settings.append(
            Setting(
                "linear_before_reset",
                int(lbr),
                assumed="linear_before_reset" not in attrs,
                note="1: reset after (r ⊙ (R_h·h + Rb_h)); 0: reset before (R_h·(r ⊙ h))",
            )
        )
        transforms += ["gate blocks reordered z,r,h → r,z,n", "B split: b_x = Wb, b_h = Rb"]
    elif "B" in arrays:
        transforms.append("B split into Wb + Rb and summed")
    provenance = dataclasses.replace(
        base,
        gate_order=order.names,
        perm=order.perm,
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=tuple(settings),
        notes=tuple(notes),
    )
    directions: list[GRUDirection | RNNDirection] = []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        try:
            if op == "GRU":
                f_act, g_act = acts[d]
                directions.append(
                    GRUDirection(
                        W_x=reorder_gates(W[d], order.perm),
                        W_h=reorder_gates(R[d], order.perm),
                        b_x=reorder_gates(B[d, : 3 * H], order.perm),
                        b_h=reorder_gates(B[d, 3 * H :], order.perm),
                        reset_after=reset_after,
                        act_gate=f_act,
                        act_cand=g_act,
                        gate_clip=clip,
                        reverse=reverse,
                        provenance=provenance,
                    )
                )
            else:
                with np.errstate(all="ignore"):  # NaN/Inf weights are shown, not refused
                    b = B[d, :H].astype(np.float64) + B[d, H:]
                directions.append(
                    RNNDirection(
                        W_x=np.array(W[d]),
                        W_h=np.array(R[d]),
                        b=b,
                        act_cand=acts[d][0],
                        gate_clip=clip,
                        reverse=reverse,
                        provenance=provenance,
                    )
                )
        except ValueError as exc:
            raise LoadError(f"{where}: cannot be an ONNX {op} ({exc})") from exc
    # ONNX Y is [seq, dirs, batch, H]: the reverse direction is written in time order.
    return LSTMLayer(
        name=name,
        directions=tuple(directions),
        merge_mode=MergeMode.CONCAT,
        output_order=OutputOrder.TIME,
        kind=op if dirs == 1 else f"{op} (bidirectional)",
    )


def node_layer(folder: Any, node: Any, name: str, where: str, framework: str) -> LSTMLayer:
    """The layer of one ONNX GRU or RNN node: weights folded as for an LSTM node
    (initializers, Constants, layout-only ops, float16 widened), constant initial_h read."""
    from lstmviz.io.onnx.fold import input_notes
    from lstmviz.io.onnx.model import SOURCE_FORMAT, WIDE, _weights
    from lstmviz.io.onnx.proto import quote
    from lstmviz.io.onnx.states import initial_states

    op, attrs = node.op_type, node.attrs
    direction = _text(attrs.get("direction", b"forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise LoadError(
            f"{where} has direction {direction!r}; expected forward|reverse|bidirectional"
        )
    dirs = 2 if direction == "bidirectional" else 1
    owned: set[str] = set()
    arrays = _weights(folder, node, where, name, {}, owned)
    arrays.pop("P", None)  # input 7 is an LSTM's peepholes; a GRU/RNN node has none
    folder.charge_layer([a for a, _ in arrays.values()], where)
    W = arrays["W"][0]
    n = 3 if op == "GRU" else 1
    H = W.shape[1] // n if W.ndim == 3 and W.shape[1] % n == 0 else 0
    dtypes = {}
    for _, stored_name in arrays.values():
        if (init := folder.initializer(stored_name)) is not None:
            dtypes[stored_name] = init.dtype_name
    transforms = [f"{d} widened to float32" for d in sorted({*dtypes.values()} - WIDE)]
    folded = [s for _, s in arrays.values() if folder.initializer(s) is None]
    if folded:
        ops = ", ".join(sorted(folder.used_ops)) or "Constant"
        transforms.append(
            f"{', '.join(quote(s, 60) for s in folded)} folded from constants through {ops} nodes"
        )
    if folder.graph.parent is not None:
        transforms.append(f"read from the subgraph {quote(folder.graph.path, 120)}")
    layout = int(attrs.get("layout", 0))
    states = initial_states(folder, node, dirs, H, layout, where) if H else None
    settings = [
        Setting("direction", direction, assumed="direction" not in attrs),
        Setting(
            "layout",
            layout,
            assumed="layout" not in attrs,
            note="arrangement of X/Y only; weights are the same",
        ),
    ]
    base = Provenance(
        framework=framework,
        source_format=SOURCE_FORMAT,
        transforms=(*transforms, *(states.transforms if states else ())),
        settings=(*settings, *(states.settings if states else ())),
        notes=(*input_notes(node), *(states.notes if states else ())),
    )
    layer = gru_rnn_layer(op, name, where, arrays, direction, attrs, base, dtypes)
    if states is None or not states.transforms:
        return layer
    directions = tuple(w.replace(h0=states.h0[d]) for d, w in enumerate(layer.directions))
    return dataclasses.replace(layer, directions=directions)
