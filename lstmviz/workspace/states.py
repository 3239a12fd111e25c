"""Initial states h0/c0 typed by the user, turned into ``run``'s per-layer arguments."""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import LSTMModel

#: ``{(layer, direction): (h0, c0)}`` for the states the user typed.
StateMap = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


def has_stored_states(model: LSTMModel) -> bool:
    """True when some direction carries initial states read from the file."""
    return any(
        w.h0 is not None or w.c0 is not None for layer in model.layers for w in layer.directions
    )


def initial_states(model: LSTMModel | None, states: StateMap) -> tuple[list | None, list | None]:
    """``run``'s ``h0, c0`` (per layer, ``(dirs, size)``) from the typed states; elsewhere the
    file's states (``LSTMDirection.h0/c0``) or zeros; ``(None, None)`` when nothing was typed
    (``run`` then starts from the file's states itself)."""
    if not states or model is None:
        return None, None
    h0, c0 = [], []
    for k, layer in enumerate(model.layers):
        defaults = [
            (
                np.zeros(w.output_size) if w.h0 is None else w.h0,
                np.zeros(w.hidden_size) if w.c0 is None else w.c0,
            )
            for w in layer.directions
        ]
        pairs = [states.get((k, d), defaults[d]) for d in range(len(layer.directions))]
        h0.append(np.stack([h for h, _ in pairs]))
        c0.append(np.stack([c for _, c in pairs]))
    return h0, c0


def run_cost(model: LSTMModel, n_steps: int) -> float:
    """Rough flops of ``run(model, x (n_steps, D))``: the runner's inline-or-thread choice."""
    per_step = sum(
        8.0 * w.hidden_size * (w.input_size + w.W_h.shape[1])
        for layer in model.layers
        for w in layer.directions
    )
    return per_step * n_steps
