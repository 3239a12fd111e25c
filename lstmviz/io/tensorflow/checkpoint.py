"""The TensorFlow reader: V2 checkpoints (by any of their files, their folder or the prefix),
SavedModel folders and frozen GraphDef ``.pb`` files.

A checkpoint stores only variables (CONVENTIONS.md §3.3/§3.4); the graph that says how a TF1
cell used them (``forget_bias``, clips, activation, the head) is the sibling ``.meta``, or a
SavedModel's ``saved_model.pb``. A frozen GraphDef holds both: its weights are ``Const`` nodes
(``graphdef``). Every route ends in ``assemble``. ``forget_bias=``, ``cell_clip=``,
``proj_clip=``, ``activation=`` and ``recurrent_activation=`` override what the graph says or
TF's defaults; ``scope=`` picks one of several TF1 stacks. The prefix ``model.ckpt`` that
``saver.save`` returns names no file: ``Probe.open`` opens its ``.index``.
"""

from __future__ import annotations

import glob
from itertools import islice
from pathlib import Path

from lstmviz.core.model import LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.probe import Probe, safe_member
from lstmviz.io.registry import Reader
from lstmviz.io.tensorflow.assemble import Request, assemble
from lstmviz.io.tensorflow.bundle import DATA_RE, Bundle, is_index_file, locate, tail_bytes
from lstmviz.io.tensorflow.cells import user_number, user_text
from lstmviz.io.tensorflow.files import read_limited
from lstmviz.io.tensorflow.graph import MAX_META_BYTES, GraphInfo, read_graph
from lstmviz.io.tensorflow.graphdef import is_graph_def, load_graph_def
from lstmviz.io.tensorflow.keras_graph import load_keras_graph
from lstmviz.io.tensorflow.keras_metadata import read_keras_metadata
from lstmviz.io.tensorflow.savedmodel import is_saved_model_dir, meta_graph
from lstmviz.io.tensorflow.savedmodel_keras import load_saved_model_keras
from lstmviz.io.wire import protowire as pw
from lstmviz.io.wire.sstable import has_table_magic

#: A graph read beside the file the user picked (a ``.meta``, ``saved_model.pb``) costs memory
#: the picked file's size does not announce; past this it is skipped with a note.
MAX_SIDE_GRAPH_BYTES = 32 << 20


def _graph_file(bundle: Bundle, picked: Path) -> tuple[Path, str] | None:
    """The graph that goes with the checkpoint: ``prefix.meta``, or a SavedModel's graph."""
    meta = Path(f"{bundle.prefix}.meta")
    if meta.exists():
        return meta, ".meta"
    index = bundle.index_path
    saved = index.parent.parent / "saved_model.pb"
    if index.name == "variables.index" and index.parent.name == "variables" and saved.exists():
        return saved, "saved_model.pb"
    return None


def _graph(bundle: Bundle, picked: Path, notes: list[str]) -> tuple[GraphInfo | None, str]:
    """The decoded graph (or None, with a note saying why) and the label for the source."""
    found = _graph_file(bundle, picked)
    if found is None:
        return None, ""
    path, label = found
    chosen = picked.resolve() == path.resolve() or (
        label == "saved_model.pb" and picked.resolve() == path.parent.resolve()
    )
    limit = MAX_META_BYTES if chosen else MAX_SIDE_GRAPH_BYTES
    try:
        path = safe_member(path.parent, path.name, f"{path.name} (graph)")
        data = read_limited(path, limit, "graph", "cell settings then use TF defaults")
        graph = read_graph(meta_graph(data) if label == "saved_model.pb" else data)
    except (pw.ProtoError, LoadError) as exc:
        if chosen:
            kind = "MetaGraphDef" if label == ".meta" else "SavedModel"
            raise LoadError(
                f"{path.name}: not a readable {kind} "
                f"({str(exc).removeprefix(path.name + ': ')}); pick the .index file instead"
            ) from exc
        notes.append(
            f"{path.name} is unreadable ({str(exc).removeprefix(path.name + ': ')}); "
            "cell settings use TF defaults"
        )
        return None, ""
    notes.extend(graph.notes)
    graph.source = label
    return graph, f" + {label} graph"


