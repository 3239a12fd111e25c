"""Plain-text explanations of a model: shapes, parameter counts, conventions, assumptions.

Used by ``lstmviz --info`` (which must not import Qt) and by the GUI's "shapes explained" panel.
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import LayerInfo, LSTMDirection, LSTMLayer, LSTMModel, RecurrentDirection


def shapes_of(info: LayerInfo) -> list[tuple[int, ...]]:
    return [tuple(int(n) for n in shape) for _, shape in info.weights]


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _stored_lines(w: RecurrentDirection) -> list[str]:
    lines = []
    for t in w.provenance.stored:
        if t.offset:  # a row range of an array already listed (TF1: W_h rows of the kernel)
            lines.append(f"  {t.name}: rows {t.offset}: of it hold {t.role}")
            continue
        size = int(np.prod(t.shape))
        lines.append(f"  {t.name}: {_shape(t.shape)} = {size:,} stored values ({t.role})")
    return lines


def _cell_param_explanation(w: RecurrentDirection) -> list[str]:
    """``param_explanation`` for a cell other than the LSTM, from its number of gate blocks
    G (GRU 3, plain RNN 1) and its biases (the GRU keeps ``b_x`` and ``b_h`` apart)."""
    D, H, G = w.input_size, w.hidden_size, w.cell.n_gates
    k = f"{G}·" if G > 1 else ""
    biases = [n for n in ("b_x", "b_h", "b") if isinstance(getattr(w, n, None), np.ndarray)]
    biases = [n for n in biases if n in w.array_fields]
    nb = len(biases)
    lines = [f"D = {D} inputs, H = {H} units, {w.cell.name}: {G} gate block(s) "
             f"{', '.join(w.cell.gate_names)}", *_stored_lines(w)]  # fmt: skip
    lines.append(
        f"  W_x {_shape(w.W_x.shape)} = {k}D·H = {w.W_x.size:,}; "
        f"W_h {_shape(w.W_h.shape)} = {k}H·H = {w.W_h.size:,}; "
        + "; ".join(f"{n} ({G * H},)" for n in biases)
        + f" = {nb}·{k}H = {nb * G * H:,}"
    )
    total = f"{k}(D·H + H·H + {nb if nb > 1 else ''}H)" if G > 1 else "D·H + H·H + H"
    lines.append(f"  canonical total {total} = {w.n_params:,}")
    if w.n_stored_params != w.n_params:
        lines.append(
            f"  stored total {w.n_stored_params:,} (the file keeps some arrays the canonical "
            "form sums, e.g. two bias vectors)"
        )
    return lines


def param_explanation(w: RecurrentDirection) -> list[str]:
    """Lines explaining where this direction's parameter count comes from.

    Answers the classic questions: why is a Keras kernel ``[D, 4H]`` (four gates side by side),
    why a TF1 kernel is ``[D + H, 4H]`` (x and h rows stacked), why PyTorch counts 2 biases.
    """
    if not isinstance(w, LSTMDirection):
        return _cell_param_explanation(w)
    D, H, P = w.input_size, w.hidden_size, w.output_size
    lines = [
        f"D = {D} inputs, H = {H} units"
        + (f", P = {P} projected outputs" if w.W_p is not None else "")
    ]
    stored = w.provenance.stored
    for t in stored:
        if t.offset:  # a row range of an array already listed (TF1: W_h rows of the kernel)
            lines.append(f"  {t.name}: rows {t.offset}: of it hold {t.role}")
            continue
        size = int(np.prod(t.shape))
        lines.append(f"  {t.name}: {_shape(t.shape)} = {size:,} stored values ({t.role})")
    lines.append(
        f"  W_x {_shape(w.W_x.shape)} = 4·D·H = 4·{D}·{H} = {w.W_x.size:,}; "
        f"W_h {_shape(w.W_h.shape)} = 4·H·{'P' if w.W_p is not None else 'H'} = {w.W_h.size:,}; "
        f"b ({4 * H},) = 4·H = {w.b.size:,}"
    )
    extra = []
    if w.has_peepholes:
        n = sum(p.size for p in (w.p_i, w.p_f, w.p_o) if p is not None)
        extra.append(f"{n:,} for the peepholes")
    if w.W_p is not None:
        extra.append(f"{w.W_p.size:,} for the projection W_p {_shape(w.W_p.shape)}")
    formula = f"4·(D·H + H·{'P' if w.W_p is not None else 'H'} + H)"
    lines.append(
        f"  canonical total {formula}{' + ' + ' + '.join(extra) if extra else ''} = {w.n_params:,}"
    )
    if w.n_stored_params != w.n_params:
        lines.append(
            f"  stored total {w.n_stored_params:,} (the file keeps some arrays the canonical "
            "form sums, e.g. two bias vectors)"
        )
    return lines


def activations_text(w: RecurrentDirection) -> str:
    """``gates sigmoid, candidate tanh, cell output tanh`` (LSTM), the GRU's two and where its
    reset acts, or the plain RNN's one activation."""
    if isinstance(w, LSTMDirection):
        return f"gates {w.act_gate}, candidate {w.act_cand}, cell output {w.act_cell}"
    cell = w.cell
    if cell.name == "RNN":
        return f"{w.activation_for('candidate')}"
    text = f"gates {w.activation_for('gate')}, candidate {w.activation_for('candidate')}"
    if cell.variant == "reset after":
        return text + "; reset after W_h (r ⊙ (W_h·h + b_h))"
    if cell.variant:
        return text + "; reset before W_h (W_h·(r ⊙ h))"
    return text


