"""Initial states typed by the user, turned into ``run``'s per-layer arguments.

A direction has the states its cell description names (``cell.state_names``: h and c for an
LSTM, h alone for a GRU or a plain RNN); a typed map keeps ``(h0, c0)`` per direction with
``c0`` None where the cell carries no second state.
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import LSTMModel

#: ``{(layer, direction): (h0, c0)}`` for the states the user typed (c0 None without c).
StateMap = dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]]


def state_size(w: object, name: str) -> int:
    """Width of state ``name`` of direction ``w``: h is its output (P with a projection),
    any other state one value per unit."""
    return int(w.output_size if name == "h" else w.hidden_size)


def stored_state(w: object, name: str) -> np.ndarray | None:
    """The initial value of state ``name`` the file stores (``h0``, ``c0``), or None."""
    return getattr(w, f"{name}0", None)


def default_state(w: object, name: str) -> np.ndarray | None:
    """What a direction starts ``name`` from when nothing is typed: the file's, else zeros;
    None for a state its cell does not carry."""
    if name not in w.cell.state_names:
        return None
    stored = stored_state(w, name)
    return np.zeros(state_size(w, name)) if stored is None else stored


def has_stored_states(model: LSTMModel) -> bool:
    """True when some direction carries initial states read from the file."""
    return any(
        stored_state(w, s) is not None
        for layer in model.layers
        for w in layer.directions
        for s in w.cell.state_names
    )


def initial_states(model: LSTMModel | None, states: StateMap) -> tuple[list | None, list | None]:
    """``run``'s ``h0, c0`` (per layer, ``(dirs, size)``) from the typed states; elsewhere the
    file's states (``LSTMDirection.h0/c0``) or zeros; ``(None, None)`` when nothing was typed
    (``run`` then starts from the file's states itself)."""
    if not states or model is None:
        return None, None
    h0, c0 = [], []
    for k, layer in enumerate(model.layers):
        defaults = [(default_state(w, "h"), default_state(w, "c")) for w in layer.directions]
        pairs = [states.get((k, d), defaults[d]) for d in range(len(layer.directions))]
        h0.append(np.stack([h for h, _ in pairs]))
        cs = [c for _, c in pairs]
        c0.append(None if any(c is None for c in cs) else np.stack(cs))  # run reads no c0 there
    return h0, c0


def run_cost(model: LSTMModel, n_steps: int) -> float:
    """Rough flops of ``run(model, x (n_steps, D))``: the runner's inline-or-thread choice."""
    per_step = sum(
        2.0 * w.cell.n_gates * w.hidden_size * (w.input_size + w.W_h.shape[1])
        for layer in model.layers
        for w in layer.directions
    )
    return per_step * n_steps
