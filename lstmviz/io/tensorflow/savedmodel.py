"""A TensorFlow SavedModel folder: ``saved_model.pb`` (graphs) + ``variables/`` (a V2 checkpoint).

``saved_model.proto``: SavedModel {saved_model_schema_version = 1, meta_graphs = 2
(MetaGraphDef)}; MetaGraphDef.meta_info_def = 1 {tags = 4, tensorflow_version = 5}. A TF1
SavedModel (``simple_save``, ``SavedModelBuilder``) keeps the whole graph there, so its cells'
``forget_bias`` and clips are read as from a ``.meta``; a TF2/Keras one keeps the layers in an
object-based checkpoint under ``variables/``. The graph tagged ``serve`` is the one read.
"""

from __future__ import annotations

from pathlib import Path

from lstmviz.io.tensorflow.files import is_regular
from lstmviz.io.wire import protowire as pw

SERVE = "serve"


def is_saved_model_dir(path: Path) -> bool:
    """A folder holding ``saved_model.pb`` (regular file); never raises."""
    try:
        return path.is_dir() and is_regular(path / "saved_model.pb")
    except OSError:
        return False


def meta_graphs(data: bytes | memoryview) -> list[memoryview]:
    """Every MetaGraphDef of a SavedModel, as raw bytes; ProtoError for other bytes."""
    fields = pw.parse(data)
    graphs = [g for g in fields.get(2, ()) if isinstance(g, memoryview)]
    if not graphs:
        raise pw.ProtoError("no meta_graphs (field 2) in the SavedModel")
    return graphs


def meta_graph(data: bytes | memoryview) -> memoryview:
    """The MetaGraphDef tagged ``serve`` (else the first one)."""
    graphs = meta_graphs(data)
    for raw in graphs:
        info = pw.get_message(pw.parse(raw), 1)
        if SERVE in pw.get_strings(info, 4):
            return raw
    return graphs[0]
