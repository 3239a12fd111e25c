"""Which framework a set of bare arrays came from, and how each layout maps to canonical form.

A ``.npz``/``.npy`` file keeps names and shapes but no hyperparameters, so the layout is
decided from names first (``recurrent_kernel`` → Keras, ``W``/``R`` → ONNX, ``kernel`` + ``bias``
without a recurrent kernel → TF1; PyTorch names go to ``state_dict``), and otherwise by parsing
the ordered list of shapes as a stack of layers in each layout (CONVENTIONS.md §2):

=========  ==========================================================  ===========
layout     arrays per layer (optional in brackets)                      gate order
=========  ==========================================================  ===========
keras      kernel [D,4H], recurrent_kernel [H,4H], [bias [4H]]          i,f,c,o
pytorch    weight_ih [4H,D], weight_hh [4H,H], [bias_ih [4H], bias_hh]  i,f,g,o
tf1        kernel [D+H,4H], [bias [4H]]; forget_bias added at run time   i,j,f,o
onnx       W [dirs,4H,D], R [dirs,4H,H], [B [dirs,8H]], [P [dirs,3H]]   i,o,f,c
=========  ==========================================================  ===========

Shapes tell Keras, PyTorch and TF1 apart (``[H,4H]`` vs ``[4H,H]``; one merged kernel), but a
bias-free ``[4H,D], [4H,H]`` pair fits PyTorch and ONNX with the direction axis dropped, whose
gate orders differ: then the caller must choose (``ChoiceRequired``, option ``layout``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
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
DESCRIPTIONS = {
    "keras": "keras (kernel [D,4H], recurrent_kernel [H,4H], bias [4H]; gates i,f,c,o)",
    "pytorch": "pytorch (weight_ih [4H,D], weight_hh [4H,H], bias_ih + bias_hh; gates i,f,g,o)",
    "tf1": "tf1 (kernel [D+H,4H], bias [4H]; gates i,j,f,o; forget_bias 1.0 added)",
    "onnx": "onnx (W [dirs,4H,D], R [dirs,4H,H], B [dirs,8H]; gates i,o,f,c)",
}
NEEDED = (
    "expected kernel/recurrent_kernel/bias (Keras), weight_ih/weight_hh/bias_ih/bias_hh "
    "(PyTorch), kernel [D+H,4H]/bias (TF1) or W/R/B (ONNX) arrays"
)
TF1_FORGET_BIAS = 1.0
_TORCH_LEAF = re.compile(r"^(weight_ih|weight_hh)(_l\d+(_reverse)?)?$")
_BACKWARD = re.compile(r"(?:^|[/_.])(?:bw|backward)(?:[/_.]|$)")
_KERAS_ROLES = {"kernel": "kernel", "recurrent_kernel": "recurrent", "bias": "bias"}
_TF1_ROLES = {
    "kernel": "kernel",
    "weights": "kernel",
    "bias": "bias",
    "biases": "bias",
    "w_i_diag": "p_i",
    "w_f_diag": "p_f",
    "w_o_diag": "p_o",
}
_ONNX_ROLES = {"W": "W", "R": "R", "B": "B", "P": "P"}


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


def split_key(key: str) -> tuple[str, str]:
    """``'model/lstm/kernel:0'`` → ``('model/lstm', 'kernel')``; dots separate too."""
    key = re.sub(r":\d+$", "", key)
    cut = max(key.rfind("/"), key.rfind("."))
    return (key[:cut], key[cut + 1 :]) if cut >= 0 else ("", key)


def layouts_from_names(names: Sequence[str]) -> list[str]:
    """Layouts whose characteristic array names appear (usually zero or one)."""
    leaves = {split_key(n)[1] for n in names}
    found = []
    if any(_TORCH_LEAF.match(leaf) for leaf in leaves):
        found.append("pytorch")
    if "recurrent_kernel" in leaves:
        found.append("keras")
    elif leaves & {"kernel", "weights"}:
        found.append("tf1")
    if {"W", "R"} <= leaves:
        found.append("onnx")
    return found


# ------------------------------------------------------------------------------ by names
def _is_backward(prefix: str) -> bool:
    return bool(_BACKWARD.search(prefix))


def _groups(items: Sequence[Item], roles: dict[str, str]) -> dict[str, Cell]:
    """Prefix → cell, in file order; TF1 ``…/projection/kernel`` joins its cell as ``W_p``."""
    groups: dict[str, Cell] = {}
    for item in items:
        prefix, leaf = split_key(item.name)
        if roles is _TF1_ROLES and prefix.endswith("projection") and leaf == "kernel":
            prefix, role = prefix[: -len("projection")].rstrip("/."), "W_p"
        elif leaf in roles:
            role = roles[leaf]
        else:
            continue
        groups.setdefault(prefix, {})[role] = item
    return groups


def specs_from_names(layout: str, items: Sequence[Item]) -> tuple[list[LayerSpec], set[str]]:
    """Layers for keras, tf1 or onnx names, in file order; backward cells join the layer before.

    Returns the layers and the names of items they use.
    """
    roles = {"keras": _KERAS_ROLES, "tf1": _TF1_ROLES, "onnx": _ONNX_ROLES}[layout]
    need = {"keras": ("kernel", "recurrent"), "tf1": ("kernel",), "onnx": ("W", "R")}[layout]
    specs: list[LayerSpec] = []
    used: set[str] = set()
    for prefix, cell in _groups(items, roles).items():
        if not all(r in cell for r in need):
            continue
        if (
            layout == "keras"
            and cell["recurrent"].array.shape[-1:] != cell["kernel"].array.shape[-1:]
        ):
            continue  # a Dense-like kernel beside the LSTM is not a cell
        used.update(i.name for i in cell.values())
        prev = specs[-1] if specs else None
        if (
            layout != "onnx"
            and prev is not None
            and len(prev.cells) == 1
            and _is_backward(prefix)
            and not _is_backward(split_key(prev.cells[0][need[0]].name)[0])
        ):
            prev.cells.append(cell)
            prev.name = _common_prefix(prev.name, prefix) or prev.name
            continue
        specs.append(LayerSpec(re.sub(r"/(lstm_cell|cell)$", "", prefix) or layout, [cell]))
    return specs, used


def _common_prefix(a: str, b: str) -> str:
    parts = []
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        parts.append(x)
    return "/".join(parts)


# ------------------------------------------------------------------------------ by shapes
#: A layout's pattern at one position: the cells it could take (cell, items used, out width).
Option = tuple[Cell, int, int]


def _keras_options(items: Sequence[Item], pos: int) -> list[Option]:
    k = items[pos].array
    if k.ndim != 2 or k.shape[1] % 4 or pos + 1 >= len(items):
        return []
    H = k.shape[1] // 4
    if H == 0 or items[pos + 1].array.shape != (H, 4 * H):
        return []
    cell = {"kernel": items[pos], "recurrent": items[pos + 1]}
    opts = []
    if pos + 2 < len(items) and items[pos + 2].array.shape == (4 * H,):
        opts.append(({**cell, "bias": items[pos + 2]}, 3, H))
    return [*opts, (cell, 2, H)]


def _pytorch_options(items: Sequence[Item], pos: int) -> list[Option]:
    w = items[pos].array
    if w.ndim != 2 or w.shape[0] % 4 or w.shape[0] == 0 or pos + 1 >= len(items):
        return []
    H = w.shape[0] // 4
    if items[pos + 1].array.shape != (4 * H, H):
        return []
    cell = {"w_ih": items[pos], "w_hh": items[pos + 1]}
    rest = [i.array.shape for i in items[pos + 2 : pos + 4]]
    opts = []
    if rest == [(4 * H,), (4 * H,)]:
        opts.append(({**cell, "b_ih": items[pos + 2], "b_hh": items[pos + 3]}, 4, H))
    return [*opts, (cell, 2, H)]


def _tf1_options(items: Sequence[Item], pos: int) -> list[Option]:
    k = items[pos].array
    if k.ndim != 2 or k.shape[1] % 4 or k.shape[1] == 0 or k.shape[0] <= k.shape[1] // 4:
        return []
    H = k.shape[1] // 4
    opts = []
    if pos + 1 < len(items) and items[pos + 1].array.shape == (4 * H,):
        opts.append(({"kernel": items[pos], "bias": items[pos + 1]}, 2, H))
    return [*opts, ({"kernel": items[pos]}, 1, H)]


def _onnx_options(items: Sequence[Item], pos: int) -> list[Option]:
    w = items[pos].array
    if w.ndim not in (2, 3) or pos + 1 >= len(items):
        return []
    lead = w.shape[:1] if w.ndim == 3 else ()
    dirs = lead[0] if lead else 1
    if dirs not in (1, 2) or w.shape[-2] % 4 or w.shape[-2] == 0:
        return []
    H = w.shape[-2] // 4
    if items[pos + 1].array.shape != (*lead, 4 * H, H):
        return []
    base = {"W": items[pos], "R": items[pos + 1]}
    opts: list[Option] = []
    n = 2
    extra: Cell = {}
    for role, width in (("B", 8 * H), ("P", 3 * H)):
        if pos + n < len(items) and items[pos + n].array.shape == (*lead, width):
            extra[role] = items[pos + n]
            n += 1
            opts.append(({**base, **extra}, n, dirs * H))
    return [*reversed(opts), (base, 2, dirs * H)]


_OPTIONS: dict[str, Callable[[Sequence[Item], int], list[Option]]] = {
    "keras": _keras_options,
    "pytorch": _pytorch_options,
    "tf1": _tf1_options,
    "onnx": _onnx_options,
}


def _input_width(layout: str, cell: Cell) -> int:
    if layout == "keras":
        return cell["kernel"].array.shape[0]
    if layout == "pytorch":
        return cell["w_ih"].array.shape[1]
    if layout == "tf1":
        return cell["kernel"].array.shape[0] - cell["kernel"].array.shape[1] // 4
    return cell["W"].array.shape[-1]


MAX_GUESSED = 300  # arrays; shape guessing recurses once per layer


def _shapes_of(cell: Cell) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(sorted((role, item.array.shape) for role, item in cell.items()))


def _layer_options(
    layout: str, items: Sequence[Item], pos: int, width: int | None, partial: bool
) -> list[tuple[list[Cell], int, int]]:
    """Layers that can start at ``pos``: one cell, or (not ONNX, whose dirs axis says it) a
    forward cell followed by a backward cell of the same shapes, i.e. a bidirectional layer."""
    out: list[tuple[list[Cell], int, int]] = []
    for cell, used, width_out in _OPTIONS[layout](items, pos):
        if partial and layout == "tf1" and "bias" not in cell:
            continue  # among other arrays, a lone [R, 4H] matrix is too weak a sign
        if width is not None and _input_width(layout, cell) != width:
            continue
        out.append(([cell], used, width_out))
        if layout != "onnx" and pos + used < len(items):
            for cell2, used2, _ in _OPTIONS[layout](items, pos + used):
                if _shapes_of(cell2) == _shapes_of(cell):
                    out.append(([cell, cell2], used + used2, 2 * width_out))
    return out


@dataclass(frozen=True)
class Run:
    """A chained stack found among the arrays: items ``start:start + count``."""

    start: int
    count: int
    specs: list[LayerSpec]


def _runs(layout: str, items: Sequence[Item], partial: bool) -> Callable[[int], Run]:
    """``run(start)``: the stack using the most arrays from ``start`` (memoised per position)."""
    memo: dict[tuple[int, int | None], tuple[int, list[list[Cell]]]] = {}

    def longest(pos: int, width: int | None) -> tuple[int, list[list[Cell]]]:
        key = (pos, width)
        if key not in memo:
            best: tuple[int, list[list[Cell]]] = (0, [])
            if pos < len(items):
                for cells, used, width_out in _layer_options(layout, items, pos, width, partial):
                    n, rest = longest(pos + used, width_out)
                    if used + n > best[0]:  # the first (unidirectional) reading wins ties
                        best = (used + n, [cells, *rest])
            memo[key] = best
        return memo[key]

    def run(start: int) -> Run:
        count, layers = longest(start, None)
        specs = [LayerSpec(f"layer {k}", cells) for k, cells in enumerate(layers)]
        return Run(start, count, specs)

    return run


def doubts(specs: Sequence[LayerSpec]) -> list[str]:
    """Readings the shapes allow besides the one taken (stacked vs bidirectional when D == H)."""
    out = []
    for a, b in itertools.pairwise(specs):
        if len(a.cells) == len(b.cells) == 1 and _shapes_of(a.cells[0]) == _shapes_of(b.cells[0]):
            out.append(
                f"{a.name} and {b.name} have the same shapes (D = H): read as two stacked "
                "layers; they could also be the two directions of one bidirectional layer"
            )
    return out


def specs_from_shapes(layout: str, items: Sequence[Item]) -> list[LayerSpec] | None:
    """Parse all of ``items`` (file order) as a chained stack in ``layout``, or None."""
    if not items or len(items) > MAX_GUESSED:
        return None
    run = _runs(layout, items, partial=False)(0)
    return run.specs if run.count == len(items) else None


def best_run(layout: str, items: Sequence[Item]) -> Run | None:
    """The longest chained stack among other arrays (Embedding, Dense...), at least 2 arrays."""
    if len(items) > MAX_GUESSED:
        return None
    run_from = _runs(layout, items, partial=True)
    best: Run | None = None
    for start in range(len(items)):
        run = run_from(start)
        if run.count >= 2 and (best is None or run.count > best.count):
            best = run
    return best


# ------------------------------------------------------------------------------ converters
def _f(item: Item, ctx: Context) -> Array:
    a = item.array
    if a.dtype.kind != "f":
        raise LoadError(
            f"{ctx.file}: {item.name} has dtype {a.dtype}; LSTM weights must be floating point"
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
    H = rec.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 4 * H or rec.shape != (H, 4 * H):
        raise LoadError(
            f"{ctx.file}: {cell['kernel'].name} {kernel.shape} and {cell['recurrent'].name} "
            f"{rec.shape} are not a Keras LSTM kernel [D,4H] and recurrent kernel [H,4H]"
            + (" (3H columns: a GRU, not an LSTM)" if rec.shape == (H, 3 * H) else "")
        )
    stored = [_stored("W_x", cell["kernel"], True), _stored("W_h", cell["recurrent"], True)]
    notes = []
    if "bias" in cell:
        b = _f(cell["bias"], ctx)
        stored.append(_stored("b", cell["bias"]))
    else:
        b = np.zeros(4 * H, dtype=kernel.dtype)
        notes.append("no bias stored (use_bias=False): b = 0")
    prov = _provenance(ctx, "keras", stored, ["kernel and recurrent_kernel transposed"], notes)
    return [_direction(ctx, "keras", reverse, W_x=kernel.T, W_h=rec.T, b=b, provenance=prov)]


def _pytorch(cell: Cell, ctx: Context, reverse: bool) -> list[LSTMDirection]:
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
    prov = _provenance(ctx, "pytorch", stored, transforms, notes)
    return [_direction(ctx, "pytorch", reverse, W_x=w_ih, W_h=w_hh, b=b, provenance=prov)]


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


def activation_settings(layout: str) -> tuple[Setting, ...]:
    """NumPy arrays never store activations: the layout's defaults, marked assumed."""
    note = "not stored in NumPy arrays; the layout's default"
    if layout == "keras":
        note += " (Keras >= 2.3; Keras < 2.3 used hard_sigmoid for the gates)"
    return (Setting("activations", "sigmoid, tanh, tanh", assumed=True, note=note),)


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
    prov = dc_replace(
        prov, source_format=source_format, settings=(*prov.settings, *activation_settings(layout))
    )
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
    """Canonical layers for ``specs``; a Keras layer whose only cell is backward keeps
    ``go_backwards`` order (processing), every other reverse direction is in time order."""
    layers = []
    for spec in specs:
        dirs: list[LSTMDirection] = []
        for k, cell in enumerate(spec.cells):
            dirs += _CONVERT[layout](cell, ctx, k == 1)
        lone_backward = (
            len(spec.cells) == 1 and layout in ("keras", "tf1") and _is_backward(spec.name)
        )
        if lone_backward:
            dirs = [d.replace(reverse=True) for d in dirs]
        try:
            layers.append(
                LSTMLayer(
                    name=spec.name,
                    directions=tuple(dirs),
                    merge_mode=MergeMode.CONCAT,
                    output_order=OutputOrder.PROCESSING
                    if lone_backward and layout == "keras"
                    else OutputOrder.TIME,
                    kind="LSTM" if len(dirs) == 1 else "Bidirectional(LSTM)",
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
