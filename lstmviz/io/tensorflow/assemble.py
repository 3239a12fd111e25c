"""A TensorFlow model's weights and graph → ``LSTMModel``: TF1 cell stacks, Keras layers, the head.

Shared by every TensorFlow route (a V2 checkpoint with its ``.meta``, a SavedModel, a frozen
GraphDef): each gives a *bundle* (the checkpoint's ``Bundle``, or a ``ConstBundle`` over a frozen
graph's ``Const`` nodes: ``entries``, ``read``, ``index_path``) and the decoded graph, if any.
A TF1 cell (``BasicLSTMCell``/``LSTMCell``/``LSTMBlockCell``, found by ``scopes``) holds
``kernel [D+H (or D+P), 4H]`` and ``bias [4H]`` in gate order i, j, f, o; ``forget_bias``,
clips and the activation are graph constants (``graph``), else TF's defaults, marked assumed.
With no TF1 cell, Keras cells (``kernel`` + ``recurrent_kernel``) go to ``keras_objects``, and
in a frozen graph the Keras gate ``Split`` pattern to ``keras_graph``. The TF1 head
(``tf.matmul(outputs[-1], W) + b``) comes from ``heads``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lstmviz.core.activations import Activation
from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    freeze,
)
from lstmviz.io.convert import PERMS, reorder_gates
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.tensorflow.cells import Settings, provenance, resolve_settings
from lstmviz.io.tensorflow.context import cell_notes, unplaced_residuals
from lstmviz.io.tensorflow.graph import CellGraph, GraphInfo
from lstmviz.io.tensorflow.gru import RecurrentCell
from lstmviz.io.tensorflow.gru import direction as gru_direction
from lstmviz.io.tensorflow.heads import find_head, head_infos
from lstmviz.io.tensorflow.keras_metadata import KerasMetadata
from lstmviz.io.tensorflow.keras_objects import load_keras_layers, user_activation
from lstmviz.io.tensorflow.objects import Names, variable_names
from lstmviz.io.tensorflow.scopes import Cell, Found, find_cells, place
from lstmviz.io.tensorflow.states import States, direction_states

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.bundle import Bundle  # or a graphdef.ConstBundle, duck-typed

GATE_ORDER = ("i", "j", "f", "o")
PERM = PERMS[GATE_ORDER]
FRAMEWORK = "TensorFlow 1 checkpoint"


@dataclass
class Request:
    """What the caller read and what the user asked for."""

    path: str  # the file the user picked
    file: str  # the name messages start with
    kind: str  # "TensorFlow V2 checkpoint", "TensorFlow frozen GraphDef", …
    parts: str  # what was read: ".index + 1 data shard" (a graph is added when there is one)
    numbers: dict[str, float | None] = field(default_factory=dict)
    scope: str | None = None
    activation: str | None = None
    recurrent_activation: str | None = None
    notes: list[str] = field(default_factory=list)
    graph_label: str = " + .meta graph"  # how the source says a graph was read
    #: what to try when the variables hold no TF1 or Keras LSTM by name (a frozen graph's
    #: Keras layers); returns a model or raises the refusal
    fallback: Callable[[], LSTMModel] | None = None
    #: Keras layers read from the graph's ops (a frozen graph), tried before the names: the
    #: ops also give the activations, which names do not
    graph_layers: Callable[[], LSTMModel | None] | None = None
    keras_metadata: KerasMetadata | None = None  # a tf.keras SavedModel's layer configs


def _cell_word(cell: Cell) -> str:
    """How a message names a TF1 cell: LSTM, GRU or RNN."""
    if isinstance(cell, RecurrentCell):
        return "RNN" if cell.kind == "BasicRNNCell" else "GRU"
    return "LSTM"


def _pick_stack(cells: list[Cell], scope: str | None, file: str) -> list[Cell]:
    stacks: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        stacks[cell.stack or cell.scope].append(cell)
    kinds = {_cell_word(c) for c in cells}
    word = kinds.pop() if len(kinds) == 1 else "recurrent"  # an all-LSTM file as before
    if scope is not None:
        inside = [s for s in stacks if s.startswith(scope + "/")]
        if scope not in stacks and len(inside) == 1:
            scope = inside[0]
        if scope not in stacks:
            raise LoadError(
                f"{file}: no {word} stack {scope!r}; the checkpoint has {', '.join(sorted(stacks))}"
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
            f"{file}: holds {len(stacks)} separate {word} stacks ({', '.join(sorted(stacks))})"
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
        W_x=freeze(reorder_gates(kernel[:D].T, PERM)),  # fresh arrays: the model keeps them
        W_h=freeze(reorder_gates(kernel[D:].T, PERM)),
        b=freeze(b),
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


def _relabel(direction: LSTMDirection, graph: GraphInfo | None, kind: str) -> LSTMDirection:
    """Name the graph the settings came from as it is (``saved_model.pb``, the frozen graph)
    and the source as it is, where the cell code says ``.meta`` and a V2 checkpoint."""
    prov = direction.provenance
    source = graph.source if graph is not None else ".meta"
    if source == ".meta" and kind == prov.source_format:
        return direction
    whole = "the graph" if source.startswith("the ") else f"the {source} graph"

    def note(text: str) -> str:
        return text.replace("the .meta graph", whole).replace(".meta", source)

    settings = tuple(replace(s, note=note(s.note)) for s in prov.settings)
    return replace(direction, provenance=replace(prov, settings=settings, source_format=kind))


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
    bundle: Bundle,
    cells: list[Cell],
    graph: GraphInfo | None,
    options: dict,
    notes: list[str],
    req_kind: str = "TensorFlow V2 checkpoint",
) -> LSTMLayer:
    dirs = []
    for cell in cells:
        if isinstance(cell, RecurrentCell):  # a GRU or plain RNN (``tensorflow.gru``)
            reverse = cell.direction == "bw" or cell.backward_stack
            recurrent = gru_direction(bundle, cell, reverse, options.get("activation"))
            dirs.append(_relabel(recurrent, graph, req_kind))  # type: ignore[arg-type]
            continue
        cell_graph = graph.cells.get(cell.kernel_name) if graph else None
        if cell_graph is not None and cell_graph.op_kind == "LSTMBlockCell":
            cell.kind = "LSTMBlockCell"
        settings = resolve_settings(cell, graph, cell_graph or CellGraph(), **options)
        reverse = cell.direction == "bw" or cell.backward_stack
        states = _states(bundle, cell, cell_graph)
        told = tuple(cell_notes(cell, cell_graph, graph, states))
        notes.extend(f"{cell.scope}: {n}" for n in told)
        direction = _direction(bundle, cell, settings, reverse, told, states)
        dirs.append(_relabel(direction, graph, req_kind))
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


def assemble(bundle: Bundle, graph: GraphInfo | None, req: Request) -> LSTMModel:
    """The LSTM stack (and head) of ``bundle``'s variables, with ``graph`` when there is one."""
    names = variable_names(bundle)
    found = find_cells(bundle, names, graph, req.scope)
    notes = req.notes
    if not found.cells:
        kind = _kind(req, names)
        model = req.graph_layers() if req.graph_layers is not None else None
        if model is not None:
            return model
        model = load_keras_layers(
            bundle,
            names,
            req.path,
            f"{kind} ({req.parts})",
            req.activation,
            req.recurrent_activation,
            req.keras_metadata,
        )
        if model is None and req.fallback is not None:
            return req.fallback()
        if model is None:
            raise _no_lstm(req.file, names, found)
        return model
    activation = req.activation
    if activation is not None:
        activation = user_activation(activation, req.file, "activation").name
    if req.recurrent_activation is not None:
        raise LoadError(
            f"{req.file}: recurrent_activation= is for Keras layers; TF1 LSTM cells always "
            "use sigmoid gates"
        )
    for cell in found.cells:
        place(cell)
    chosen = _pick_stack(found.cells, req.scope, req.file)
    options = {**req.numbers, "activation": activation}
    layers = [
        _layer(bundle, c, graph, options, notes, _kind(req, names))
        for c in _layers_of(chosen, req.file)
    ]
    notes.extend(unplaced_residuals(chosen, graph))
    if req.numbers.get("proj_clip") is not None and not any(c.projection for c in chosen):
        notes.append("proj_clip= ignored: no cell of this stack has a projection (num_proj)")
    if names.skipped:
        more = ", …" if len(names.skipped) > 3 else ""
        shown = ", ".join(sorted(names.skipped)[:3])
        n = len(names.skipped)
        notes.append(f"skipped {n} optimizer/bookkeeping variables ({shown}{more})")
    used = {n for c in found.cells for n, _shape in _weights(bundle, c)}
    head = find_head(graph, bundle, chosen, layers[-1], used, notes) if graph else None
    if head is not None and not head.return_sequences:
        if layers[-1].bidirectional:
            # TF slices the [fw, bw] sequence at its last time step, where bw has read only
            # one step; lstmviz's last_output would take bw's last processed step (time 0)
            notes.append("the head's output at the last step (last row) is TF's logits")
        else:
            layers[-1] = replace(layers[-1], return_sequences=False)
    infos = [LayerInfo(c.scope, c.kind, _weights(bundle, c), is_lstm=True) for c in found.cells]
    others = head_infos(head, found.others) if head is not None else found.others
    version = graph.tensorflow_version if graph else ""
    meta = req.graph_label if graph else ""
    what = _kind(req, names)
    source = f"{what} ({req.parts}{meta})"
    try:
        return LSTMModel(
            layers=tuple(layers),
            source_path=req.path,
            source_format=source,
            framework=f"{FRAMEWORK} (saved by TensorFlow {version})" if version else FRAMEWORK,
            all_layers=tuple(infos + others),
            head=head.transforms if head is not None else (),
            notes=tuple(notes),
        )
    except ValueError as exc:
        kinds = {layer.cell.name for layer in layers}
        word = kinds.pop() if len(kinds) == 1 else "recurrent"
        raise LoadError(f"{req.file}: the {word} layers do not chain: {exc}") from exc


