"""The ``numpy`` target: a standalone script, NumPy only, whose ``forward(x)`` is the model.

The script a user porting weights by hand is trying to write: one ``lstm_direction`` loop with
the gate slices named and every activation spelled out as the formula lstmviz uses, the layers
called in order with their merge, go_backwards reversal and per-step layers in between, and the
weights embedded as literals (exact: ``repr`` of each value) or, above ``EMBED_LIMIT`` values,
in a sibling ``.npz`` of the same name. ``forward(x)`` reproduces
``lstmviz.run(model, x).layers[-1].output`` (float64 arithmetic; 1e-6 against ``run``), and
``forward_with_head(x)`` the dense head's output when the model has one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmviz import __version__
from lstmviz.core.activations import Activation
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, MergeMode, OutputOrder
from lstmviz.port import checks
from lstmviz.port.checks import ExportError, Feature
from lstmviz.port.numpy_template import (
    ACTIVATIONS,
    EQUATIONS,
    GRU_DIRECTION,
    HEADER,
    LSTM_DIRECTION,
    NEEDS,
    RNN_DIRECTION,
)
from lstmviz.port.result import ExportResult

TARGET = "numpy"
EMBED_LIMIT = 50_000  # values; above it the weights go to a sibling .npz


class _Script:
    """Collects weights and the activation functions the code refers to."""

    def __init__(self) -> None:
        self.weights: dict[str, np.ndarray] = {}
        self.funcs: dict[Activation, str] = {}
        self.helpers: set[str] = set()

    def weight(self, key: str, value: np.ndarray | None) -> str:
        if value is None:
            return "None"
        arr = np.asarray(value)  # float32 stays float32 in the sidecar: half the bytes
        self.weights[key] = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
        return f"WEIGHTS[{key!r}]"

    def act(self, act: Activation) -> str:
        if act not in self.funcs:
            if act.name not in ACTIVATIONS:
                raise checks.refusal(
                    TARGET, Feature("activation", "the model", f"activation {act}"), "no target"
                )
            taken = sum(1 for a in self.funcs if a.name == act.name)
            self.funcs[act] = act.name if taken == 0 else f"{act.name}_{taken}"
            self.helpers.update(NEEDS.get(act.name, ()))
        return self.funcs[act]

    def functions(self) -> str:
        out = []
        for helper in sorted(self.helpers):
            if not any(a.name == helper for a in self.funcs):
                out.append(_define(helper, Activation(helper)))
        for act, name in self.funcs.items():
            out.append(_define(name, act))
        return "\n\n".join(out)


def _define(name: str, act: Activation) -> str:
    doc, body = ACTIVATIONS[act.name]
    a, b = repr(float(act.alpha or 0.0)), repr(float(act.beta or 0.0))
    body = body.replace("{a}", a).replace("{b}", b)
    doc = doc.replace("{a}", a).replace("{b}", b)
    return f'def {name}(z):\n    """{doc}"""\n{body}\n'


def _call(name: str, args: list[str]) -> str:
    return f"{name}(\n        y,\n" + "".join(f"        {a},\n" for a in args) + "    )"


def _gru_rnn_call(s: _Script, key: str, w: object, k: int, d: int) -> str:
    """``gru_direction(...)`` (``b_x``/``b_h`` apart, ``reset_after``) or ``rnn_direction``."""
    args = [f"W_x={s.weight(key + '/W_x', w.W_x)}", f"W_h={s.weight(key + '/W_h', w.W_h)}"]
    if w.kind == "GRU":
        args += [f"b_x={s.weight(key + '/b_x', w.b_x)}", f"b_h={s.weight(key + '/b_h', w.b_h)}"]
        args.append(f"reset_after={w.reset_after}")
    else:
        args.append(f"b={s.weight(key + '/b', w.b)}")
    args.append(f"h0=initial(h0, {k}, {d}, {s.weight(f'{key}/h0', w.h0)})")
    if w.gate_clip is not None:
        args.append(f"gate_clip={float(w.gate_clip)!r}")
    args.append(f"reverse={w.reverse}")
    if w.kind == "GRU":
        args += [f"act_gate={s.act(w.act_gate)}", f"act_cand={s.act(w.act_cand)}"]
        return _call("gru_direction", args)
    return _call("rnn_direction", [*args, f"act={s.act(w.act_cand)}"])


def _direction_call(s: _Script, key: str, w: LSTMDirection, k: int, d: int) -> str:
    if w.kind != "LSTM":
        return _gru_rnn_call(s, key, w, k, d)
    args = [
        f"W_x={s.weight(key + '/W_x', w.W_x)}",
        f"W_h={s.weight(key + '/W_h', w.W_h)}",
        f"b={s.weight(key + '/b', w.b)}",
    ]
    for name in ("p_i", "p_f", "p_o", "W_p"):
        value = getattr(w, name)
        if value is not None:
            args.append(f"{name}={s.weight(f'{key}/{name}', value)}")
    for name in ("h0", "c0"):  # the caller's, else the file's (else zeros)
        stored = s.weight(f"{key}/{name}", getattr(w, name))
        args.append(f"{name}=initial({name}, {k}, {d}, {stored})")
    for name in ("cell_clip", "gate_clip", "proj_clip"):
        value = getattr(w, name)
        if value is not None:
            args.append(f"{name}={float(value)!r}")
    args.append(f"reverse={w.reverse}")
    args += [
        f"act_gate={s.act(w.act_gate)}",
        f"act_cand={s.act(w.act_cand)}",
        f"act_cell={s.act(w.act_cell)}",
    ]
    return "lstm_direction(\n        y,\n" + "".join(f"        {a},\n" for a in args) + "    )"


def _transform(s: _Script, key: str, t: object) -> list[str]:
    if isinstance(t, DenseLayer):
        line = f"y @ {s.weight(key + '/W', t.W)}.T"
        if t.b is not None:
            line += f" + {s.weight(key + '/b', t.b)}"
        return [f"y = {s.act(t.activation)}({line})  # {t.kind} {t.name!r}"]
    if isinstance(t, ActivationLayer):
        return [f"y = {s.act(t.activation)}(y)  # Activation {t.name!r}"]
    if isinstance(t, NormLayer):
        lines = [f"# {t.kind} {t.name!r}: normalise each step's {t.size} features"]
        if t.mean is None:
            lines.append("mu, var = y.mean(axis=-1, keepdims=True), y.var(axis=-1, keepdims=True)")
        else:
            lines.append(f"mu, var = {s.weight(key + '/mean', t.mean)}, "
                         f"{s.weight(key + '/var', t.var)}")  # fmt: skip
        lines.append(f"y = (y - mu) / np.sqrt(var + {float(t.epsilon)!r})")
        if t.scale is not None:
            lines.append(f"y = y * {s.weight(key + '/scale', t.scale)}")
        if t.offset is not None:
            lines.append(f"y = y + {s.weight(key + '/offset', t.offset)}")
        return lines
    raise ExportError(f"numpy export: cannot write a {type(t).__name__} layer")


_MERGE = {
    MergeMode.CONCAT: "np.concatenate([h_fw, h_bw], axis=-1)",
    MergeMode.NONE: "np.concatenate([h_fw, h_bw], axis=-1)  # merge_mode None: both, side by side",
    MergeMode.SUM: "h_fw + h_bw",
    MergeMode.MUL: "h_fw * h_bw",
    MergeMode.AVE: "(h_fw + h_bw) / 2",
}


def _describe(w: LSTMDirection) -> str:
    extra = [f"H={w.hidden_size}"]
    if w.kind == "GRU":
        mode = "reset after" if w.reset_after else "reset before"
        return f"H={w.hidden_size}, GRU {mode}, gates {w.act_gate}, candidate {w.act_cand}"
    if w.kind == "RNN":
        return f"H={w.hidden_size}, plain RNN, activation {w.act_cand}"
    if w.W_p is not None:
        extra.append(f"projected to {w.output_size}")
    if w.has_peepholes:
        extra.append("peepholes")
    extra.append(f"gates {w.act_gate}, candidate {w.act_cand}, cell {w.act_cell}")
    return ", ".join(extra)


def _layer(s: _Script, k: int, layer: LSTMLayer) -> list[str]:
    lines = []
    for n, t in enumerate(layer.before):
        lines += _transform(s, f"layer{k}/before{n}", t)
    names = ("h_fw", "h_bw") if layer.bidirectional else ("y",)
    lines.append(f"# layer {k} {layer.name!r}: {layer.kind}")
    for d, w in enumerate(layer.directions):
        side = "backward" if d else "forward"
        reads = "reads time backwards" if w.reverse else "reads time forwards"
        lines.append(f"# {side} direction ({reads}): {_describe(w)}")
        lines.append(f"{names[d]} = {_direction_call(s, f'layer{k}/{side}', w, k, d)}")
    if layer.bidirectional:
        lines.append(f"y = {_MERGE[layer.merge_mode]}")
    if layer.directions[0].reverse and layer.output_order is OutputOrder.PROCESSING:
        lines.append("y = y[::-1]  # Keras go_backwards: the sequence comes out in reading order")
    return lines


def _literal(a: np.ndarray) -> str:
    flat = [repr(float(v)) for v in a.ravel()]
    rows = [", ".join(flat[i : i + 6]) for i in range(0, len(flat), 6)]
    body = ",\n        ".join(rows)
    return f"np.array([\n        {body},\n    ]).reshape{tuple(a.shape)!r}"


def render(
    model: LSTMModel, sidecar: str, embed: bool | None = None
) -> tuple[str, dict[str, np.ndarray], bool]:
    """The script's text, its weights, and whether they are embedded in it (``embed``; None:
    when at most ``EMBED_LIMIT`` values) rather than in the ``sidecar`` npz."""
    for feature in checks.features(model):
        if feature.key == "cell":
            raise checks.refusal(TARGET, feature)
    s = _Script()
    body: list[str] = []
    for k, layer in enumerate(model.layers):
        body += _layer(s, k, layer)
    head: list[str] = []
    for n, t in enumerate(model.head):
        head += _transform(s, f"head{n}", t)
    D = model.input_size
    tail = ""
    if model.embedding is not None:
        table = s.weight("embedding", model.embedding)
        tail += (
            "\n\ndef embed(ids):\n"
            f'    """Token ids (T,) → the vectors (T, {D}) forward() takes: rows of the '
            'Embedding table."""\n'
            f"    return {table}[np.asarray(ids, dtype=np.int64)]\n"
        )
    if head:
        hind = "\n    ".join(head)
        tail += (
            "\n\ndef forward_with_head(x, h0=None, c0=None):\n"
            f'    """x (T, {D}) → the network\'s output after its head (T, '
            f'{model.head_output_size})."""\n'
            f"    y = forward(x, h0, c0)\n    {hind}\n    return y\n"
        )
    inline = embed if embed is not None else sum(a.size for a in s.weights.values()) <= EMBED_LIMIT
    if inline:
        items = "".join(f"    {k!r}: {_literal(v)},\n" for k, v in s.weights.items())
        weights = f"WEIGHTS = {{\n{items}}}\n"
    else:
        weights = (
            f"# The weights are in {sidecar}, beside this script (np.savez), used in float64.\n"
            "_stored = np.load(__file__.rsplit('.', 1)[0] + '.npz')\n"
            "WEIGHTS = {k: _stored[k].astype(np.float64) for k in _stored.files}\n"
        )
    indent = "\n    ".join(body)
    kinds = list(dict.fromkeys(layer.directions[0].kind for layer in model.layers))
    text = HEADER.format(
        kinds=", ".join(kinds),
        equations="".join(EQUATIONS[kind] for kind in kinds),
        version=__version__,
        source=model.source_path or "a model",
        D=D,
        out=model.output_size,
        n_layers=len(model.layers),
    )
    loops = [LSTM_DIRECTION]  # it also defines initial(), which every direction uses
    loops += [GRU_DIRECTION] * ("GRU" in kinds) + [RNN_DIRECTION] * ("RNN" in kinds)
    text += "\n\n" + s.functions() + "\n\n" + "\n\n\n".join(loops) + "\n\n\n" + weights
    text += "\n\n"
    text += (
        "def forward(x, h0=None, c0=None):\n"
        f'    """x (T, {D}) → the last recurrent layer\'s output (T, {model.output_size}).\n\n'
        "    h0, c0: None (the stored initial states, else zeros) or, per layer, an array (n,)\n"
        "    (c0: LSTM layers only; pass a list with None for the others)\n"
        '    or (n_directions, n), as lstmviz.run takes them."""\n'
        "    y = np.asarray(x, dtype=np.float64)\n"
        f"    {indent}\n    return y\n"
    )
    text += tail
    text += (
        "\n\nif __name__ == '__main__':\n"
        f"    x = np.random.default_rng(0).standard_normal((5, {D}))\n"
        "    print(forward(x))\n"
    )
    return text, s.weights, inline


def export_numpy(model: LSTMModel, path: Path, embed: object = None) -> ExportResult:
    """``embed``: true/false, or None/"auto" for "embed up to ``EMBED_LIMIT`` values"."""
    if path.suffix != ".py":
        raise ExportError(f"numpy export: {path.name} must end in .py (it is a Python script)")
    choice = None if embed is None or str(embed).lower() == "auto" else (
        str(embed).lower() in ("1", "true", "yes")
    )  # fmt: skip
    sidecar = path.with_suffix(".npz")
    text, weights, inline = render(model, sidecar.name, choice)
    path.write_text(text, encoding="utf-8")
    paths: tuple[Path, ...] = (path,)
    if not inline:
        np.savez(sidecar, **weights)  # type: ignore[arg-type]
        paths += (sidecar,)
    where = "embedded" if inline else f"in {sidecar.name}"
    kinds = "/".join(dict.fromkeys(layer.directions[0].kind for layer in model.layers))
    summary = f"wrote {path} (forward(x) of {len(model.layers)} {kinds} layers, weights {where})"
    code = f"import runpy\nforward = runpy.run_path({str(path)!r})['forward']\n"
    return ExportResult(TARGET, paths, summary, (), code)
