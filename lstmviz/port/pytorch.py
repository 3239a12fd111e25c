"""The ``pytorch`` target: an ``nn.LSTM`` state_dict as ``.pt`` (a torch-free zip) or safetensors.

nn.LSTM keeps gates i, f, g, o with ``weight_ih_l{k}`` ``(4H, D_k)`` exactly as the canonical
``W_x``, so no reordering is needed. Our ``b`` is the sum of every bias the source had; nn.LSTM
adds ``bias_ih + bias_hh``, so the sum goes into ``bias_ih`` and ``bias_hh`` is zero (said in
the metadata). What nn.LSTM cannot hold — peepholes, clips, other activations, a merge other
than concat, a backwards-only layer, initial states, layers of different sizes or with per-step
layers between them — is refused; a dense head is not part of nn.LSTM and is left out, noted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz.core.model import LSTMModel
from lstmviz.port import checks
from lstmviz.port.checks import ExportError, Feature
from lstmviz.port.result import ExportResult
from lstmviz.port.torch_files import write_pt, write_safetensors

TARGET = "pytorch"
BIAS_NOTE = (
    "lstmviz keeps one summed bias: it is in bias_ih_l*, bias_hh_l* are zeros "
    "(nn.LSTM adds the two, so outputs are unchanged)"
)


def check(model: LSTMModel, target: str = TARGET) -> None:
    """Refuse what one ``nn.LSTM`` cannot hold (also the npz canonical layout's rule)."""
    checks.refuse_any(
        target,
        model,
        {
            "peepholes", "cell_clip", "proj_clip", "gate_clip", "merge_mode", "reversed_output",
            "reverse_only", "initial_state", "between",
        },
    )  # fmt: skip
    checks.require_sigmoid_tanh(target, model)
    first = model.layers[0]
    for k, layer in enumerate(model.layers):
        at = checks.where(k, layer)
        d0 = layer.directions[0]
        if layer.hidden_size != first.hidden_size:
            raise checks.refusal(
                target,
                Feature("widths", at, f"{layer.hidden_size} units where layer 0 has "
                        f"{first.hidden_size} (nn.LSTM has one hidden_size)"),
                "keras, onnx, npz or numpy",
            )  # fmt: skip
        if layer.bidirectional != first.bidirectional:
            raise checks.refusal(
                target,
                Feature("widths", at, "a different number of directions than layer 0"),
                "keras, onnx, npz or numpy",
            )
        if d0.output_size != first.directions[0].output_size:
            raise checks.refusal(
                target,
                Feature("widths", at, "a projection size different from layer 0's"),
                "npz or numpy",
            )


def state_dict(model: LSTMModel) -> dict[str, np.ndarray]:
    """``nn.LSTM(D, H, num_layers, bidirectional=, proj_size=)`` names → float32 arrays."""
    check(model)
    out: dict[str, np.ndarray] = {}
    for k, layer in enumerate(model.layers):
        for d, w in enumerate(layer.directions):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            out[f"weight_ih{sfx}"] = np.asarray(w.W_x, np.float32)
            out[f"weight_hh{sfx}"] = np.asarray(w.W_h, np.float32)
            out[f"bias_ih{sfx}"] = np.asarray(w.b, np.float32)
            out[f"bias_hh{sfx}"] = np.zeros_like(out[f"bias_ih{sfx}"])
            if w.W_p is not None:
                out[f"weight_hr{sfx}"] = np.asarray(w.W_p, np.float32)
    return out


def constructor(model: LSTMModel) -> str:
    """The ``nn.LSTM(...)`` call whose ``load_state_dict`` takes the written file."""
    first = model.layers[0]
    args = [str(model.input_size), str(first.hidden_size), f"num_layers={len(model.layers)}"]
    if first.bidirectional:
        args.append("bidirectional=True")
    if first.directions[0].W_p is not None:
        args.append(f"proj_size={first.directions[0].output_size}")
    return f"torch.nn.LSTM({', '.join(args)})"


def export_pytorch(model: LSTMModel, path: Path, fmt: str | None = None) -> ExportResult:
    """``fmt``: ``pt`` or ``safetensors``; default from the extension (``.safetensors``)."""
    fmt = fmt or ("safetensors" if path.suffix.lower() == ".safetensors" else "pt")
    if fmt not in ("pt", "safetensors"):
        raise ExportError(f"pytorch export: format {fmt!r} unknown; use format=pt or safetensors")
    tensors = state_dict(model)
    notes = [BIAS_NOTE]
    if model.head:
        notes.append(
            f"the model's head ({', '.join(t.kind for t in model.head)}) is not part of nn.LSTM "
            "and was not written"
        )
    build = constructor(model)
    code = f"import torch\nlstm = {build}\n" + (
        f"lstm.load_state_dict(torch.load({str(path)!r}, weights_only=True))\n"
        if fmt == "pt"
        else "from safetensors.torch import load_file\n"
        f"lstm.load_state_dict(load_file({str(path)!r}))\n"
    )
    if fmt == "pt":
        write_pt(path, tensors)
    else:
        meta = {"format": "pt", "producer": "lstmviz", "module": build, "note": BIAS_NOTE}
        write_safetensors(path, tensors, meta)
    n = sum(int(a.size) for a in tensors.values())
    summary = f"wrote {path} ({len(tensors)} tensors, {n} values) for {build}"
    return ExportResult(TARGET, (path,), summary, tuple(notes), code)
