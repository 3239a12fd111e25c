"""madmom ``NeuralNetwork`` pickles, read inertly into the canonical model.

madmom (the audio library behind many beat and downbeat trackers) ships its trained networks as
plain pickles of its own classes (``madmom/models/**/*.pkl``), most written by Python 2: a
``NeuralNetwork`` whose ``layers`` list holds ``BidirectionalLayer``/``LSTMLayer`` objects made
of four ``Gate``s (``input_gate``, ``forget_gate``, ``cell``, ``output_gate``), each with
``weights [D, H]``, ``recurrent_weights [H, H]``, ``bias [H]`` and, for the three gates,
``peephole_weights [H]``, plus ``FeedForwardLayer`` heads. The restricted unpickler builds inert
records of those classes (nothing of madmom is imported or run); their arrays become the
canonical ``W_x (4H, D)`` etc. in gate order i, f, g (the ``cell``), o.

madmom's step (``madmom/ml/nn/layers.py``, ``LSTMLayer.activate``) is the peephole LSTM
lstmviz runs: i and f see c_(t-1) through their peepholes, o sees c_t, h_t = tanh(c_t) · o.
``BidirectionalLayer`` runs its backward layer on the reversed input and stacks
``[fwd, bwd[::-1]]``: a concat in time order. ``LSTMLayer.init``/``cell_init`` are the initial
h and c. Python 2 wrote NumPy's raw bytes as ``str``, so the pickle is decoded as latin-1, as
madmom itself loads them (``pickle.load(f, encoding='latin1')``).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from lstmviz.core.activations import Activation
from lstmviz.core.dense import DenseLayer
from lstmviz.core.model import LayerInfo, LSTMDirection, LSTMLayer, LSTMModel, Provenance
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.wire.pickle_vm import Limits, PickleLimit
from lstmviz.io.wire.safe_pickle import Deferred, NumpyArray, PickledObject, restricted_loads

PACKAGE = b"madmom.ml.nn"
FRAMEWORK = "madmom"
GATES = ("input_gate", "forget_gate", "cell", "output_gate")  # canonical i, f, g, o
PEEPHOLES = {"input_gate": "p_i", "forget_gate": "p_f", "output_gate": "p_o"}
#: madmom.ml.nn.activations functions lstmviz has under the same name (same formulas).
ACTIVATIONS = frozenset({"linear", "tanh", "sigmoid", "relu", "elu", "softmax"})
#: Arrays of a layer's records that are its weights (``init``/``cell_init`` are initial states,
#: noted when used; ``cell``/``_tmp`` are scratch buffers madmom keeps between calls).
WEIGHT_KEYS = frozenset({"weights", "recurrent_weights", "bias", "peephole_weights"})
RNN_KINDS = {"GRULayer": "GRU", "RecurrentLayer": "plain RNN"}
#: Bytes of float32 weights one load may build: 64 MB + 2 x the file's size. A pickle's memo
#: lets one 8 MB LSTMLayer be listed 200 times (or a small one 100,000 times) at no cost in
#: the file, and every listed layer is a new set of stacked matrices.
BUDGET_FLOOR = 64 << 20


class _Budget:
    """Counts the bytes the layers' stacked matrices will take, refusing before they are built."""

    def __init__(self, file: str, file_size: int) -> None:
        self.file, self.left = file, BUDGET_FLOOR + 2 * file_size
        self.limit = self.left

    def charge(self, elements: int, where: str) -> None:
        # each element is read (maybe cast to float32) and copied into its stacked matrix
        self.left -= 8 * elements
        if self.left < 0:
            raise LoadError(
                f"{self.file}: {where} would take the network's weights past the "
                f"{self.limit >> 20} MB this file's size allows (one layer listed many times?); "
                "lstmviz opens madmom networks as madmom pickles them"
            )


def sniff(probe: Probe) -> bool:
    """A pickle (protocol 2+ or text protocol 0) naming madmom's network classes early on."""
    head = probe.head
    return head[:1] in (b"\x80", b"c", b"(") and PACKAGE in head[:1024]


def _class(obj: object) -> str:
    return obj.cls.name if isinstance(obj, PickledObject) else type(obj).__name__


