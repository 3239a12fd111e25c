"""Where the model's tensors sit in an unpickled object, and what else it holds.

A ``torch.save`` pickle may hold a plain state dict, a training checkpoint that nests one
(``{"state_dict": ..., "optimizer": ..., "epoch": 3}``), a whole pickled ``nn.Module`` (an
inert record whose ``_parameters``/``_buffers``/``_modules`` are walked as ``state_dict()``
would), a TorchScript module tree, or a library's own objects. ``split_checkpoint`` walks it
iteratively with depth, size and path-length limits (the object came from an untrusted file)
and returns dotted tensor names, the rest as extras, and notes; dynamic-quantized LSTM cells
met on the way are expanded into plain LSTM weight names (``quantized``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from lstmviz.io.errors import LoadError
from lstmviz.io.torch import quantized
from lstmviz.io.torch.checkpoint import ScriptObject
from lstmviz.io.torch.state_dict import Tensor, is_tensor
from lstmviz.io.wire.pickle_records import key_name
from lstmviz.io.wire.safe_pickle import PickledObject

#: Keys under which training scripts nest the model's state dict.
CONTAINER_KEYS = ("model_state_dict", "state_dict", "model", "net", "network", "model_state")
_MAX_NODES = 2_000_000
_MAX_DEPTH = 100


@dataclass(frozen=True)
class Checkpoint:
    """A loaded pickle split into the model's tensors and everything else."""

    tensors: dict[str, Tensor]
    extras: dict[str, Tensor] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    derived: dict[str, str] = field(default_factory=dict)  # computed weight name -> how
    #: ``nn.RNN`` module path → its ``nonlinearity`` attribute (whole pickle, TorchScript)
    nonlinearities: dict[str, str] = field(default_factory=dict)


#: TorchScript attributes that repeat the parameters under other names.
_SCRIPT_REPEATS = frozenset({"_flat_weights"})
#: The parts of a pickled ``nn.Module`` that ``Module.state_dict`` reads, in its order.
_MODULE_PARTS = ("_parameters", "_buffers", "_modules")
_MAX_PATH = 4096


