"""The Keras 3 weights tree (``model.weights.h5`` inside ``.keras``, and ``.weights.h5``).

Keras 3 ``saving_lib`` stores a layer's variables at
``layers/<snake_case class name, de-duplicated per container>/vars/<index>``; an RNN keeps
them on its cell (``…/lstm/cell/vars/{0,1,2}`` = kernel, recurrent_kernel, bias), a
Bidirectional on its two copies (``…/bidirectional/forward_layer/cell/vars``), and a nested
model under its own ``layers`` (``layers/sequential/layers/lstm``). tf.keras 2.13+ writes
``_layer_checkpoint_dependencies`` where Keras 3 writes ``layers``. With a config the paths
are computed the way ``saving_lib`` computes them; without one (``save_weights``) the tree is
walked and each group's class is read back from its snake_case name and its shapes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

import h5py

from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import LayerSpec, decode_text
from lstmviz.io.keras.datasets import group, local, weight
from lstmviz.io.keras.layers import FoundLayer, Weight

LEGACY_LAYERS = "_layer_checkpoint_dependencies"
_NOT_LAYERS = frozenset({"optimizer", "metrics", "compile_metrics", "loss", "losses"})
MAX_GROUPS = 100_000
_KINDS = {
    "lstm": "LSTM",
    "cu_dnnlstm": "CuDNNLSTM",
    "cu_dnngru": "CuDNNGRU",
    "rnn": "RNN",
    "bidirectional": "Bidirectional",
    "gru": "GRU",
    "simple_rnn": "SimpleRNN",
    "dense": "Dense",
    "embedding": "Embedding",
    "dropout": "Dropout",
    "input_layer": "InputLayer",
    "conv1d": "Conv1D",
    "time_distributed": "TimeDistributed",
    "batch_normalization": "BatchNormalization",
    "layer_normalization": "LayerNormalization",
}


def _natural(name: str) -> tuple:
    """``lstm_10`` after ``lstm_2``: Keras numbers duplicates in creation order."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _vars(root: h5py.Group, path: str, file: str) -> tuple[Weight, ...]:
    """The variables of ``path/vars`` (or ``path/cell/vars`` for an RNN), in index order."""
    for sub in ("cell/vars", "vars"):
        g = group(root, f"{path}/{sub}", file)
        if g is not None and len(g):
            if len(g) > MAX_GROUPS:
                raise LoadError(f"{file}: {path}/{sub} holds {len(g)} entries")
            keys = sorted(g.keys(), key=_natural)
            return tuple(weight(local(g, k, file), f"{path}/{sub}/{k}", k, file) for k in keys)
    return ()


class _Listing:
    """The children of the groups that config paths are resolved against, listed once per
    load: a config of 100,000 layers asked h5py about the same few groups 100,000 times
    (> 8 s from a 0.3 MB file); now each spec costs dict lookups unless its group exists."""

    def __init__(self, root: h5py.Group, file: str) -> None:
        self.root, self.file = root, file
        self._children: dict[str, frozenset[str] | None] = {}
        self._same: dict[tuple[str, str], list[str]] = {}

    def children(self, path: str) -> frozenset[str] | None:
        """Names in the group at ``path`` ("" is the root), None when it is no group."""
        if path not in self._children:
            node = local(self.root, path, self.file) if path else self.root
            kids = None
            if isinstance(node, h5py.Group):
                if len(node) > MAX_GROUPS:
                    raise LoadError(f"{self.file}: {path or '/'} holds {len(node)} entries")
                kids = frozenset(node)
            self._children[path] = kids
        return self._children[path]

    def exists(self, path: str) -> bool:
        """``local(root, path) is not None``, asking h5py only when every part is listed."""
        parts = [p for p in path.split("/") if p]
        for k, part in enumerate(parts):
            kids = self.children("/".join(parts[:k]))
            if kids is None or part not in kids:
                return False
        return local(self.root, path, self.file) is not None

    def same_class(self, path: str, base: str) -> list[str]:
        """Children of ``path`` whose snake_case class is ``base``, in natural order."""
        key = (path, base)
        if key not in self._same:
            kids = self.children(path) or frozenset()
            same = (c for c in kids if _split_ordinal(c)[0] == base)
            self._same[key] = sorted(same, key=_natural)
        return self._same[key]


