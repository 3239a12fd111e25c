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

from lstmviz.core.model import (
    LSTMDirection,
    LSTMLayer,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.config import (
    RUNNABLE_KINDS,
    KerasVersion,
    LSTMSettings,
    activation_name,
    check_flags,
    lstm_settings,
    precision_note,
    resolve_activation,
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


def _pick(weights: Sequence[Weight], role: str, index: int) -> Weight | None:
    named = [w for w in weights if w.role == role]
    if named:
        return named[0]
    if all(w.role.isdigit() for w in weights) and index < len(weights):
        return weights[index]  # Keras 3 vars/0, vars/1, vars/2
    return None


def _check(w: Weight, want: tuple[int, ...], layer: str, src: Source, why: str) -> None:
    if w.shape != want:
        raise LoadError(
            f"{src.file}: layer {layer!r} {w.role} {w.name} has shape {w.shape}, "
            f"expected {want} ({why}); the file is damaged or not a Keras recurrent layer"
        )


def _units(cfg: Mapping[str, Any] | None, rec: Weight, layer: str, src: Source) -> int:
    if cfg is None:
        if len(rec.shape) != 2 or rec.shape[0] < 1:
            raise LoadError(
                f"{src.file}: layer {layer!r} recurrent_kernel has shape {rec.shape}, "
                "expected (H, 4H)"
            )
        return rec.shape[0]
    units = cfg.get("units")
    if not isinstance(units, int) or isinstance(units, bool) or not 0 < units <= 1 << 20:
        raise LoadError(f"{src.file}: layer {layer!r} config has units={units!r}, not a size")
    return units


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
    kernel = _pick(weights, "kernel", 0)
    rec = _pick(weights, "recurrent_kernel", 1)
    bias = _pick(weights, "bias", 2)
    if kernel is None or rec is None:
        found = ", ".join(w.name for w in weights) or "no arrays"
        if src.version.major == 1 or any(w.role.endswith("_W_i") for w in weights):
            raise LoadError(
                f"{src.file}: layer {layer!r} uses the Keras 1 layout (W, U, b per gate), "
                "which lstmviz does not read; load it in Keras 2 and save it again"
            )
        raise LoadError(
            f"{src.file}: layer {layer!r} lacks its kernel or recurrent_kernel (found {found})"
        )
    H = _units(cfg, rec, layer, src)
    check_flags(cfg, layer, src.file)
    why = f"units={H} in the config" if cfg is not None else "from recurrent_kernel"
    if len(kernel.shape) != 2 or kernel.shape[0] < 1:
        raise LoadError(
            f"{src.file}: layer {layer!r} kernel has shape {kernel.shape}, expected (D, {4 * H})"
        )
    D = kernel.shape[0]
    _check(kernel, (D, 4 * H), layer, src, why)
    _check(rec, (H, 4 * H), layer, src, why)
    cudnn = kind == "CuDNNLSTM" or (bias is not None and bias.shape == (8 * H,))
    settings = lstm_settings(cfg, src.version, "CuDNNLSTM" if cudnn else kind, H)
    if cfg is None and bias is None:
        settings = replace(settings, use_bias=replace(settings.use_bias, value=False))
    use_bias = bool(settings.use_bias.value)
    if bias is not None and not use_bias:
        raise LoadError(
            f"{src.file}: layer {layer!r} has a bias but its config says use_bias=False"
        )
    if use_bias and bias is None:
        raise LoadError(f"{src.file}: layer {layer!r} has no bias array but use_bias=True")
    if bias is not None:
        _check(bias, (8 * H,) if cudnn else (4 * H,), layer, src, why)
    k, r = kernel.read(), rec.read()
    transforms = []
    if kernel.role.isdigit():
        transforms.append(
            "Keras 3 variables by index: vars/0 = kernel, vars/1 = recurrent_kernel"
            + (", vars/2 = bias" if bias is not None else "")
        )
    if cudnn:
        # cuDNN takes the C-order bytes of each [D, H] gate slice as an (H, D) matrix.
        W_x = np.concatenate([k[:, g * H : (g + 1) * H].reshape(H, D) for g in range(4)])
        transforms.append(
            f"kernel [{D},{4 * H}]: each gate block [{D},{H}] reinterpreted as ({H},{D}) "
            "(cuDNN byte order, not a transpose)"
        )
    else:
        W_x = k.T
        transforms.append(f"kernel [{D},{4 * H}] transposed to W_x [{4 * H},{D}]")
    if cudnn:
        # Keras' own CuDNNLSTM → LSTM converter transposes every [H, H] gate block of the
        # recurrent kernel, so the canonical block is the stored block itself.
        W_h = np.concatenate([r[:, g * H : (g + 1) * H] for g in range(4)])
        transforms.append(
            f"recurrent_kernel [{H},{4 * H}]: gate blocks [{H},{H}] stacked as stored into "
            f"W_h [{4 * H},{H}] (cuDNN layout, no transpose)"
        )
    else:
        W_h = r.T
        transforms.append(f"recurrent_kernel [{H},{4 * H}] transposed to W_h [{4 * H},{H}]")
    if bias is None:
        b = np.zeros(4 * H, dtype=W_x.dtype)
        transforms.append("no bias (use_bias=False): b = 0")
    elif cudnn:
        bb = bias.read()
        b = bb[: 4 * H] + bb[4 * H :]
        transforms.append(f"CuDNN biases summed: b = bias[:{4 * H}] + bias[{4 * H}:]")
    else:
        b = bias.read()
    act = resolve_activation(
        activation_name(settings.activation.value), src.version, src.file, layer
    )
    rec_act = resolve_activation(
        activation_name(settings.recurrent_activation.value), src.version, src.file, layer
    )
    stored = [
        StoredTensor(
            "kernel_cudnn" if cudnn else "W_x", kernel.name, kernel.shape, True, 0, kernel.dtype
        ),
        StoredTensor(
            "recurrent_cudnn" if cudnn else "W_h", rec.name, rec.shape, True, 0, rec.dtype
        ),
    ]
    if bias is not None:
        stored.append(StoredTensor("b", bias.name, bias.shape, False, 0, bias.dtype))
    notes = [
        f"{w.name} stored as {w.dtype}, widened to float32"
        for w in (kernel, rec, bias)
        if w is not None and w.dtype in ("float16", "bfloat16")
    ]
    if cudnn:
        notes.append(
            "stored view omits the cuDNN kernels: their gate blocks are not a transposed W_x / W_h"
        )
    if "hard_sigmoid" in (activation_name(settings.recurrent_activation.value),):
        notes.append(f"hard_sigmoid read as {rec_act.name} ({src.version.label})")
    notes.extend(precision_note(cfg))
    provenance = Provenance(
        framework=src.version.label,
        source_format=src.source_format,
        gate_order=GATE_ORDER,
        perm=(0, 1, 2, 3),
        stored=tuple(stored),
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


def _shown_settings(s: LSTMSettings, act: str, rec_act: str) -> tuple:
    """Settings with activations as lstmviz names (hard_sigmoid → hard_sigmoid_k2/k3)."""
    out = []
    for setting in s.all():
        if setting.name == "activation":
            setting = type(setting)(setting.name, act, setting.assumed, setting.note)
        elif setting.name == "recurrent_activation":
            setting = type(setting)(setting.name, rec_act, setting.assumed, setting.note)
        out.append(setting)
    return tuple(out)


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
