"""A Keras file's layers → one ``LSTMModel``: which LSTMs chain, what else the file holds.

lstmviz runs LSTM layers. Identity layers (Dropout, …) between two LSTMs change nothing
at inference; Dense, Activation and normalisation layers there are run (``keras_head``), and
any other layer there ends the chain with a model note. Every
layer, LSTM or not, is listed in ``all_layers`` with its weight shapes, an ``Embedding``
right before the first LSTM becomes ``LSTMModel.embedding`` and the Dense layers after the
last one become ``LSTMModel.head`` (``keras_head``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import LayerInfo, LSTMLayer, LSTMModel, chain_width
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.choice import Graph, cell_word, chosen, kind_word, lineage, pick, starts
from lstmviz.io.keras.config import IDENTITY_LAYERS, LSTM_KINDS, NOT_LSTM_RNNS
from lstmviz.io.keras.head import dense_head, transforms_between
from lstmviz.io.keras.layers import FoundLayer, Source, lstm_layer


def layer_info(found: FoundLayer, note: str = "") -> LayerInfo:
    weights = tuple((w.name, w.shape) for w in found.weights)
    if not note and found.base_kind in NOT_LSTM_RNNS:
        note = NOT_LSTM_RNNS[found.base_kind]
    if not note and found.kind == "TimeDistributed" and found.inner_kind in LSTM_KINDS:
        note = "an LSTM run on each time slice separately, not supported"
    return LayerInfo(found.name, found.display_kind, weights, is_lstm=found.is_lstm, note=note)


def _no_lstm(found: Sequence[FoundLayer], src: Source) -> LoadError:
    kinds = []
    for f in found:
        if f.kind == "InputLayer":
            continue
        k = f.display_kind
        note = layer_info(f).note
        if note:
            k += f" — {note}"
        if k not in kinds:
            kinds.append(k)
    what = f"found {', '.join(kinds)}" if kinds else "no layers with weights"
    return LoadError(
        f"{src.file}: {src.container} has no LSTM layer ({what}); lstmviz shows recurrent "
        f"layers only{_what_it_is(found)}"
    )


_RECURRENT_KINDS = {"GRU": "GRU", "CuDNNGRU": "GRU", "SimpleRNN": "SimpleRNN"}


def _recurrent_kind(f: FoundLayer) -> str:
    """The recurrent class a non-LSTM layer is (GRU for ``RNN(GRUCell)``), else ""."""
    base = f.base_kind
    cell = (f.config or {}).get("cell") if base == "RNN" else None
    if isinstance(cell, dict) and isinstance(cell.get("class_name"), str):
        base = cell["class_name"].removesuffix("Cell")  # RNN(GRUCell) is a GRU
    if f.kind == "TimeDistributed" and f.inner_kind in ("LSTM", "GRU", "SimpleRNN"):
        return f.display_kind
    return _RECURRENT_KINDS.get(base) or (base if base.startswith("ConvLSTM") else "")


def _plural(words: Sequence[str]) -> str:
    """``LSTMs``, ``GRUs``, ``SimpleRNNs`` for one kind, ``recurrent layers`` for several."""
    word = kind_word(words)
    return "recurrent layers" if word == "recurrent" else f"{word}s"


def _what_it_is(found: Sequence[FoundLayer]) -> str:
    """What the file is when it holds no LSTM lstmviz runs: the recurrent layers it has
    instead (GRU, SimpleRNN, a convolutional LSTM, an LSTM per time slice), or none."""
    model = "model" if any(f.config is not None for f in found) else "weights file"
    rnns: dict[str, list[str]] = {}
    for f in found:
        kind = _recurrent_kind(f)
        if kind:
            rnns.setdefault(kind, []).append(repr(f.name))
    if rnns:
        parts = [f"{kind} layers ({', '.join(names[:4])})" for kind, names in rnns.items()]
        odd = [k for k in rnns if k.startswith(("ConvLSTM", "TimeDistributed"))]
        why = (
            "convolutional or per-slice LSTMs, which lstmviz does not run"
            if odd and len(odd) == len(rnns)
            else "lstmviz opens LSTM, GRU and SimpleRNN layers"
        )
        return f" — a Keras {model} with {' and '.join(parts)}; {why}"
    kinds = sorted({f.display_kind for f in found if f.kind not in IDENTITY_LAYERS})
    if kinds == ["Dense"]:
        return f" — a Keras {model} of Dense layers only, no recurrent layer"
    if kinds:
        return f" — a Keras {model} without recurrent layers ({', '.join(kinds[:6])})"
    return ""


@dataclass
class _Chain:
    """The LSTM chain as it is built: layers run, layer list, notes."""

    src: Source
    notes: list[str]
    layers: list[LSTMLayer] = field(default_factory=list)
    nodes: list[str | None] = field(default_factory=list)
    infos: list[LayerInfo] = field(default_factory=list)
    before: list[FoundLayer] = field(default_factory=list)
    closed: bool = False
    words: list[str] = field(default_factory=list)  # the chained layers' kinds (cell_word)

    def bridge(
        self, f: FoundLayer, layer: LSTMLayer, between: Sequence[FoundLayer]
    ) -> LSTMLayer | None:
        """``layer`` with the non-identity layers between the last chained LSTM and ``f``
        as its ``before`` transforms; None (chain ended, noted) when lstmviz cannot run them:
        feeding ``f`` the raw output instead would give numbers Keras never computes."""
        if not self.layers or not between:
            return layer
        last = self.layers[-1]
        kinds = ", ".join(b.display_kind for b in between)
        if any(b.config is None for b in between):  # weights-only: activations not recorded
            self.notes.append(
                f"{kinds} between {last.name!r} and {f.name!r} is not run (a weights-only file "
                f"does not record it), so {f.name!r}'s outputs differ from Keras'"
            )
            return layer
        made = transforms_between(between, last.output_size, self.src)
        if isinstance(made, str):
            self.closed = True
            self.notes.append(
                f"{kinds} between {last.name!r} and {f.name!r}: {made}; only the "
                f"{_plural(self.words)} up to {last.name!r} are run"
            )
            self.infos.append(layer_info(f, f"not run: {made}"))
            return None
        return replace(layer, before=made)

    def width_fits(self, f: FoundLayer, layer: LSTMLayer) -> bool:
        if not self.layers:
            return True
        fed = chain_width(layer.before, self.layers[-1].output_size, layer.name)
        if layer.input_size == fed:
            return True
        self.closed = True
        last = self.layers[-1]
        if _merge_unknown(last) and layer.input_size == last.directions[0].output_size:
            # concat (assumed) gives 2H, the next layer takes H: sum, mul or ave was used
            self.notes.insert(
                0,
                f"{cell_word(f)} {f.name!r} takes {layer.input_size} inputs, so Bidirectional "
                f"{last.name!r} merged with sum, mul or ave, not concat; this weights-only file "
                f"does not record merge_mode: pass e.g. merge_mode={last.name}:mul "
                f"(--option merge_mode={last.name}:mul; name:mode,… per layer) to run the "
                f"{_plural([*self.words, cell_word(f)])} after {last.name!r}",
            )
            why = f"not run: pass merge_mode= for {last.name!r} (sum, mul or ave)"
            self.infos.append(layer_info(f, why))
            return False
        self.notes.append(
            f"{cell_word(f)} {f.name!r} takes {layer.input_size} inputs but {last.name!r} "
            f"gives {last.output_size}; only the {_plural(self.words)} up to {last.name!r} "
            "are run"
        )
        why = f"not run: input width differs from the previous {self.words[-1]}"
        self.infos.append(layer_info(f, why))
        return False

    def add(self, f: FoundLayer, layer: LSTMLayer) -> None:
        if self.layers and not self.layers[-1].return_sequences:
            self.notes.append(
                f"{self.layers[-1].name!r} has return_sequences=False; lstmviz feeds its whole "
                f"sequence to {f.name!r}"
            )
        if f.wiring is not None and f.wiring.states:
            self.notes.append(
                f"Keras starts {f.name!r} from the state of "
                f"{', '.join(dict.fromkeys(self._name(s) for s in f.wiring.states))}; lstmviz "
                "starts it from zeros, so its outputs differ from Keras'"
            )
        self.layers.append(layer)
        self.words.append(cell_word(f))
        self.nodes.append(f.wiring.node if f.wiring is not None else None)
        self.infos.append(layer_info(f))

    def _name(self, node: str) -> str:
        return repr(node.rsplit("/", 1)[-1])


def _merge_unknown(layer: LSTMLayer) -> bool:
    """A Bidirectional whose merge_mode the file did not record (concat assumed)."""
    merge = layer.directions[0].provenance.setting("merge_mode") if layer.bidirectional else None
    return merge is not None and merge.assumed


def build_model(found: Sequence[FoundLayer], src: Source, notes: Sequence[str] = ()) -> LSTMModel:
    """Chain the file's LSTM layers; every layer goes to ``all_layers``.

    With a functional config each LSTM joins the chain only if its data comes from the last
    chained LSTM (through any non-LSTM layers); without one, file order decides. Identity
    layers (Dropout, ...) between LSTMs are skipped; Dense, Activation and normalisation layers
    there are run as the next LSTM's ``before``; any other layer there ends the chain (noted),
    as does an input width that does not match. Several chains that do not feed each other
    (branches, a second model input) need ``layer=`` (``choice``).
    """
    if not any(f.is_lstm for f in found):
        raise _no_lstm(found, src)
    graph = Graph(found)
    at = pick(found, graph, src, chosen())
    if at is None:
        model = _build(found, src, notes, graph, set())
        heads = [found[i].name for i in starts(found, graph)]
        if len(heads) < 2:
            return model
        word = kind_word([cell_word(f) for f in found if f.is_lstm])
        chains = "chains of recurrent layers" if word == "recurrent" else f"{word} chains"
        why = (
            f"{len(heads)} {chains} that do not feed each other; the first runs "
            f"(layer={heads[0]!r}); open another with layer= "
            + ", ".join(repr(n) for n in heads[1:4])
            + (", …" if len(heads) > 4 else "")
        )
        return replace(model, notes=(why, *model.notes))
    line = lineage(found, graph, at)
    off_path = {
        i for i in range(at) if found[i].is_lstm and i not in line and graph.wired(found[i])
    }
    model = _build(found, src, notes, graph, off_path)
    name = found[at].name
    if all(layer.name != name for layer in model.layers):
        # a layer lstmviz cannot run (or a width that does not fit) lies before it: start there
        model = _build(found, src, notes, graph, {i for i in range(at) if found[i].is_lstm})
    words = {f.name: cell_word(f) for f in found}
    kinds = _plural([words.get(x.name, "LSTM") for x in model.layers])
    listed = ", ".join(repr(x.name) for x in model.layers)
    why = f"layer={name!r} chosen: the {kinds} run are {listed}"
    return replace(model, notes=(why, *model.notes))


def _build(
    found: Sequence[FoundLayer],
    src: Source,
    notes: Sequence[str],
    graph: Graph,
    exclude: set[int],
) -> LSTMModel:
    """One chain: the first LSTM not in ``exclude`` and the LSTMs it feeds."""
    chain = _Chain(src, list(notes))
    between: list[FoundLayer] = []  # non-identity layers since the last chained LSTM
    last_at = -1
    for at, f in enumerate(found):
        if at in exclude:
            chain.infos.append(layer_info(f, f"not run: another branch (layer={f.name} runs it)"))
            chain.before, between = [], []  # layers before it feed it, not the chain
            continue
        if not f.is_lstm:
            chain.infos.append(layer_info(f))
            if graph.wired(f) or f.kind in IDENTITY_LAYERS:
                continue
            if chain.layers:
                between.append(f)
            else:
                chain.before.append(f)
            continue
        if chain.closed:
            word = kind_word(chain.words)
            chain.infos.append(layer_info(f, f"not run: the {word} chain ended before it"))
            continue
        if graph.wired(f):
            end = graph.end(f)
            if chain.layers and end != chain.nodes[-1]:
                why = graph.describe(end, chain.layers[-1].name)
                chain.infos.append(layer_info(f, f"not run: {why}"))
                chain.notes.append(f"{cell_word(f)} {f.name!r} is not run: {why}")
                continue
            path, _ = graph.trace(f)  # only for the LSTMs chained: their paths are disjoint
            between = [p for p in reversed(path) if p.kind not in IDENTITY_LAYERS]
            if not chain.layers:
                chain.before = [p for p in reversed(path) if p.kind not in IDENTITY_LAYERS]
                chain.notes.extend(_mask_notes(path, f))
        bridged = chain.bridge(f, lstm_layer(f, src), between)
        between = []
        if bridged is None or not chain.width_fits(f, bridged):
            continue
        chain.add(f, bridged)
        last_at = at
    embedding = _embedding(chain.before, chain.layers[0], src, chain.notes)
    after = found[last_at + 1 :]
    # A chain that ended early leaves the network's output out of reach: no head then.
    head = (
        ()
        if chain.closed
        else dense_head(after, found[last_at], chain.layers[-1], graph.wired, src, chain.notes)
    )
    run = {x.name for x in chain.layers}
    skipped = [f for f in found if f.is_lstm and f.name not in run]
    if skipped:
        chain.notes.append(
            f"{_plural([cell_word(f) for f in skipped])} not run: "
            f"{', '.join(repr(f.name) for f in skipped[:8])}; layer=<name> runs one from its "
            "own input"
        )
    return LSTMModel(
        layers=tuple(chain.layers),
        source_path=src.path,
        source_format=src.source_format,
        framework=src.version.label,
        all_layers=tuple(chain.infos),
        embedding=embedding,
        head=head,
        notes=tuple(chain.notes),
    )


def _mask_notes(path: Sequence[FoundLayer], f: FoundLayer) -> list[str]:
    """Keras skips masked timesteps (state carried over); lstmviz runs every step."""
    out = []
    for p in path:
        cfg = p.config or {}
        if p.kind == "Masking":
            value = cfg.get("mask_value", 0.0)
            out.append(
                f"Masking(mask_value={value}) before {f.name!r}: Keras skips timesteps whose "
                "features all equal it, lstmviz runs every step"
            )
        elif p.kind == "Embedding" and cfg.get("mask_zero"):
            out.append(
                f"Embedding {p.name!r} has mask_zero=True: Keras skips token-0 timesteps in "
                f"{f.name!r}, lstmviz runs every step"
            )
    return out


def _embedding(
    before: Sequence[FoundLayer], first: LSTMLayer, src: Source, notes: list[str]
) -> npt.NDArray[np.floating] | None:
    """An Embedding right before the first LSTM (only identity layers between) → (vocab, D)."""
    if not before or before[-1].kind != "Embedding" or len(before[-1].weights) != 1:
        if before:
            kinds = ", ".join(dict.fromkeys(f.display_kind for f in before))
            word = first.cell.name  # as LSTMLayer names its cell: LSTM, GRU, RNN
            notes.append(f"{kinds} before {first.name!r} is not run: x is the {word}'s input")
        return None
    w = before[-1].weights[0]
    if len(w.shape) != 2 or w.shape[1] != first.input_size:
        notes.append(f"Embedding {before[-1].name!r} {w.shape} does not fit {first.name!r}")
        return None
    return w.read()