def _resolve(listing: _Listing, path: str, by_name: dict[str, str], name: str) -> str | None:
    """The group of a config layer. tf.keras 2.13/2.14 trees (``_layer_checkpoint_
    dependencies``) number duplicates their own way (lstm, lstm_2, lstm_4 in 2.13), so there
    the k-th layer of a class is the k-th group of that class, never a computed name."""
    if listing.exists(LEGACY_LAYERS):
        return _by_ordinal(listing, path)
    if listing.exists(path):
        return path
    return by_name.get(name) or _by_ordinal(listing, path)


def _split_ordinal(part: str) -> tuple[str, int]:
    m = re.fullmatch(r"(.+?)_(\d+)", part)
    return (m[1], int(m[2])) if m else (part, 0)


def _by_ordinal(listing: _Listing, path: str) -> str | None:
    """Walk ``path`` part by part; a layer part (after ``layers`` or ``cells``) is taken as
    the same-class sibling at the same position (``lstm_1`` → the second ``lstm*`` group in
    natural order), whatever number it carries."""
    here: list[str] = []
    for part in path.split("/"):
        at = "/".join(here)
        current = listing.children(at)
        if current is None:
            return None
        if here and here[-1] in ("layers", LEGACY_LAYERS, "cells"):
            base, k = _split_ordinal(part)
            same = listing.same_class(at, base)
            if k >= len(same):
                return None
            hit = same[k]
        else:
            options = [part, LEGACY_LAYERS] if part == "layers" else [part]
            hit = next((o for o in options if o in current), None)
            if hit is None:
                return None
        here.append(hit)
    return "/".join(here)


def _names_by_vars_attr(root: h5py.Group) -> dict[str, str]:
    """Keras ≥ 3.x writes each layer's name as an attribute of its ``vars`` group."""
    out: dict[str, str] = {}
    count = 0

    def visit(path: str, obj: object) -> None:
        nonlocal count
        count += 1
        if count > MAX_GROUPS:
            raise LoadError("too many groups")
        if isinstance(obj, h5py.Group) and path.endswith("/vars") and "name" in obj.attrs:
            parent = path[: -len("/vars")]
            if not parent.endswith("/cell"):
                out.setdefault(decode_text(obj.attrs["name"]), parent)

    root.visititems(visit)
    return out


def layers_from_config(
    root: h5py.Group, specs: Sequence[LayerSpec], file: str
) -> tuple[list[FoundLayer], list[str]]:
    """Each config layer with its variables, found at the path ``saving_lib`` gives it."""
    try:
        by_name = _names_by_vars_attr(root)
    except LoadError as exc:
        raise LoadError(f"{file}: weights file has too many groups") from exc
    found, notes = [], []
    listing = _Listing(root, file)
    for spec in specs:
        path = _resolve(listing, spec.v3_path, by_name, spec.name)
        if path is None:
            if spec.kind != "InputLayer" and not spec.is_op:
                notes.append(f"no weights found for layer {spec.name!r} ({spec.v3_path})")
            found.append(
                FoundLayer(
                    spec.name, spec.kind, spec.config, (), spec.inner_kind, wiring=spec.wiring
                )
            )
            continue
        if spec.kind == "Bidirectional":
            fw = _vars(root, f"{path}/forward_layer", file)
            bw = _vars(root, f"{path}/backward_layer", file)
            layer = FoundLayer(
                spec.name, spec.kind, spec.config, fw + bw, spec.inner_kind, (fw, bw), spec.wiring
            )
        else:
            weights = _vars(root, path, file)
            if spec.kind == "TimeDistributed":
                weights = _vars(root, f"{path}/layer", file) or weights
            layer = FoundLayer(
                spec.name, spec.kind, spec.config, weights, spec.inner_kind, wiring=spec.wiring
            )
        found.append(layer)
    return found, notes


# ----------------------------------------------------------------------------- no config
def _kind(base: str, weights: Sequence[Weight]) -> str:
    if base in _KINDS:
        return _KINDS[base]
    return "".join(p.capitalize() for p in base.split("_")) or base


