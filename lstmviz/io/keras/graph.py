"""The leaf layers of a Keras model config and how they are wired (CONVENTIONS §3.2).

A config lists layers; a functional model also records, per layer, which layer output feeds
it (``inbound_nodes``: Keras 2 ``[[name, node, tensor, kwargs], …]``, Keras 3
``{"args": [keras_tensor…], "kwargs": {…}}`` with ``keras_history`` = [name, node, tensor]).
lstmviz chains LSTMs by that wiring, so a branch, a mask op (Keras 3 writes ``NotEqual`` for
``mask_zero``) or a second model input is not mistaken for the next layer of a stack.
Sequential models feed each layer the previous one. ``RNN(LSTMCell)`` and
``RNN(StackedRNNCells([LSTMCell…]))`` are rewritten as the ``LSTM`` layers they compute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lstmviz.io.errors import LoadError

MAX_DEPTH = 32  # nested models deeper than this are not real files
#: Leaf layers one config may list: real models have a few thousand at most, and each costs
#: ~20 us here and in the weights lookup (a 0.3 MB .keras listed 100,000 Dense layers: 2+ s).
MAX_LAYERS = 20_000
MODEL_KINDS = frozenset({"Sequential", "Functional", "Model"})
MODEL_INPUT = "<input>"  # the node id of the model's own input
_RECURRENT = frozenset(
    {"LSTM", "RNN", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU", "Bidirectional"}
)


@dataclass(frozen=True)
class Wiring:
    """Where a layer's data comes from, as node ids (unique per leaf: its Keras 3 path).

    ``source``: the node feeding the data input (``MODEL_INPUT`` for the model input, None
    when the config does not say). ``source_output``: which output of it (an LSTM with
    return_state gives sequence, h, c). ``states``: nodes handing it an ``initial_state``.
    """

    node: str
    source: str | None
    source_output: int = 0
    states: tuple[str, ...] = ()
    n_inputs: int = 1
    #: every data input's node (a merge layer has several), None where not resolved
    sources: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class LayerSpec:
    """One leaf layer of a (possibly nested) model config.

    ``top``: the name of the top-level layer holding it (the legacy HDF5 group).
    ``v3_path``: the Keras 3 weights path (``layers/sequential/layers/lstm``), built the way
    ``saving_lib`` builds it: snake_case class name, de-duplicated per container.
    """

    name: str
    kind: str
    config: Mapping[str, Any]
    top: str
    v3_path: str
    wiring: Wiring | None = None
    module: str = ""  # Keras 3 "keras.layers", or "keras.src.ops…" for an op on tensors

    @property
    def is_op(self) -> bool:
        """A Keras 3 operation recorded as a layer (``NotEqual`` for a mask): no weights."""
        return self.module.startswith("keras.src.ops")

    @property
    def inner(self) -> Mapping[str, Any] | None:
        """The wrapped layer's entry of a Bidirectional / TimeDistributed."""
        layer = self.config.get("layer")
        return layer if isinstance(layer, Mapping) else None

    @property
    def inner_kind(self) -> str:
        inner = self.inner
        return str(inner.get("class_name", "")) if inner else ""

    @property
    def display_kind(self) -> str:
        return f"{self.kind}({self.inner_kind})" if self.inner_kind else self.kind


def to_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (the Keras 3 weights path uses it on class names)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def layer_entries(model_cfg: Mapping[str, Any]) -> list[Any]:
    inner = model_cfg.get("config")
    if isinstance(inner, list):  # Keras 2.0/2.1 Sequential: config is the layer list
        return inner
    if isinstance(inner, Mapping) and isinstance(inner.get("layers"), list):
        return inner["layers"]
    return []


def flatten_layers(model_cfg: object, file: str) -> list[LayerSpec]:
    """Every leaf layer of a model config, in config order, nested models expanded."""
    if not isinstance(model_cfg, Mapping) or not isinstance(model_cfg.get("class_name"), str):
        raise LoadError(f"{file}: model config is not a Keras model description")
    if model_cfg["class_name"] not in MODEL_KINDS and not layer_entries(model_cfg):
        return []  # a subclassed model: its config does not list layers
    out: list[LayerSpec] = []
    _walk(model_cfg, _Scope("", None, MODEL_INPUT, file, 0), out)
    return out


# ----------------------------------------------------------------------------- RNN cells
#: Cells an ``RNN`` layer may run, rewritten as the layer class computing the same.
_CELL_LAYERS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}


