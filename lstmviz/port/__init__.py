"""Write a canonical model (LSTM, GRU and plain RNN layers, mixed) out for another framework
(issue 16, part 4).

``export(model, to, path)`` with ``to`` in ``pytorch`` (nn.LSTM/nn.GRU/nn.RNN state_dict,
``.pt`` or ``.safetensors``; a mixed stack one module per layer), ``keras`` (Keras 3
``.weights.h5`` plus the code building the model), ``onnx`` (a runnable graph of ``LSTM``,
``GRU`` and ``RNN`` nodes), ``npz`` (arrays in a layout lstmviz and the frameworks read) and
``numpy`` (a standalone forward-pass script). Nothing here imports torch,
keras or onnx; a model the target cannot hold is refused with one line (``ExportError``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from lstmviz.core.model import LSTMModel
from lstmviz.port.checks import ExportError
from lstmviz.port.result import ExportResult

TARGETS = ("pytorch", "keras", "onnx", "npz", "numpy")

#: Options each target takes (``--option KEY=VALUE`` on the command line).
OPTIONS: dict[str, tuple[str, ...]] = {
    "pytorch": ("format",),
    "keras": (),
    "onnx": ("opset",),
    "npz": ("layout",),
    "numpy": ("embed",),
}


def export(
    model: LSTMModel | str | os.PathLike[str], to: str, path: str | os.PathLike[str], **options
) -> ExportResult:
    """Write ``model`` (a model, or a file ``load_model`` reads) for target ``to`` at ``path``.

    Raises ``ExportError`` (a ValueError, one line) for an unknown target or option, or a
    model the target cannot hold, naming which target could.
    """
    if to not in TARGETS:
        raise ExportError(f"unknown export target {to!r}; choose {', '.join(TARGETS)}")
    unknown = sorted(set(options) - set(OPTIONS[to]))
    if unknown:
        takes = ", ".join(OPTIONS[to]) or "none"
        raise ExportError(f"{to} export: unknown option {unknown[0]!r} (takes: {takes})")
    if not isinstance(model, LSTMModel):
        from lstmviz.io import load_model

        model = load_model(model)
    result = _export(model, to, Path(path), options)
    if model.embedding is not None and to != "numpy":
        note = (
            f"the Embedding table {tuple(model.embedding.shape)} before the first "
            f"{model.layers[0].cell.name} was not written: feed it embedded vectors (the numpy "
            "target writes embed(ids))"
        )
        result = replace(result, notes=(*result.notes, note))
    return result


def _export(model: LSTMModel, to: str, out: Path, options: dict[str, object]) -> ExportResult:
    if to == "pytorch":
        from lstmviz.port.pytorch import export_pytorch

        fmt = options.get("format")
        return export_pytorch(model, out, fmt=None if fmt is None else str(fmt))
    if to == "keras":
        from lstmviz.port.keras import export_keras

        return export_keras(model, out)
    if to == "onnx":
        from lstmviz.port.onnx import export_onnx

        return export_onnx(model, out, opset=int(options.get("opset", 14)))
    if to == "npz":
        from lstmviz.port.npz import export_npz

        return export_npz(model, out, layout=str(options.get("layout", "canonical")))
    from lstmviz.port.numpy_script import export_numpy

    return export_numpy(model, out, embed=options.get("embed"))


__all__ = ["OPTIONS", "TARGETS", "ExportError", "ExportResult", "export"]