def _request(probe: Probe, file: str, options: dict[str, object]) -> Request:
    numbers = {
        key: user_number(options.get(key), key, file)
        for key in ("forget_bias", "cell_clip", "proj_clip")
    }
    texts = {
        key: user_text(options.get(key), key, file)
        for key in ("scope", "activation", "recurrent_activation")
    }
    return Request(path=str(probe.path), file=file, kind="", parts="", numbers=numbers, **texts)


def load_tf1_checkpoint(probe: Probe, **options: object) -> LSTMModel:
    """Load the LSTM stack of a TensorFlow checkpoint (any of its files, its folder or its
    prefix), a SavedModel folder or a frozen GraphDef.

    Numeric options may be strings (``cell_clip='0.5'``, as a command line gives them).
    """
    if not probe.is_dir and is_graph_def(probe.head):
        req = _request(probe, probe.name, options)
        return load_graph_def(probe.path, req)
    folder = probe.path if probe.is_dir else probe.path.parent
    if _saved_model_without_variables(probe, folder):
        return _frozen_saved_model(folder / "saved_model.pb", _request(probe, probe.name, options))
    index = locate(probe.path)
    req = _request(probe, index.name, options)
    # the index the user picked may be a link; one found for a folder, a state file, a
    # shard or a graph must lie in the picked file's folder (a SavedModel's ``variables/``
    # linked elsewhere made lstmviz read another model's weights)
    picked = probe.path == index
    bundle = Bundle(index, None if picked else folder)
    graph, label = _graph(bundle, probe.path, req.notes)
    shards = f"{bundle.num_shards} data shard{'s' if bundle.num_shards > 1 else ''}"
    saved = label == " + saved_model.pb graph" or is_saved_model_dir(index.parent.parent)
    req.kind = "TensorFlow SavedModel" if saved else "TensorFlow V2 checkpoint"
    req.parts = f"variables.index + {shards}" if saved else f".index + {shards}"
    req.graph_label = label
    if graph is not None:  # Keras layers built in a TF1 graph: their ops give the activations
        req.graph_layers = lambda: load_keras_graph(bundle, graph, req)
    if saved:
        folder = index.parent.parent
        try:
            req.keras_metadata = read_keras_metadata(folder)
        except LoadError as exc:
            req.notes.append(f"{exc}; Keras defaults assumed")
        if req.keras_metadata is None and graph is not None:  # no Keras config: the functions
            req.graph_layers = lambda: (
                load_keras_graph(bundle, graph, req)
                or (load_saved_model_keras(folder, bundle, req))
            )
    return assemble(bundle, graph, req)


def _saved_model_without_variables(probe: Probe, folder: Path) -> bool:
    """A SavedModel whose weights are constants in its graph (no ``variables/variables.index``)."""
    picked = probe.is_dir or probe.path.name == "saved_model.pb"
    return (
        picked
        and is_saved_model_dir(folder)
        and not (folder / "variables" / "variables.index").exists()
        and not (probe.is_dir and (folder / "checkpoint").exists())
    )


def _frozen_saved_model(path: Path, req: Request) -> LSTMModel:
    """The graph of a SavedModel without variables, read as a frozen GraphDef."""
    data = read_limited(path, MAX_META_BYTES, "SavedModel graph")
    try:
        graph_def = pw.get_bytes(pw.parse(meta_graph(data)), 2)
    except pw.ProtoError as exc:
        raise LoadError(f"{path.name}: not a readable SavedModel ({exc})") from exc
    if graph_def is None:
        raise LoadError(f"{path.name}: SavedModel without a graph and without variables/")
    return load_graph_def(path, req, graph_def, kind="TensorFlow SavedModel")


def sniff(probe: Probe) -> bool:
    """Table magic of the index, the checkpoint state text, a shard-named file, a SavedModel
    folder or a GraphDef's first node; never raises."""
    path = probe.path
    if probe.is_dir:
        return (
            (path / "checkpoint").is_file()
            or is_saved_model_dir(path)
            or any(is_index_file(p) for p in islice(path.glob("*.index"), 50))
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
    if path.name == "saved_model.pb" and probe.head.startswith(b"\x08\x01\x12"):
        return True  # SavedModel {saved_model_schema_version: 1, meta_graphs: …}
    if is_graph_def(probe.head):
        return True
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