def _rnn_kind(weights: Sequence[Weight]) -> str:
    """LSTM or GRU from the recurrent kernel: (H, 4H) or (H, 3H)."""
    if len(weights) >= 2 and len(weights[1].shape) == 2 and weights[1].shape[0]:
        ratio = weights[1].shape[1] / weights[1].shape[0]
        if ratio == 4:
            return "LSTM"
        if ratio == 3:
            return "GRU"
    return "RNN"


Walked = list[tuple[str, FoundLayer]]  # (order group, layer): see layers_without_config


def _walk(root: h5py.Group, path: str, file: str, out: Walked, depth: int) -> None:
    """The layers under the group at ``path``: the children of ``layers`` (named by class),
    or in a subclassed model its attributes (named by attribute; a list of layers is a group
    of class-named children). Groups that hold no layer of their own are walked into."""
    if depth > 32:
        raise LoadError(f"{file}: weights tree nests deeper than 32 levels")
    node = group(root, path, file) if path else root
    if node is None:
        return
    for child in written_order(node, file):
        if child == "vars" or (not path and child in _NOT_LAYERS):
            continue  # the container's own variables; training state
        child_path = f"{path}/{child}" if path else child
        if group(root, child_path, file) is None:
            continue
        layers = _layer_at(root, child_path, file)
        if layers is None:
            _walk(root, child_path, file, out, depth + 1)
        else:
            out.extend(layers)


def _address(obj: object) -> int | None:
    """Where an object's header lies in the file (None if this h5py cannot tell)."""
    try:
        return int(h5py.h5o.get_info(obj.id).addr)  # type: ignore[attr-defined]
    except (AttributeError, ValueError, RuntimeError, OSError):
        return None


def written_order(node: h5py.Group, file: str) -> list[str]:
    """Children in the order Keras wrote them. HDF5 lists links by name, which loses the
    layer order across classes (bidirectional < lstm < sequential); but Keras writes a fresh
    file layer by layer, so each group's object header lies after the previous one's."""
    keys = sorted(node.keys(), key=_natural)[:MAX_GROUPS]
    return sorted(keys, key=lambda k: _address(local(node, k, file)) or 0)  # stable


def _layer_at(root: h5py.Group, path: str, file: str) -> Walked | None:
    """The layer(s) stored at ``path``, or None when it is a container to walk into."""

    def has(sub: str) -> bool:
        return group(root, f"{path}/{sub}", file) is not None

    parent, _, child = path.rpartition("/")
    base = re.sub(r"_\d+$", "", child)
    # Order groups: the children of one container were written in model order, except a
    # subclassed model's own attributes (written by name), each its own group. Without
    # addresses only the numbering within a class tells the order.
    order = (parent or path) if _address(root) is not None else f"{parent}/{base}"
    name = _layer_name(root, path) or re.sub(rf"(^|/)({LEGACY_LAYERS}|layers)/", r"\1", path)
    if has("forward_layer") and has("backward_layer"):
        fw = _vars(root, f"{path}/forward_layer", file)
        bw = _vars(root, f"{path}/backward_layer", file)
        return [(order, FoundLayer(name, "Bidirectional", None, fw + bw, _rnn_kind(fw), (fw, bw)))]
    if has("cell/cells"):
        return [(f"{path}/cell/cells", cell) for cell in _stacked_cells(root, path, name, file)]
    if has("layers") or has(LEGACY_LAYERS):
        return None  # a nested model
    weights = _vars(root, path, file)
    others = [k for k in group(root, path, file) or () if k not in ("vars", "cell")]
    if not weights and others:
        return None  # a list of layers, or an object holding layers
    kind = _KINDS.get(base) or _kind(base, ())
    if has("cell") and _rnn_kind(weights) != "RNN":
        kind = _rnn_kind(weights)  # by shapes: subclassed models name layers by attribute
    elif kind in ("LSTM", "GRU", "RNN") and _rnn_kind(weights) != "RNN":
        kind = _rnn_kind(weights)
    return [(order, FoundLayer(name, kind, None, weights))]


def _stacked_cells(root: h5py.Group, path: str, name: str, file: str) -> list[FoundLayer]:
    """``RNN([LSTMCell, …])``: ``<rnn>/cell/cells/lstm_cell{,_1…}/vars``, one layer each."""
    cells = root[f"{path}/cell/cells"]
    out = []
    for cell in sorted(cells.keys(), key=_natural)[:MAX_GROUPS]:
        weights = _vars(root, f"{path}/cell/cells/{cell}", file)
        out.append(FoundLayer(f"{name}/{cell}", _rnn_kind(weights), None, weights))
    return out