def _cell_entries(cfg: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The LSTMCell/GRUCell/SimpleRNNCell entries an ``RNN`` layer runs, or None if it runs
    any other cell."""
    cell = cfg.get("cell")
    if isinstance(cell, list):  # Keras 2 could store the list itself
        cells: Any = cell
    elif isinstance(cell, Mapping) and cell.get("class_name") == "StackedRNNCells":
        inner = cell.get("config")
        cells = inner.get("cells") if isinstance(inner, Mapping) else None
    else:
        cells = [cell]
    if not isinstance(cells, list) or not cells:
        return None
    if all(
        isinstance(c, Mapping)
        and c.get("class_name") in _CELL_LAYERS
        and isinstance(c.get("config"), Mapping)
        for c in cells
    ):
        return cells
    return None


def _as_lstm(
    cell_cfg: Mapping[str, Any], rnn_cfg: Mapping[str, Any], last: bool, first: bool
) -> dict:
    """An LSTMCell config plus the RNN's sequence flags: one ``LSTM`` layer config. In a
    stack, inner cells hand their whole sequence on and only the first reads time backwards."""
    out = dict(cell_cfg)
    if "return_sequences" in rnn_cfg:
        out["return_sequences"] = rnn_cfg["return_sequences"] if last else True
    elif not last:
        out["return_sequences"] = True
    if "go_backwards" in rnn_cfg:
        out["go_backwards"] = bool(rnn_cfg["go_backwards"]) and first
    out.setdefault("name", rnn_cfg.get("name"))
    return out


def _bidirectional_rnn(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """Bidirectional(RNN(LSTMCell)) → Bidirectional(LSTM) with the same settings (GRUCell →
    GRU, SimpleRNNCell → SimpleRNN)."""
    out = dict(cfg)
    for key in ("layer", "backward_layer"):
        entry = cfg.get(key)
        if not (isinstance(entry, Mapping) and entry.get("class_name") == "RNN"):
            continue
        inner = entry.get("config")
        cells = _cell_entries(inner) if isinstance(inner, Mapping) else None
        if cells is not None and len(cells) == 1:
            lstm = _as_lstm(cells[0]["config"], inner, last=True, first=True)
            out[key] = {"class_name": _CELL_LAYERS[cells[0]["class_name"]], "config": lstm}
    return out


# ----------------------------------------------------------------------------- wiring
@dataclass(frozen=True)
class _Scope:
    prefix: str  # weights path prefix of this container
    top: str | None  # name of the top-level layer holding this container
    feed: str | None  # node id feeding this container's input
    file: str
    depth: int


def _history(obj: object) -> tuple[str, int] | None:
    """(layer name, tensor index) of one serialized tensor reference, Keras 2 or 3."""
    if isinstance(obj, Mapping):
        cfg = obj.get("config")
        hist = cfg.get("keras_history") if isinstance(cfg, Mapping) else None
        obj = hist
    if isinstance(obj, list) and len(obj) >= 3 and isinstance(obj[0], str):
        tensor = obj[2] if isinstance(obj[2], int) and not isinstance(obj[2], bool) else 0
        return obj[0], tensor
    return None


def _tensors(obj: object, depth: int = 0) -> list[tuple[str, int]]:
    """Every tensor reference inside a Keras 3 args/kwargs value (lists nest)."""
    hit = _history(obj) if isinstance(obj, Mapping) else None
    if hit is not None:
        return [hit]
    if isinstance(obj, list) and depth < 4:
        return [t for x in obj for t in _tensors(x, depth + 1)]
    return []


def _inbound(entry: Mapping[str, Any], recurrent: bool) -> tuple[list, list] | None:
    """(data inputs, initial-state inputs) of a layer's first call, or None if not recorded."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or not nodes:
        return None
    node = nodes[0]
    if isinstance(node, Mapping):  # Keras 3
        args = node.get("args") if isinstance(node.get("args"), list) else []
        kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), Mapping) else {}
        data = _tensors(args[0]) if args else []
        states = _tensors(kwargs.get("initial_state"))
        if recurrent and len(args) > 1:
            states += _tensors(args[1])
        return data, states
    if isinstance(node, list):  # Keras 2: one [name, node, tensor, kwargs] per input tensor
        refs = [h for h in (_history(x) for x in node) if h is not None]
        if recurrent:  # Keras 2 RNNs fold initial_state into their input list
            return refs[:1], refs[1:]
        return refs, []
    return None


def _wiring(node: str, entry: Mapping[str, Any], kind: str, made: dict[str, str]) -> Wiring:
    """A functional layer's wiring from its first call (a shared layer's later calls are
    not followed); names it cannot resolve leave the source unknown."""
    inbound = _inbound(entry, kind in _RECURRENT)
    if inbound is None:
        return Wiring(node, None)
    data, states = inbound
    if not data:
        return Wiring(node, None)
    name, tensor = data[0]
    return Wiring(
        node,
        made.get(name),
        tensor,
        tuple(made.get(n, n) for n, _ in states),
        len(data),
        tuple(made.get(n) for n, _ in data),
    )