def _unpickle(data: bytes, file: str) -> object:
    def refuse(module: str, name: str) -> LoadError:
        return LoadError(f"{file}: madmom pickle calls {module}.{name}; nothing is run")

    limits = Limits.for_size(len(data), file_size=len(data))
    try:
        # Python 2 wrote NumPy's bytes as str: latin-1, as madmom itself loads them
        return restricted_loads(data, {}, None, refuse, limits=limits, encoding="latin1")
    except LoadError:
        raise
    except PickleLimit as exc:
        raise LoadError(f"{file}: madmom pickle exceeds a limit ({exc})") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise LoadError(f"{file}: damaged madmom pickle ({type(exc).__name__}: {exc})") from exc


class _Arrays:
    """Reads a layer's arrays, each checked for its shape, as float32."""

    def __init__(self, file: str) -> None:
        self.file = file

    def get(self, obj: Mapping[str, Any], key: str, where: str, shape: tuple[int, ...]) -> Any:
        value = obj.get(key)
        if not isinstance(value, NumpyArray):
            if key == "bias" and isinstance(value, int | float) and not isinstance(value, bool):
                return np.full(shape, value, dtype=np.float32)  # madmom allows a scalar bias
            raise LoadError(f"{self.file}: {where}.{key} is not a NumPy array")
        arr = value.read()
        if arr.dtype.kind not in "fiu":
            raise LoadError(f"{self.file}: {where}.{key} holds {arr.dtype}, not numbers")
        if key == "peephole_weights":
            arr = arr.reshape(-1)  # Gate.__init__ flattens them
        if arr.shape != shape:
            raise LoadError(f"{self.file}: {where}.{key} has shape {arr.shape}, expected {shape}")
        return arr.astype(np.float32, copy=False)


def _activation(obj: Mapping[str, Any], where: str, file: str, default: str) -> Activation:
    fn = obj.get("activation_fn")
    if fn is None:
        return Activation(default)
    name = fn.name if isinstance(fn, Deferred) else None
    module = fn.module if isinstance(fn, Deferred) else ""
    if name not in ACTIVATIONS or not module.startswith("madmom"):
        raise LoadError(f"{file}: {where} uses activation {module}.{name}, which lstmviz lacks")
    return Activation(name)


def _parts(
    obj: PickledObject, names: tuple[str, ...], where: str, file: str, layer_class: str
) -> dict[str, PickledObject]:
    """The gate records ``names`` of a madmom ``layer_class`` (its ``Gate``s and cell)."""
    parts = {}
    for name in names:
        part = obj.get(name)
        if not isinstance(part, PickledObject):
            raise LoadError(f"{file}: {where} has no {name} (not a madmom {layer_class})")
        parts[name] = part
    return parts


def _sizes(rec: object, weights: object, where: str, file: str) -> tuple[int, int]:
    """(D, H) of the record at ``where`` from its ``weights`` and ``recurrent_weights``."""
    if not isinstance(rec, NumpyArray) or len(rec.shape) != 2:
        raise LoadError(f"{file}: {where}.recurrent_weights is not a matrix")
    D = weights.shape[0] if isinstance(weights, NumpyArray) and len(weights.shape) == 2 else 0
    if D == 0 or rec.shape[0] == 0:
        raise LoadError(f"{file}: {where} has empty weights")
    return D, rec.shape[0]


