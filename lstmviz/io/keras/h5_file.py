"""Keras HDF5 files: legacy full models and weights (Keras 2, tf.keras, Keras 3) and Keras 3
``.weights.h5`` (CONVENTIONS §3.2).

Legacy files keep one group per top-level layer (under ``model_weights`` for a full model, at
the root for ``save_weights``), listed by the ``layer_names`` attribute; each group lists its
arrays in ``weight_names`` (both possibly split into ``…0, …1`` when longer than 64 KB). A
full model also has ``model_config`` (JSON): units, activations, merge_mode, nesting. Without
it, sizes come from shapes and settings are Keras defaults for the file's ``keras_version``,
marked assumed. Keras 3 ``.weights.h5`` files use the Keras 3 tree instead (``keras_v3``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import h5py

from lstmviz.core.model import LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.chain import build_model
from lstmviz.io.keras.choice import choosing
from lstmviz.io.keras.config import (
    MAX_CONFIG_BYTES,
    KerasVersion,
    LayerSpec,
    flatten_layers,
    load_json,
    parse_version,
    read_small_file,
)
from lstmviz.io.keras.datasets import check_global_heaps_of, group, local, name_list, weight
from lstmviz.io.keras.guard import ReadBudget, read_budget, regular_file
from lstmviz.io.keras.layers import FoundLayer, MergeModes, Source, Weight, parse_merge_modes
from lstmviz.io.keras.sharded import index_of_shard, is_index, merged_shards
from lstmviz.io.keras.v3 import LEGACY_LAYERS, layers_without_config
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader

FULL = "Keras HDF5 full model"
WEIGHTS_ONLY = "Keras HDF5 weights-only"
V3_WEIGHTS = "Keras 3 .weights.h5"
_ROOT_MARKS = {"model_config", "layer_names", "layer_names0", "keras_version"}
_V3_MARKS = {"/layers", f"/{LEGACY_LAYERS}", "/vars"}  # "vars" alone: a subclassed model


def sniff(probe: Probe) -> bool:
    """Keras marks at the root, or an HDF5 file h5py cannot open: lstmviz reads HDF5 only
    for Keras, so a damaged one is reported here as damaged rather than as "not Keras"."""
    if is_index(probe):
        return True
    if not probe.is_hdf5:
        return False
    # each mark is looked up by name: listing every root attribute and member (what
    # ``probe.hdf5_root_attrs`` does) took 2 s on a file with 200,000 attributes
    try:
        with h5py.File(probe.path, "r") as f:
            return any(k in f.attrs for k in _ROOT_MARKS) or any(
                g[1:] in f for g in (*_V3_MARKS, "/model_weights")
            )
    except Exception:
        return True


def _role(name: str) -> str:
    """``lstm_1/kernel:0`` → ``kernel``; classification is by the last path part."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def _group_weights(g: h5py.Group, file: str) -> tuple[Weight, ...]:
    names = name_list(g.attrs, "weight_names", file)
    if names is None:
        raise LoadError(f"{file}: layer group {g.name} has no weight_names attribute")
    _no_duplicates(names, f"layer group {g.name}'s weight_names", file)
    out = []
    for n in names:
        obj = local(g, n, file)
        if obj is None:
            raise LoadError(f"{file}: {g.name}/{n} is listed in weight_names but missing")
        out.append(weight(obj, f"{g.name.lstrip('/')}/{n}", _role(n), file))
    return tuple(out)


def _no_duplicates(names: Sequence[str], what: str, file: str) -> None:
    """Keras gives every layer and weight of a model its own name; a list naming one twice
    would make Keras load one array into two variables (or fail), so it is refused."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise LoadError(
                f"{file}: {what} lists {name!r} twice; Keras names every layer and weight "
                "once, so the file is damaged or crafted"
            )
        seen.add(name)


def _wrapped(spec: LayerSpec) -> str:
    return spec.inner_kind if spec.kind in ("Bidirectional", "TimeDistributed") else ""


def _assign(specs: Sequence[LayerSpec], weights: tuple[Weight, ...]) -> list[tuple[Weight, ...]]:
    """Split a nested model's weights among its leaf layers by the layer name in each path."""
    parts = [tuple(w for w in weights if spec.name in w.name.split("/")) for spec in specs]
    if sum(len(p) for p in parts) == len(weights):
        return parts
    return [() for _ in specs]  # names do not tell: leave them unassigned (noted)


