"""Keras LSTM arrays → canonical ``LSTMDirection``/``LSTMLayer``/``LSTMModel`` (CONVENTIONS §3.1).

Every Keras flavour stores ``kernel [D, 4H]``, ``recurrent_kernel [H, 4H]`` and ``bias [4H]``
in gate order i, f, c, o, so the canonical form is just the transposes. Two exceptions:
``CuDNNLSTM`` keeps cuDNN's raw bytes (each gate's ``[D, H]`` kernel slice is really an
``(H, D)`` matrix in C order) and two biases of ``4H`` in one ``[8H]`` array, which are summed.
Readers hand over ``FoundLayer``s in file order; ``keras_chain.build_model`` decides which
LSTMs chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import LSTM_CELL
from lstmviz.core.model import (
    LSTMDirection,
    LSTMLayer,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
)
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.cell_arrays import (
    _check,
    _shown_settings,
    cell_activations,
    cell_arrays,
    cell_kernels,
    cell_notes,
    cell_settings,
    stored_tensors,
)
from lstmviz.io.keras.config import (
    RUNNABLE_KINDS,
    KerasVersion,
)
from lstmviz.io.keras.graph import Wiring

GATE_ORDER = ("i", "f", "c", "o")
MAX_WEIGHT_VALUES = 1 << 28  # 1 GiB of float32 in one array: no LSTM in a file is that big
_MERGE = {
    "concat": MergeMode.CONCAT,
    "sum": MergeMode.SUM,
    "mul": MergeMode.MUL,
    "ave": MergeMode.AVE,
    None: MergeMode.NONE,
}


@dataclass(frozen=True)
class Weight:
    """One stored array: its dataset path, role (last path part), shape; read on demand."""

    name: str
    role: str  # "kernel", "recurrent_kernel", "bias", "embeddings", "0", ...
    shape: tuple[int, ...]
    dtype: str
    read: Callable[[], npt.NDArray[np.floating]] = field(repr=False, compare=False)


@dataclass(frozen=True)
class FoundLayer:
    """A layer as the file holds it: class, config (None in weights-only files) and arrays.

    For ``Bidirectional`` the config is the wrapper's, ``directions`` splits the weights into
    (forward, backward).
    """

    name: str
    kind: str  # class name; "Bidirectional" with inner_kind "LSTM"
    config: Mapping[str, Any] | None
    weights: tuple[Weight, ...]
    inner_kind: str = ""
    directions: tuple[tuple[Weight, ...], ...] = ()
    wiring: Wiring | None = None  # from a functional config; None: file order decides

    @property
    def display_kind(self) -> str:
        return f"{self.kind}({self.inner_kind})" if self.inner_kind else self.kind

    @property
    def is_lstm(self) -> bool:
        """A recurrent layer lstmviz runs: an LSTM, or a GRU or SimpleRNN (``keras.gru``)."""
        return self.kind in RUNNABLE_KINDS or (
            self.kind == "Bidirectional" and self.inner_kind in RUNNABLE_KINDS
        )

    @property
    def base_kind(self) -> str:
        return self.inner_kind if self.kind == "Bidirectional" else self.kind


#: ``merge_mode=`` of a weights-only file: layer name → Keras merge mode, "" = every layer
MergeModes = Mapping[str, str | None]


def parse_merge_modes(value: object, file: str) -> MergeModes:
    """``merge_mode=mul`` (every Bidirectional) or ``merge_mode=bi_a:ave,bi_b:mul``."""
    if value is None:
        return {}
    out: dict[str, str | None] = {}
    for part in str(value).split(","):
        name, _, mode = part.strip().rpartition(":")
        key = mode.strip().lower()
        if key not in ("concat", "sum", "mul", "ave", "none"):
            raise LoadError(
                f"{file}: merge_mode={value!r} is not understood; expected concat, sum, mul, "
                "ave or none, for every Bidirectional or per layer as name:mode,name:mode"
            )
        out[name.strip()] = None if key == "none" else key
    return out


@dataclass(frozen=True)
class Source:
    """What every direction of one file shares in its provenance."""

    file: str
    path: str
    source_format: str  # "Keras HDF5 full model", "Keras 3 .keras", ...
    version: KerasVersion
    container: str  # "HDF5 file", ".keras file": used in messages
    #: ``merge_mode=`` for weights-only files: layer name → mode ("" = every Bidirectional)
    merge_modes: MergeModes = field(default_factory=dict)


def lstm_direction(
    layer: str,
    kind: str,
    weights: Sequence[Weight],
    cfg: Mapping[str, Any] | None,
    src: Source,
    reverse: bool,
) -> LSTMDirection:
    """One Keras LSTM (or CuDNNLSTM) cell's arrays as a canonical direction; a GRU, CuDNNGRU
    or SimpleRNN goes to ``keras.gru``."""
    if kind in ("GRU", "CuDNNGRU", "SimpleRNN"):
        from lstmviz.io.keras import gru  # imports this module

        make = gru.rnn_direction if kind == "SimpleRNN" else gru.gru_direction
        return make(layer, kind, weights, cfg, src, reverse)  # type: ignore[return-value]
    kernel, rec, bias, H, D = cell_arrays(layer, weights, cfg, src, LSTM_CELL.n_gates, ("_W_i",))
    cudnn = kind == "CuDNNLSTM" or (bias is not None and bias.shape == (8 * H,))
    settings = cell_settings(layer, cfg, src, kind, H, bias, cudnn)
    if bias is not None:
        why = f"units={H} in the config" if cfg is not None else "from recurrent_kernel"
        _check(bias, (8 * H,) if cudnn else (4 * H,), layer, src, why)
    W_x, W_h, transforms = cell_kernels(kernel, rec, bias, H, D, LSTM_CELL.n_gates, cudnn)
    if bias is None:
        b = np.zeros(4 * H, dtype=W_x.dtype)
        transforms.append("no bias (use_bias=False): b = 0")
    elif cudnn:
        bb = bias.read()
        b = bb[: 4 * H] + bb[4 * H :]
        transforms.append(f"CuDNN biases summed: b = bias[:{4 * H}] + bias[{4 * H}:]")
    else:
        b = bias.read()
    act, rec_act = cell_activations(settings, src, layer)
    notes = cell_notes((kernel, rec, bias), cfg, src, cudnn, settings, rec_act)
    provenance = Provenance(
        framework=src.version.label,
        source_format=src.source_format,
        gate_order=GATE_ORDER,
        perm=(0, 1, 2, 3),
        stored=stored_tensors(kernel, rec, bias, cudnn),
        transforms=tuple(transforms),
        settings=_shown_settings(settings, act.name, rec_act.name),
        notes=tuple(notes),
    )
    return LSTMDirection(
        W_x=W_x,
        W_h=W_h,
        b=b,
        act_gate=rec_act,
        act_cand=act,
        act_cell=act,
        reverse=reverse,
        provenance=provenance,
    )


def _side(name: str) -> str | None:
    """ "forward"/"backward" from a path part like ``forward_lstm_1`` or ``backward_layer``."""
    for part in name.split("/"):
        for side in ("forward", "backward"):
            if part.startswith(side + "_"):
                return side
    return None


def _split_bidirectional(found: FoundLayer, src: Source) -> tuple[tuple[Weight, ...], ...]:
    if len(found.directions) == 2:
        return found.directions
    ws = found.weights
    sides = [_side(w.name) for w in ws]
    if "forward" in sides and "backward" in sides and None not in sides:
        return (
            tuple(w for w, s in zip(ws, sides, strict=True) if s == "forward"),
            tuple(w for w, s in zip(ws, sides, strict=True) if s == "backward"),
        )
    if len(ws) % 2:
        raise LoadError(
            f"{src.file}: Bidirectional layer {found.name!r} has {len(ws)} arrays, "
            "not two equal halves (forward, backward)"
        )
    half = len(ws) // 2
    return tuple(ws[:half]), tuple(ws[half:])  # Keras writes the forward weights first


def lstm_layer(found: FoundLayer, src: Source) -> LSTMLayer:
    """A Keras LSTM, CuDNNLSTM or Bidirectional(LSTM) layer in canonical form."""
    cfg = found.config
    if found.kind != "Bidirectional":
        back = bool(cfg.get("go_backwards", False)) if cfg is not None else False
        w = lstm_direction(found.name, found.kind, found.weights, cfg, src, reverse=back)
        return LSTMLayer(
            name=found.name,
            directions=(w,),
            output_order=OutputOrder.PROCESSING if back else OutputOrder.TIME,
            return_sequences=_return_sequences(cfg),
            kind=found.kind,
        )
    inner = _inner_config(cfg, "layer")
    if cfg is not None and inner is None:
        raise LoadError(
            f"{src.file}: Bidirectional layer {found.name!r} config has no wrapped layer; "
            "the config is damaged"
        )
    back_cfg = _inner_config(cfg, "backward_layer")
    fw_back, bw_back = _go_backwards(inner, back_cfg)
    if fw_back == bw_back:
        raise LoadError(
            f"{src.file}: Bidirectional layer {found.name!r} has go_backwards={fw_back} in both "
            "its layer and its backward_layer, which Keras refuses; the config is damaged"
        )
    merge_raw, merge = _merge_mode(found.name, cfg, src)
    fw_w, bw_w = _split_bidirectional(found, src)
    kind = found.inner_kind or "LSTM"
    fw = lstm_direction(f"{found.name}/forward", kind, fw_w, inner, src, reverse=fw_back)
    bw = lstm_direction(
        f"{found.name}/backward", kind, bw_w, back_cfg or inner, src, reverse=bw_back
    )
    if (fw.input_size, fw.hidden_size) != (bw.input_size, bw.hidden_size):
        raise LoadError(
            f"{src.file}: Bidirectional layer {found.name!r} directions differ in size "
            f"(forward {fw.W_x.shape}, backward {bw.W_x.shape})"
        )
    if back_cfg is None and inner is not None:
        why = "the backward copy Keras makes: the wrapped layer's go_backwards inverted"
        bw = _with_setting(bw, Setting("go_backwards", bw_back, assumed=False, note=why))
    elif inner is None:
        why = "weights-only file: no config; Keras' Bidirectional default"
        fw = _with_setting(fw, Setting("go_backwards", fw_back, assumed=True, note=why))
        bw = _with_setting(bw, Setting("go_backwards", bw_back, assumed=True, note=why))
    fw, bw = _with_setting(fw, merge), _with_setting(bw, merge)
    return LSTMLayer(
        name=found.name,
        directions=(fw, bw),
        merge_mode=_MERGE[merge_raw],
        # Keras flips the backward output back to time order and merges: with a go_backwards
        # wrapped layer that leaves the merged sequence in the forward layer's (reversed) order.
        output_order=OutputOrder.PROCESSING if fw_back else OutputOrder.TIME,
        return_sequences=_return_sequences(inner),
        kind=found.display_kind,
    )


def _go_backwards(
    inner: Mapping[str, Any] | None, back_cfg: Mapping[str, Any] | None
) -> tuple[bool, bool]:
    """(forward layer, backward layer) ``go_backwards`` of a Bidirectional wrapper.

    Keras 2/tf.keras build the backward copy with the wrapped layer's go_backwards inverted;
    Keras 3 with True but then requires the two to differ, and it always saves
    ``backward_layer`` (tf.keras only a custom one), so the inversion covers every file.
    """
    fw_back = bool(inner.get("go_backwards", False)) if inner is not None else False
    if back_cfg is None:
        return fw_back, not fw_back
    return fw_back, bool(back_cfg.get("go_backwards", False))


def _with_setting(d: LSTMDirection, setting: Setting) -> LSTMDirection:
    """``d`` with ``setting`` replacing the one of the same name (or added)."""
    kept = tuple(s for s in d.provenance.settings if s.name != setting.name)
    return d.replace(provenance=replace(d.provenance, settings=(*kept, setting)))


def _merge_mode(name: str, cfg: Mapping[str, Any] | None, src: Source) -> tuple[Any, Setting]:
    """The merge mode as written in the config, or passed as ``merge_mode=`` for a
    weights-only file (which records none), or Keras' default concat."""
    if cfg is not None and "merge_mode" in cfg:
        raw = cfg["merge_mode"]
        setting = Setting("merge_mode", raw, assumed=False, note="read from the model config")
    elif cfg is None and src.merge_modes and (name in src.merge_modes or "" in src.merge_modes):
        raw = src.merge_modes.get(name, src.merge_modes.get(""))
        setting = Setting("merge_mode", raw, assumed=False, note="given as merge_mode=")
    else:
        raw = "concat"
        why = "not in the config" if cfg is not None else "weights-only file: no config"
        setting = Setting("merge_mode", raw, assumed=True, note=f"{why}; Keras default concat")
    if raw not in _MERGE:
        raise LoadError(
            f"{src.file}: Bidirectional layer {name!r} has merge_mode {raw!r}; "
            "expected concat, sum, mul, ave or None"
        )
    return raw, setting


def _inner_config(cfg: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if cfg is None:
        return None
    entry = cfg.get(key)
    if isinstance(entry, Mapping) and isinstance(entry.get("config"), Mapping):
        return entry["config"]
    return None


def _return_sequences(cfg: Mapping[str, Any] | None) -> bool:
    return bool(cfg.get("return_sequences", False)) if cfg is not None else True
