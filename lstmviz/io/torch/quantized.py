"""PyTorch dynamic-quantized LSTMs (``torch.ao.quantization.quantize_dynamic``), dequantized.

``quantize_dynamic(model, {nn.LSTM}, dtype=torch.qint8)`` replaces each ``nn.LSTM`` by a
``DynamicQuantizedLSTM`` whose state dict holds no ``weight_ih_l0``: one
``_all_weight_values.<k>.param`` per layer and direction (``k = layer · dirs + dir``), a
``torch.ScriptObject`` (``__torch__.torch.classes.rnn.CellParamsBase`` in TorchScript) whose
pickled state is ``("quantized_dynamic", [bias_ih, bias_hh], [], [reduce_range],
[packed_ih, packed_hh])``; each packed ``LinearPackedParamsBase`` holds ``(weight, bias)``
with the weight a quantized tensor (``torch._utils._rebuild_qtensor``: int8 storage plus
``(per_tensor_affine, scale, zero_point)`` or ``(per_channel_affine, scales, zero_points,
axis)``). lstmviz shows ``w = (q - zero_point) · scale`` and runs the float LSTM with it;
torch's own quantized run also quantizes the activations per step, so the two differ by the
activation rounding (see the parity test). float16 dynamic quantization keeps float weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from lstmviz.io.errors import LoadError
from lstmviz.io.torch.state_dict import LazyTensor, Tensor, is_tensor
from lstmviz.io.wire.safe_pickle import Buildable

_CELL = re.compile(r"^(?:(.*)\.)?_all_weight_values\.(\d+)\.param$")
_SCHEMES = ("per_tensor_affine", "per_tensor_symmetric")
_CHANNEL_SCHEMES = ("per_channel_affine", "per_channel_symmetric")
#: CellParamsBase kinds: int8 weights with float biases beside them; float16-packed weights
#: whose biases sit in the packed params (``dtype=torch.float16``).
_CELL_KINDS = ("quantized_dynamic", "quantized_fp16")


class PackedState(Buildable):
    """A ``torch.ScriptObject`` / TorchScript custom class: only its pickled state, kept."""

    __slots__ = ("state",)

    def __init__(self, *args: object) -> None:
        self.state: object = None

    def build(self, state: object) -> None:
        self.state = state


def _state(obj: object) -> object:
    """The pickled state, without the class name a state dict's ScriptObject pairs it with."""
    state = getattr(obj, "state", None)
    if type(state) is tuple and len(state) == 2 and isinstance(state[1], str):
        return state[0]
    return state


def is_quantized_cell(obj: object) -> bool:
    state = _state(obj)
    return type(state) is tuple and bool(state) and state[0] in _CELL_KINDS


#: Elements dequantized per step: the intermediate product exists for one block at a time.
_BLOCK = 1 << 20


def _dequantized(q: np.ndarray, zero: Any, scale: Any, wide: bool) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32, the way torch's kernels compute it: in float32
    for per-tensor scales (``Vectorized<float>``), in float64 for per-channel ones (their scales
    are a double tensor); bit-identical to ``q.dequantize()`` either way. It runs a block at a
    time: a whole-tensor float64 copy was 8 bytes per stored int8 (a 3.9 KB file viewing one
    byte 60 million times with stride 0 took 520 MB)."""
    work = np.float64 if wide else np.float32
    out = np.empty(q.shape, np.float32)
    flat_q, flat_out = q.reshape(-1), out.reshape(-1)
    zero, scale = np.asarray(zero, work), np.asarray(scale, work)
    flat_zero = np.broadcast_to(zero, q.shape).reshape(-1) if zero.ndim else None
    flat_scale = np.broadcast_to(scale, q.shape).reshape(-1) if scale.ndim else None
    for start in range(0, flat_q.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        z = zero if flat_zero is None else flat_zero[block]
        sc = scale if flat_scale is None else flat_scale[block]
        flat_out[block] = (flat_q[block].astype(work) - z) * sc
    return out


def rebuild_qtensor(src: Any) -> Any:
    """``torch._utils._rebuild_qtensor`` stand-in: a lazy tensor of the dequantized values,
    its float32 bytes charged to the file's budget before they are made."""
    file = src.file

    def rebuild(storage, offset, size, stride, qparams, requires_grad=False, hooks=None):
        raw = src.tensor(storage, offset, size, stride, None)
        if type(qparams) is not tuple or not qparams:
            raise LoadError(f"{file}: a quantized tensor without quantization parameters")
        scheme = getattr(qparams[0], "name", "")
        count = int(np.prod(raw.shape, dtype=np.int64)) if raw.shape else 1
        if scheme in _SCHEMES and len(qparams) == 3:
            scale, zero = qparams[1], qparams[2]
            if not isinstance(scale, float) or type(zero) is not int:
                raise LoadError(f"{file}: a quantized tensor with a malformed scale")
            if not -(1 << 31) <= zero < (1 << 31):
                raise LoadError(f"{file}: a quantized tensor's zero point is out of range")

            def read() -> np.ndarray:
                src.charge_widening(storage, 4 * count, f"a dequantized {tuple(raw.shape)} tensor")
                return _dequantized(np.asarray(raw.read()), zero, scale, wide=False)

        elif scheme in _CHANNEL_SCHEMES and len(qparams) == 4:
            scales, zeros, axis = qparams[1], qparams[2], qparams[3]
            if not (is_tensor(scales) and is_tensor(zeros) and type(axis) is int):
                raise LoadError(f"{file}: a per-channel quantized tensor with malformed scales")
            if not 0 <= axis < len(raw.shape) or tuple(scales.shape) != (raw.shape[axis],):
                raise LoadError(f"{file}: per-channel scales do not fit the quantized tensor")
            if tuple(zeros.shape) != tuple(scales.shape):
                raise LoadError(f"{file}: per-channel zero points do not fit the quantized tensor")

            def read() -> np.ndarray:
                src.charge_widening(storage, 4 * count, f"a dequantized {tuple(raw.shape)} tensor")
                q = np.asarray(raw.read())
                shape = [1] * q.ndim
                shape[axis] = -1
                s = np.asarray(scales, np.float64).reshape(shape)
                z = np.asarray(zeros, np.float64).reshape(shape)
                return _dequantized(q, z, s, wide=True)

        else:
            raise LoadError(f"{file}: quantized tensor with scheme {scheme or '?'} cannot be shown")
        return LazyTensor(tuple(raw.shape), "float32", read)

    return rebuild


