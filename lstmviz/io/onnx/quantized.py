"""onnxruntime's ``com.microsoft.DynamicQuantizeLSTM``, read as a float LSTM (issue 12 item 4).

``onnxruntime.quantization.quantize_dynamic`` replaces an ``LSTM`` node by this contrib op
(``operators/lstm.py`` there): inputs ``X, W, R, B, sequence_lens, initial_h, initial_c, P,
W_scale, W_zero_point, R_scale, R_zero_point``; ``W`` is int8/uint8 ``[dirs, D, 4H]`` and ``R``
``[dirs, H, 4H]`` (transposed from the float op's ``[dirs, 4H, in]``), gates still i, o, f, c;
scales and zero points are ``[dirs]`` (one per direction) or ``[dirs, 4H]`` (per output
channel). Every other input and attribute is the float op's.

lstmviz shows the weights dequantized, ``(q - zero_point) * scale`` in float32, and runs them
in float. onnxruntime also quantizes X and h to uint8 at every step (dynamic, per tensor), so
its outputs differ from a float run of the same dequantized weights by that rounding; the
provenance says so.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstmviz.io.errors import LoadError
from lstmviz.io.onnx.fold import Folder, NotConstant
from lstmviz.io.onnx.proto import Node, quote

OP = "DynamicQuantizeLSTM"


class Stored(NamedTuple):
    """The quantized tensor the file keeps for a weight lstmviz shows dequantized."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    transposed: bool  # DynamicQuantizeLSTM stores [dirs, in, 4H]


#: input index of (quantized weight, scale, zero point) for W and R.
_PARTS = {"W": (1, 8, 9), "R": (2, 10, 11)}


def _const(folder: Folder, name: str, what: str, where: str) -> np.ndarray:
    try:
        return folder.value(name, what)
    except NotConstant as exc:
        raise LoadError(
            f"{where} input {what} ({quote(name)}) is not stored in the file: it depends on "
            f"{exc.reason}; lstmviz reads quantized LSTM weights stored as initializers"
        ) from exc


def dequantized(
    folder: Folder, node: Node, where: str
) -> tuple[dict[str, tuple[np.ndarray, str]], dict[str, Stored], list[str]]:
    """W and R of a DynamicQuantizeLSTM as float32 ``[dirs, 4H, in]`` arrays (ONNX layout),
    what the file stored for each (shape, dtype) and the transforms to record."""
    inputs = list(node.inputs) + [""] * 12
    arrays: dict[str, tuple[np.ndarray, str]] = {}
    stored: dict[str, Stored] = {}
    kinds = []
    for key, (k, ks, kz) in _PARTS.items():
        if not inputs[k] or not inputs[ks]:
            raise LoadError(f"{where} lacks its {key} or {key}_scale input")
        q = _const(folder, inputs[k], key, where)
        scale = _const(folder, inputs[ks], f"{key}_scale", where)
        zero = _const(folder, inputs[kz], f"{key}_zero_point", where) if inputs[kz] else None
        if q.dtype not in (np.int8, np.uint8) or q.ndim != 3:
            raise LoadError(
                f"{where}: {key} has dtype {q.dtype} and shape {q.shape}; {OP} stores int8 or "
                "uint8 weights [dirs, in, 4H]"
            )
        dirs, _, gates = q.shape
        if scale.dtype.kind != "f" or scale.shape not in ((dirs,), (dirs, gates)):
            raise LoadError(
                f"{where}: {key}_scale has shape {scale.shape}; expected ({dirs},) per tensor "
                f"or ({dirs}, {gates}) per channel"
            )
        if zero is not None and (zero.shape != scale.shape or zero.dtype.kind not in "iu"):
            raise LoadError(
                f"{where}: {key}_zero_point has shape {zero.shape}, dtype {zero.dtype}; "
                f"expected integers shaped like {key}_scale {scale.shape}"
            )
        # Straight into one float32 array in ONNX layout [dirs, 4H, in]: 8-bit values and
        # zero points are exact in float32, so (q - zero) * scale needs no int32 copy, and
        # the transpose happens in the same pass (three temporaries of 4× the file were 3×
        # the memory promise).
        shape = (dirs, 1, 1) if scale.ndim == 1 else (dirs, gates, 1)
        w = np.empty((dirs, gates, q.shape[1]), dtype=np.float32)
        w[...] = np.transpose(q, (0, 2, 1))
        if zero is not None:
            w -= zero.astype(np.float32).reshape(shape)
        w *= scale.astype(np.float32).reshape(shape)
        arrays[key] = (w, inputs[k])
        stored[inputs[k]] = Stored(inputs[k], tuple(q.shape), str(q.dtype), True)
        kinds.append(f"{key} {q.dtype} per {'tensor' if scale.ndim == 1 else 'channel'}")
    transforms = [
        f"{OP}: {', '.join(kinds)} dequantized as (q - zero_point) * scale and transposed "
        "[dirs, in, 4H] → [dirs, 4H, in]"
    ]
    return arrays, stored, transforms


def qdq_sources(folder: Folder, arrays: dict[str, tuple[np.ndarray, str]]) -> dict[str, Stored]:
    """For weights computed by a DequantizeLinear straight from an initializer (QDQ), that
    initializer, so the stored layout names the int8 tensor the file holds."""
    out = {}
    for arr, name in arrays.values():
        node = folder.graph.producer(name)
        if node is None or node.op_type != "DequantizeLinear" or not node.inputs:
            continue
        source = folder.initializer(node.inputs[0])
        if source is not None and tuple(source.dims) == arr.shape:
            out[name] = Stored(source.name, tuple(source.dims), source.dtype_name, False)
    return out


NOTE = (
    f"{OP} (onnxruntime, com.microsoft): weights shown dequantized and run in float; "
    "onnxruntime also rounds X and h to uint8 at every step, so its outputs differ from "
    "lstmviz's by that rounding (1e-3 to 3e-2 on models lstmviz was checked against)"
)