def _direction(
    lstm: PickledObject, where: str, file: str, reverse: bool, budget: _Budget
) -> LSTMDirection:
    gates = _parts(lstm, GATES, where, file, "LSTMLayer")
    cell = gates["cell"]
    D, H = _sizes(cell.get("recurrent_weights"), cell.get("weights"), f"{where}.cell", file)
    budget.charge(4 * H * (D + H + 3), where)
    arrays = _Arrays(file)
    W_x, W_h, b, peep = [], [], [], {}
    for g in GATES:
        at = f"{where}.{g}"
        W_x.append(arrays.get(gates[g], "weights", at, (D, H)).T)
        W_h.append(arrays.get(gates[g], "recurrent_weights", at, (H, H)).T)
        b.append(arrays.get(gates[g], "bias", at, (H,)))
        if g in PEEPHOLES and gates[g].get("peephole_weights") is not None:
            peep[PEEPHOLES[g]] = arrays.get(gates[g], "peephole_weights", at, (H,))
    if peep and len(peep) != 3:
        raise LoadError(f"{file}: {where} has peepholes on {sorted(peep)} only")
    acts = {  # madmom's defaults: sigmoid gates, a tanh cell
        g: _activation(gates[g], f"{where}.{g}", file, "tanh" if g == "cell" else "sigmoid")
        for g in GATES
    }
    gate_acts = {str(acts[g]) for g in ("input_gate", "forget_gate", "output_gate")}
    if len(gate_acts) != 1:
        raise LoadError(f"{file}: {where}'s gates use different activations {sorted(gate_acts)}")
    h0 = c0 = None
    notes = []
    for key, label in (("init", "h0"), ("cell_init", "c0")):
        if isinstance(lstm.get(key), NumpyArray):
            state = arrays.get(lstm, key, where, (H,))
            if np.any(state):
                notes.append(f"{where}.{key} used as the initial {label}")
                if key == "init":
                    h0 = state
                else:
                    c0 = state
    prov = Provenance(
        framework=FRAMEWORK,
        source_format="madmom pickled NeuralNetwork",
        gate_order=("input_gate", "forget_gate", "cell", "output_gate"),
        transforms=(
            "each gate's weights [D, H] and recurrent_weights [H, H] transposed and stacked "
            "as i, f, g (cell), o",
        ),
        notes=tuple(notes),
    )
    return LSTMDirection(
        W_x=np.concatenate(W_x),
        W_h=np.concatenate(W_h),
        b=np.concatenate(b),
        act_gate=acts["input_gate"],
        act_cand=acts["cell"],
        act_cell=_activation(lstm, where, file, "tanh"),
        reverse=reverse,
        provenance=prov,
        h0=h0,
        c0=c0,
        **peep,
    )


def _lstm_layer(obj: PickledObject, index: int, file: str, budget: _Budget) -> LSTMLayer | None:
    """The canonical layer of ``layers[index]``, None when it is no recurrent layer (GRU and
    plain RNN layers: ``madmom.gru``)."""
    where = f"layers[{index}]"
    kind = _class(obj)
    if kind == "LSTMLayer":
        return LSTMLayer(where, (_direction(obj, where, file, False, budget),), kind=kind)
    fwd, bwd = obj.get("fwd_layer"), obj.get("bwd_layer")
    if kind != "BidirectionalLayer" or {_class(fwd), _class(bwd)} != {"LSTMLayer"}:
        from lstmviz.io.madmom.gru import recurrent_layer  # imports this module

        return recurrent_layer(obj, index, file, budget)
    dirs = (
        _direction(fwd, f"{where}.fwd_layer", file, False, budget),
        _direction(bwd, f"{where}.bwd_layer", file, True, budget),
    )
    return LSTMLayer(where, dirs, kind="BidirectionalLayer(LSTMLayer)")


def _dense(obj: PickledObject, index: int, width: int, file: str, budget: _Budget) -> DenseLayer:
    where = f"layers[{index}]"
    weights = obj.get("weights")
    n_out = weights.shape[1] if isinstance(weights, NumpyArray) and len(weights.shape) == 2 else 0
    if n_out == 0:
        raise LoadError(f"{file}: {where} (FeedForwardLayer) has no weight matrix")
    budget.charge(n_out * (width + 1), where)
    arrays = _Arrays(file)
    W = arrays.get(obj, "weights", where, (width, n_out)).T
    b = arrays.get(obj, "bias", where, (n_out,))
    act = _activation(obj, where, file, "linear")
    return DenseLayer(where, W, b, act, kind="FeedForwardLayer")


def _describe(obj: object) -> str:
    kind = _class(obj)
    if kind == "BidirectionalLayer" and isinstance(obj, PickledObject):
        return f"Bidirectional({_class(obj.get('fwd_layer'))})"
    return kind


def _refusal(file: str, kinds: list[str]) -> LoadError:
    listed = ", ".join(dict.fromkeys(kinds)) or "none"
    return LoadError(
        f"{file}: a madmom network without an LSTM, GRU or plain recurrent layer (layers: "
        f"{listed}); lstmviz opens madmom's LSTMLayer, GRULayer and RecurrentLayer networks"
    )