def _children(node: object) -> list[tuple[str, object]] | None:
    """(key, value) pairs of a container, or None for a leaf.

    A TorchScript object keeps its tensors and submodules, public or private (``self._model``),
    but not ``_flat_weights``, which repeats the parameters. A whole pickled ``nn.Module``
    gives what ``state_dict()`` would: its ``_parameters``, ``_buffers`` and ``_modules`` by
    name (None entries, unset biases, skipped).
    """
    if isinstance(node, ScriptObject):
        return [
            (k, v)
            for k, v in node.items()
            if k not in _SCRIPT_REPEATS and (is_tensor(v) or isinstance(v, (Mapping, list, tuple)))
        ]
    if isinstance(node, PickledObject) and node.is_module:
        parts = [node.get(part) for part in _MODULE_PARTS]
        packed = [(k, v) for k, v in node.items() if quantized.is_quantized_cell(v)]
        return [
            (key_name(k), v)
            for part in parts
            if isinstance(part, Mapping)
            for k, v in part.items()
            if v is not None
        ] + packed  # a quantized LSTM's PackedParameter keeps its cell as a plain attribute
    if isinstance(node, Mapping):
        return [(key_name(k), v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return [(str(k), v) for k, v in enumerate(node)]
    return None


def module_classes(obj: object, limit: int = 100_000, modules: bool = True) -> list[str]:
    """``module.Class`` of every whole pickled ``nn.Module`` (``modules=False``: of every
    object of a class never imported), outermost first (breadth-first)."""
    found: list[str] = []
    todo, seen = deque([obj]), set()
    while todo and len(seen) < limit:
        node = todo.popleft()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, PickledObject) and (node.is_module or not modules):
            found.append(f"{node.cls.module}.{node.cls.name}")
        if isinstance(node, PickledObject) and not modules:
            todo.extend(node.values())
            continue
        items = _children(node)
        if items:
            todo.extend(v for _, v in items)
    return found


@dataclass
class _Found:
    """What a walk met besides tensors: quantized LSTM cells, and modules' direction counts."""

    cells: dict[str, object] = field(default_factory=dict)
    directions: dict[str, int] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    nonlinearities: dict[str, str] = field(default_factory=dict)


def _flatten(
    obj: object, base: str, file: str, found: _Found | None = None
) -> tuple[dict[str, Tensor], dict[str, object]]:
    """Dotted paths of every tensor (and shallow scalar) in nested dicts/lists, iteratively."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, object] = {}
    found = found if found is not None else _Found()
    seen: set[int] = set()
    todo: list[tuple[str, object, int]] = [(base, obj, 0)]
    nodes = 0
    while todo:
        path, node, depth = todo.pop()
        nodes += 1
        if nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise LoadError(f"{file}: pickle is nested too deeply or too large to be a state dict")
        if is_tensor(node):
            tensors[path] = node  # type: ignore[assignment]
            continue
        if id(node) in seen:  # before listing children: a list holding itself 30k times
            continue
        if quantized.is_quantized_cell(node):
            found.cells[path] = node
            continue
        if isinstance(node, Mapping) and isinstance(node.get("bidirectional"), bool):
            found.directions[path] = 2 if node["bidirectional"] else 1
        if isinstance(node, Mapping) and node.get("nonlinearity") in ("tanh", "relu"):
            found.nonlinearities[path] = node["nonlinearity"]  # nn.RNN's, not a tensor
        items = _children(node)
        if items is None:
            if depth <= 2 and isinstance(node, (int, float, str, bool)) and len(scalars) < 20:
                scalars[path] = node
            continue
        seen.add(id(node))
        if len(path) + max((len(k) for k, _ in items), default=0) >= _MAX_PATH:
            # checked before any child path is built: one shared 1 MB key under many parents
            # would otherwise be copied into each path
            raise LoadError(f"{file}: pickle has a key path longer than {_MAX_PATH} characters")
        todo.extend((f"{path}.{k}" if path else k, v, depth + 1) for k, v in reversed(items))
    if found.cells:
        tensors, derived = quantized.expand_cells(tensors, found.cells, found.directions, file)
        found.derived.update(derived)
    return tensors, scalars


def split_checkpoint(obj: object, file: str) -> Checkpoint:
    """Find the model's state dict in a plain state dict or a training checkpoint.

    ``{"model_state_dict": ..., "optimizer_state_dict": ..., "epoch": 3}`` and
    ``{"state_dict": ...}`` keep their model names without the container key; any other
    nesting (and a TorchScript module's attribute tree) is flattened with dotted paths.
    """
    if is_tensor(obj):
        raise LoadError(
            f"{file}: file holds a single tensor, not a state dict; "
            "save the model with torch.save(model.state_dict(), path)"
        )
    notes: list[str] = []
    found = _Found()
    if isinstance(obj, Mapping) and not isinstance(obj, ScriptObject):
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                tensors, _ = _flatten(inner, "", file, found)
                if tensors:
                    rest = {key_name(k): v for k, v in obj.items() if k != key}
                    extras, scalars = _flatten(rest, "", file)
                    notes.append(f"state dict found under '{key}'")
                    notes.extend(_scalar_note(k, v) for k, v in scalars.items())
                    notes = _module_notes(inner) + _quantized_notes(found, tensors) + notes
                    return Checkpoint(
                        tensors, extras, tuple(notes), found.derived, found.nonlinearities
                    )
    tensors, scalars = _flatten(obj, "", file, found)
    notes.extend(_scalar_note(k, v) for k, v in scalars.items())
    notes = _module_notes(obj) + _quantized_notes(found, tensors) + notes
    return Checkpoint(tensors, {}, tuple(notes), found.derived, found.nonlinearities)


def _quantized_notes(found: _Found, tensors: Mapping[str, Tensor]) -> list[str]:
    if not found.derived:
        return []
    hh = [tensors[n] for n in found.derived if n.rpartition(".")[2].startswith("weight_hh")]
    shapes = [tuple(t.shape) for t in hh if len(t.shape) == 2]
    gru = bool(shapes) and all(rows == 3 * cols for rows, cols in shapes)
    kind = "GRU" if gru else "LSTM"  # quantize_dynamic packs nn.GRU like nn.LSTM
    if any("qint8" in how for how in found.derived.values()):
        return [
            f"dynamic-quantized {kind} (qint8): weights shown dequantized; torch's quantized run "
            "also rounds the activations, lstmviz runs the dequantized weights in float"
        ]
    return [f"dynamic-quantized {kind} (float16 packed weights): weights shown as stored"]


def foreign_classes(obj: object) -> list[str]:
    """Classes of inert records in ``obj`` (a library's own model objects), outermost first."""
    return module_classes(obj, limit=10_000, modules=False)


def _scalar_note(key: str, value: object) -> str:
    return (
        f"{key[:40]} = {value[:60]!r}" if isinstance(value, str) else f"{key[:40]} = {value!r}"[:80]
    )


def _module_notes(obj: object) -> list[str]:
    """A whole pickled model is read as data: say so, naming its outermost class."""
    classes = module_classes(obj, limit=10_000)
    if not classes:
        return []
    return [
        f"whole pickled model ({classes[0]}): weights taken from its modules' _parameters, "
        "none of its code imported or run"
    ]