def _full_model(h5: h5py.File, probe: Probe) -> LSTMModel:
    file = probe.name
    config = load_json(h5.attrs["model_config"], "model_config attribute", file)
    weights_root = group(h5, "model_weights", file)
    if weights_root is None:
        raise LoadError(f"{file}: HDF5 model has a model_config but no model_weights group")
    version = parse_version(h5.attrs.get("keras_version", weights_root.attrs.get("keras_version")))
    specs = flatten_layers(config, file)
    if not specs:
        raise LoadError(f"{file}: model_config lists no layers (a subclassed model?)")
    return _configured(specs, weights_root, version, probe, FULL, [])


def _configured(
    specs: Sequence[LayerSpec],
    weights_root: h5py.Group,
    version: KerasVersion,
    probe: Probe,
    source_format: str,
    notes: list[str],
) -> LSTMModel:
    """The layers a config lists, each with the arrays of its legacy weights group."""
    file = probe.name
    found = []
    by_top: dict[str, list[LayerSpec]] = {}
    for spec in specs:
        by_top.setdefault(spec.top, []).append(spec)
    for top, members in by_top.items():
        g = group(weights_root, top, file)
        ws = _group_weights(g, file) if g is not None else ()
        if len(members) == 1 and members[0].name == top:
            parts = [ws]
        else:
            parts = _assign(members, ws)
            if ws and not any(parts):
                notes.append(f"weights of nested model {top!r} could not be matched to layers")
        for spec, part in zip(members, parts, strict=True):
            found.append(
                FoundLayer(
                    spec.name, spec.kind, spec.config, part, _wrapped(spec), wiring=spec.wiring
                )
            )
    version = _tf1_hint(version, found)
    container = "HDF5 file" if source_format == FULL else "HDF5 weights file"
    src = Source(file, str(probe.path), source_format, version, container)
    return build_model(found, src, notes)


def _sibling_config(h5: h5py.File, probe: Probe) -> tuple[list[LayerSpec], str] | None:
    """The model config of a weights-only file from ``<stem>.json`` beside it: Keras 2 code
    often saves ``model.to_json()`` and ``model.save_weights()`` side by side. Used only when
    it is a Keras model config whose layers hold every weight group of the file; read as JSON
    (size-bounded, a regular file in the same folder), never run."""
    sibling = probe.path.with_suffix(".json")
    if probe.path.suffix.lower() not in (".h5", ".hdf5") or not os.path.lexists(sibling):
        return None
    try:
        regular_file(sibling, probe.path.parent, probe.name, "config")
        raw = read_small_file(sibling, MAX_CONFIG_BYTES, probe.name, "config too large")
        specs = flatten_layers(load_json(raw, sibling.name, probe.name), probe.name)
    except LoadError:
        return None  # not a model config after all: the weights alone are read
    names = name_list(h5.attrs, "layer_names", probe.name) or []
    with_weights = {n for n in names if (g := group(h5, n, probe.name)) is not None and len(g)}
    if not specs or not with_weights <= {spec.top for spec in specs}:
        return None
    return specs, sibling.name


def _tf1_hint(version, found: Sequence[FoundLayer]):
    """tf.keras under TF 1 named LSTM weights ``lstm/kernel:0``; TF 2 adds ``lstm_cell``."""
    if not version.tf or version.major != 2:
        return version
    names = [w.name for f in found if f.is_lstm for w in f.weights]
    if (
        names
        and not any("lstm_cell" in n for n in names)
        and (version.minor, version.patch)
        < (
            4,
            0,
        )
    ):
        from dataclasses import replace

        return replace(version, tf1=True)
    return version


_CELL_PART = re.compile(r"(.*_)?cell(_\d+)?$")
_SIDES = ("forward", "backward")


