"""Which framework's layout a set of bare arrays follows, and which arrays form each cell.

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

Keras and PyTorch cells may also be GRUs or plain RNNs, told by the recurrent matrix: Keras
``GRU`` kernel ``[D,3H]``, recurrent ``[H,3H]``, bias ``[2,3H]`` (reset after) or ``[3H]``
(reset before), ``SimpleRNN`` ``[D,H], [H,H], [H]``; ``nn.GRU`` ``[3H,D], [3H,H]`` with two
``[3H]`` biases, ``nn.RNN`` ``[H,D], [H,H]`` with two ``[H]`` (as ``get_weights()`` and
``parameters()`` list them).

Shapes tell Keras, PyTorch and TF1 apart (``[H,4H]`` vs ``[4H,H]``; one merged kernel), but a
bias-free ``[4H,D], [4H,H]`` pair fits PyTorch and ONNX with the direction axis dropped, whose
gate orders differ, and a bias-free plain RNN with D = H (``[H,H], [H,H]``) fits Keras and
PyTorch, one the transpose of the other: then the caller must choose (``ChoiceRequired``,
option ``layout``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lstmviz.core.cells import GRU_CELL
from lstmviz.io.arrays.cells import Cell, Item, LayerSpec, is_backward

DESCRIPTIONS = {
    "keras": "keras (kernel [D,4H], recurrent_kernel [H,4H], bias [4H]; gates i,f,c,o)",
    "pytorch": "pytorch (weight_ih [4H,D], weight_hh [4H,H], bias_ih + bias_hh; gates i,f,g,o)",
    "tf1": "tf1 (kernel [D+H,4H], bias [4H]; gates i,j,f,o; forget_bias 1.0 added)",
    "onnx": "onnx (W [dirs,4H,D], R [dirs,4H,H], B [dirs,8H]; gates i,o,f,c)",
}
_GATES = {k: ",".join(GRU_CELL.stored_order(k).names) for k in ("keras", "torch")}
#: The GRU and plain-RNN readings of the layouts whose cells may be one (``cell_kind``).
CELL_DESCRIPTIONS = {
    ("keras", "GRU"): "keras (GRU kernel [D,3H], recurrent_kernel [H,3H], bias [2,3H] or [3H]; "
    f"gates {_GATES['keras']})",
    ("keras", "RNN"): "keras (SimpleRNN kernel [D,H], recurrent_kernel [H,H], bias [H])",
    ("pytorch", "GRU"): "pytorch (nn.GRU weight_ih [3H,D], weight_hh [3H,H], bias_ih, bias_hh; "
    f"gates {_GATES['torch']})",
    ("pytorch", "RNN"): "pytorch (nn.RNN weight_ih [H,D], weight_hh [H,H], bias_ih + bias_hh)",
}
NEEDED = (
    "expected kernel/recurrent_kernel/bias (Keras), weight_ih/weight_hh/bias_ih/bias_hh "
    "(PyTorch), kernel [D+H,4H]/bias (TF1) or W/R/B (ONNX) arrays"
)
_TORCH_LEAF = re.compile(r"^(weight_ih|weight_hh)(_l\d+(_reverse)?)?$")
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


_SIDE = re.compile(r"(^|[/_.])(?:bw|fw|backward|forward)(?=[/_.]|$)")


def specs_from_names(layout: str, items: Sequence[Item]) -> tuple[list[LayerSpec], set[str]]:
    """Layers for keras, tf1 or onnx names, in file order.

    Cells whose prefixes differ only by fw/bw (forward/backward) form one bidirectional layer,
    forward first, whichever the file lists first (checkpoints list names sorted: bw < fw).
    Returns the layers and the names of items they use.
    """
    roles = {"keras": _KERAS_ROLES, "tf1": _TF1_ROLES, "onnx": _ONNX_ROLES}[layout]
    need = {"keras": ("kernel", "recurrent"), "tf1": ("kernel",), "onnx": ("W", "R")}[layout]
    specs: list[LayerSpec] = []
    sides: dict[str, tuple[LayerSpec, bool]] = {}  # pair key → (layer, its cell is backward)
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
        key = _SIDE.sub(lambda m: m.group(1) + "<side>", prefix)
        backward = is_backward(prefix)
        partner = sides.get(key) if layout != "onnx" and key != prefix else None
        if partner is not None and len(partner[0].cells) == 1 and partner[1] != backward:
            spec = partner[0]
            spec.cells = [spec.cells[0], cell] if backward else [cell, spec.cells[0]]
            spec.name = _common_prefix(spec.name, prefix) or spec.name
            continue
        name = re.sub(r"/(lstm_cell|cell)$", "", prefix) if layout == "keras" else prefix
        spec = LayerSpec(name or layout, [cell])
        sides.setdefault(key, (spec, backward))
        specs.append(spec)
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


def cell_kind(layout: str, cell: Cell) -> str:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"``: what a Keras or PyTorch cell's recurrent matrix
    says (``[H, n·H]`` / ``[n·H, H]`` with n = 4, 3, 1); TF1 and ONNX cells are LSTMs."""
    if layout == "keras":
        H, cols = cell["recurrent"].array.shape
    elif layout == "pytorch" and "w_hr" not in cell:
        cols, H = cell["w_hh"].array.shape
    else:
        return "LSTM"
    return {H: "RNN", 3 * H: "GRU"}.get(cols, "LSTM")


