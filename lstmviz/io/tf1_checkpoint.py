"""TensorFlow 1 checkpoints (V2 bundle) of ``BasicLSTMCell``/``LSTMCell``/``LSTMBlockCell``.

The checkpoint stores only variables, named by scope (CONVENTIONS.md §3.3): a cell is a scope
holding ``kernel [D+H (or D+P), 4H]`` and ``bias [4H]`` (TF <= 1.2: ``weights``/``biases``),
optionally ``w_i_diag``/``w_f_diag``/``w_o_diag`` and ``projection/kernel [H, P]``. Stacks
come from ``multi_rnn_cell/cell_k``, ``bidirectional_rnn/{fw,bw}`` and
``stack_bidirectional_rnn/cell_k/...``. Gate order is i, j, f, o. ``forget_bias``, clips and
the activation are graph constants: read from the sibling ``.meta`` (``tf1_graph``) when it is
there, else TF's defaults, marked assumed; ``load_model(forget_bias=..., cell_clip=...)``
overrides both.
"""

from __future__ import annotations

import glob
import re
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from lstmviz.core.activations import Activation
from lstmviz.core.model import LayerInfo, LSTMDirection, LSTMLayer, LSTMModel, MergeMode
from lstmviz.io import protowire as pw
from lstmviz.io.convert import PERMS, reorder_gates
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.sstable import has_table_magic
from lstmviz.io.tf1_bundle import DATA_RE, TF2_SUFFIX, Bundle, is_index_file, locate, tail_bytes
from lstmviz.io.tf1_cells import Settings, provenance, resolve_settings
from lstmviz.io.tf1_graph import CellGraph, GraphInfo, read_graph

GATE_ORDER = ("i", "j", "f", "o")
PERM = PERMS[GATE_ORDER]
FRAMEWORK = "TensorFlow 1 checkpoint"
KNOWN_CELLS = {
    "basic_lstm_cell": "BasicLSTMCell",
    "lstm_cell": "LSTMCell",
    "cudnn_compatible_lstm_cell": "CudnnCompatibleLSTMCell",
    "lstm_fused_cell": "LSTMBlockFusedCell",
}
KERNELS, BIASES = ("kernel", "weights"), ("bias", "biases")
PEEPHOLES = {"p_i": "w_i_diag", "p_f": "w_f_diag", "p_o": "w_o_diag"}
SLOT_RE = re.compile(
    r"^(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|Ftrl|Ftrl_\d+|Adadelta"
    r"|Adadelta_\d+|Adamax|Nadam|ExponentialMovingAverage|.*\.OPTIMIZER_SLOT.*)$"
)
BOOKKEEPING = {
    "global_step",
    "beta1_power",
    "beta2_power",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "save_counter",
}


@dataclass
class Cell:
    """The variables of one TF1 LSTM cell and its place in a stack."""

    scope: str
    kernel: str
    bias: str
    kind: str
    peepholes: dict[str, str] = field(default_factory=dict)  # "p_i" → variable name
    projection: str | None = None
    stack: str = ""
    layer: int = 0
    direction: str = ""  # "", "fw" or "bw"
    wrapper: str = ""  # "", "bidirectional_dynamic_rnn", "stack_bidirectional_dynamic_rnn"


def _var_name(key: str) -> str:
    return key[: -len(TF2_SUFFIX)] if key.endswith(TF2_SUFFIX) else key


def _is_skipped(name: str) -> bool:
    last = name.rsplit("/", 1)[-1]
    return (
        name in BOOKKEEPING
        or last in BOOKKEEPING
        or bool(SLOT_RE.match(last))
        or ".OPTIMIZER_SLOT" in name
    )


def _find(names: dict[str, str], scope: str, candidates: tuple[str, ...]) -> str | None:
    return next((names[f"{scope}/{c}"] for c in candidates if f"{scope}/{c}" in names), None)