def _stored_arrays(obj: object, limit: int = 64) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``(dotted name, shape)`` of the arrays a layer record holds, gates and sub-layers
    included (``fwd_layer.input_gate.weights``), for the model summary; at most ``limit``."""
    found: list[tuple[str, tuple[int, ...]]] = []
    queue: list[tuple[str, object, int]] = [("", obj, 0)]
    while queue and len(found) < limit:
        prefix, item, depth = queue.pop(0)
        if not isinstance(item, PickledObject) or depth > 3:
            continue
        for key, value in item.items():
            name = f"{prefix}{key}"
            if isinstance(value, NumpyArray) and key in WEIGHT_KEYS:
                found.append((name, tuple(value.shape)))
            elif isinstance(value, PickledObject):
                queue.append((f"{name}.", value, depth + 1))
    return tuple(found[:limit])


def _first_record(obj: object, budget: int = 1000) -> PickledObject | None:
    """The first inert class record in ``obj`` (breadth first, ``budget`` containers)."""
    queue = [obj]
    while queue and budget > 0:
        item, budget = queue.pop(0), budget - 1
        if isinstance(item, PickledObject):
            return item
        if isinstance(item, dict):
            queue.extend(item.values())
        elif isinstance(item, list | tuple):
            queue.extend(item)
    return None


def load(probe: Probe) -> LSTMModel:
    file = probe.name
    net = _unpickle(probe.path.read_bytes(), file)
    budget = _Budget(file, probe.size)
    if not isinstance(net, PickledObject) or net.cls.name != "NeuralNetwork":
        found = _first_record(net)
        what = f" ({found.cls.module}.{found.cls.name})" if found is not None else ""
        raise LoadError(
            f"{file}: a pickled madmom object{what}, not a NeuralNetwork; lstmviz opens "
            "madmom.ml.nn.NeuralNetwork files (madmom/models/beats, downbeats)"
        )
    items = net.get("layers")
    if not isinstance(items, list):
        raise LoadError(f"{file}: madmom {net.cls.name} has no list of layers")
    kinds = [_describe(o) for o in items]
    lstms: list[LSTMLayer] = []
    head: list[DenseLayer] = []
    between: list[DenseLayer] = []
    notes: list[str] = []
    width = 0
    for i, obj in enumerate(items):
        layer = _lstm_layer(obj, i, file, budget) if isinstance(obj, PickledObject) else None
        if layer is not None:
            if lstms and not head and layer.input_size != width:
                raise LoadError(f"{file}: layers[{i}] takes {layer.input_size} values, not {width}")
            lstms.append(replace(layer, before=tuple(between)) if between else layer)
            between, width = [], layer.output_size
            continue
        if not lstms:
            if any(r in k for k in kinds for r in ("LSTMLayer", *RNN_KINDS)):
                raise LoadError(
                    f"{file}: madmom network starts with {kinds[i]} before its first "
                    "recurrent layer; lstmviz runs networks whose first layer is recurrent"
                )
            raise _refusal(file, kinds)
        if kinds[i] == "FeedForwardLayer":
            dense = _dense(obj, i, width, file, budget)
            between.append(dense)
            width = dense.output_size(width)
            continue
        notes.append(f"layers[{i}] ({kinds[i]}) and after are not run")
        break
    if not lstms:
        raise _refusal(file, kinds)
    head = between
    infos = tuple(
        LayerInfo(
            f"layers[{i}]",
            k,
            weights=_stored_arrays(obj),
            is_lstm=any(r in k for r in ("LSTMLayer", "GRULayer", "RecurrentLayer")),
        )
        for i, (obj, k) in enumerate(zip(items, kinds, strict=True))
    )
    return LSTMModel(
        layers=tuple(lstms),
        source_path=str(probe.path),
        source_format="madmom pickled NeuralNetwork",
        framework=FRAMEWORK,
        all_layers=infos,
        head=tuple(head),
        notes=tuple(notes),
    )


READER = Reader("madmom", sniff, load, priority=20)
