"""Model-level diagnosis: directions swapped, layers shifted, and each direction explained.

Per paired layer the directions are explained in place; a bidirectional layer whose
directions only match crosswise has them swapped; a layer that matches no direction of its
partner is tried against A's other layers of the same shape (an off-by-one in a port's layer
loop). Findings are reported only for layers whose every direction has an exact explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lstmviz.comparison.explain import Explanation, Finding, explain
from lstmviz.comparison.other_cells import explain_cell
from lstmviz.comparison.pairing import compatible
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel

KINDS = (
    "gate_permutation",
    "transposed",
    "fused_rows_swapped",
    "forget_bias_offset",
    "bias_doubled",
    "activation_mismatch",
    "directions_swapped",
    "layers_shifted",
)


@dataclass(frozen=True)
class Diagnosis:
    """A named porting mistake. ``layer`` is B's layer (``layer_a`` the A layer it holds),
    ``direction`` B's direction index, or None for a finding about a whole layer."""

    kind: str
    layer: int
    direction: int | None
    detail: str
    evidence: str
    fix: str
    layer_a: int | None = None

    def __str__(self) -> str:
        where = f"layer {self.layer}" + ("" if self.direction is None else f" dir {self.direction}")
        return f"{self.kind} ({where}): {self.detail}; {self.evidence}; fix: {self.fix}"


@dataclass(frozen=True)
class LayerMatch:
    """How B's layer ``layer_b`` relates to A's ``layer_a``: one explanation per B direction
    (None where none was found); ``swapped`` when they hold A's directions crosswise."""

    layer_a: int
    layer_b: int
    explanations: tuple[Explanation | None, ...]
    swapped: bool = False

    @property
    def explained(self) -> bool:
        return all(e is not None for e in self.explanations)

    @property
    def exact(self) -> bool:
        return not self.swapped and all(e is not None and e.exact for e in self.explanations)

    @property
    def cost(self) -> int:
        return sum(e.cost for e in self.explanations if e is not None) + self.swapped


def explain_any(a: Any, b: Any, rtol: float) -> Explanation | None:
    """``explain`` for two LSTM directions, ``explain_cell`` for two of another cell kind."""
    if isinstance(a, LSTMDirection) and isinstance(b, LSTMDirection):
        return explain(a, b, rtol)
    if isinstance(a, LSTMDirection) or isinstance(b, LSTMDirection):
        return None
    return explain_cell(a, b, rtol)


def match_layer(la: LSTMLayer, lb: LSTMLayer, i: int, j: int, rtol: float) -> LayerMatch:
    """B's layer j against A's layer i, directions in place or, failing that, crosswise."""
    straight = tuple(
        explain_any(da, db, rtol) for da, db in zip(la.directions, lb.directions, strict=False)
    )
    match = LayerMatch(i, j, straight)
    if match.explained or len(la.directions) != 2 or len(lb.directions) != 2:
        return match
    cross = (
        explain_any(la.directions[1], lb.directions[0], rtol),
        explain_any(la.directions[0], lb.directions[1], rtol),
    )
    crossed = LayerMatch(i, j, cross, swapped=True)
    return crossed if crossed.explained else match


def diagnose(
    a: LSTMModel, b: LSTMModel, pairs: tuple[tuple[int, int], ...], rtol: float
) -> tuple[list[Diagnosis], list[LayerMatch], list[str]]:
    """Diagnoses, the match of every pair and notes on what could not be explained."""
    found: list[Diagnosis] = []
    matches: list[LayerMatch] = []
    notes: list[str] = []
    for i, j in pairs:
        la, lb = a.layers[i], b.layers[j]
        m = match_layer(la, lb, i, j, rtol)
        if not m.explained:
            others = [
                match_layer(a.layers[k], lb, k, j, rtol)
                for k in range(len(a.layers))
                if k != i and compatible(a.layers[k], lb)
            ]
            good = [o for o in others if o.explained]
            if good:
                m = min(good, key=lambda o: o.cost)
        matches.append(m)
        if not m.explained:
            missing = [d for d, e in enumerate(m.explanations) if e is None]
            notes.append(
                f"B's layer {j} (paired with A's layer {i}): direction(s) "
                f"{', '.join(map(str, missing))} differ in a way no known porting mistake "
                "explains (different or retrained weights?)"
            )
            continue
        found.extend(_layer_diagnoses(m))
        for d, e in enumerate(m.explanations):
            if e is not None and e.settings_differ:
                notes.append(f"B's layer {j} direction {d}: {'; '.join(e.settings_differ)}")
    return found, matches, notes


def _layer_diagnoses(m: LayerMatch) -> list[Diagnosis]:
    out: list[Diagnosis] = []
    j, i = m.layer_b, m.layer_a
    if i != j:
        out.append(
            Diagnosis(
                "layers_shifted",
                j,
                None,
                f"B's layer {j} holds A's layer {i}",
                f"B's layer {j} matches A's layer {i}"
                + (" exactly" if m.cost == 0 else " up to the findings listed with it"),
                f"copy A's layer {j} into B's layer {j} (the port's layer index is off by "
                f"{i - j:+d}); to compare them as they are, re-pair with pairs=[..., ({i}, {j})]",
                layer_a=i,
            )
        )
    if m.swapped:
        out.append(
            Diagnosis(
                "directions_swapped",
                j,
                None,
                f"B's layer {j} holds A's forward weights in its backward direction and A's "
                "backward weights in its forward direction",
                "B's direction 0 matches A's direction 1 and B's 1 matches A's 0",
                "swap the two directions when writing: PyTorch's `_reverse` weights, Keras' "
                "backward_layer and ONNX's direction index 1 are the backward (reverse) one",
                layer_a=i,
            )
        )
    for d, e in enumerate(m.explanations):
        assert e is not None
        out.extend(_direction_diagnosis(f, j, d, i) for f in e.findings)
    return out


def _direction_diagnosis(f: Finding, j: int, d: int, i: int) -> Diagnosis:
    return Diagnosis(f.kind, j, d, f.detail, f.evidence, f.fix, layer_a=i)
