"""Cells of bare arrays in one framework's layout → canonical directions (CONVENTIONS.md §2).

``array_layouts`` decides which arrays form which cell; this module only converts: Keras
kernels are transposed, PyTorch biases summed, a TF1 kernel split at row D with its run-time
forget bias folded into ``b_f``, ONNX ``B`` halves summed and every gate order permuted to
i, f, g, o. Each step is written into the direction's ``Provenance``, and because arrays never
store activations, sigmoid/tanh are recorded as assumed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.io.convert import PERMS, reorder_gates
from lstmviz.io.errors import LoadError

Array = npt.NDArray[np.floating]
LAYOUTS = ("keras", "pytorch", "tf1", "onnx")
FRAMEWORKS = {"keras": "Keras", "pytorch": "PyTorch", "tf1": "TensorFlow 1", "onnx": "ONNX"}
TF1_FORGET_BIAS = 1.0
_BACKWARD = re.compile(r"(?:^|[/_.])(?:bw|backward)(?:[/_.]|$)")


@dataclass(frozen=True)
class Item:
    """One stored array: its key in the file and its values (native byte order)."""

    name: str
    array: np.ndarray


#: One cell (direction, or an ONNX node with its dirs axis): role → stored item.
Cell = dict[str, Item]


@dataclass
class LayerSpec:
    """A layer found in the file: one cell, or two (forward, backward) for Keras/TF1 pairs."""

    name: str
    cells: list[Cell] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """What every converter needs to name the file and record where values came from."""

    file: str
    source_format: str
    forget_bias: float | None = None  # given by the user (tf1 only)
    nonlinearity: str | None = None  # given by the user (a PyTorch-layout nn.RNN only)


def is_backward(prefix: str) -> bool:
    return bool(_BACKWARD.search(prefix))


def _f(item: Item, ctx: Context) -> Array:
    a = item.array
    if a.dtype.kind != "f":
        raise LoadError(
            f"{ctx.file}: {item.name} has dtype {a.dtype}; recurrent weights must be floating point"
        )
    return a.astype(np.float32) if a.dtype.itemsize < 4 else a


def _stored(
    role: str, item: Item, transposed: bool = False, offset: int = 0, shared_by: int = 1
) -> StoredTensor:
    shape, dtype = tuple(item.array.shape), str(item.array.dtype)
    return StoredTensor(role, item.name, shape, transposed, offset, dtype, shared_by)


def _direction(ctx: Context, layout: str, reverse: bool, **kw: object) -> LSTMDirection:
    try:
        return LSTMDirection(reverse=reverse, **kw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise LoadError(f"{ctx.file}: arrays do not fit the {layout} layout ({exc})") from exc


def _keras(cell: Cell, ctx: Context, reverse: bool) -> list[LSTMDirection]:
    kernel, rec = _f(cell["kernel"], ctx), _f(cell["recurrent"], ctx)
    H = rec.shape[0] if rec.ndim == 2 else 0
    if (
        H
        and kernel.ndim == 2
        and rec.shape in ((H, 3 * H), (H, H))
        and kernel.shape[1] == rec.shape[1]
    ):
        from lstmviz.io.arrays.gru_names import keras_recurrent  # a GRU or SimpleRNN

        return keras_recurrent(cell, ctx, reverse)
    if H == 0 or kernel.ndim != 2 or kernel.shape[1] != 4 * H or rec.shape != (H, 4 * H):
        raise LoadError(
            f"{ctx.file}: {cell['kernel'].name} {kernel.shape} and {cell['recurrent'].name} "
            f"{rec.shape} are not a Keras LSTM kernel [D,4H] and recurrent kernel [H,4H]"
            + (" (3H columns: a GRU, not an LSTM)" if rec.shape == (H, 3 * H) else "")
        )
    stored = [_stored("W_x", cell["kernel"], True), _stored("W_h", cell["recurrent"], True)]
    notes = []
    if "bias" in cell:
        b = _f(cell["bias"], ctx)
        if b.shape == (8 * H,):
            raise LoadError(
                f"{ctx.file}: {cell['bias'].name} has 8H = {8 * H} entries: a CuDNNLSTM, whose "
                "kernels cuDNN reinterprets; open the Keras .h5 file it came from instead"
            )
        stored.append(_stored("b", cell["bias"]))
    else:
        b = np.zeros(4 * H, dtype=kernel.dtype)
        notes.append("no bias stored (use_bias=False): b = 0")
    prov = _provenance(ctx, "keras", stored, ["kernel and recurrent_kernel transposed"], notes)
    return [_direction(ctx, "keras", reverse, W_x=kernel.T, W_h=rec.T, b=b, provenance=prov)]


def _pytorch(cell: Cell, ctx: Context, reverse: bool) -> list[LSTMDirection]:
    rows, cols = cell["w_hh"].array.shape
    if "w_hr" not in cell and rows in (3 * cols, cols):
        from lstmviz.io.arrays.gru_names import torch_recurrent  # an nn.GRU or nn.RNN

        return torch_recurrent(cell, ctx, reverse)
    w_ih, w_hh = _f(cell["w_ih"], ctx), _f(cell["w_hh"], ctx)
    stored = [_stored("W_x", cell["w_ih"]), _stored("W_h", cell["w_hh"])]
    transforms, notes = [], []
    if "b_ih" in cell:
        with np.errstate(all="ignore"):
            b = _f(cell["b_ih"], ctx).astype(np.float64) + _f(cell["b_hh"], ctx)
        stored += [_stored("b_ih", cell["b_ih"]), _stored("b_hh", cell["b_hh"])]
        transforms.append("bias_ih + bias_hh summed into b")
    else:
        b = np.zeros(w_ih.shape[0], dtype=w_ih.dtype)
        notes.append("no biases stored (bias=False): b = 0")
    W_p = _f(cell["w_hr"], ctx) if "w_hr" in cell else None
    if W_p is not None:
        stored.append(_stored("W_p", cell["w_hr"]))
        notes.append(f"projection W_p = {cell['w_hr'].name} (P = {W_p.shape[0]})")
    prov = _provenance(ctx, "pytorch", stored, transforms, notes)
    return [_direction(ctx, "pytorch", reverse, W_x=w_ih, W_h=w_hh, b=b, W_p=W_p, provenance=prov)]


def _tf1(cell: Cell, ctx: Context, reverse: bool) -> list[LSTMDirection]:
    kernel = _f(cell["kernel"], ctx)
    H = kernel.shape[1] // 4 if kernel.ndim == 2 else 0
    W_p = _f(cell["W_p"], ctx).T if "W_p" in cell else None
    out = W_p.shape[0] if W_p is not None else H
    D = kernel.shape[0] - out if kernel.ndim == 2 else 0
    if kernel.ndim != 2 or kernel.shape[1] % 4 or H == 0 or D <= 0:
        raise LoadError(
            f"{ctx.file}: {cell['kernel'].name} has shape {kernel.shape}; a TF1 LSTM kernel is "
            "[D+H, 4H] with D >= 1, and a Keras kernel [D, 4H] needs its recurrent_kernel [H, 4H]"
        )
    perm = PERMS[("i", "j", "f", "o")]
    stored = [_stored("W_x", cell["kernel"], True), _stored("W_h", cell["kernel"], True, D)]
    transforms = [
        f"kernel rows :{D} → W_x, rows {D}: → W_h, both transposed",
        "gate blocks reordered i,j,f,o → i,f,g,o",
    ]
    notes = []
    if "bias" in cell:
        bias = _f(cell["bias"], ctx)
        if bias.shape != (4 * H,):
            raise LoadError(
                f"{ctx.file}: {cell['bias'].name} has shape {bias.shape}, expected ({4 * H},)"
            )
        stored.append(_stored("b", cell["bias"]))
    else:
        bias = np.zeros(4 * H, dtype=kernel.dtype)
        notes.append("no bias stored: b = 0 before the forget bias")
    fb = ctx.forget_bias if ctx.forget_bias is not None else TF1_FORGET_BIAS
    b = reorder_gates(bias.astype(np.float64), perm)
    b[H : 2 * H] += fb
    transforms.append(f"forget_bias {fb:g} added to b_f")
    peep = {}
    for role in ("p_i", "p_f", "p_o"):
        if role in cell:
            peep[role] = _f(cell[role], ctx)
            stored.append(_stored(role, cell[role]))
    if W_p is not None:
        stored.append(_stored("W_p", cell["W_p"], True))
        transforms.append("projection kernel [H,P] transposed into W_p")
    setting = Setting(
        "forget_bias",
        fb,
        assumed=ctx.forget_bias is None,
        note="given by the user" if ctx.forget_bias is not None else "not stored; TF1 default",
    )
    prov = _provenance(ctx, "tf1", stored, transforms, notes, (setting,))
    W_x, W_h = kernel[:D].T, kernel[D:].T
    return [
        _direction(
            ctx,
            "tf1",
            reverse,
            W_x=reorder_gates(W_x, perm),
            W_h=reorder_gates(W_h, perm),
            b=b,
            W_p=W_p,
            provenance=prov,
            **peep,
        )
    ]


def _onnx(cell: Cell, ctx: Context, reverse: bool) -> list[LSTMDirection]:
    W, R = _f(cell["W"], ctx), _f(cell["R"], ctx)
    squeezed = W.ndim == 2
    if squeezed:
        W, R = W[None], R[None]
    dirs, H4 = W.shape[0], W.shape[1]
    H = H4 // 4
    if W.ndim != 3 or dirs not in (1, 2) or H4 % 4 or R.shape != (dirs, H4, H):
        raise LoadError(
            f"{ctx.file}: {cell['W'].name} {W.shape} and {cell['R'].name} {R.shape} are not ONNX "
            "W [dirs,4H,D] and R [dirs,4H,H] with dirs 1 or 2"
        )
    perm = PERMS[("i", "o", "f", "c")]
    stored = [_stored("W_x", cell["W"], shared_by=dirs), _stored("W_h", cell["R"], shared_by=dirs)]
    transforms = ["gate blocks reordered i,o,f,c → i,f,g,o"]
    notes = ["direction axis absent: one forward direction"] if squeezed else []
    B = np.zeros((dirs, 8 * H), dtype=W.dtype)
    if "B" in cell:
        B = _f(cell["B"], ctx).reshape(dirs, -1) if squeezed else _f(cell["B"], ctx)
        stored.append(_stored("b", cell["B"], shared_by=dirs))
        transforms.append("B split into Wb + Rb and summed")
    else:
        notes.append("B absent: b = 0 (ONNX default)")
    P = None
    if "P" in cell:
        P = _f(cell["P"], ctx).reshape(dirs, -1) if squeezed else _f(cell["P"], ctx)
        stored.append(_stored("P", cell["P"], shared_by=dirs))
        transforms.append("P reordered i,o,f → p_i, p_o, p_f")
    for name, arr, want in (("B", B, 8 * H), ("P", P, 3 * H)):
        if arr is not None and arr.shape != (dirs, want):
            raise LoadError(
                f"{ctx.file}: ONNX {name} has shape {arr.shape}, expected {(dirs, want)}"
            )
    if dirs == 1:
        notes.append("direction not stored: taken as forward")
    prov = _provenance(ctx, "onnx", stored, transforms, notes)
    out = []
    for d in range(dirs):
        with np.errstate(all="ignore"):
            b = B[d, : 4 * H].astype(np.float64) + B[d, 4 * H :]
        peep = {}
        if P is not None:
            peep = {"p_i": P[d, :H], "p_o": P[d, H : 2 * H], "p_f": P[d, 2 * H :]}
        out.append(
            _direction(
                ctx,
                "onnx",
                reverse or d == 1,
                W_x=reorder_gates(W[d], perm),
                W_h=reorder_gates(R[d], perm),
                b=reorder_gates(b, perm),
                provenance=prov,
                **peep,
            )
        )
    return out


_CONVERT = {"keras": _keras, "pytorch": _pytorch, "tf1": _tf1, "onnx": _onnx}


def activation_settings(layout: str, cell: str = "LSTM") -> tuple[Setting, ...]:
    """NumPy arrays never store activations: the layout's defaults, marked assumed — the
    LSTM's three, the GRU's two; a plain RNN's one is its ``nonlinearity`` setting."""
    if cell == "RNN":
        return ()
    note = "not stored in NumPy arrays; the layout's default"
    if layout == "keras":
        note += " (Keras >= 2.3; Keras < 2.3 used hard_sigmoid for the gates)"
    value = "sigmoid, tanh" if cell == "GRU" else "sigmoid, tanh, tanh"
    return (Setting("activations", value, assumed=True, note=note),)


