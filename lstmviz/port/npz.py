"""The ``npz`` target: the weights as named arrays in a layout lstmviz (and a framework) reads.

Layouts (option ``layout``), each read back by lstmviz's own ``.npz`` reader by its names:

- ``canonical`` (models one ``nn.LSTM`` could be): the canonical arrays as they are —
  ``W_x``, ``W_h``, the one summed ``b`` and ``W_p`` — under nn.LSTM's names
  (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``weight_hr_l{k}``, ``_reverse``),
  which are already i, f, g, o and ``[4H, in]``; no second bias.
- ``pytorch``: exactly the ``pytorch`` target's state_dict (``bias_hh`` zeros).
- ``keras``: ``layer{k}[/forward|/backward]/kernel [D, 4H]``, ``recurrent_kernel``, ``bias``.

GRU and plain RNN layers: ``canonical`` and ``pytorch`` are the ``pytorch`` target's names
(``nn.GRU``'s ``bias_ih``/``bias_hh`` kept apart, reset-after GRUs only; a stack mixing kinds
under ``layers.{k}.``), ``keras`` is Keras' GRU (z, r, h; bias ``[2, 3H]`` or ``[3H]``) and
SimpleRNN layout; ``tf1`` holds LSTMs only. A relu RNN is refused (bare arrays read as tanh).
- ``tf1``: ``layer{k}[/fw|/bw]/lstm_cell/kernel [D+H, 4H]`` (i, j, f, o), ``bias`` with the
  forget bias TF1 adds at run time (1.0) taken out, peepholes ``w_i_diag``/``w_f_diag``/
  ``w_o_diag`` and ``projection/kernel [H, P]``: the layout that holds peepholes.

Bare arrays carry no hyperparameters, so anything the reader would have to assume differently
(activations, clips, merge modes, reversed outputs, initial states) is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz.core.cells import GRU_CELL
from lstmviz.core.model import LSTMDirection, LSTMModel
from lstmviz.port import checks, pytorch
from lstmviz.port.checks import ExportError
from lstmviz.port.result import ExportResult

TARGET = "npz"
LAYOUTS = ("canonical", "pytorch", "keras", "tf1")
TF1_FORGET_BIAS = 1.0
TF1_BLOCKS = (0, 2, 1, 3)  # TF1 block k (i, j, f, o) = canonical block TF1_BLOCKS[k]
_ALWAYS = {"cell_clip", "proj_clip", "gate_clip", "merge_mode", "reversed_output",
           "reverse_only", "initial_state", "between"}  # fmt: skip


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _canonical(model: LSTMModel) -> dict[str, np.ndarray]:
    out = {}
    for k, layer in enumerate(model.layers):
        for d, w in enumerate(layer.directions):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            out[f"weight_ih{sfx}"] = _f32(w.W_x)
            out[f"weight_hh{sfx}"] = _f32(w.W_h)
            out[f"bias_ih{sfx}"] = _f32(w.b)
            if w.W_p is not None:
                out[f"weight_hr{sfx}"] = _f32(w.W_p)
    return out


def _prefix(k: int, d: int, bidirectional: bool, sides: tuple[str, str]) -> str:
    return f"layer{k}/{sides[d]}" if bidirectional else f"layer{k}"


def keras_gru_vars(w: object) -> list[np.ndarray]:
    """A GRU direction as Keras stores it: kernel ``[D, 3H]``, recurrent_kernel ``[H, 3H]``
    in z, r, h order, bias ``[2, 3H]`` (input row, recurrent row) with ``reset_after``, else
    ``[3H]`` (the two summed: with the reset before ``W_h``, ``b_hn`` adds like ``b_xn``)."""
    perm = GRU_CELL.perm("keras")

    def rows(a: np.ndarray) -> np.ndarray:
        H = a.shape[0] // 3
        return np.concatenate([a[perm.index(j) * H : (perm.index(j) + 1) * H] for j in range(3)])

    b_x, b_h = rows(np.asarray(w.b_x, np.float64)), rows(np.asarray(w.b_h, np.float64))
    bias = np.stack([b_x, b_h]) if w.reset_after else b_x + b_h
    return [_f32(rows(np.asarray(w.W_x)).T), _f32(rows(np.asarray(w.W_h)).T), _f32(bias)]


def keras_vars(w: object) -> list[np.ndarray]:
    """kernel, recurrent_kernel, bias of one direction (LSTM i, f, c, o; GRU z, r, h; RNN)."""
    if w.kind == "GRU":
        return keras_gru_vars(w)
    return [_f32(w.W_x.T), _f32(w.W_h.T), _f32(w.b)]


def _keras(model: LSTMModel) -> dict[str, np.ndarray]:
    out = {}
    for k, layer in enumerate(model.layers):
        for d, w in enumerate(layer.directions):
            p = _prefix(k, d, layer.bidirectional, ("forward", "backward"))
            kernel, recurrent, bias = keras_vars(w)
            out[f"{p}/kernel"] = kernel
            out[f"{p}/recurrent_kernel"] = recurrent
            out[f"{p}/bias"] = bias
    return out


def _tf1_blocks(a: np.ndarray) -> np.ndarray:
    H = a.shape[0] // 4
    return np.concatenate([a[k * H : (k + 1) * H] for k in TF1_BLOCKS])


def _tf1_cell(w: LSTMDirection, p: str) -> dict[str, np.ndarray]:
    H = w.hidden_size
    kernel = np.concatenate([_tf1_blocks(w.W_x).T, _tf1_blocks(w.W_h).T])
    bias = np.array(w.b, dtype=np.float64)
    bias[H : 2 * H] -= TF1_FORGET_BIAS  # TF1 adds it back at run time (and lstmviz on reading)
    out = {f"{p}/lstm_cell/kernel": _f32(kernel), f"{p}/lstm_cell/bias": _f32(_tf1_blocks(bias))}
    for name, diag in (("w_i_diag", w.p_i), ("w_f_diag", w.p_f), ("w_o_diag", w.p_o)):
        if w.has_peepholes:
            out[f"{p}/lstm_cell/{name}"] = _f32(np.zeros(H) if diag is None else diag)
    if w.W_p is not None:
        out[f"{p}/lstm_cell/projection/kernel"] = _f32(w.W_p.T)
    return out


def _tf1(model: LSTMModel) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, layer in enumerate(model.layers):
        for d, w in enumerate(layer.directions):
            out.update(_tf1_cell(w, _prefix(k, d, layer.bidirectional, ("fw", "bw"))))
    return out


def arrays(model: LSTMModel, layout: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The named arrays of ``layout`` and notes; ExportError for what the layout cannot hold."""
    if layout not in LAYOUTS:
        raise ExportError(f"npz export: unknown layout {layout!r}; choose {', '.join(LAYOUTS)}")
    target = f"npz (layout={layout})"
    notes = []
    for k, layer in enumerate(model.layers):
        kind = layer.directions[0].kind
        if layout == "tf1" and kind != "LSTM":
            cell = checks.Feature("cell", checks.where(k, layer), f"a {kind} cell")
            raise checks.refusal(target, cell, "npz (layout canonical, pytorch or keras)")
        torch_names = layout in ("canonical", "pytorch")
        if torch_names and kind == "GRU" and not layer.directions[0].reset_after:
            raise checks.refusal(target, checks.Feature("reset_before", checks.where(k, layer),
                                 "a GRU with the reset gate before W_h (torch names mean reset "
                                 "after)"), "npz (layout=keras), onnx, keras or numpy")  # fmt: skip
    if layout == "pytorch":
        checks.require_sigmoid_tanh(target, model, rnn_relu=False)  # read back as tanh
        return pytorch.state_dict(model), [pytorch.BIAS_NOTE]
    holds = {
        "peepholes": "onnx, npz (layout=tf1) or numpy",
        "projection": "pytorch, npz (layout canonical, pytorch or tf1) or numpy",
    }
    refused = set(_ALWAYS) | {"peepholes"} if layout != "tf1" else set(_ALWAYS)
    if layout == "keras":
        refused.add("projection")
    for feature in checks.features(model):
        if feature.key in refused or feature.key == "cell":
            raise checks.refusal(target, feature, holds.get(feature.key))
    # bare arrays cannot say relu: the reader takes a plain RNN as tanh
    checks.require_sigmoid_tanh(target, model, rnn_relu=False)
    if layout == "canonical":
        pytorch.check(model, target)  # read back through the state_dict reader: nn.LSTM's rules
        if not pytorch.single_module(model):  # lstmviz reads torch names module by module
            raise ExportError(
                f"{target} export: the layers differ in cell kind or size, which one torch "
                "module's names cannot hold; use layout=keras (a whole stack lstmviz reads "
                "back) or layout=pytorch (one module per layer, layers.k.)"
            )
        if any(layer.directions[0].kind != "LSTM" for layer in model.layers):
            return pytorch.state_dict(model), notes  # nn.GRU's two biases are not summable
        return _canonical(model), notes
    if layout == "keras":
        return _keras(model), notes
    notes.append(f"tf1 layout: b_f is stored minus the forget bias {TF1_FORGET_BIAS} TF1 adds")
    return _tf1(model), notes


def export_npz(model: LSTMModel, path: Path, layout: str = "canonical") -> ExportResult:
    named, notes = arrays(model, layout)
    if path.suffix != ".npz":
        raise ExportError(f"npz export: {path.name} must end in .npz (np.savez appends it)")
    np.savez(path, **named)  # type: ignore[arg-type]
    summary = f"wrote {path} ({len(named)} arrays, layout {layout})"
    code = f"import numpy as np\nweights = dict(np.load({str(path)!r}))\n"
    return ExportResult(TARGET, (path,), summary, tuple(notes), code)
