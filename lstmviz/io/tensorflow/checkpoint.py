"""TensorFlow checkpoints (V2 bundle): TF1 LSTM cells, and Keras LSTMs in TF2 object checkpoints.

The checkpoint stores only variables (CONVENTIONS.md §3.3/§3.4). Names come from the keys, or
for TF2 object-based checkpoints from the object graph (``tf1_objects``). A TF1 cell
(``BasicLSTMCell``/``LSTMCell``/``LSTMBlockCell``, found by ``tf1_scopes``) holds
``kernel [D+H (or D+P), 4H]`` and ``bias [4H]`` in gate order i, j, f, o; ``forget_bias``,
clips and the activation are graph constants, read from the sibling ``.meta`` (``tf1_graph``)
when it is there, else TF's defaults, marked assumed; ``forget_bias=``, ``cell_clip=``,
``proj_clip=`` and ``activation=`` override them. A checkpoint with no TF1 cell but Keras
cells (``kernel`` + ``recurrent_kernel``) goes to ``tf1_keras``. ``scope=`` picks one of
several TF1 stacks.
"""

from __future__ import annotations

import glob
from collections import defaultdict
from itertools import islice
from pathlib import Path

from lstmviz.core.activations import Activation
from lstmviz.core.model import LayerInfo, LSTMDirection, LSTMLayer, LSTMModel, MergeMode
from lstmviz.io.convert import PERMS, reorder_gates
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.tensorflow.bundle import DATA_RE, Bundle, is_index_file, locate, tail_bytes
from lstmviz.io.tensorflow.cells import (
    Settings,
    provenance,
    resolve_settings,
    user_number,
    user_text,
)
from lstmviz.io.tensorflow.context import cell_notes, unplaced_residuals
from lstmviz.io.tensorflow.graph import CellGraph, GraphInfo, read_graph
from lstmviz.io.tensorflow.keras_objects import load_keras_layers, user_activation
from lstmviz.io.tensorflow.objects import Names, variable_names
from lstmviz.io.tensorflow.scopes import Cell, Found, find_cells, place
from lstmviz.io.tensorflow.states import States, direction_states
from lstmviz.io.wire import protowire as pw
from lstmviz.io.wire.sstable import has_table_magic

GATE_ORDER = ("i", "j", "f", "o")
PERM = PERMS[GATE_ORDER]
FRAMEWORK = "TensorFlow 1 checkpoint"


def _pick_stack(cells: list[Cell], scope: str | None, file: str) -> list[Cell]:
    stacks: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        stacks[cell.stack or cell.scope].append(cell)
    if scope is not None:
        inside = [s for s in stacks if s.startswith(scope + "/")]
        if scope not in stacks and len(inside) == 1:
            scope = inside[0]
        if scope not in stacks:
            raise LoadError(
                f"{file}: no LSTM stack {scope!r}; the checkpoint has {', '.join(sorted(stacks))}"
            )
        return stacks[scope]
    if len(stacks) > 1:
        why = ""
        if any(c.backward_stack for c in cells):
            why = (
                " (a bidirectional RNN over two MultiRNNCells merges them only at the end, so "
                "lstmviz shows one direction's stack at a time)"
            )
        raise ChoiceRequired(
            f"{file}: holds {len(stacks)} separate LSTM stacks ({', '.join(sorted(stacks))})"
            f"{why}; pass scope=<one of them>",
            option="scope",
            choices=tuple(sorted(stacks)),
        )
    return next(iter(stacks.values()))


def _direction(
    bundle: Bundle,
    cell: Cell,
    settings: Settings,
    reverse: bool,
    notes: tuple[str, ...] = (),
    states: States | None = None,
) -> LSTMDirection:
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
    states = states or States()
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
        provenance=provenance(bundle, cell, settings, D, H, width, notes, states),
        h0=states.h0,
        c0=states.c0,
    )


def _states(bundle: Bundle, cell: Cell, cell_graph: CellGraph | None) -> States | None:
    """The initial c/h the graph gives this cell, where their values can be read."""
    if cell_graph is None or not cell_graph.initial_state:
        return None
    bias = bundle.entries[cell.bias].shape
    proj = bundle.entries[cell.projection].shape if cell.projection else ()
    H = bias[0] // 4 if len(bias) == 1 else 0
    P = proj[1] if len(proj) == 2 else H
    return direction_states(bundle, cell_graph.h_sources, cell_graph.c_sources, H, P)


def _graph(bundle: Bundle, picked: Path, notes: list[str]) -> GraphInfo | None:
    meta = Path(f"{bundle.prefix}.meta")
    if not meta.is_file():
        return None
    try:
        graph = read_graph(meta.read_bytes())
        notes.extend(graph.notes)
        return graph
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
        cell_graph = graph.cells.get(cell.kernel_name) if graph else None
        if cell_graph is not None and cell_graph.op_kind == "LSTMBlockCell":
            cell.kind = "LSTMBlockCell"
        settings = resolve_settings(cell, graph, cell_graph or CellGraph(), **options)
        reverse = cell.direction == "bw" or cell.backward_stack
        states = _states(bundle, cell, cell_graph)
        told = tuple(cell_notes(cell, cell_graph, graph, states))
        notes.extend(f"{cell.scope}: {n}" for n in told)
        dirs.append(_direction(bundle, cell, settings, reverse, told, states))
    first = cells[0]
    merge, kind = MergeMode.CONCAT, first.kind
    located = graph is not None and first.kernel_name in graph.cells
    static = located and graph is not None and not graph.is_dynamic(first.stack)
    if first.wrapper == "bidirectional_dynamic_rnn" and static:
        first.wrapper = "static_bidirectional_rnn"  # its outputs are [fw, bw] per step
    if first.wrapper:
        kind = f"{first.wrapper}({first.kind})"
    if first.wrapper == "bidirectional_dynamic_rnn":
        merge = MergeMode.NONE
        how = "" if located else " (static_bidirectional_rnn, if it was that, concatenates them)"
        notes.append(
            f"{first.stack}: bidirectional_dynamic_rnn returns (out_fw, out_bw) separately, "
            f"out_bw already in time order{how}; the trace shows them concatenated [fw, bw]"
        )
    name = first.stack if first.direction else first.scope
    try:
        return LSTMLayer(name=name, directions=tuple(dirs), merge_mode=merge, kind=kind)
    except ValueError as exc:
        raise LoadError(f"{bundle.index_path.name}: layer {name}: {exc}") from exc