def _provenance(
    ctx: Context,
    layout: str,
    stored: list[StoredTensor],
    transforms: list[str],
    notes: list[str],
    settings: tuple[Setting, ...] = (),
) -> Provenance:
    order = {"keras": "ifco", "pytorch": "ifgo", "tf1": "ijfo", "onnx": "iofc"}[layout]
    return Provenance(
        framework=FRAMEWORKS[layout],
        source_format=ctx.source_format,
        gate_order=tuple(order),
        perm=PERMS[tuple(order)],
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=(*settings, *activation_settings(layout)),
        notes=tuple(notes),
    )


def with_settings(direction: LSTMDirection, source_format: str, layout: str) -> LSTMDirection:
    """Add the assumed activations (and our source format) to a direction built elsewhere."""
    prov = direction.provenance
    added = activation_settings(layout, direction.cell.name)
    prov = dc_replace(prov, source_format=source_format, settings=(*prov.settings, *added))
    return direction.replace(provenance=prov)


def build_model(
    layout: str,
    specs: Sequence[LayerSpec],
    ctx: Context,
    *,
    source_path: str,
    others: Sequence[LayerInfo] = (),
    notes: Sequence[str] = (),
) -> LSTMModel:
    """Canonical layers for ``specs``; every reverse direction writes its output in time order
    (Bidirectional, TF1 ``bw``, ONNX), including a lone cell named backward, which is most
    likely the unpaired half of a bidirectional layer."""
    layers = []
    for spec in specs:
        dirs: list[LSTMDirection] = []
        for k, cell in enumerate(spec.cells):
            dirs += _CONVERT[layout](cell, ctx, k == 1)
        if len(spec.cells) == 1 and layout in ("keras", "tf1") and is_backward(spec.name):
            dirs = [d.replace(reverse=True) for d in dirs]
        try:
            layers.append(
                LSTMLayer(
                    name=spec.name,
                    directions=tuple(dirs),
                    merge_mode=MergeMode.CONCAT,
                    output_order=OutputOrder.TIME,
                    kind=(
                        dirs[0].cell.name
                        if len(dirs) == 1
                        else f"Bidirectional({dirs[0].cell.name})"
                    ),
                )
            )
        except ValueError as exc:
            raise LoadError(f"{ctx.file}: {spec.name}: {exc}") from exc
    infos = [
        LayerInfo(
            name=layer.name,
            kind=layer.kind,
            weights=tuple(
                dict.fromkeys(
                    (t.name, t.shape)
                    for d in layer.directions
                    for t in d.provenance.stored
                    if t.offset == 0
                )
            ),
            is_lstm=True,
            note="shown",
        )
        for layer in layers
    ]
    try:
        return LSTMModel(
            layers=tuple(layers),
            source_path=source_path,
            source_format=ctx.source_format,
            framework=f"{FRAMEWORKS[layout]} layout (NumPy arrays)",
            all_layers=(*infos, *others),
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{ctx.file}: the {layout} layers do not chain ({exc})") from exc
