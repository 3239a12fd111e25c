"""One LSTM layer from ONNX-layout arrays, and the activation attributes of an ONNX LSTM node.

ONNX stores ``W [dirs, 4H, D]``, ``R [dirs, 4H, H]``, ``B [dirs, 8H]`` (``Wb`` then ``Rb``) and
``P [dirs, 3H]`` with gates in order i, o, f, c (peepholes i, o, f); index 0 of ``dirs`` is the
forward direction. ``onnx_layer`` sums the biases and reorders the blocks to i, f, g, o, keeping
what the file stored in the provenance; ``activations`` reads ``activations`` /
``activation_alpha`` / ``activation_beta`` the way onnxruntime does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.model import (
    LSTMDirection,
    LSTMLayer,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
    freeze,
)
from lstmviz.io.convert import PERMS, reorder_gates, reorder_gates_in_place
from lstmviz.io.errors import LoadError
from lstmviz.io.onnx import quantized

GATE_ORDER = ("i", "o", "f", "c")
PERM = PERMS[GATE_ORDER]
P_ORDER = ("p_i", "p_o", "p_f")  # ONNX peepholes P [dirs, 3H]
#: ONNX activation names (matched case-insensitively, as onnxruntime does) → lstmviz names.
ACTIVATIONS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "hardsigmoid": "hard_sigmoid_ab",
    "affine": "affine",
    "leakyrelu": "leaky_relu",
    "thresholdedrelu": "thresholded_relu",
    "scaledtanh": "scaled_tanh",
    "elu": "elu",
    "softsign": "softsign",
    "softplus": "softplus",
}
#: Which activations consume ``activation_alpha`` / ``activation_beta`` entries (in order).
_USES_ALPHA = {"hardsigmoid", "affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "elu"}
_USES_BETA = {"hardsigmoid", "affine", "scaledtanh"}
#: onnxruntime's values when activation_alpha/beta run out (rnn_helpers.cc); every other
#: function that takes a parameter gets 0 (so a bare ThresholdedRelu has alpha 0, not 1).
_ORT_DEFAULTS = {"leakyrelu": (0.01, 0.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, 0.0)}
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def activations(
    attrs: dict[str, Any],
    dirs: int,
    where: str,
    defaults: tuple[str, ...] = DEFAULT_ACTIVATIONS,
    note: str = "f (gates), g (candidate), h (cell output)",
) -> tuple[list[tuple[Activation, ...]], Setting]:
    """``len(defaults)`` activations per direction (an LSTM node's three by default; the GRU
    and RNN nodes pass their own, ``onnx.gru``); alpha/beta are consumed only by functions
    that use them, in order, as onnxruntime does (defaults otherwise). ``note`` says which
    role each takes."""
    per = len(defaults)
    given = [_text(n) for n in attrs.get("activations", [])]
    names = given or list(defaults) * dirs
    if len(names) != per * dirs:
        raise LoadError(f"{where} has {len(names)} activations; expected {per} per direction")
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    acts = []
    for name in names:
        key = name.lower()
        if key not in ACTIVATIONS:
            raise LoadError(
                f"{where} uses activation {name!r}; lstmviz knows {', '.join(sorted(ACTIVATIONS))}"
            )
        default_alpha, default_beta = _ORT_DEFAULTS.get(key, (0.0, 0.0))
        alpha = (alphas.pop(0) if alphas else default_alpha) if key in _USES_ALPHA else None
        beta = (betas.pop(0) if betas else default_beta) if key in _USES_BETA else None
        acts.append(Activation(ACTIVATIONS[key], alpha, beta))
    per_dir = [tuple(acts[per * d : per * (d + 1)]) for d in range(dirs)]
    text = "; ".join(", ".join(str(a) for a in trio) for trio in per_dir)
    return per_dir, Setting("activations", text, assumed=not given, note=note)


def _canonical(arr: np.ndarray, owned: bool) -> list[np.ndarray]:
    """Each direction of an ONNX ``[dirs, 4H, in]`` weight in gate order i, f, g, o,
    read-only: reordered inside ``arr`` when the reader owns it, else copied."""
    if owned and arr.flags.writeable and arr.flags.c_contiguous:
        for d in range(arr.shape[0]):
            reorder_gates_in_place(arr[d], PERM)
        freeze(arr)
        return list(arr)
    return [freeze(reorder_gates(arr[d], PERM)) for d in range(arr.shape[0])]


def onnx_layer(
    name: str,
    where: str,
    arrays: dict[str, tuple[np.ndarray, str]],
    direction: str,
    acts: list[tuple[Activation, Activation, Activation]],
    clip: float | None,
    base: Provenance,
    dtypes: dict[str, str] | None = None,
    stored_as: dict[str, quantized.Stored] | None = None,
    owned: set[str] | frozenset[str] = frozenset(),
) -> LSTMLayer:
    """One layer from ONNX-layout ``arrays`` {"W", "R", optional "B", "P": (array, name)}.

    ``base`` supplies framework, source format, settings, notes and transforms already done;
    the stored tensors and gate order are filled in here; ``dtypes`` names the stored dtype
    of arrays that were widened. Every array kept is a fresh copy (the reordered gates, the
    summed bias, the peepholes), so nothing pins the file's bytes; W and R in ``owned`` (made
    by the reader for this node alone, e.g. dequantized) are reordered in place instead.
    """
    dirs = 2 if direction == "bidirectional" else 1
    dtypes = dtypes or {}
    W, R = arrays["W"][0], arrays["R"][0]
    if W.ndim != 3 or W.shape[0] != dirs or W.shape[1] % 4 or W.shape[1] == 0:
        raise LoadError(f"{where}: W has shape {W.shape}, expected ({dirs}, 4H, D)")
    H = W.shape[1] // 4
    if R.shape != (dirs, 4 * H, H):
        raise LoadError(f"{where}: R has shape {R.shape}, expected {(dirs, 4 * H, H)}")

    def record(role: str, key: str) -> StoredTensor:
        arr, stored_name = arrays[key]
        if stored_name in (stored_as or {}):
            q = (stored_as or {})[stored_name]
            return StoredTensor(role, q.name, q.shape, q.transposed, dtype=q.dtype, shared_by=dirs)
        dtype = dtypes.get(stored_name, str(arr.dtype))
        return StoredTensor(role, stored_name, arr.shape, dtype=dtype, shared_by=dirs)

    stored = [record("W_x", "W"), record("W_h", "R")]
    transforms = [*base.transforms, "gate blocks reordered i,o,f,c → i,f,g,o"]
    notes = list(base.notes)
    if "B" in arrays:
        B = arrays["B"][0]
        if B.shape != (dirs, 8 * H):
            raise LoadError(f"{where}: B has shape {B.shape}, expected {(dirs, 8 * H)}")
        stored.append(record("b", "B"))
        transforms.append("B split into Wb + Rb and summed")
    else:
        B = np.zeros((dirs, 8 * H), dtype=W.dtype)
        notes.append("B absent: b = 0 (ONNX default)")
    P = None
    if "P" in arrays:
        P = arrays["P"][0]
        if P.shape != (dirs, 3 * H):
            raise LoadError(f"{where}: P has shape {P.shape}, expected {(dirs, 3 * H)}")
        stored.append(record("P", "P"))
        transforms.append("P reordered i,o,f → p_i, p_o, p_f")
    provenance = dataclasses.replace(
        base,
        gate_order=GATE_ORDER,
        perm=PERM,
        stored=tuple(stored),
        transforms=tuple(transforms),
        notes=tuple(notes),
    )
    W_d, R_d = _canonical(W, "W" in owned), _canonical(R, "R" in owned)
    directions = []
    for d in range(dirs):
        with np.errstate(all="ignore"):  # NaN/Inf weights are shown, not refused
            b = B[d, : 4 * H].astype(np.float64) + B[d, 4 * H :]
        peep = {}
        if P is not None:
            peep = {k: freeze(P[d, j * H : (j + 1) * H].copy()) for j, k in enumerate(P_ORDER)}
        f_act, g_act, h_act = acts[d]
        directions.append(
            LSTMDirection(
                W_x=W_d[d],
                W_h=R_d[d],
                b=freeze(reorder_gates(b, PERM)),
                act_gate=f_act,
                act_cand=g_act,
                act_cell=h_act,
                gate_clip=float(clip) if clip is not None else None,
                reverse=direction == "reverse" or d == 1,
                provenance=provenance,
                **peep,
            )
        )
    kind = "LSTM" if dirs == 1 else "LSTM (bidirectional)"
    # ONNX Y is [seq, dirs, batch, H]: the reverse direction is written in time order.
    return LSTMLayer(
        name=name,
        directions=tuple(directions),
        merge_mode=MergeMode.CONCAT,
        output_order=OutputOrder.TIME,
        kind=kind,
    )
