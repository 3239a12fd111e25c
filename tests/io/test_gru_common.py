"""Shared checks for the GRU/RNN reader tests (``test_gru_*.py``, ``test_rnn_*.py``).

``check``/``check_layers`` run a loaded model twice against the framework's outputs: with
``lstmviz.run`` (float32, the engine the GUI uses) and with ``reference``, a plain float64 loop
over the canonical equations of CONVENTIONS.md §1 and §7 written here independently of
``lstmviz.core.compute``. A reader's canonical arrays (gate order, transposes, biases kept
apart or summed, reset before/after, activations) are thereby checked on their own, and a
mismatch says whether the reader or the engine is off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lstmviz
from lstmviz.core.dense import apply_all
from lstmviz.core.model import LSTMModel, MergeMode, OutputOrder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gru"
TOL = 1e-5


def _direction(d: object, x: np.ndarray) -> np.ndarray:
    """``h`` of every step of one direction, in time order."""
    kind = d.cell.name  # type: ignore[attr-defined]
    W_x = np.asarray(d.W_x, np.float64)  # type: ignore[attr-defined]
    W_h = np.asarray(d.W_h, np.float64)  # type: ignore[attr-defined]
    H = d.hidden_size  # type: ignore[attr-defined]
    steps = range(len(x) - 1, -1, -1) if d.reverse else range(len(x))  # type: ignore[attr-defined]
    h = np.zeros(W_h.shape[1]) if d.h0 is None else np.asarray(d.h0, np.float64)  # type: ignore[attr-defined]
    c = np.zeros(H)
    out = np.zeros((len(x), W_h.shape[1]))
    clip = getattr(d, "gate_clip", None)
    bound = (lambda a: np.clip(a, -clip, clip)) if clip else (lambda a: a)  # ONNX clip
    for t in steps:
        if kind == "GRU":
            b_x, b_h = np.asarray(d.b_x, np.float64), np.asarray(d.b_h, np.float64)  # type: ignore[attr-defined]
            gx, gh = W_x @ x[t] + b_x, W_h @ h + b_h
            r = d.act_gate(bound(gx[:H] + gh[:H]))  # type: ignore[attr-defined]
            z = d.act_gate(bound(gx[H : 2 * H] + gh[H : 2 * H]))  # type: ignore[attr-defined]
            if d.reset_after:  # type: ignore[attr-defined]
                n = d.act_cand(bound(gx[2 * H :] + r * gh[2 * H :]))  # type: ignore[attr-defined]
            else:
                cand = gx[2 * H :] + W_h[2 * H :] @ (r * h) + b_h[2 * H :]
                n = d.act_cand(bound(cand))  # type: ignore[attr-defined]
            h = (1 - z) * n + z * h
        elif kind == "RNN":
            pre = W_x @ x[t] + W_h @ h + np.asarray(d.b, np.float64)  # type: ignore[attr-defined]
            h = d.act_cand(bound(pre))  # type: ignore[attr-defined]
        else:  # LSTM without peepholes or projection: enough for the mixed models here
            g = W_x @ x[t] + W_h @ h + np.asarray(d.b, np.float64)  # type: ignore[attr-defined]
            i, f = d.act_gate(g[:H]), d.act_gate(g[H : 2 * H])  # type: ignore[attr-defined]
            cand, o = d.act_cand(g[2 * H : 3 * H]), d.act_gate(g[3 * H :])  # type: ignore[attr-defined]
            c = f * c + i * cand
            h = o * d.act_cell(c)  # type: ignore[attr-defined]
        out[t] = h
    return out


def reference(model: LSTMModel, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(each layer's output sequence, each direction's last h in processing order)."""
    inp = np.asarray(x, np.float64)
    outputs, last = [], []
    for k, layer in enumerate(model.layers):
        if k:
            inp = apply_all(layer.before, inp)
        hs = [_direction(d, inp) for d in layer.directions]
        for d, h in zip(layer.directions, hs, strict=True):
            last.append(h[0] if d.reverse else h[-1])
        if len(hs) == 2:
            mode = layer.merge_mode
            if mode in (MergeMode.CONCAT, MergeMode.NONE):
                out = np.concatenate(hs, axis=-1)
            elif mode is MergeMode.SUM:
                out = hs[0] + hs[1]
            elif mode is MergeMode.MUL:
                out = hs[0] * hs[1]
            else:
                out = (hs[0] + hs[1]) / 2
        else:
            out = hs[0]
        if layer.directions[0].reverse and layer.output_order is OutputOrder.PROCESSING:
            out = out[::-1]
        outputs.append(out)
        inp = out
    return outputs, last


def check(model: LSTMModel, x: np.ndarray, output: np.ndarray, h_n: np.ndarray | None) -> None:
    """The last layer's output and every direction's final h equal the framework's, by the
    reference loop and by ``lstmviz.run``."""
    outs, last = reference(model, x)
    np.testing.assert_allclose(outs[-1], output, atol=TOL, rtol=0)
    if h_n is not None:
        np.testing.assert_allclose(np.stack(last), h_n, atol=TOL, rtol=0)
    trace = lstmviz.run(model, x)
    np.testing.assert_allclose(trace.layers[-1].output, output, atol=TOL, rtol=0)
    if h_n is not None:
        h_last = [d.h_last for layer in trace.layers for d in layer.directions]
        np.testing.assert_allclose(np.stack(h_last), h_n, atol=TOL, rtol=0)


def test_reference_is_the_lstm_engine_on_an_lstm() -> None:
    """The reference loop agrees with ``lstmviz.run`` where both are known to work (an LSTM
    fixture of torch), so a mismatch on a GRU points at the reader, not at this loop."""
    path = FIXTURES.parent / "torch" / "plain.pt"
    model = lstmviz.load_model(path)
    exp = np.load(FIXTURES.parent / "torch" / "plain.expected.npz")
    outs, _ = reference(model, exp["x"])
    np.testing.assert_allclose(outs[-1], exp["output"], atol=TOL, rtol=0)
    np.testing.assert_allclose(lstmviz.run(model, exp["x"]).layers[-1].output, outs[-1], atol=TOL)


def check_layers(model: LSTMModel, x: np.ndarray, wants: list[np.ndarray]) -> None:
    """Layer k's output equals ``wants[k]``: a ``(T, out)`` sequence, or ``(out,)`` for a
    layer returning only its last step (Keras ``return_sequences=False``: the last step
    processed, i.e. the last row of the output as ``run`` orders it)."""
    assert len(model.layers) == len(wants)
    outs, _ = reference(model, x)
    traced = lstmviz.run(model, x).layers
    for k, want in enumerate(wants):
        assert np.abs(want).max() > 1e-3, f"layer {k}: the framework's output is all ~0"
        got = outs[k] if want.ndim == 2 else outs[k][-1]
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=f"layer {k}")
        run_out = traced[k].output if want.ndim == 2 else traced[k].output[-1]
        np.testing.assert_allclose(run_out, want, atol=TOL, rtol=0, err_msg=f"run {k}")
