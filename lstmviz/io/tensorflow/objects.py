"""Variable names of a checkpoint: TF1 names as stored, TF2 object keys through the object graph.

A TF1 ``Saver`` keys each tensor by its variable name (``rnn/lstm_cell/kernel``). A TF2
object-based checkpoint (``tf.train.Checkpoint.save``, Keras ``save_weights`` in TF format)
keys it by the object path that reaches it, e.g. ``model/layer_with_weights-0/cell/kernel/
.ATTRIBUTES/VARIABLE_VALUE``, and stores a ``TrackableObjectGraph`` proto under
``_CHECKPOINTABLE_OBJECT_GRAPH`` (tensorflow/core/protobuf/trackable_object_graph.proto):
``nodes = 1`` (TrackableObject: ``children = 1`` {node_id = 1, local_name = 2},
``attributes = 2`` {name = 1, full_name = 2, checkpoint_key = 3}, ``slot_variables = 3``
{original_variable_node_id = 1, slot_name = 2, slot_variable_node_id = 3}). ``full_name`` is
the variable's own name (``lstm/lstm_cell/kernel``; Keras 3: ``sequential/lstm/lstm_cell/
kernel``), which says what the variable is even when the path does not (Keras 3 models are
reached only through ``optimizer/_trainable_variables/N``). The children of each node are
listed in tracking order, so the path of child positions orders layers as the model built them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.bundle import TF2_SUFFIX, Bundle
from lstmviz.io.wire import protowire as pw

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_NODES = 1_000_000
#: Optimizer names that start the full name of a slot or optimizer variable (Keras 2/3, TF1).
OPTIMIZERS = frozenset(
    {"adam", "adamw", "adamax", "adadelta", "adagrad", "adafactor", "ftrl", "lamb", "lion"}
    | {"nadam", "rmsprop", "sgd", "momentum", "loss_scale_optimizer", "lossscaleoptimizer"}
)
BOOKKEEPING = frozenset(
    {
        "global_step",
        "beta1_power",
        "beta2_power",
        OBJECT_GRAPH_KEY,
        "save_counter",
        "iteration",
        "iterations",
        "learning_rate",
        "seed_generator_state",  # Keras 3 dropout seeds
    }
)
SLOT_RE = re.compile(
    r"^(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|Ftrl|Ftrl_\d+|Adadelta"
    r"|Adadelta_\d+|Adamax|Nadam|ExponentialMovingAverage)$"
)


@dataclass(frozen=True)
class Names:
    """Every checkpoint key under a readable variable name, and which keys are not weights."""

    by_name: dict[str, str]  # variable name → checkpoint key
    order: dict[str, tuple[int, ...]]  # variable name → tracking path, else (1 << 30, sorted)
    skipped: tuple[str, ...]  # names of optimizer slots and bookkeeping variables
    object_based: bool  # TF2 object-based checkpoint
    full_names: bool  # names come from the object graph's full_name fields


def _strip(key: str) -> str:
    return key[: -len(TF2_SUFFIX)] if key.endswith(TF2_SUFFIX) else key


@dataclass(frozen=True)
class Tracked:
    """What the object graph says of one checkpoint key."""

    full_name: str  # the variable's own name ("" if not recorded)
    path: str  # local names from the root, the model's own objects before the optimizer's
    positions: tuple[int, ...]  # child positions along ``path``: the tracking order


def _object_graph(bundle: Bundle) -> dict[str, Tracked]:
    """checkpoint_key → :class:`Tracked` from the object graph; {} if it has none."""
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return {}
    raw = bundle.read_string(OBJECT_GRAPH_KEY)
    try:
        nodes = [pw.parse(n) for n in pw.parse(raw).get(1, ()) if isinstance(n, memoryview)]
        if len(nodes) > MAX_NODES:
            raise pw.ProtoError(f"{len(nodes)} nodes")
        paths = _paths(nodes)
        out: dict[str, Tracked] = {}
        for number, (positions, local) in paths.items():
            for attr in nodes[number].get(2, ()):
                if isinstance(attr, memoryview):
                    f = pw.parse(attr)
                    out[pw.get_string(f, 3)] = Tracked(pw.get_string(f, 2), local, positions)
    except pw.ProtoError as exc:
        raise LoadError(
            f"{bundle.index_path.name}: corrupt {OBJECT_GRAPH_KEY} (TF2 object graph: {exc})"
        ) from exc
    return out


def node_keys(bundle: Bundle) -> dict[int, str]:
    """Object-graph node id → the checkpoint key of its ``VARIABLE_VALUE``; a SavedModel's
    SavedObjectGraph numbers its objects the same way, so its functions' bound inputs (node
    ids) name checkpoint tensors through this."""
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return {}
    raw = bundle.read_string(OBJECT_GRAPH_KEY)
    out: dict[int, str] = {}
    try:
        for number, node in enumerate(pw.parse(raw).get(1, ())):
            if number >= MAX_NODES or not isinstance(node, memoryview):
                break
            for attr in pw.parse(node).get(2, ()):
                if isinstance(attr, memoryview):
                    f = pw.parse(attr)
                    if pw.get_string(f, 1) == "VARIABLE_VALUE":
                        out[number] = pw.get_string(f, 3)
    except pw.ProtoError:
        return {}
    return out


def _children(node: pw.Fields) -> list[tuple[int, str]]:
    out = []
    for child in node.get(1, ()):
        if isinstance(child, memoryview):
            f = pw.parse(child)
            out.append((pw.get_signed(f, 1), pw.get_string(f, 2)))
    return out


#: SavedModel lists every variable again under these children (``variables/0``…); walking them
#: first would order a layer by its place in that flat list, not by the model's tracking.
AGGREGATES = frozenset(
    {"variables", "trainable_variables", "non_trainable_variables", "keras_api"}
    | {"regularization_losses", "trainable_weights", "non_trainable_weights", "weights"}
)


def _paths(nodes: list[pw.Fields]) -> dict[int, tuple[tuple[int, ...], str]]:
    """Breadth-first from node 0: the first path reaching each node, as child positions and as
    joined local names. The model's own objects come first, then SavedModel's flat variable
    lists (``AGGREGATES``), then the root's ``optimizer``.

    TensorFlow keys a variable by its shortest path, which for Keras 3 models runs through
    ``optimizer/_trainable_variables/N`` and for a SavedModel through ``variables/N``; walking
    the model first gives its own path and its tracking order (layer_with_weights-0 first).
    """
    if not nodes:
        return {}
    paths: dict[int, tuple[tuple[int, ...], str]] = {0: ((), "")}

    def own(parent: int, local: str) -> bool:
        return local not in AGGREGATES and (parent != 0 or local != "optimizer")

    _walk(nodes, paths, [0], own)
    _walk(nodes, paths, list(paths), lambda parent, local: parent != 0 or local != "optimizer")
    _walk(nodes, paths, [0], lambda _parent, _local: True)  # what only the optimizer reaches
    return paths


def _walk(
    nodes: list[pw.Fields],
    paths: dict[int, tuple[tuple[int, ...], str]],
    pending: list[int],
    follow: Callable[[int, str], bool],
) -> None:
    """Extend ``paths`` breadth-first from ``pending`` along the edges ``follow`` accepts."""
    for number in pending:  # grows while iterating; each node enters once
        for position, (target, local) in enumerate(_children(nodes[number])):
            if 0 <= target < len(nodes) and target not in paths and follow(number, local):
                positions, name = paths[number]
                paths[target] = ((*positions, position), f"{name}/{local}".lstrip("/"))
                pending.append(target)


def is_bookkeeping(key: str, name: str) -> bool:
    """Optimizer slots, step counters and the object graph itself: never model weights."""
    path = _strip(key)
    first, _, rest = path.partition("/")
    if ".OPTIMIZER_SLOT" in key:
        return True
    if first == "optimizer" and not rest.startswith("_trainable_variables/"):
        return True  # Keras optimizer state; Keras 3 reaches the weights only this way
    parts = name.split("/")
    return (
        name in BOOKKEEPING
        or parts[-1] in BOOKKEEPING
        or bool(SLOT_RE.match(parts[-1]))
        or (len(parts) > 1 and parts[0].lower() in OPTIMIZERS)
    )


def variable_names(bundle: Bundle) -> Names:
    """Readable names for every tensor: the object graph's full name when it is unique, else
    the model's own object path, else the key."""
    keys = list(bundle.entries)
    object_based = any(k.endswith(TF2_SUFFIX) for k in keys)
    graph = _object_graph(bundle) if object_based else {}
    copies = _copies(bundle, graph)
    full = Counter(t.full_name for k, t in graph.items() if t.full_name and k not in copies)
    paths = Counter(t.path for t in graph.values() if t.path)
    by_name: dict[str, str] = {}
    order: dict[str, tuple[int, ...]] = {}
    skipped = []
    for position, key in enumerate(sorted(keys, key=_natural)):
        tracked = graph.get(key)
        name = _strip(key)
        if key in copies:
            name = key  # a second copy of another key's tensor
        elif tracked is not None and full[tracked.full_name] == 1:
            name = tracked.full_name
        elif tracked is not None and paths[tracked.path] == 1:
            name = tracked.path
        if name in by_name:  # a name equal to another key's path: keep both apart
            name = key
        by_name[name] = key
        order[name] = tracked.positions if tracked is not None else (1 << 30, position)
        if is_bookkeeping(key, name) or key in copies:
            skipped.append(name)
    return Names(by_name, order, tuple(skipped), object_based, bool(full))


def _copies(bundle: Bundle, graph: dict[str, Tracked]) -> set[str]:
    """Keys that repeat another key's variable: a Keras 3 ``model.export`` SavedModel saves
    each variable under ``variables/N`` and again under ``_all_variables/M``, both with the
    same full name and the same bytes (same dtype, shape and checksum). The first key in the
    model's own order is kept; keys of one full name whose tensors differ are all kept."""
    by_full: dict[str, list[str]] = {}
    for key, tracked in graph.items():
        if tracked.full_name and key in bundle.entries:
            by_full.setdefault(tracked.full_name, []).append(key)
    out: set[str] = set()
    for keys in by_full.values():
        if len(keys) < 2:
            continue
        first = bundle.entries[keys[0]]
        same = all(
            (e.dtype, e.shape, e.crc32c, e.size)
            == (first.dtype, first.shape, first.crc32c, first.size)
            for e in (bundle.entries[k] for k in keys)
        )
        if same:
            keys = sorted(keys, key=lambda k: (k.startswith("_all_variables/"), graph[k].positions))
            out.update(keys[1:])
    return out


def _natural(text: str) -> tuple:
    """``lstm_2`` before ``lstm_10``, ``layer_with_weights-2`` before ``-10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))