def _group(bundle: Bundle) -> tuple[list[Cell], list[LayerInfo], list[str]]:
    """Split the checkpoint keys into LSTM cells, other variable groups and skipped keys."""
    names = {_var_name(k): k for k in bundle.entries}
    skipped = [n for n in names if _is_skipped(n)]
    used: set[str] = set(skipped)
    cells: list[Cell] = []
    for name in sorted(names):
        scope, _, last = name.rpartition("/")
        if last not in KERNELS or name in used or scope.endswith("/projection") or not scope:
            continue
        bias = _find(names, scope, BIASES)
        cell_name = scope.rsplit("/", 1)[-1]
        if bias is None or not (cell_name in KNOWN_CELLS or "lstm" in cell_name.lower()):
            continue
        if f"{scope}/recurrent_kernel" in names:  # Keras LSTMCell: a different layout
            continue
        _check_cell_shapes(bundle, scope, names[name], bias)
        cell = Cell(scope, names[name], bias, KNOWN_CELLS.get(cell_name, "LSTM cell"))
        for role, var in PEEPHOLES.items():
            if f"{scope}/{var}" in names:
                cell.peepholes[role] = names[f"{scope}/{var}"]
        cell.projection = _find(names, f"{scope}/projection", KERNELS)
        used.update({name, _var_name(bias), *map(_var_name, cell.peepholes.values())})
        if cell.projection:
            used.add(_var_name(cell.projection))
        cells.append(cell)
    others: dict[str, list[str]] = defaultdict(list)
    for name in names:
        if name not in used:
            others[name.rpartition("/")[0] or name].append(name)
    infos = [
        LayerInfo(
            name=scope,
            kind=_other_kind(scope, group)[0],
            weights=tuple((n, bundle.entries[names[n]].shape) for n in sorted(group)),
            note=_other_kind(scope, group)[1],
        )
        for scope, group in islice(sorted(others.items()), 40)
    ]
    return cells, infos, skipped


def _other_kind(scope: str, group: list[str]) -> tuple[str, str]:
    """(kind, note) for a variable group that is not a TF1 LSTM cell."""
    last = {n.rsplit("/", 1)[-1] for n in group}
    if "recurrent_kernel" in last:
        return "Keras LSTM/GRU cell", "kernel + recurrent_kernel: Keras layout, load the Keras file"
    if "gru_cell" in scope:
        return "GRUCell", "GRU, not an LSTM"
    if last == {"kernel", "bias"}:
        return "Dense", ""
    return "variables", ""


def _check_cell_shapes(bundle: Bundle, scope: str, kernel: str, bias: str) -> None:
    """An LSTM-named scope must hold ``kernel [R, 4H]`` and ``bias [4H]``."""
    k, b = bundle.entries[kernel].shape, bundle.entries[bias].shape
    if len(k) != 2 or len(b) != 1 or b[0] % 4 or k[1] != b[0] or b[0] == 0:
        raise LoadError(
            f"{bundle.index_path.name}: LSTM cell {scope} has kernel shape {k} and bias shape "
            f"{b}; expected [D + H, 4H] and [4H]"
        )


def _place(cell: Cell) -> None:
    """Fill ``stack``/``layer``/``direction`` from the scope structure."""
    parts = cell.scope.split("/")
    prefix = parts[:-1]
    if (
        len(prefix) >= 2
        and prefix[-2] == "multi_rnn_cell"
        and re.fullmatch(r"cell_\d+", prefix[-1])
    ):
        cell.layer = int(prefix[-1][5:])
        outer = prefix[:-2]
        if outer and outer[-1] in ("fw", "bw"):
            raise LoadError(
                f"{cell.scope}: bidirectional RNN over two MultiRNNCell stacks is unsupported; "
                "lstmviz shows stacks whose every layer merges both directions"
            )
        cell.stack = "/".join(prefix[:-1])
    elif prefix and prefix[-1] in ("fw", "bw"):
        cell.direction = prefix[-1]
        outer = prefix[:-1]
        if (
            len(outer) >= 2
            and outer[-1] == "bidirectional_rnn"
            and re.fullmatch(r"cell_\d+", outer[-2])
        ):
            cell.layer, cell.stack = int(outer[-2][5:]), "/".join(outer[:-2])
            cell.wrapper = "stack_bidirectional_dynamic_rnn"
        else:
            cell.stack, cell.wrapper = "/".join(outer), "bidirectional_dynamic_rnn"
    else:
        cell.stack = cell.scope


def _pick_stack(cells: list[Cell], scope: str | None, file: str) -> list[Cell]:
    stacks: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        stacks[cell.stack or cell.scope].append(cell)
    if scope is not None:
        if scope not in stacks:
            raise LoadError(
                f"{file}: no LSTM stack {scope!r}; the checkpoint has {', '.join(sorted(stacks))}"
            )
        return stacks[scope]
    if len(stacks) > 1:
        raise ChoiceRequired(
            f"{file}: holds {len(stacks)} separate LSTM stacks ({', '.join(sorted(stacks))}); "
            "pass scope=<one of them>",
            option="scope",
            choices=tuple(sorted(stacks)),
        )
    return next(iter(stacks.values()))