def load_tf1_checkpoint(
    probe: Probe,
    forget_bias: float | str | None = None,
    cell_clip: float | str | None = None,
    scope: str | None = None,
    activation: str | None = None,
    recurrent_activation: str | None = None,
    proj_clip: float | str | None = None,
) -> LSTMModel:
    """Load the LSTM stack of a TensorFlow V2 checkpoint (any of its files or its folder).

    Numeric options may be strings (``cell_clip='0.5'``, as a command line gives them).
    """
    index = locate(probe.path)
    numbers = {
        "forget_bias": user_number(forget_bias, "forget_bias", index.name),
        "cell_clip": user_number(cell_clip, "cell_clip", index.name),
        "proj_clip": user_number(proj_clip, "proj_clip", index.name),
    }
    scope = user_text(scope, "scope", index.name)
    activation = user_text(activation, "activation", index.name)
    recurrent_activation = user_text(recurrent_activation, "recurrent_activation", index.name)
    bundle = Bundle(index)
    notes: list[str] = []
    graph = _graph(bundle, probe.path, notes)
    names = variable_names(bundle)
    found = find_cells(bundle, names, graph, scope)
    shards = f"{bundle.num_shards} data shard{'s' if bundle.num_shards > 1 else ''}"
    if not found.cells:
        kind = "TF2 object-based checkpoint" if names.object_based else "TensorFlow checkpoint"
        model = load_keras_layers(
            bundle,
            names,
            str(probe.path),
            f"{kind} (.index + {shards})",
            activation,
            recurrent_activation,
        )
        if model is None:
            raise _no_lstm(index.name, names, found)
        return model
    if activation is not None:
        activation = user_activation(activation, index.name, "activation").name
    if recurrent_activation is not None:
        raise LoadError(
            f"{index.name}: recurrent_activation= is for Keras layers; TF1 LSTM cells always "
            "use sigmoid gates"
        )
    for cell in found.cells:
        place(cell)
    chosen = _pick_stack(found.cells, scope, index.name)
    options = {**numbers, "activation": activation}
    layers = [_layer(bundle, c, graph, options, notes) for c in _layers_of(chosen, index.name)]
    notes.extend(unplaced_residuals(chosen, graph))
    if numbers["proj_clip"] is not None and not any(c.projection for c in chosen):
        notes.append("proj_clip= ignored: no cell of this stack has a projection (num_proj)")
    if names.skipped:
        more = ", …" if len(names.skipped) > 3 else ""
        shown = ", ".join(sorted(names.skipped)[:3])
        n = len(names.skipped)
        notes.append(f"skipped {n} optimizer/bookkeeping variables ({shown}{more})")
    infos = [LayerInfo(c.scope, c.kind, _weights(bundle, c), is_lstm=True) for c in found.cells]
    version = graph.tensorflow_version if graph else ""
    meta = " + .meta graph" if graph else ""
    what = "TF2 object-based checkpoint" if names.object_based else "TensorFlow V2 checkpoint"
    try:
        return LSTMModel(
            layers=tuple(layers),
            source_path=str(probe.path),
            source_format=f"{what} (.index + {shards}{meta})",
            framework=f"{FRAMEWORK} (saved by TensorFlow {version})" if version else FRAMEWORK,
            all_layers=tuple(infos + found.others),
            notes=tuple(notes),
        )
    except ValueError as exc:
        raise LoadError(f"{index.name}: the LSTM layers do not chain: {exc}") from exc


def _no_lstm(file: str, names: Names, found: Found) -> LoadError:
    """Say what the checkpoint holds instead, and what would make it load."""
    others = ", ".join(f"{i.name} ({i.kind})" for i in found.others[:5]) or "no variables"
    hint = ""
    if found.unnamed:
        hint = (
            f"; if {found.unnamed[0]} (kernel + bias [4H]) is a TF1 LSTM cell under a custom "
            f"name, pass scope='{found.unnamed[0]}'"
        )
    if names.object_based:
        return LoadError(
            f"{file}: TF2 object-based checkpoint without an LSTM (found {others}); lstmviz "
            f"reads Keras LSTM/Bidirectional layers and TF1 LSTM cells from it{hint}"
        )
    return LoadError(f"{file}: no TF1 LSTM cell (kernel + bias [4H]); found {others}{hint}")


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
    options=(
        "forget_bias",
        "cell_clip",
        "proj_clip",
        "scope",
        "activation",
        "recurrent_activation",
    ),
)