def _owner(group_name: str, weight_name: str) -> tuple[str, str | None]:
    """(layer key, side) of one weight: its path without the array name and the cell scope
    (``lstm/lstm_cell/kernel:0`` → ``lstm``); a ``forward_…``/``backward_…`` part makes the
    part before it a Bidirectional wrapper. Cells of ``stacked_rnn_cells`` stay separate."""
    parts = weight_name.split("/")[:-1] or [group_name]
    stacked = len(parts) > 1 and re.fullmatch(r"stacked_rnn_cells(_\d+)?", parts[-2])
    if len(parts) > 1 and _CELL_PART.match(parts[-1]) and not stacked:
        parts = parts[:-1]
    for k, part in enumerate(parts[1:], start=1):
        for side in _SIDES:
            if part.startswith(side + "_") or part == side + "_layer":
                return "/".join(parts[:k]), side
    return "/".join(parts), None


def _split_group(name: str, ws: Sequence[Weight]) -> list[FoundLayer]:
    """The layers one weights-only group holds: one, or several for a nested model or a
    stack of cells, told apart by the path inside each weight name."""
    keys: dict[str, dict[str | None, list[Weight]]] = {}
    for w in ws:
        key, side = _owner(name, w.name.split("/", 1)[1] if "/" in w.name else w.name)
        keys.setdefault(key, {}).setdefault(side, []).append(w)
    single = len(keys) == 1
    out = []
    for key, sides in keys.items():
        label = name if single else key
        if set(sides) == set(_SIDES):
            fw, bw = tuple(sides["forward"]), tuple(sides["backward"])
            out.append(FoundLayer(label, "Bidirectional", None, fw + bw, _cell_kind(fw), (fw, bw)))
            continue
        weights = tuple(w for part in sides.values() for w in part)
        out.append(FoundLayer(label, _guess_kind(key.rsplit("/", 1)[-1], weights), None, weights))
    return out


def _cell_kind(ws: Sequence[Weight]) -> str:
    """LSTM, GRU or SimpleRNN (or CuDNNLSTM, CuDNNGRU: one flat bias of both biases) from
    the recurrent kernel (H, kH) and the bias; "" when k is none of 4, 3, 1."""
    rec = [w for w in ws if w.role == "recurrent_kernel"]
    if not rec or len(rec[0].shape) != 2 or not rec[0].shape[0]:
        return ""
    H = rec[0].shape[0]
    ratio = rec[0].shape[1] / H
    cell = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}.get(ratio, "")  # type: ignore[call-overload]
    if cell in ("LSTM", "GRU") and any(
        w.role == "bias" and w.shape == (2 * (4 if cell == "LSTM" else 3) * H,) for w in ws
    ):
        cell = "CuDNN" + cell
    return cell


def _guess_kind(name: str, ws: Sequence[Weight]) -> str:
    """The class of a weights-only layer from its arrays, else from its name."""
    cell = _cell_kind(ws)
    if cell:
        return cell
    base = re.sub(r"_\d+$", "", name)
    if any(w.role.endswith("_W_i") for w in ws):
        return "LSTM"  # Keras 1 per-gate arrays: lstm_direction names the layout
    kinds = {
        "embedding": "Embedding",
        "dense": "Dense",
        "dropout": "Dropout",
        "lstm": "LSTM",
        "gru": "GRU",
        "simple_rnn": "SimpleRNN",
    }
    if base in kinds:
        return kinds[base]
    return _kind_from_arrays(ws) or ("unknown kind" if ws else base)


def _kind_from_arrays(ws: Sequence[Weight]) -> str:
    """A weights-only layer named by the user (``tok_emb``): its class from its arrays' roles
    and shapes, as far as they tell it; "" when they do not."""
    roles = {w.role for w in ws}
    if roles == {"embeddings"}:
        return "Embedding"
    if roles >= {"gamma", "beta"}:
        return "BatchNormalization" if "moving_mean" in roles else "LayerNormalization"
    kernel = next((w for w in ws if w.role == "kernel"), None)
    if kernel is not None and roles <= {"kernel", "bias"}:
        return "Dense" if len(kernel.shape) == 2 else f"Conv{len(kernel.shape) - 2}D"
    return ""


