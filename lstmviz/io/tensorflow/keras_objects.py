"""Keras layers inside a TensorFlow checkpoint (TF2 ``save_weights``/``tf.train.Checkpoint``,
or a TF1 ``Saver`` over Keras layers built in graph mode).

A Keras recurrent cell is a scope holding ``kernel [D, kH]``, ``recurrent_kernel [H, kH]`` and
usually ``bias``: k = 4 for LSTM (gates i, f, c, o, biases all stored), 3 for GRU, 1 for
SimpleRNN; an LSTM bias of ``8H`` is a ``CuDNNLSTM``. The scope names the layer
(``lstm/lstm_cell``, ``bidirectional/forward_lstm_1/lstm_cell``, or the object path
``layer_with_weights-0/cell`` when no object graph names it); ``forward_``/``backward_`` parts
split a ``Bidirectional``. A checkpoint has no model config, so these become weights-only
``FoundLayer``s for the Keras assembly (``keras_chain.build_model``): activations, merge mode
and ``go_backwards`` take Keras' defaults and are marked assumed; ``activation=`` and
``recurrent_activation=`` override the activations.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from lstmviz.core.activations import Activation
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, Setting
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.chain import build_model
from lstmviz.io.keras.config import KerasVersion, parse_version
from lstmviz.io.keras.layers import FoundLayer, Source, Weight
from lstmviz.io.tensorflow.bundle import Bundle
from lstmviz.io.tensorflow.keras_metadata import KerasMetadata
from lstmviz.io.tensorflow.objects import Names

_RNN_BY_RATIO = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}
_SIDES = ("forward", "backward")


def _weight(bundle: Bundle, names: Names, name: str) -> Weight:
    key = names.by_name[name]
    entry = bundle.entries[key]
    return Weight(
        name=key,
        role=name.rsplit("/", 1)[-1],
        shape=entry.shape,
        dtype=entry.dtype_name,
        read=lambda: bundle.read(key),
    )


def _layer_path(cell_scope: str) -> str:
    """``lstm/lstm_cell`` → ``lstm``; ``layer_with_weights-0/cell`` → ``layer_with_weights-0``;
    ``lstm`` (tf.keras under TF 1.x had no cell scope) stays."""
    parent, _, last = cell_scope.rpartition("/")
    return parent if parent and (last == "cell" or last.endswith("_cell")) else cell_scope


def _side(layer_path: str) -> tuple[str, str] | None:
    """(wrapper path, "forward"/"backward") for one direction of a Bidirectional."""
    parent, _, last = layer_path.rpartition("/")
    for side in _SIDES:
        if parent and last.startswith(side + "_"):
            return parent, side
    return None


def _kind(ws: dict[str, Weight]) -> str:
    rec, bias = ws["recurrent_kernel"].shape, ws.get("bias")
    if len(rec) != 2 or rec[0] < 1 or rec[1] % rec[0]:
        return "RNN"
    kind = _RNN_BY_RATIO.get(rec[1] // rec[0], "RNN")
    if kind == "LSTM" and bias is not None and bias.shape == (8 * rec[0],):
        return "CuDNNLSTM"
    return kind


def find_layers(bundle: Bundle, names: Names) -> list[FoundLayer]:
    """Every weighted Keras layer of the checkpoint, in the order the model tracked them."""
    skipped = set(names.skipped)
    groups: dict[str, dict[str, Weight]] = defaultdict(dict)
    first: dict[str, tuple[int, ...]] = {}
    for name in names.by_name:
        if name in skipped or "/" not in name:
            continue
        scope, _, role = name.rpartition("/")
        groups[scope][role] = _weight(bundle, names, name)
        first[scope] = min(first.get(scope, names.order[name]), names.order[name])
    cells = {s: ws for s, ws in groups.items() if {"kernel", "recurrent_kernel"} <= set(ws)}
    found: list[tuple[tuple[int, ...], FoundLayer]] = []

    def plain(scope: str, ws: dict[str, Weight]) -> tuple[tuple[int, ...], FoundLayer]:
        return first[scope], FoundLayer(_layer_path(scope), _kind(ws), None, _cell_weights(ws))

    pairs: dict[str, dict[str, tuple[str, dict[str, Weight]]]] = defaultdict(dict)
    for scope, ws in cells.items():
        path = _layer_path(scope)
        side = _side(path)
        if side is not None:
            pairs[side[0]][side[1]] = (scope, ws)
            continue
        found.append(plain(scope, ws))
    for wrapper, sides in pairs.items():
        if set(sides) != set(_SIDES):
            found.extend(plain(*side) for side in sides.values())  # a lone direction
            continue
        dirs = tuple(_cell_weights(sides[s][1]) for s in _SIDES)
        inner = _kind(sides["forward"][1])
        at = min(first[sides[s][0]] for s in _SIDES)
        layer = FoundLayer(wrapper, "Bidirectional", None, dirs[0] + dirs[1], inner, dirs)
        found.append((at, layer))
    for scope, ws in groups.items():
        if scope not in cells and not any(c.startswith(scope + "/") for c in cells):
            layer = FoundLayer(scope, _other_kind(ws), None, tuple(ws.values()))
            found.append((first[scope], layer))
    return [layer for _, layer in sorted(found, key=lambda p: (p[0], p[1].name))]


def _cell_weights(ws: dict[str, Weight]) -> tuple[Weight, ...]:
    return tuple(ws[r] for r in ("kernel", "recurrent_kernel", "bias") if r in ws)


def _other_kind(ws: dict[str, Weight]) -> str:
    roles = set(ws)
    if roles == {"embeddings"}:
        return "Embedding"
    if "kernel" in roles and roles <= {"kernel", "bias"}:
        return "Dense" if len(ws["kernel"].shape) == 2 else "Conv"
    if {"gamma", "beta"} & roles or "moving_mean" in roles:
        return "BatchNormalization"
    return "variables"


def _version(bundle: Bundle, names: Names, found: list[FoundLayer]) -> KerasVersion:
    """tf.keras 2 unless the weights are reached as Keras 3 reaches them; TF 1.x tf.keras when
    a name-based checkpoint has no ``*_cell`` scope (its LSTM defaulted to hard_sigmoid)."""
    keys = [w.name for f in found if f.is_lstm for w in f.weights]
    keras3 = ("/_functional/", "/_operations/", "/_tracked/")
    if any(
        k.startswith("optimizer/_trainable_variables/") or any(p in k for p in keras3) for k in keys
    ):
        return KerasVersion("", 3, 0, 0, guessed=True)
    tf1 = not names.object_based and not any("_cell/" in n for n in names.by_name)
    return KerasVersion("", 2, 0, 0, tf=True, tf1=tf1, guessed=True)


def load_keras_layers(
    bundle: Bundle,
    names: Names,
    path: str,
    source_format: str,
    activation: str | None,
    recurrent_activation: str | None,
    metadata: KerasMetadata | None = None,
) -> LSTMModel | None:
    """The Keras LSTM chain of the checkpoint, or None when it holds no Keras LSTM layer.

    ``metadata``: a SavedModel's ``keras_metadata.pb`` configs, matched to layers by name.
    """
    found = find_layers(bundle, names)
    if not any(f.is_lstm for f in found):
        return None
    version = _version(bundle, names, found)
    notes = []
    configs = metadata.configs if metadata is not None else {}
    if configs and any(f.name in configs for f in found if f.is_lstm):
        found = [replace(f, config=configs.get(f.name)) for f in found]
        version = parse_version(metadata.keras_version) if metadata.keras_version else version
        notes.append("layer configs read from the SavedModel's keras_metadata.pb")
    else:
        notes.append(
            "no model config in a TensorFlow checkpoint: Keras defaults assumed for every setting"
        )
        if any(f.kind == "Bidirectional" for f in found if f.is_lstm):
            notes.append("Bidirectional merge_mode is not stored: concat assumed")
    src = Source(bundle.index_path.name, path, source_format, version, "TensorFlow checkpoint")
    if not names.object_based and not version.tf1:
        notes.append(
            "tf.compat.v1.keras.layers.LSTM defaults to recurrent_activation='hard_sigmoid': "
            "pass recurrent_activation='hard_sigmoid_k2' if it was that class"
        )
    model = build_model(found, src, notes)
    if activation is None and recurrent_activation is None:
        return model
    layers = tuple(_override(lay, activation, recurrent_activation, src) for lay in model.layers)
    return replace(model, layers=layers)


def user_activation(name: str, file: str, what: str) -> Activation:
    """An exact lstmviz activation name from the user (bare hard_sigmoid is ambiguous)."""
    if name == "hard_sigmoid":
        raise LoadError(
            f"{file}: {what}='hard_sigmoid' is ambiguous; pass hard_sigmoid_k2 (Keras 2, "
            "tf.keras: 0.2x + 0.5) or hard_sigmoid_k3 (Keras 3: x/6 + 0.5)"
        )
    try:
        return Activation(name)
    except ValueError as exc:
        raise LoadError(f"{file}: {what}={name!r} is not an activation lstmviz knows") from exc


def _override(
    layer: LSTMLayer, activation: str | None, recurrent: str | None, src: Source
) -> LSTMLayer:
    dirs = []
    for d in layer.directions:
        changes: dict[str, object] = {}
        given = {}
        if activation is not None:
            act = user_activation(activation, src.file, "activation")
            changes.update(act_cand=act, act_cell=act)
            given["activation"] = act.name
        if recurrent is not None:
            changes["act_gate"] = user_activation(recurrent, src.file, "recurrent_activation")
            given["recurrent_activation"] = recurrent
        settings = tuple(
            Setting(s.name, given[s.name], assumed=False, note="given by the user")
            if s.name in given
            else s
            for s in d.provenance.settings
        )
        dirs.append(replace(d, provenance=replace(d.provenance, settings=settings), **changes))
    return replace(layer, directions=tuple(dirs))


__all__ = ["LSTMDirection", "find_layers", "load_keras_layers", "user_activation"]