def describe(layout: str, specs: Sequence[LayerSpec] | None = None) -> str:
    """The layout as ``specs`` read it: the LSTM's arrays, or the GRU's or plain RNN's."""
    kinds = dict.fromkeys(cell_kind(layout, c) for s in specs or () for c in s.cells)
    parts = [CELL_DESCRIPTIONS.get((layout, k), DESCRIPTIONS[layout]) for k in kinds]
    return " / ".join(dict.fromkeys(parts)) or DESCRIPTIONS[layout]


def _keras_options(items: Sequence[Item], pos: int) -> list[Option]:
    """kernel [D,nH], recurrent_kernel [H,nH][, bias]: n = 4 (LSTM), 3 (GRU, bias [2,3H]
    with reset_after, [3H] without) or 1 (SimpleRNN), told by the recurrent kernel."""
    k = items[pos].array
    if k.ndim != 2 or pos + 1 >= len(items):
        return []
    rec = items[pos + 1].array.shape
    if len(rec) != 2 or rec[0] == 0 or rec[1] != k.shape[1]:
        return []
    H, cols = rec
    if cols not in (4 * H, 3 * H, H):
        return []
    biases = [(2, cols), (cols,)] if cols == 3 * H else [(cols,)]
    cell = {"kernel": items[pos], "recurrent": items[pos + 1]}
    opts = []
    if pos + 2 < len(items) and items[pos + 2].array.shape in biases:
        opts.append(({**cell, "bias": items[pos + 2]}, 3, H))
    return [*opts, (cell, 2, H)]


def _pytorch_options(items: Sequence[Item], pos: int) -> list[Option]:
    """weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr]: PyTorch's parameter order.

    With ``proj_size`` P < H, weight_hh is [4H, P] and weight_hr [P, H] comes last.
    """
    w = items[pos].array
    if w.ndim != 2 or w.shape[0] == 0 or pos + 1 >= len(items):
        return []
    hh = items[pos + 1].array.shape
    if len(hh) == 2 and hh[0] == w.shape[0] and hh[0] in (3 * hh[1], hh[1]):
        return _torch_gru_rnn(items, pos)  # nn.GRU [3H, H] or nn.RNN [H, H]
    H = w.shape[0] // 4
    if w.shape[0] % 4 or len(hh) != 2 or hh[0] != 4 * H or not 0 < hh[1] <= H:
        return []
    P = hh[1]
    cell = {"w_ih": items[pos], "w_hh": items[pos + 1]}
    rest = [i.array.shape for i in items[pos + 2 : pos + 4]]
    bias = {"b_ih": items[pos + 2], "b_hh": items[pos + 3]} if rest == [(4 * H,)] * 2 else {}
    if P == H:
        with_bias = [({**cell, **bias}, 4, H)] if bias else []
        return [*with_bias, (cell, 2, H)]
    k = pos + 2 + len(bias)
    if k < len(items) and items[k].array.shape == (P, H):
        return [({**cell, **bias, "w_hr": items[k]}, k + 1 - pos, P)]
    return []


def _torch_gru_rnn(items: Sequence[Item], pos: int) -> list[Option]:
    """weight_ih [nH,D], weight_hh [nH,H][, bias_ih [nH], bias_hh [nH]] with n = 3 or 1."""
    rows, H = items[pos + 1].array.shape
    cell = {"w_ih": items[pos], "w_hh": items[pos + 1]}
    rest = [i.array.shape for i in items[pos + 2 : pos + 4]]
    if rest == [(rows,)] * 2:
        return [({**cell, "b_ih": items[pos + 2], "b_hh": items[pos + 3]}, 4, H), (cell, 2, H)]
    return [(cell, 2, H)]


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
        if partial and len(cell) == 2 and cell_kind(layout, cell) == "RNN":
            continue  # so is a bias-free [D, H], [H, H] pair (two Dense kernels)
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