def _output(model_cfg: Mapping[str, Any], made: dict[str, str], last: str | None) -> str | None:
    """The node id a nested model hands on (its first output layer)."""
    cfg = model_cfg.get("config")
    outs = cfg.get("output_layers") if isinstance(cfg, Mapping) else None
    if isinstance(outs, list) and outs:
        first = outs[0] if isinstance(outs[0], list) else outs  # Keras 3 may store one flat
        if first and isinstance(first[0], str):
            return made.get(first[0], last)
    return last


def _walk(model_cfg: Mapping[str, Any], scope: _Scope, out: list[LayerSpec]) -> str | None:
    """Append the leaves of one container; return the node id of its output."""
    if scope.depth > MAX_DEPTH:
        raise LoadError(f"{scope.file}: model config nests models deeper than {MAX_DEPTH} levels")
    sequential = model_cfg.get("class_name") == "Sequential" or isinstance(
        model_cfg.get("config"), list
    )
    used: dict[str, int] = {}
    made: dict[str, str] = {}  # layer name → node id of its output
    prev = scope.feed
    for entry in layer_entries(model_cfg):
        if len(out) > MAX_LAYERS:
            raise LoadError(
                f"{scope.file}: model config lists more than {MAX_LAYERS} layers, more than "
                "any real model; the config is damaged or crafted"
            )
        if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
            raise LoadError(f"{scope.file}: model config has a layer entry that is not a layer")
        kind = entry["class_name"]
        cfg = entry.get("config") if isinstance(entry.get("config"), Mapping) else {}
        name = str(entry.get("name") or cfg.get("name") or kind)
        if name in made:
            raise LoadError(
                f"{scope.file}: model config has two layers named {name!r}; Keras refuses "
                "duplicate layer names in one model, so the config is damaged or crafted"
            )
        if sequential and kind == "InputLayer":
            made[name] = scope.feed  # Keras 3 ``Sequential.layers`` leaves it out of the path
            continue
        path = f"{scope.prefix}layers/{_unique(to_snake_case(kind), used)}"
        if sequential:
            wiring = Wiring(path, prev)
        elif kind == "InputLayer":  # fed by what feeds this (possibly nested) model
            wiring = Wiring(path, scope.feed)
        else:
            wiring = _wiring(path, entry, kind, made)
        top = scope.top or name
        if kind in MODEL_KINDS or (isinstance(cfg.get("layers"), list) and "name" in cfg):
            inner = _Scope(path + "/", top, wiring.source, scope.file, scope.depth + 1)
            made[name] = _walk(entry, inner, out) or path
        else:
            module = entry.get("module") if isinstance(entry.get("module"), str) else ""
            made[name] = _leaves(name, kind, cfg, top, path, wiring, out, module, scope.file)
        prev = made[name]
    return _output(model_cfg, made, prev) if not sequential else prev


def _leaves(
    name: str,
    kind: str,
    cfg: Mapping[str, Any],
    top: str,
    path: str,
    wiring: Wiring,
    out: list[LayerSpec],
    module: str,
    file: str,
) -> str:
    """Append one config layer (several for stacked LSTM cells); return its output node."""
    cells = _cell_entries(cfg) if kind == "RNN" else None
    if cells is None:
        if kind == "Bidirectional":
            if not isinstance(cfg.get("layer"), Mapping):
                raise LoadError(
                    f"{file}: Bidirectional layer {name!r} config has no wrapped layer; "
                    "the config is damaged"
                )
            cfg = _bidirectional_rnn(cfg)
        out.append(LayerSpec(name, kind, cfg, top, path, wiring, module))
        return path
    if len(cells) == 1:
        lstm = _as_lstm(cells[0]["config"], cfg, last=True, first=True)
        out.append(LayerSpec(name, _CELL_LAYERS[cells[0]["class_name"]], lstm, top, path, wiring))
        return path
    used: dict[str, int] = {}
    prev = wiring
    for k, cell in enumerate(cells):
        lstm = _as_lstm(cell["config"], cfg, last=k == len(cells) - 1, first=k == 0)
        cls = cell["class_name"]
        cell_path = f"{path}/cell/cells/{_unique(to_snake_case(cls), used)}"
        cell_name = str(cell["config"].get("name") or f"{name}_cell_{k}")
        here = replace(prev, node=cell_path) if k == 0 else Wiring(cell_path, prev.node)
        out.append(LayerSpec(cell_name, _CELL_LAYERS[cls], lstm, top, cell_path, here))
        prev = here
    return prev.node
