"""The ``pytorch`` target: an ``nn.LSTM`` state_dict as ``.pt`` (a torch-free zip) or safetensors.

nn.LSTM keeps gates i, f, g, o with ``weight_ih_l{k}`` ``(4H, D_k)`` exactly as the canonical
``W_x``, so no reordering is needed. Our ``b`` is the sum of every bias the source had; nn.LSTM
adds ``bias_ih + bias_hh``, so the sum goes into ``bias_ih`` and ``bias_hh`` is zero (said in
the metadata). What nn.LSTM cannot hold — peepholes, clips, other activations, a merge other
than concat, a backwards-only layer, initial states, layers of different sizes or with per-step
layers between them — is refused; a dense head is not part of nn.LSTM and is left out, noted.

GRU layers go to ``nn.GRU`` (r, z, n as canonical; ``b_x``/``b_h`` are ``bias_ih``/``bias_hh``;
only ``reset_after``: torch has no reset-before GRU, refused naming keras/onnx/npz/numpy), plain
RNN layers to ``nn.RNN`` (``nonlinearity`` tanh or relu). A stack one module cannot hold (kinds
or sizes that differ, with a GRU or RNN in it) is one module per layer under ``layers.{k}.``,
and the result's code defines that ``Stack`` ``nn.Module``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz.core.model import LSTMLayer, LSTMModel
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
    """Refuse what ``nn.LSTM``/``nn.GRU``/``nn.RNN`` modules cannot hold (also the npz
    canonical layout's rule)."""
    checks.refuse_any(
        target,
        model,
        {
            "peepholes", "cell_clip", "proj_clip", "gate_clip", "merge_mode", "reversed_output",
            "reverse_only", "initial_state", "between", "reset_before",
        },
    )  # fmt: skip
    checks.require_sigmoid_tanh(target, model)
    if single_module(model) or any(layer.cell.name != "LSTM" for layer in model.layers):
        return  # one module, or one module per layer (a stack with GRU/RNN layers)
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


def _signature(layer: LSTMLayer) -> tuple[object, ...]:
    d0 = layer.directions[0]
    act = d0.act_cand.name if d0.kind == "RNN" else ""
    return d0.kind, layer.hidden_size, layer.bidirectional, d0.output_size, act


def single_module(model: LSTMModel) -> bool:
    """True when one ``nn.LSTM``/``nn.GRU``/``nn.RNN`` holds every layer: one cell kind, one
    hidden size, direction count, projection and nonlinearity. Otherwise (a stack mixing
    kinds or sizes with a GRU or RNN in it) each layer is its own one-layer module, stored
    under ``layers.{k}.`` as in an ``nn.ModuleList`` named ``layers``."""
    return len({_signature(layer) for layer in model.layers}) == 1


def _direction_tensors(w: object, sfx: str) -> dict[str, np.ndarray]:
    """One direction under torch's names: GRU ``bias_ih``/``bias_hh`` are ``b_x``/``b_h``
    (same r, z, n order); LSTM and RNN keep one summed bias in ``bias_ih``."""
    f32 = np.float32
    out = {f"weight_ih{sfx}": np.asarray(w.W_x, f32), f"weight_hh{sfx}": np.asarray(w.W_h, f32)}
    if w.kind == "GRU":
        out[f"bias_ih{sfx}"] = np.asarray(w.b_x, f32)
        out[f"bias_hh{sfx}"] = np.asarray(w.b_h, f32)
    else:
        out[f"bias_ih{sfx}"] = np.asarray(w.b, f32)
        out[f"bias_hh{sfx}"] = np.zeros_like(out[f"bias_ih{sfx}"])
    W_p = getattr(w, "W_p", None)
    if W_p is not None:
        out[f"weight_hr{sfx}"] = np.asarray(W_p, f32)
    return out


def state_dict(model: LSTMModel) -> dict[str, np.ndarray]:
    """Torch names → float32 arrays: ``nn.LSTM(D, H, num_layers, ...)``'s (or nn.GRU's,
    nn.RNN's) for a single module, else ``layers.{k}.weight_ih_l0`` ... per layer."""
    check(model)
    single = single_module(model)
    out: dict[str, np.ndarray] = {}
    for k, layer in enumerate(model.layers):
        for d, w in enumerate(layer.directions):
            rev = "_reverse" if d else ""
            sfx = f"_l{k}{rev}" if single else f"_l0{rev}"
            for name, a in _direction_tensors(w, sfx).items():
                out[name if single else f"layers.{k}.{name}"] = a
    return out


def _module(layer: LSTMLayer, input_size: int, num_layers: int) -> str:
    d0 = layer.directions[0]
    args = [str(input_size), str(layer.hidden_size)]
    if num_layers != 1:
        args.append(f"num_layers={num_layers}")
    if d0.kind == "RNN" and d0.act_cand.name == "relu":
        args.append("nonlinearity='relu'")
    if layer.bidirectional:
        args.append("bidirectional=True")
    if getattr(d0, "W_p", None) is not None:
        args.append(f"proj_size={d0.output_size}")
    return f"torch.nn.{d0.kind}({', '.join(args)})"


def constructor(model: LSTMModel) -> str:
    """The module whose ``load_state_dict`` takes the written file: ``torch.nn.LSTM(...)``
    (GRU, RNN) or ``Stack()``, the class ``STACK_CODE`` defines."""
    if single_module(model):
        return _module(model.layers[0], model.input_size, len(model.layers))
    return "Stack()"


def stack_code(model: LSTMModel) -> str:
    """The ``nn.Module`` holding one module per layer in ``self.layers`` (keys ``layers.k.``),
    each layer feeding the next its output sequence (batch_first=False: x ``[T, N, D]``)."""
    mods = "".join(
        f"            {_module(layer, layer.directions[0].input_size, 1)},\n"
        for layer in model.layers
    )
    return (
        "class Stack(torch.nn.Module):\n"
        '    """The exported stack: one torch module per layer, run in order."""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.layers = torch.nn.ModuleList([\n{mods}        ])\n\n"
        "    def forward(self, x):\n"
        "        for layer in self.layers:\n"
        "            x, _ = layer(x)\n"
        "        return x\n\n\n"
    )


def export_pytorch(model: LSTMModel, path: Path, fmt: str | None = None) -> ExportResult:
    """``fmt``: ``pt`` or ``safetensors``; default from the extension (``.safetensors``)."""
    fmt = fmt or ("safetensors" if path.suffix.lower() == ".safetensors" else "pt")
    if fmt not in ("pt", "safetensors"):
        raise ExportError(f"pytorch export: format {fmt!r} unknown; use format=pt or safetensors")
    tensors = state_dict(model)
    # GRUs keep both biases (the reset gate scales b_hn); LSTMs and RNNs keep the sum
    summed = any(layer.directions[0].kind != "GRU" for layer in model.layers)
    notes = [BIAS_NOTE] if summed else []
    if model.head:
        notes.append(
            f"the model's head ({', '.join(t.kind for t in model.head)}) is not part of the "
            "recurrent modules "
            "and was not written"
        )
    build = constructor(model)
    prelude = "" if single_module(model) else "\n" + stack_code(model)
    code = f"import torch\n{prelude}lstm = {build}\n" + (
        f"lstm.load_state_dict(torch.load({str(path)!r}, weights_only=True))\n"
        if fmt == "pt"
        else "from safetensors.torch import load_file\n"
        f"lstm.load_state_dict(load_file({str(path)!r}))\n"
    )
    if fmt == "pt":
        write_pt(path, tensors)
    else:
        note = notes[0] if summed else "bias_ih/bias_hh as the GRUs store them"
        meta = {"format": "pt", "producer": "lstmviz", "module": build, "note": note}
        write_safetensors(path, tensors, meta)
    n = sum(int(a.size) for a in tensors.values())
    summary = f"wrote {path} ({len(tensors)} tensors, {n} values) for {build}"
    return ExportResult(TARGET, (path,), summary, tuple(notes), code)
