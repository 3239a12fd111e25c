"""``compare(a, b, x)``: pair two models, run both on one sequence, name what differs.

Both models run on the same ``x`` from the same initial states (zeros unless given), so any
difference in the traces comes from the weights or settings. The weight-level diagnosis
(``diagnose``) does not need the run; the run says where it shows first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmviz.comparison.diagnose import Diagnosis, LayerMatch, diagnose
from lstmviz.comparison.divergence import DirectionDelta, Divergence, first_divergence
from lstmviz.comparison.pairing import PairList, Pairs, check_pairs, pair_layers
from lstmviz.core.compute import run
from lstmviz.core.model import LSTMModel
from lstmviz.core.trace import Trace

ModelArg = LSTMModel | str | os.PathLike[str]

DEFAULT_STEPS = 64
DEFAULT_SEED = 0


def default_sequence(
    width: int, steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """The sequence both models run on when none is given: seeded standard normal noise,
    the same for every call, so a comparison is reproducible."""
    return np.random.default_rng(seed).standard_normal((steps, width)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Comparison:
    """The result of ``compare``: ``pairs`` (A layer, B layer), the traces, per-direction
    deltas, ``diagnoses`` and ``notes`` on what could not be compared or explained."""

    a: LSTMModel
    b: LSTMModel
    x: np.ndarray | None
    pairs: Pairs
    matches: tuple[LayerMatch, ...]
    diagnoses: list[Diagnosis]
    deltas: tuple[DirectionDelta, ...]
    trace_a: Trace | None
    trace_b: Trace | None
    tol: float
    weight_tol: float
    notes: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kinds(self) -> list[str]:
        return [d.kind for d in self.diagnoses]

    @property
    def weights_equal(self) -> bool:
        """Every layer of both models paired, in order, with the same numbers and settings."""
        n = len(self.a.layers)
        return (
            n == len(self.b.layers)
            and self.pairs == tuple((k, k) for k in range(n))
            and all(m.exact for m in self.matches)
        )

    @property
    def outputs_equal(self) -> bool:
        """Every paired direction within ``tol`` at every step (and the networks' outputs)."""
        if self.trace_a is None or self.trace_b is None:
            return False
        if any(dd.max_delta() > self.tol for dd in self.deltas):
            return False
        if not (self.a.head and self.b.head):
            return True  # a head only one file records (PyTorch keeps no wiring) is not compared
        oa, ob = self.trace_a.head_output, self.trace_b.head_output
        if oa is None or ob is None or oa.shape != ob.shape:
            return False
        return bool(np.all(np.abs(oa.astype(np.float64) - ob) <= self.tol))

    @property
    def equal(self) -> bool:
        """Numerically the same model: weights within ``weight_tol`` and outputs within ``tol``."""
        return self.weights_equal and self.outputs_equal

    @property
    def first_divergence(self) -> Divergence | None:
        return self.divergence(self.tol)

    def divergence(self, tol: float | None = None) -> Divergence | None:
        """``(layer, direction, step, unit)`` where |Δ| of any gate, c or h first exceeds
        ``tol`` (A's layer index, trace step); None when the runs agree everywhere."""
        return first_divergence(self.deltas, self.tol if tol is None else tol)

    def delta(self, layer: int, direction: int = 0) -> DirectionDelta | None:
        """The delta of A's layer ``layer``, direction ``direction`` (None if unpaired)."""
        for dd in self.deltas:
            if dd.layer_a == layer and dd.direction == direction:
                return dd
        return None

    def with_pairs(self, pairs: Iterable[tuple[int, int]]) -> Comparison:
        """The same comparison with layers re-paired by hand."""
        return compare(self.a, self.b, self.x, pairs=pairs, **self.options)

    def summary(self) -> str:
        """A few lines for a terminal or a log."""
        lines = [f"pairs (A layer, B layer): {list(self.pairs)}", f"equal: {self.equal}"]
        div = self.first_divergence
        lines.append(f"first divergence: {tuple(div) if div else None}")
        lines += [str(d) for d in self.diagnoses]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _load(m: ModelArg, options: dict[str, Any] | None) -> LSTMModel:
    if isinstance(m, LSTMModel):
        return m
    from lstmviz.io import load_model

    return load_model(m, **(options or {}))


def _zeros(model: LSTMModel, size: str) -> list[np.ndarray]:
    return [
        np.zeros((len(layer.directions), getattr(layer.directions[0], size)), np.float32)
        for layer in model.layers
    ]


def compare(
    a: ModelArg,
    b: ModelArg,
    x: npt.ArrayLike | None = None,
    *,
    pairs: Iterable[tuple[int, int]] | None = None,
    tol: float = 1e-5,
    weight_tol: float = 1e-5,
    h0: Sequence[Any] | None = None,
    c0: Sequence[Any] | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    options_a: dict[str, Any] | None = None,
    options_b: dict[str, Any] | None = None,
) -> Comparison:
    """Compare model (or file) ``b`` with ``a``.

    ``x``: the sequence both run on, ``(T, D)``; default ``steps`` seeded noise steps.
    ``pairs``: (A layer, B layer) pairs; default paired by shape and order.
    ``tol``: |Δ| of a gate, c or h above which the runs diverge; ``weight_tol``: relative
    tolerance of the weight-level diagnosis (of A's largest weight, at least 1).
    ``h0``/``c0``: initial states given to both (per layer, as ``run`` takes them); default
    zeros for both, so states stored in one file do not make the runs differ.
    ``options_a``/``options_b``: reader options when ``a``/``b`` are paths.
    """
    ma, mb = _load(a, options_a), _load(b, options_b)
    paired = pair_layers(ma, mb) if pairs is None else check_pairs(ma, mb, pairs)
    found, matches, notes = diagnose(ma, mb, paired, weight_tol)
    for i in sorted(set(range(len(ma.layers))) - {i for i, _ in paired}):
        notes.append(f"A's layer {i} has no partner of the same shape in B")
    for j in sorted(set(range(len(mb.layers))) - {j for _, j in paired}):
        notes.append(f"B's layer {j} has no partner of the same shape in A")
    if bool(ma.head) != bool(mb.head):
        who, headed = ("A", ma) if ma.head else ("B", mb)
        cells = {layer.cell.name for layer in headed.layers}  # "LSTMs", "GRUs", mixed
        word = f"{cells.pop()}s" if len(cells) == 1 else "recurrent layers"
        notes.append(f"only {who} has a dense head after its {word}: compared up to the {word}")
    options = dict(tol=tol, weight_tol=weight_tol, h0=h0, c0=c0, steps=steps, seed=seed)
    seq: np.ndarray | None = None
    ta = tb = None
    deltas: list[DirectionDelta] = []
    if ma.input_size != mb.input_size:
        notes.append(
            f"A takes {ma.input_size} inputs per step and B {mb.input_size}: they cannot run "
            "on the same sequence, so only their weights are compared"
        )
    else:
        seq = default_sequence(ma.input_size, steps, seed) if x is None else np.asarray(x)
        ta = run(
            ma,
            seq,
            _zeros(ma, "output_size") if h0 is None else h0,
            _zeros(ma, "hidden_size") if c0 is None else c0,
        )
        tb = run(
            mb,
            seq,
            _zeros(mb, "output_size") if h0 is None else h0,
            _zeros(mb, "hidden_size") if c0 is None else c0,
        )
        seq = ta.x
        for i, j in paired:
            for d, (da, db) in enumerate(
                zip(ta.layers[i].directions, tb.layers[j].directions, strict=True)
            ):
                deltas.append(DirectionDelta(i, j, d, da, db))
    return Comparison(
        a=ma,
        b=mb,
        x=seq,
        pairs=PairList(paired),
        matches=tuple(matches),
        diagnoses=found,
        deltas=tuple(deltas),
        trace_a=ta,
        trace_b=tb,
        tol=tol,
        weight_tol=weight_tol,
        notes=tuple(notes),
        options=options,
    )
