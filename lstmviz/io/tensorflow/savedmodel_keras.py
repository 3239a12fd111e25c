"""Keras LSTM layers of a TF2 SavedModel read from its functions (``model.export``,
``tf.saved_model.save``), where no Keras config is saved.

The SavedModel's ``saved_model.pb`` holds the traced call (``__inference___call___N``) and the
loops it runs as library functions; their weights are inputs *bound* to objects of the
SavedObjectGraph (MetaGraphDef.object_graph_def = 7: nodes = 1, concrete_functions = 2, a map
of function name → SavedConcreteFunction {bound_inputs = 2: node ids}). Those node ids number
the checkpoint's object graph too, so each bound input is a tensor of ``variables/``. A small
synthetic caller graph feeds the call its variables by name; ``functions`` then instantiates
the call and its loops, and ``keras_graph`` finds the gate Splits, activations and head in
them as in a frozen graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lstmviz.core.model import LSTMModel
from lstmviz.io.probe import safe_member
from lstmviz.io.tensorflow.files import read_limited
from lstmviz.io.tensorflow.functions import Instances, library
from lstmviz.io.tensorflow.graph import MAX_META_BYTES, parse_graph_def
from lstmviz.io.tensorflow.keras_graph import keras_layers_in
from lstmviz.io.tensorflow.nodes import Graph, Node
from lstmviz.io.tensorflow.objects import Names, node_keys, variable_names
from lstmviz.io.tensorflow.savedmodel import meta_graph
from lstmviz.io.wire import protowire as pw

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.assemble import Request
    from lstmviz.io.tensorflow.bundle import Bundle

MAX_BOUND = 10_000
MAX_CALLS = 2  # traced calls tried (the whole model's call sorts first)


class NamedBundle:
    """A checkpoint's tensors under their readable names (``lstm/lstm_cell/kernel``)."""

    def __init__(self, bundle: Bundle, names: Names) -> None:
        self._bundle, self.index_path, self.prefix = bundle, bundle.index_path, bundle.prefix
        self._keys = {name: key for name, key in names.by_name.items() if key in bundle.entries}
        self.entries = {name: bundle.entries[key] for name, key in self._keys.items()}
        self.name_of = {key: name for name, key in self._keys.items()}

    def read(self, name: str):
        return self._bundle.read(self._keys[name])


def _calls(meta: pw.Fields, functions: dict[str, memoryview]) -> list[tuple[str, list[int]]]:
    """(function name, bound node ids) of the SavedModel's traced calls, the one binding the
    most weights first, before the signature wrappers that only call it."""
    out = []
    for entry in pw.get_message(meta, 7).get(2, ()):
        if not isinstance(entry, memoryview):
            continue
        e = pw.parse(entry)
        name = pw.get_string(e, 1)
        bound = [int(b) for b in pw.get_varints(pw.get_message(e, 2), 2)[:MAX_BOUND]]
        if name in functions and bound and "traced_" not in name:
            out.append((name, bound))
    # the whole model's call binds every weight; a layer's own call binds only its own
    return sorted(out, key=lambda c: (-len(set(c[1])), "signature_wrapper" in c[0], c[0]))


def load_saved_model_keras(folder: Path, bundle: Bundle, req: Request) -> LSTMModel | None:
    """The Keras LSTM chain the SavedModel's traced call runs, or None."""
    path = safe_member(folder, "saved_model.pb", "saved_model.pb (SavedModel graph)")
    data = read_limited(path, MAX_META_BYTES, "SavedModel graph")
    try:
        meta = pw.parse(meta_graph(data))
        graph_def = parse_graph_def(pw.get_bytes(meta, 2) or b"")
        functions = library(graph_def)
        calls = _calls(meta, functions)
    except pw.ProtoError:
        return None
    keys = node_keys(bundle)
    named = NamedBundle(bundle, variable_names(bundle))
    parsed: dict = {}  # function bodies decoded once for every call tried
    for name, bound in calls[:MAX_CALLS]:
        if not all(b in keys and keys[b] in named.name_of for b in bound):
            continue
        weights = [named.name_of[keys[b]] for b in bound]
        args = _arg_count(functions[name])
        inputs = [f"lstmviz/input_{k}" for k in range(max(0, args - len(bound)))] + weights
        caller = [Node(w, "VarHandleOp", []) for w in dict.fromkeys(weights)]
        caller += [Node(i, "Placeholder", []) for i in inputs[: len(inputs) - len(bound)]]
        caller.append(Node("lstmviz/call", name, inputs))
        top = Graph(caller)
        bodies = list(Instances(top, functions, parsed))
        if not bodies:
            continue
        try:
            model = keras_layers_in(bodies, bodies[0], named, req)
        except pw.ProtoError:
            return None
        if model is not None:
            return model
    return None


def _arg_count(raw: memoryview) -> int:
    signature = pw.get_message(pw.parse(raw), 1)
    return len(signature.get(2, ()))