def _direction(bundle: Bundle, cell: Cell, settings: Settings, reverse: bool) -> LSTMDirection:
    file = bundle.index_path.name
    kernel, bias = bundle.read(cell.kernel), bundle.read(cell.bias)
    H = bias.shape[0] // 4
    proj = bundle.read(cell.projection) if cell.projection else None
    if proj is not None and (proj.ndim != 2 or proj.shape[0] != H):
        raise LoadError(f"{file}: {cell.projection} has shape {proj.shape}, expected ({H}, P)")
    width = proj.shape[1] if proj is not None else H
    D = kernel.shape[0] - width
    if D < 1:
        raise LoadError(
            f"{file}: {cell.kernel} has {kernel.shape[0]} rows; expected D + {width} with D >= 1"
        )
    peep = {role: bundle.read(name) for role, name in cell.peepholes.items()}
    for role, arr in peep.items():
        if arr.shape != (H,):
            raise LoadError(
                f"{file}: {cell.peepholes[role]} has shape {arr.shape}, expected ({H},)"
            )
    b = reorder_gates(bias, PERM).astype(bias.dtype, copy=True)
    b[H : 2 * H] += settings.forget_bias.value
    act = Activation(settings.activation.value)
    return LSTMDirection(
        W_x=reorder_gates(kernel[:D].T, PERM),
        W_h=reorder_gates(kernel[D:].T, PERM),
        b=b,
        p_i=peep.get("p_i"),
        p_f=peep.get("p_f"),
        p_o=peep.get("p_o"),
        W_p=proj.T if proj is not None else None,
        act_cand=act,
        act_cell=act,
        cell_clip=settings.cell_clip.value,
        proj_clip=settings.proj_clip.value if proj is not None else None,
        reverse=reverse,
        provenance=provenance(bundle, cell, settings, D, H, width),
    )


def _graph(bundle: Bundle, picked: Path, notes: list[str]) -> GraphInfo | None:
    meta = Path(f"{bundle.prefix}.meta")
    if not meta.is_file():
        return None
    try:
        return read_graph(meta.read_bytes())
    except (pw.ProtoError, OSError) as exc:
        if picked.resolve() == meta.resolve():
            raise LoadError(
                f"{meta.name}: not a readable MetaGraphDef ({exc}); pick the .index file instead"
            ) from exc
        notes.append(f"{meta.name} is unreadable ({exc}); cell settings use TF defaults")
        return None


def _layers_of(chosen: list[Cell], file: str) -> list[list[Cell]]:
    """The chosen stack's cells per layer, each layer ``[cell]`` or ``[fw, bw]``."""
    by_layer: dict[int, list[Cell]] = defaultdict(list)
    for cell in chosen:
        by_layer[cell.layer].append(cell)
    stack = chosen[0].stack
    if sorted(by_layer) != list(range(len(by_layer))):
        raise LoadError(f"{file}: stack {stack!r} has layers {sorted(by_layer)}, not 0, 1, …")
    out = []
    for k in range(len(by_layer)):
        cells = sorted(by_layer[k], key=lambda c: (c.direction == "bw", c.direction))
        directions = [c.direction for c in cells]
        if directions not in ([""], ["fw", "bw"]):
            raise LoadError(f"{file}: layer {k} of {stack!r} has directions {directions}")
        out.append(cells)
    return out


def _layer(
    bundle: Bundle, cells: list[Cell], graph: GraphInfo | None, options: dict, notes: list[str]
) -> LSTMLayer:
    dirs = []
    for cell in cells:
        cell_graph = graph.cells.get(_var_name(cell.kernel)) if graph else None
        if cell_graph is not None and cell_graph.op_kind == "LSTMBlockCell":
            cell.kind = "LSTMBlockCell"
        settings = resolve_settings(cell, graph, cell_graph or CellGraph(), **options)
        dirs.append(_direction(bundle, cell, settings, reverse=cell.direction == "bw"))
    first = cells[0]
    merge, kind = MergeMode.CONCAT, first.kind
    if first.wrapper:
        kind = f"{first.wrapper}({first.kind})"
    if first.wrapper == "bidirectional_dynamic_rnn":
        merge = MergeMode.NONE
        notes.append(
            f"{first.stack}: bidirectional_dynamic_rnn returns (out_fw, out_bw) separately, "
            "out_bw already in time order; the trace shows them concatenated [fw, bw]"
        )
    name = first.stack if first.direction else first.scope
    try:
        return LSTMLayer(name=name, directions=tuple(dirs), merge_mode=merge, kind=kind)
    except ValueError as exc:
        raise LoadError(f"{bundle.index_path.name}: layer {name}: {exc}") from exc