def _packed_weight(packed: object, what: str, file: str) -> Tensor:
    state = _state(packed)
    if type(state) in (tuple, list) and state and is_tensor(state[0]):
        return state[0]  # type: ignore[return-value]
    raise LoadError(f"{file}: {what} of a quantized LSTM has no weight; re-save the float model")


def cell_tensors(cell: object, file: str) -> dict[str, Tensor]:
    """w_ih, w_hh, b_ih, b_hh of one quantized cell (dequantized lazily)."""
    state = _state(cell)
    assert type(state) is tuple
    parts = list(state) + [None] * 5
    biases, packed = parts[1], parts[4]
    if type(packed) is not list or len(packed) != 2:
        raise LoadError(f"{file}: a quantized LSTM cell without its two packed weights")
    out = {
        "weight_ih": _packed_weight(packed[0], "weight_ih", file),
        "weight_hh": _packed_weight(packed[1], "weight_hh", file),
    }
    if type(biases) is list and len(biases) == 2 and all(is_tensor(b) for b in biases):
        out["bias_ih"], out["bias_hh"] = biases
    else:  # quantized_fp16: each packed linear keeps (weight, bias)
        for name, p in (("bias_ih", packed[0]), ("bias_hh", packed[1])):
            inner = _state(p)
            if type(inner) in (tuple, list) and len(inner) > 1 and is_tensor(inner[1]):
                out[name] = inner[1]
    return out


def _directions(cells: list[dict[str, Tensor]], where: str, file: str) -> int:
    """1 or 2 directions, from the input widths of the cells (k = layer · dirs + dir)."""
    n = len(cells)
    if n % 2:
        return 1
    width = [tuple(c["weight_ih"].shape)[1] for c in cells]
    hidden = tuple(cells[0]["weight_hh"].shape)[1]
    if n >= 4:  # layer 1's input is 2H wide when bidirectional, H wide when not
        return 2 if width[2] == 2 * hidden and width[1] == width[0] else 1
    if width[1] != width[0]:
        return 1
    if width[0] != hidden:
        return 2
    raise LoadError(
        f"{file}: {where or 'the quantized LSTM'} has 2 cells that fit both 2 layers and 1 "
        "bidirectional layer (input size = hidden size), and its state dict does not say "
        "which; save the whole quantized model or its TorchScript instead"
    )


def expand_cells(
    tensors: dict[str, Tensor], cells: Mapping[str, object], hints: Mapping[str, int], file: str
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``tensors`` plus ``<prefix>.weight_ih_l<k>[_reverse]``... for each quantized LSTM, and
    a transform note per computed weight; ``hints``: prefix → 2 when the module says
    bidirectional (TorchScript and whole models record it)."""
    groups: dict[str, dict[int, object]] = {}
    for path, cell in cells.items():
        m = _CELL.match(path)
        if m:
            groups.setdefault(m.group(1) or "", {})[int(m.group(2))] = cell
    derived: dict[str, str] = {}
    for prefix, by_index in groups.items():
        if sorted(by_index) != list(range(len(by_index))):
            raise LoadError(f"{file}: {prefix or 'a quantized LSTM'} lacks some of its cells")
        parts = [cell_tensors(by_index[k], file) for k in range(len(by_index))]
        dirs = hints.get(prefix) or _directions(parts, prefix, file)
        rows, hidden = tuple(parts[0]["weight_hh"].shape)[:2]  # 2-D, as _directions reads it
        kind = "GRU" if hidden and rows == 3 * hidden else "LSTM"  # packed alike
        for k, part in enumerate(parts):
            suffix = f"_l{k // dirs}" + ("_reverse" if k % dirs else "")
            for name, t in part.items():
                full = f"{prefix}.{name}{suffix}" if prefix else f"{name}{suffix}"
                tensors[full] = t
                if name.startswith("weight"):
                    derived[full] = (
                        f"{name}{suffix} dequantized from a dynamic-quantized {kind} (torch.ao."
                        "quantization.quantize_dynamic, qint8): w = (q - zero_point)·scale"
                        if _state(by_index[k])[0] == "quantized_dynamic"  # type: ignore[index]
                        else f"{name}{suffix} from a float16 dynamic-quantized {kind}'s packed "
                        "weights (torch.ao.quantization.quantize_dynamic, float16)"
                    )
    return tensors, derived
