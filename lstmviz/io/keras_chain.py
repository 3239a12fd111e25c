"""A Keras file's layers → one ``LSTMModel``: which LSTMs chain, what else the file holds.

lstmviz runs only LSTM layers. Identity layers (Dropout, …) between two LSTMs change nothing
at inference; any other layer there (Dense, TimeDistributed) is reported in a model note. Every
layer, LSTM or not, is listed in ``all_layers`` with its weight shapes, and an ``Embedding``
right before the first LSTM becomes ``LSTMModel.embedding``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import LayerInfo, LSTMLayer, LSTMModel
from lstmviz.io.errors import LoadError
from lstmviz.io.keras_config import IDENTITY_LAYERS, NOT_LSTM_RNNS
from lstmviz.io.keras_layers import FoundLayer, Source, lstm_layer


def layer_info(found: FoundLayer, note: str = "") -> LayerInfo:
    weights = tuple((w.name, w.shape) for w in found.weights)
    if not note and found.base_kind in NOT_LSTM_RNNS:
        note = NOT_LSTM_RNNS[found.base_kind]
    return LayerInfo(found.name, found.display_kind, weights, is_lstm=found.is_lstm, note=note)


def _no_lstm(found: Sequence[FoundLayer], src: Source) -> LoadError:
    kinds = []
    for f in found:
        if f.kind == "InputLayer":
            continue
        k = f.display_kind
        if f.base_kind in NOT_LSTM_RNNS:
            k += f" — {NOT_LSTM_RNNS[f.base_kind]}"
        if k not in kinds:
            kinds.append(k)
    what = f"found {', '.join(kinds)}" if kinds else "no layers with weights"
    return LoadError(
        f"{src.file}: {src.container} has no LSTM layer ({what}); lstmviz shows LSTM layers only"
    )


def build_model(found: Sequence[FoundLayer], src: Source, notes: Sequence[str] = ()) -> LSTMModel:
    """Chain the file's LSTM layers in order; every layer goes to ``all_layers``.

    Identity layers (Dropout, ...) between LSTMs are skipped silently; any other layer there
    gets a note, since lstmviz runs only the LSTMs. A layer whose input width does not match
    the previous LSTM's output ends the chain (noted).
    """
    if not any(f.is_lstm for f in found):
        raise _no_lstm(found, src)
    model_notes = list(notes)
    layers: list[LSTMLayer] = []
    infos: list[LayerInfo] = []
    between: list[str] = []
    before_first: list[FoundLayer] = []
    chain_open = True
    for f in found:
        if not f.is_lstm:
            infos.append(layer_info(f))
            if f.kind in IDENTITY_LAYERS:
                continue
            if layers:
                between.append(f.display_kind)
            else:
                before_first.append(f)
            continue
        if not chain_open:
            infos.append(layer_info(f, "not run: the LSTM chain ended before it"))
            continue
        layer = lstm_layer(f, src)
        if layers and layer.input_size != layers[-1].output_size:
            chain_open = False
            model_notes.append(
                f"LSTM {f.name!r} takes {layer.input_size} inputs but {layers[-1].name!r} gives "
                f"{layers[-1].output_size}; only the LSTMs up to {layers[-1].name!r} are run"
            )
            infos.append(layer_info(f, "not run: input width differs from the previous LSTM"))
            continue
        if layers and between:
            model_notes.append(
                f"{', '.join(between)} between {layers[-1].name!r} and {f.name!r} is not run: "
                "the core chains only the LSTM layers"
            )
        if layers and not layers[-1].return_sequences:
            model_notes.append(
                f"{layers[-1].name!r} has return_sequences=False; lstmviz feeds its whole "
                f"sequence to {f.name!r}"
            )
        between = []
        layers.append(layer)
        infos.append(layer_info(f))
    embedding = _embedding(before_first, layers[0], src, model_notes)
    return LSTMModel(
        layers=tuple(layers),
        source_path=src.path,
        source_format=src.source_format,
        framework=src.version.label,
        all_layers=tuple(infos),
        embedding=embedding,
        notes=tuple(model_notes),
    )


def _embedding(
    before: Sequence[FoundLayer], first: LSTMLayer, src: Source, notes: list[str]
) -> npt.NDArray[np.floating] | None:
    """An Embedding right before the first LSTM (only identity layers between) → (vocab, D)."""
    if not before or before[-1].kind != "Embedding" or len(before[-1].weights) != 1:
        if before:
            kinds = ", ".join(dict.fromkeys(f.display_kind for f in before))
            notes.append(f"{kinds} before {first.name!r} is not run: x is the LSTM's input")
        return None
    w = before[-1].weights[0]
    if len(w.shape) != 2 or w.shape[1] != first.input_size:
        notes.append(f"Embedding {before[-1].name!r} {w.shape} does not fit {first.name!r}")
        return None
    return w.read()