def _weights_only(h5: h5py.File, probe: Probe, modes: MergeModes) -> LSTMModel:
    file = probe.name
    names = name_list(h5.attrs, "layer_names", file) or []
    _no_duplicates(names, "layer_names", file)
    sibling = _sibling_config(h5, probe)
    if sibling is not None:
        specs, json_name = sibling
        note = f"layer settings and wiring from {json_name} beside the weights (model.to_json())"
        version = parse_version(h5.attrs.get("keras_version"))
        return _configured(specs, h5, version, probe, WEIGHTS_ONLY, [note])
    version = parse_version(h5.attrs.get("keras_version"))
    found: list[FoundLayer] = []
    notes = ["weights-only file: sizes from shapes, activations and return_sequences assumed"]
    for name in names:
        g = group(h5, name, file)
        if g is None:
            raise LoadError(f"{file}: layer {name!r} is listed in layer_names but has no group")
        parts = _split_group(name, _group_weights(g, file))
        if len(parts) > 1:
            notes.append(f"group {name!r} holds {len(parts)} layers, told apart by weight names")
        found.extend(parts)
    version = _tf1_hint(version, found)
    src = Source(file, str(probe.path), WEIGHTS_ONLY, version, "HDF5 weights file", modes)
    if any(f.kind == "Bidirectional" for f in found) and not modes:
        notes.append("Bidirectional merge_mode not recorded: concat (the Keras default) assumed")
    return build_model(found, src, notes)


def _sharded(
    index: Path, probe: Probe, modes: MergeModes, factor: object, opened: str = ""
) -> LSTMModel:
    merged, count, total = merged_shards(index, probe.name, factor)
    with merged, read_budget(ReadBudget(total, factor, probe.name)):
        note = f"sharded weights: {count} shard files merged (index {index.name})"
        if opened:
            note += f"; {opened} is one of them, the whole set was read"
        return _v3_weights(merged, probe, modes, [note])


def _v3_weights(
    h5: h5py.File, probe: Probe, modes: MergeModes, extra: Sequence[str] = ()
) -> LSTMModel:
    file = probe.name
    found, notes = layers_without_config(h5, file, bool(modes))
    notes[:0] = extra
    # Keras 3 and tf.keras/tf_keras 2.13+ write this layout and no version (fixtures of both)
    writers = "Keras 3 or tf.keras ≥ 2.13"
    version = replace(parse_version(None, default_major=3), writers=writers)
    if any(LEGACY_LAYERS in w.name for f in found for w in f.weights):
        version = parse_version("2.13", default_major=2)  # tf.keras 2.13+ tree
        notes.append("tf.keras 2.13+ weights tree (_layer_checkpoint_dependencies)")
    src = Source(file, str(probe.path), V3_WEIGHTS, version, "HDF5 weights file", modes)
    return build_model(found, src, notes)


def load_keras_h5(
    probe: Probe, merge_mode: object = None, layer: object = None, budget: object = None
) -> LSTMModel:
    """``merge_mode``: for weights-only files, which record no Bidirectional merge mode:
    ``mul`` for every Bidirectional, or ``name:mode,name:mode`` per layer. ``layer``: the
    LSTM to run when the model has several that do not feed each other. ``budget``:
    raises the bound on the bytes the weights decode to (``guard.ReadBudget``)."""
    with read_budget(ReadBudget(probe.size, budget, probe.name)), choosing(layer):
        return _load(probe, merge_mode, budget)


def _load(probe: Probe, merge_mode: object, factor: object) -> LSTMModel:
    file = probe.name
    modes = parse_merge_modes(merge_mode, file)
    if is_index(probe):
        return _sharded(probe.path, probe, modes, factor)
    index = index_of_shard(probe.path)
    if index is not None:
        return _sharded(index, probe, modes, factor, opened=file)
    check_global_heaps_of(probe.path, file)
    try:
        h5 = h5py.File(probe.path, "r")
    except (OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise LoadError(f"{file}: damaged or truncated HDF5 file ({detail})") from exc
    with h5:
        attrs = h5.attrs  # looked up by name, never listed (a file may hold 200,000)
        if "model_config" in attrs:
            return _full_model(h5, probe)
        if "layer_names" in attrs or "layer_names0" in attrs:
            return _weights_only(h5, probe, modes)
        if "layers" in h5 or LEGACY_LAYERS in h5 or isinstance(h5.get("vars"), h5py.Group):
            return _v3_weights(h5, probe, modes)
        if "model_weights" in h5:
            raise LoadError(f"{file}: HDF5 file has model_weights but no model_config")
        raise LoadError(f"{file}: HDF5 file holds no Keras model or weights")


READER = Reader(
    name="Keras HDF5",
    sniff=sniff,
    load=load_keras_h5,
    priority=10,
    options=("merge_mode", "layer", "budget"),
)