def _kind(req: Request, names: Names) -> str:
    """What the source is called: a SavedModel stays one; else an object-based checkpoint."""
    if names.object_based and "SavedModel" not in req.kind:
        return "TF2 object-based checkpoint"
    return req.kind


def _no_lstm(file: str, names: Names, found: Found) -> LoadError:
    """Say what the checkpoint holds instead, and what would make it load."""
    others = ", ".join(f"{i.name} ({i.kind})" for i in found.others[:5]) or "no variables"
    hint = ""
    if found.unnamed:
        hint = (
            f"; if {found.unnamed[0]} (kernel + bias [4H]) is a TF1 LSTM cell under a custom "
            f"name, pass scope='{found.unnamed[0]}'"
        )
    gru = sorted(
        {
            i.name.removesuffix("/gates").removesuffix("/candidate")
            for i in found.others
            if "GRU" in i.kind and "LSTM" not in i.kind
        }
    )
    if gru:
        return LoadError(
            f"{file}: TensorFlow checkpoint of an incomplete GRU ({', '.join(gru[:3])}: "
            "gates or candidate missing); lstmviz reads GRUCell scopes holding gates/kernel, "
            "gates/bias, candidate/kernel and candidate/bias"
        )
    if names.object_based:
        return LoadError(
            f"{file}: TF2 object-based checkpoint without an LSTM (found {others}); lstmviz "
            f"reads Keras LSTM/Bidirectional layers and TF1 LSTM cells from it{hint}"
        )
    return LoadError(f"{file}: no TF1 LSTM cell (kernel + bias [4H]); found {others}{hint}")


def _weights(bundle: Bundle, cell: Cell) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if isinstance(cell, RecurrentCell):
        return tuple((n, bundle.entries[n].shape) for n in cell.arrays)
    names = [
        cell.kernel,
        cell.bias,
        *cell.peepholes.values(),
        *([cell.projection] if cell.projection else []),
    ]
    return tuple((n, bundle.entries[n].shape) for n in names)