def _layer_name(root: h5py.Group, path: str) -> str | None:
    g = root.get(f"{path}/vars", getlink=True)
    g = root.get(f"{path}/vars") if isinstance(g, h5py.HardLink) else None
    if isinstance(g, h5py.Group) and "name" in g.attrs:
        return decode_text(g.attrs["name"])
    return None


def _widths(f: FoundLayer) -> tuple[int, set[int]]:
    """(input width, possible output widths) of an LSTM layer from its shapes: a
    Bidirectional gives 2H with concat (or merge_mode=None), H with sum, mul or ave."""
    k = f.weights[0].shape if f.weights else (0, 0)
    r = f.weights[1].shape if len(f.weights) > 1 else (0, 0)
    d_in, h = (k[0] if k else 0), (r[0] if r else 0)
    return d_in, {2 * h, h} if f.kind == "Bidirectional" else {h}


def _chained(order: Sequence[FoundLayer]) -> bool:
    return all(_widths(b)[0] in _widths(a)[1] for a, b in itertools.pairwise(order))


def _interleavings(groups: list[list[FoundLayer]]) -> Iterator[list[FoundLayer]]:
    """Every merge of the groups that keeps each group's own order."""
    if not any(groups):
        yield []
        return
    for k, g in enumerate(groups):
        if g:
            rest = [*groups[:k], g[1:], *groups[k + 1 :]]
            for tail in _interleavings(rest):
                yield [g[0], *tail]


def _order_lstms(walked: Walked, notes: list[str]) -> list[FoundLayer]:
    """The written order, if each LSTM feeds the next. Otherwise the order within each
    group (one container's children; without addresses, one class: lstm, lstm_1, …) is
    kept and only the order across groups is searched for one where widths chain."""
    lstms = [(key, f) for key, f in walked if f.is_lstm]
    order = [f for _, f in lstms]
    if len(order) < 2 or _chained(order) or len(order) > 8:
        return order
    groups: dict[str, list[FoundLayer]] = {}
    for key, f in lstms:
        groups.setdefault(key, []).append(f)
    if len(groups) < 2:
        return order
    best = next((p for p in _interleavings(list(groups.values())) if _chained(p)), None)
    if best is None:
        return order
    kinds = {"LSTM" if f.base_kind.endswith("LSTM") else f.base_kind for f in order}
    word = kinds.pop() if len(kinds) == 1 else "recurrent layer"  # "LSTM" as always, "GRU"
    notes.append(f"{word} order chosen so that each layer's output width feeds the next")
    return best


def layers_without_config(
    root: h5py.Group, file: str, merge_given: bool = False
) -> tuple[list[FoundLayer], list[str]]:
    """Walk a config-less weights file in the order Keras wrote its groups (model order).
    If this h5py cannot tell that order, group names give classes but not the order across
    classes, so LSTMs are put in an order where each feeds the next when one exists."""
    walked: Walked = []
    _walk(root, "", file, walked, 0)
    found = [f for _, f in walked]
    notes = ["weights-only file: settings inferred from shapes, layer order from the file"]
    lstms = _order_lstms(walked, notes)
    if lstms == [f for f in found if f.is_lstm]:
        arranged = found  # the written order stands, with the layers between the LSTMs
    else:
        first = [f for f in found if f.kind == "Embedding"]
        arranged = first + lstms + [f for f in found if not f.is_lstm and f.kind != "Embedding"]
    if any(f.kind == "Bidirectional" for f in lstms) and not merge_given:
        notes.append("Bidirectional merge_mode not recorded: concat (the Keras default) assumed")
    for a, b in itertools.pairwise([] if merge_given else lstms):
        if a.kind == "Bidirectional" and _widths(b)[0] == min(_widths(a)[1]) != max(_widths(a)[1]):
            notes.append(
                f"{b.name!r} takes {_widths(b)[0]} inputs from Bidirectional {a.name!r}: its "
                "merge_mode was sum, mul or ave (not recorded), not concat"
            )
    return arranged, notes
