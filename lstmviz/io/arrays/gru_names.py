"""NumPy arrays holding a PyTorch-layout GRU or plain RNN under short names (``enc_w_ih``,
``enc_w_hh``, ``enc_b_ih``, ``enc_b_hh``): read as the ``nn.GRU``/``nn.RNN`` cells they are.

g2p_en ships its grapheme-to-phoneme model so (``checkpoint20.npz``: an encoder and a decoder
GRU, each ``w_ih [3H, D]``, ``w_hh [3H, H]``, ``b_ih``, ``b_hh [3H]``, run by its own NumPy
code with torch's equations: r, z, n, the reset gate on ``W_hn·h + b_hn``). The names are
mapped to torch's (``enc.weight_ih`` …) for ``state_dict``, which builds the canonical
directions, and the provenance then names the arrays as the file does. Only groups whose
rows are 3H (GRU) or H (RNN) are taken this way: LSTM-shaped short names keep going through
the layout guessing of ``layouts``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np

from lstmviz.core.model import LSTMModel
from lstmviz.io.probe import Probe
from lstmviz.io.torch.state_dict import model_from_state_dict

_SHORT = re.compile(r"^(?P<prefix>.*?)[_./]?(?P<kind>w|b|weight|bias)_(?P<part>ih|hh)$")
_TORCH = {"w": "weight", "weight": "weight", "b": "bias", "bias": "bias"}


def torch_names(arrays: Mapping[str, np.ndarray]) -> dict[str, str] | None:
    """{torch name: file name} for every short-named GRU/RNN group (weights ``[3H, D]`` /
    ``[3H, H]`` or ``[H, D]`` / ``[H, H]``), or None when there is none."""
    groups: dict[str, dict[str, str]] = {}
    for name, arr in arrays.items():
        m = _SHORT.match(name)
        if m is None or arr.dtype.kind != "f" or name.endswith(("weight_ih", "weight_hh")):
            continue  # full torch names are state_dict's own
        param = f"{_TORCH[m['kind']]}_{m['part']}"
        groups.setdefault(m["prefix"], {})[param] = name
    mapping: dict[str, str] = {}
    for prefix, params in groups.items():
        if "weight_ih" not in params or "weight_hh" not in params:
            continue
        w_ih, w_hh = arrays[params["weight_ih"]], arrays[params["weight_hh"]]
        if w_ih.ndim != 2 or w_hh.ndim != 2 or w_hh.shape[1] == 0:
            continue
        H = w_hh.shape[1]
        if w_ih.shape[0] not in (3 * H, H) or w_hh.shape[0] != w_ih.shape[0]:
            continue  # an LSTM (4H) or something else: not read here
        for param, name in params.items():
            mapping[f"{prefix}.{param}" if prefix else param] = name
    return mapping or None


def renamed_back(model: LSTMModel, mapping: Mapping[str, str]) -> LSTMModel:
    """``model`` with every stored array named as the file names it."""
    layers = []
    for layer in model.layers:
        dirs = []
        for d in layer.directions:
            prov = d.provenance
            stored = tuple(
                dataclasses.replace(t, name=mapping.get(t.name, t.name)) for t in prov.stored
            )
            dirs.append(d.replace(provenance=dataclasses.replace(prov, stored=stored)))
        layers.append(dataclasses.replace(layer, directions=tuple(dirs)))
    return model.replace(layers=tuple(layers))


def load(
    probe: Probe,
    arrays: dict[str, np.ndarray],
    short: dict[str, str],
    prefix: str | None,
    source_format: str,
    nonlinearity: str | None = None,
) -> LSTMModel:
    """The GRU/RNN cell ``prefix`` names (or the only one) through ``state_dict``; the
    ``<prefix>_emb`` table beside it (g2p_en) becomes the token embedding."""
    taken = set(short.values())
    tensors = {**{k: arrays[v] for k, v in short.items()}}
    groups = sorted({k.rpartition(".")[0] for k in short})
    target = prefix if prefix is not None else (groups[0] if len(groups) == 1 else None)
    table = f"{target}_emb"
    if target in groups and table in arrays:  # g2p_en: enc_emb feeds enc
        tensors[f"{table}.weight"] = arrays[table]
        taken.add(table)
    tensors.update({k: v for k, v in arrays.items() if k not in taken})
    shown = ", ".join(list(short.values())[:4]) + (", ..." if len(short) > 4 else "")
    model = model_from_state_dict(
        tensors,
        file=probe.name,
        source_format=source_format,
        source_path=str(probe.path),
        prefix=prefix,
        notes=[f"{shown} read as PyTorch GRU/RNN cell weights (weight_ih, weight_hh, ...)"],
        nonlinearity=nonlinearity,
    )
    model = renamed_back(model, short)
    return model.replace(framework="PyTorch layout (NumPy arrays)")


def keras_recurrent(cell: Mapping[str, object], ctx: object, reverse: bool) -> list:
    """A Keras-layout cell whose recurrent kernel is ``[H, 3H]`` (GRU) or ``[H, H]``
    (SimpleRNN): read by the Keras reader's own conversion (``keras.gru``), with Keras ≥ 2.3 /
    Keras 3 defaults assumed (sigmoid, tanh; reset_after from the bias shape)."""
    from lstmviz.io.keras.config import KerasVersion
    from lstmviz.io.keras.gru import gru_direction, rnn_direction
    from lstmviz.io.keras.layers import Source, Weight

    roles = {"kernel": "kernel", "recurrent": "recurrent_kernel", "bias": "bias"}
    weights = []
    for key, role in roles.items():
        item = cell.get(key)
        if item is None:
            continue
        arr = item.array  # type: ignore[attr-defined]
        if arr.dtype.kind != "f":
            return []  # let the Keras LSTM path say what is wrong with it
        weights.append(
            Weight(
                item.name,  # type: ignore[attr-defined]
                role,
                tuple(arr.shape),
                str(arr.dtype),
                lambda a=arr: a.astype(np.float32) if a.dtype.itemsize < 4 else a,
            )
        )
    version = KerasVersion("", 2, 3, 0, guessed=True, writers="NumPy arrays in Keras layout")
    src = Source(ctx.file, "", ctx.source_format, version, "NumPy file")  # type: ignore[attr-defined]
    rec = cell["recurrent"].array  # type: ignore[attr-defined]
    name = cell["kernel"].name.rpartition("/")[0] or cell["kernel"].name  # type: ignore[attr-defined]
    if rec.shape[1] == 3 * rec.shape[0]:
        return [gru_direction(name, "GRU", weights, None, src, reverse)]
    return [rnn_direction(name, "SimpleRNN", weights, None, src, reverse)]


def torch_recurrent(cell: Mapping[str, object], ctx: object, reverse: bool) -> list:
    """A PyTorch-layout cell whose ``weight_hh`` is ``[3H, H]`` (``nn.GRU``) or ``[H, H]``
    (``nn.RNN``), found by shape among unnamed arrays: read by the torch reader's own
    conversion (``model_from_state_dict`` on the cell under ``nn.GRU``'s names), so r, z, n stay
    as stored and the GRU's two biases apart; the provenance then names the file's arrays."""
    names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0"}
    names["b_hh"] = "bias_hh_l0"
    tensors = {torch: cell[role].array for role, torch in names.items() if role in cell}  # type: ignore[attr-defined]
    model = model_from_state_dict(
        tensors,
        file=ctx.file,  # type: ignore[attr-defined]
        source_format=ctx.source_format,  # type: ignore[attr-defined]
        nonlinearity=getattr(ctx, "nonlinearity", None),
    )
    mapping = {torch: cell[role].name for role, torch in names.items() if role in cell}  # type: ignore[attr-defined]
    model = renamed_back(model, mapping)
    from lstmviz.io.arrays.cells import with_settings

    fmt = ctx.source_format  # type: ignore[attr-defined]
    return [
        with_settings(d, fmt, "pytorch").replace(reverse=reverse)
        for d in model.layers[0].directions
    ]