def layer_summary(k: int, layer: LSTMLayer) -> list[str]:
    """Lines for one layer: sizes, directions, provenance, settings."""
    before = [f"Before layer {k}: {t.name!r} ({t.kind}): y = {t.describe()}" for t in layer.before]
    kind = (
        f"{layer.kind}, bidirectional ({layer.merge_mode.value})"
        if layer.bidirectional
        else layer.kind
    )
    lines = [
        *before,
        f"Layer {k} {layer.name!r}: {kind}; input {layer.input_size} → output {layer.output_size}"
        f"; {layer.n_params:,} parameters",
    ]
    if layer.reversed_output:
        lines.append(" output: the merged sequence is returned in reversed time order")
    for d, w in enumerate(layer.directions):
        lines.append(f" {layer.direction_label(d)}: {w.provenance.describe()}")
        lines.append(f"  activations: {activations_text(w)}")
        clips = [
            f"{n}={getattr(w, n)}"
            for n in ("cell_clip", "gate_clip", "proj_clip")
            if getattr(w, n, None)
        ]
        if clips:
            lines.append(f"  clips: {', '.join(clips)}")
        lines.extend(param_explanation(w))
        for tr in w.provenance.transforms:
            lines.append(f"  applied: {tr}")
        for s in w.provenance.settings:
            src = "assumed default" if s.assumed else "read from file"
            lines.append(
                f"  setting {s.name} = {s.value} ({src}){' — ' + s.note if s.note else ''}"
            )
        for note in w.provenance.notes:
            lines.append(f"  note: {note}")
    return lines


def _article(word: str) -> str:
    """The article as the word is spoken: an LSTM, an RNN, a GRU, a recurrent layer."""
    return "an" if word[0] in "AEFHILMNORSX" else "a"


def model_summary(model: LSTMModel) -> str:
    """The whole model as text, as printed by ``lstmviz --info``."""
    kinds = [layer.cell.name for layer in model.layers]
    # Layers are named by their cell ("the last GRU"), "recurrent layer" when kinds mix: an
    # all-LSTM model reads as it always has.
    first, last = (kinds[0], kinds[-1]) if kinds else ("LSTM", "LSTM")
    word = kinds[0] if len(set(kinds)) == 1 else "recurrent layer"
    sizes = f"input size {model.input_size}; output size {model.output_size}"
    if model.head:  # the last recurrent layer's width is not what the network returns
        sizes = (
            f"input size {model.input_size}; last {last} output size {model.output_size}; "
            f"network output size {model.head_output_size} (after the head)"
        )
    count = f"LSTM layers: {len(kinds)}"
    if set(kinds) != {"LSTM"}:  # GRU, plain RNN or a mix: name each layer's cell
        count = f"recurrent layers: {len(kinds)} ({', '.join(kinds)})"
    lines = [
        f"File: {model.source_path}",
        f"Format: {model.source_format}" + (f" — {model.framework}" if model.framework else ""),
        f"{count}; {sizes}; {model.n_params:,} canonical parameters",
    ]
    lines.extend(f"Note: {note}" for note in model.notes)  # first: they change what is run
    head = {d.name for d in model.head}
    emb = None if model.embedding is None else tuple(model.embedding.shape)
    between = {t.name for layer in model.layers for t in layer.before}
    if model.all_layers:
        lines.append("All layers in the file:")
        for info in model.all_layers:
            shapes = ", ".join(f"{n} {_shape(s)}" for n, s in info.weights) or "no weights"
            if info.is_lstm:
                mark = ""
            elif emb is not None and info.kind == "Embedding" and shapes_of(info) == [emb]:
                mark = f"  [embedding: looks up token ids for the first {first}]"
            elif info.name in head:
                mark = f"  [head: run after the last {last}]"
            elif info.name in between:
                mark = f"  [run between {word}s]"
            else:
                mark = f"  [not {_article(word)} {word}: shown, not run]"
            note = f" — {info.note}" if info.note else ""
            lines.append(
                f"  {info.name} ({info.kind}): {shapes}; {info.n_params:,} params{mark}{note}"
            )
    for k, layer in enumerate(model.layers):
        lines.extend(layer_summary(k, layer))
    width = model.output_size
    for d in model.head:
        out = d.output_size(width)
        lines.append(f"Head {d.name!r} ({d.kind}): y = {d.describe()}; {width} → {out}")
        width = out
    return "\n".join(lines)
