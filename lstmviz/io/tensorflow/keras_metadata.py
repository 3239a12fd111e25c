"""The Keras configs a tf.keras SavedModel keeps beside its graph, in ``keras_metadata.pb``.

``model.save(path)`` in tf.keras 2 / tf_keras writes ``keras_metadata.pb``: SavedMetadata
{nodes = 1: SavedObject {node_id = 2, node_path = 3 ("root.layer_with_weights-0"),
identifier = 4 ("_tf_keras_rnn_layer"), metadata = 5 (JSON: class_name, config, …)}}
(tf_keras ``protobuf/saved_metadata.proto``). The root's JSON carries ``keras_version``. With
each layer's config, the weights of ``variables/`` get the layer's real activations, flags
and its Dense head instead of Keras' defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmviz.io.errors import LoadError
from lstmviz.io.probe import safe_member
from lstmviz.io.tensorflow.files import read_limited
from lstmviz.io.wire import protowire as pw

MAX_METADATA_BYTES = 4 << 20  # a 4-layer model writes 24 KB; JSON costs ~10x its size
_TOP_LAYER = re.compile(r"root\.layer(_with_weights)?-\d+")


@dataclass
class KerasMetadata:
    keras_version: str = ""
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # layer name → config


def read_keras_metadata(folder: Path) -> KerasMetadata | None:
    """The top-level layers' configs of a SavedModel folder, or None without the file."""
    path = folder / "keras_metadata.pb"
    if not path.exists():
        return None
    path = safe_member(folder, path.name, f"{path.name} (Keras metadata)")
    data = read_limited(path, MAX_METADATA_BYTES, "Keras metadata")
    out = KerasMetadata()
    try:
        for raw in pw.parse(data).get(1, ()):
            if not isinstance(raw, memoryview):
                continue
            node = pw.parse(raw)
            where = pw.get_string(node, 3)
            if where != "root" and not _TOP_LAYER.fullmatch(where):
                continue
            meta = json.loads(pw.get_string(node, 5) or "{}")
            if not isinstance(meta, dict):
                continue
            if where == "root":
                out.keras_version = str(meta.get("keras_version", ""))
                continue
            cfg, name = meta.get("config"), meta.get("name")
            if isinstance(cfg, dict) and isinstance(name, str):
                out.configs[name] = cfg
    except (pw.ProtoError, ValueError, RecursionError) as exc:
        raise LoadError(f"{path.name}: unreadable Keras metadata ({exc})") from exc
    return out