def load_tf1_checkpoint(
    probe: Probe,
    forget_bias: float | None = None,
    cell_clip: float | None = None,
    scope: str | None = None,
) -> LSTMModel:
    """Load the LSTM stack of a TF1 V2 checkpoint (any of its files or its folder)."""
    index = locate(probe.path)
    bundle = Bundle(index)
    notes: list[str] = []
    graph = _graph(bundle, probe.path, notes)
    cells, others, skipped = _group(bundle)
    if not cells:
        if any(key.endswith(TF2_SUFFIX) for key in bundle.entries):
            raise LoadError(
                f"{index.name}: TF2 object-based checkpoint (tf.train.Checkpoint) without TF1 "
                "LSTM cells; save the Keras model as .keras or .h5 for lstmviz"
            )
        found = ", ".join(f"{i.name} ({i.kind})" for i in others[:5]) or "no variables"
        raise LoadError(f"{index.name}: no TF1 LSTM cell (kernel + bias [4H]); found {found}")
    for cell in cells:
        _place(cell)
    chosen = _pick_stack(cells, scope, index.name)
    options = {"forget_bias": forget_bias, "cell_clip": cell_clip}
    layers = [_layer(bundle, c, graph, options, notes) for c in _layers_of(chosen, index.name)]
    if skipped:
        more = ", …" if len(skipped) > 3 else ""
        shown = ", ".join(sorted(skipped)[:3])
        notes.append(f"skipped {len(skipped)} optimizer/bookkeeping variables ({shown}{more})")
    infos = [LayerInfo(c.scope, c.kind, _weights(bundle, c), is_lstm=True) for c in cells]
    version = graph.tensorflow_version if graph else ""
    shards = f"{bundle.num_shards} data shard{'s' if bundle.num_shards > 1 else ''}"
    meta = " + .meta graph" if graph else ""
    try:
        return LSTMModel(
            layers=tuple(layers),
            source_path=str(probe.path),
            source_format=f"TensorFlow V2 checkpoint (.index + {shards}{meta})",
            framework=f"{FRAMEWORK} (saved by TensorFlow {version})" if version else FRAMEWORK,
            all_layers=tuple(infos + others),
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{index.name}: the LSTM layers do not chain: {exc}") from exc


def _weights(bundle: Bundle, cell: Cell) -> tuple[tuple[str, tuple[int, ...]], ...]:
    names = [
        cell.kernel,
        cell.bias,
        *cell.peepholes.values(),
        *([cell.projection] if cell.projection else []),
    ]
    return tuple((n, bundle.entries[n].shape) for n in names)


def sniff(probe: Probe) -> bool:
    """Table magic of the index, the checkpoint state text, or a shard-named file; never raises."""
    path = probe.path
    if probe.is_dir:
        return (path / "checkpoint").is_file() or any(
            is_index_file(p) for p in islice(path.glob("*.index"), 50)
        )
    if probe.head.lstrip().startswith(b"model_checkpoint_path"):
        return True
    if DATA_RE.match(path.name):  # this exact shard name is specific enough on its own
        return True
    if path.name.endswith(".index") and any(
        islice(path.parent.glob(f"{glob.escape(path.name[:-6])}.data-*"), 1)
    ):
        return True  # a damaged index beside its shards: let load() say what is wrong
    if path.name.endswith(".meta"):
        return is_index_file(path.with_name(f"{path.name[:-5]}.index"))
    tail = probe.head[-8:] if probe.size <= len(probe.head) else tail_bytes(path)
    return has_table_magic(tail)


READER = Reader(
    name="TensorFlow 1 checkpoint",
    sniff=sniff,
    load=load_tf1_checkpoint,
    priority=0,
    options=("forget_bias", "cell_clip", "scope"),
)
