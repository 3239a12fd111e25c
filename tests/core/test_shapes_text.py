"""The shapes text's parameter count agrees with the direction's ``n_params`` for every cell:
its canonical formula is derived from the direction's own arrays, not from the LSTM's
``G·(D·H + H·H + H)``; a file's layout that stores fewer values than lstmviz keeps says so."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from lstmviz.core import GRUDirection, LSTMDirection, Provenance, RNNDirection, StoredTensor
from lstmviz.core.shapes_text import canonical_count, shapes_explained

D, H, P = 3, 5, 4
rng = np.random.default_rng(0)


def _param_line(w) -> str:
    return next(line for line in shapes_explained(w) if line.startswith("Parameters"))


def _total(line: str) -> int:
    return int(re.search(r"= ([\d,]+)$", line).group(1).replace(",", ""))


def test_a_gru_counts_both_biases_as_the_direction_does() -> None:
    gru = torch.nn.GRU(D, H)
    p = {k: v.detach().numpy() for k, v in gru.named_parameters()}
    w = GRUDirection(p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    line = _param_line(w)
    assert line == ("Parameters (canonical): 3H·D + 3H·H + 3H + 3H = 15·3 + 15·5 + 15 + 15 = 150")
    assert _total(line) == w.n_params == sum(v.numel() for v in gru.parameters())


@pytest.mark.parametrize(
    ("make", "formula"),
    [
        (lambda: RNNDirection(rng.normal(size=(H, D)), rng.normal(size=(H, H))), "H·D + H·H + H"),
        (
            lambda: LSTMDirection(rng.normal(size=(4 * H, D)), rng.normal(size=(4 * H, H)),
                                  np.zeros(4 * H)),
            "4H·D + 4H·H + 4H",
        ),
        (
            lambda: LSTMDirection(
                rng.normal(size=(4 * H, D)), rng.normal(size=(4 * H, P)), np.zeros(4 * H),
                p_i=np.ones(H), p_f=np.ones(H), p_o=np.ones(H), W_p=rng.normal(size=(P, H)),
            ),
            "4H·D + 4H·P + 4H + H + H + H + P·H",
        ),
        # D = H: dimensions named by the array's role, not guessed from the size
        (lambda: GRUDirection(rng.normal(size=(3 * H, H)), rng.normal(size=(3 * H, H))),
         "3H·D + 3H·H + 3H + 3H"),
    ],
)  # fmt: skip
def test_every_cell_canonical_formula_totals_n_params(make, formula: str) -> None:
    w = make()
    got, numbers, total = canonical_count(w)
    assert got == formula
    assert (
        total
        == w.n_params
        == sum(math.prod(int(n) for n in term.split("·")) for term in numbers.split(" + "))
    )
    assert _total(_param_line(w)) == w.n_params


def test_a_one_bias_gru_file_says_what_lstmviz_keeps_besides() -> None:
    """A TF1-like GRU stores one bias; lstmviz keeps ``b_h`` (zeros) too, and says so."""
    W, b = rng.normal(size=(D + H, 3 * H)), rng.normal(size=3 * H)
    prov = Provenance(
        "tensorflow",
        stored=(
            StoredTensor("W_x", "gru/kernel", (D + H, 3 * H), True),
            StoredTensor("W_h", "gru/kernel", (D + H, 3 * H), True, D),
            StoredTensor("b", "gru/bias", (3 * H,)),
        ),
    )
    w = GRUDirection(W[:D].T, W[D:].T, b, reset_after=False, provenance=prov)
    lines = shapes_explained(w)
    stored = next(line for line in lines if line.startswith("Parameters (stored)"))
    assert _total(stored) == 135 == w.n_stored_params
    assert (
        "  lstmviz keeps 3H·D + 3H·H + 3H + 3H = 15·3 + 15·5 + 15 + 15 = 150 (canonical)" in lines
    )
    assert w.n_params == 150
