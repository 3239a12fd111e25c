"""Explain one direction of B as a known transformation of one direction of A.

The search: for each structural move (none first, then transposes and the fused-kernel row
swap), match B's gate blocks to A's (which yields the permutation σ), then explain the bias
as σ(A's bias) scaled by 2 or ½ and/or offset by a constant on the forget gate. At most two
mistakes are combined, and only an exact explanation (every array within ``atol``) counts:
two unrelated models never match a block, so they get no diagnosis rather than a guess.
Activations are read, not searched: the canonical model names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmviz.comparison.gate_orders import block_mapping, describe_permutation
from lstmviz.comparison.structural import (
    IDENTITY,
    Move,
    close,
    match_blocks,
    max_abs,
    moves,
    rows_match,
)
from lstmviz.comparison.structural import permute as permute_blocks
from lstmviz.core.activations import Activation
from lstmviz.core.model import GATES, LSTMDirection

MAX_MISTAKES = 2

#: Where activations are compared: wide enough to tell sigmoid from hard_sigmoid's clip.
_GRID = np.linspace(-8.0, 8.0, 161)

_ROLES = (
    ("act_gate", "recurrent (gate) activation"),
    ("act_cand", "candidate activation"),
    ("act_cell", "cell-output activation"),
)


@dataclass(frozen=True)
class Finding:
    """One mistake inside an explanation (``Diagnosis`` adds where it was found)."""

    kind: str
    detail: str
    evidence: str
    fix: str


@dataclass(frozen=True)
class Explanation:
    """B's direction = A's direction under ``findings``; ``max_delta`` is what is left."""

    findings: tuple[Finding, ...]
    max_delta: float
    settings_differ: tuple[str, ...] = ()

    @property
    def cost(self) -> int:
        return len(self.findings)

    @property
    def exact(self) -> bool:
        """No mistake at all: the two directions hold the same numbers."""
        return not self.findings and not self.settings_differ


def tolerance(a: LSTMDirection, rtol: float) -> float:
    """Absolute weight tolerance: ``rtol`` of A's largest weight (at least of 1)."""
    scale = max(1.0, *(float(np.nanmax(np.abs(m), initial=0.0)) for m in (a.W_x, a.W_h, a.b)))
    return rtol * scale


def same_activation(x: Activation, y: Activation) -> bool:
    if x == y:
        return True
    with np.errstate(all="ignore"):
        return bool(np.allclose(x(_GRID), y(_GRID), atol=1e-6, equal_nan=True))


def activation_findings(a: LSTMDirection, b: LSTMDirection) -> list[Finding]:
    out = []
    for attr, role in _ROLES:
        fa, fb = getattr(a, attr), getattr(b, attr)
        if same_activation(fa, fb):
            continue
        with np.errstate(all="ignore"):
            gap = float(np.nanmax(np.abs(fa(_GRID) - fb(_GRID))))
        out.append(
            Finding(
                "activation_mismatch",
                f"A's {role} is {fa} = {_spelled(fa)}, B's is {fb} = {_spelled(fb)}",
                f"same weights, but {fa} and {fb} differ by up to {gap:.3g} on [-8, 8]",
                f"run B with {fa} as its {role} (Keras 2's hard_sigmoid is clip(0.2x+0.5), "
                "Keras 3's clip(x/6+0.5), PyTorch/ONNX/TF1 use sigmoid)",
            )
        )
    return out


def _spelled(act: Activation) -> str:
    """The formula and, for the sigmoid family, the slope at 0 that tells them apart."""
    slope = {"sigmoid": "1/4", "hard_sigmoid_k2": "0.2", "hard_sigmoid_k3": "1/6"}.get(act.name)
    if act.name == "hard_sigmoid_ab" and act.alpha is not None:
        slope = f"{act.alpha:g}"
    formula = " ".join(act.formula.split())
    return formula if slope is None else f"{formula} (slope {slope} at 0)"


def _offset(r: np.ndarray, H: int, atol: float) -> float | None:
    """The constant added to the forget block when that is all ``r`` (B − A bias) holds."""
    k = GATES.index("f")
    rf = r[k * H : (k + 1) * H]
    rest = np.concatenate([r[: k * H], r[(k + 1) * H :]])
    if rest.size and float(np.max(np.abs(rest))) > atol:
        return None
    c = float(np.mean(rf))
    if abs(c) <= atol or float(np.max(np.abs(rf - c))) > atol:
        return None
    return c


def _bias_findings(pb: np.ndarray, bb: np.ndarray, H: int, atol: float, budget: int):
    """Findings that turn σ(A's bias) ``pb`` into B's ``bb``, fewest first, or None."""
    if close(pb, bb, atol):
        return []
    nonzero = float(np.max(np.abs(pb))) > atol
    options: list[tuple[float, float | None]] = []
    for s in (2.0, 0.5) if nonzero else ():
        if close(s * pb, bb, atol):
            options.append((s, None))
    c = _offset(bb - pb, H, atol)
    if c is not None:
        options.append((1.0, c))
    if nonzero and budget >= 2:
        for s in (2.0, 0.5):
            c = _offset(bb - s * pb, H, atol)
            if c is not None:
                options.append((s, c))
    # Fewest mistakes first; on a tie the forget-bias offset: a bias that is zero but for a
    # constant forget block (a fresh Keras/TF init, unit_forget_bias) gets the same numbers
    # from "+1 on f" as from "doubled", and +1 is the common porting mistake.
    ranked = sorted(options, key=lambda o: ((o[0] != 1.0) + (o[1] is not None), o[1] is None))
    for s, c in ranked:
        found = []
        if s != 1.0:
            found.append(scale_finding(s))
        if c is not None:
            found.append(_offset_finding(c))
        if len(found) <= budget:
            scaled = [so for so, co in options if co is None and so != 1.0]
            if s == 1.0 and scaled:
                found[0] = _also_scaled(found[0], scaled[0])
            return found
    return None


def _also_scaled(f: Finding, s: float) -> Finding:
    times = "2 ×" if s == 2.0 else "½ ×"
    return Finding(
        f.kind,
        f.detail,
        f.evidence + f" (A's bias is zero outside its forget block, so B's b = {times} A's b "
        "too, a doubled/halved bias; the offset is the likelier mistake)",
        f.fix,
    )


def scale_finding(s: float) -> Finding:
    if s == 2.0:
        return Finding(
            "bias_doubled",
            "B's bias is twice A's: the same bias was added twice",
            "B's b = 2 × A's b in every gate",
            "put the bias in one of PyTorch's/ONNX's two bias vectors (bias_ih, Wb) and zero "
            "the other, or halve both",
        )
    return Finding(
        "bias_doubled",
        "B's bias is half A's: one of two biases was dropped or the sum halved",
        "B's b = ½ × A's b in every gate",
        "sum both biases (bias_ih + bias_hh, Wb + Rb) when moving to a single-bias framework",
    )


def _offset_finding(c: float) -> Finding:
    value = f"{c:+.6g}"
    if c > 0:
        detail = f"B's forget-gate bias has {value} added (a forget_bias folded in twice?)"
        fix = (
            f"subtract {c:.6g} from B's forget-gate bias b_f, or read B with forget_bias=0 "
            "(TF1 adds forget_bias at run time, so a bias that already holds it gets it twice)"
        )
    else:
        detail = f"B's forget-gate bias lacks {-c:.6g} ({value}): the forget bias went missing"
        fix = (
            f"add {-c:.6g} to B's forget-gate bias b_f: TF1/Haiku add forget_bias at run time, "
            "the target framework does not, so it must be folded into the bias when porting"
        )
    return Finding("forget_bias_offset", detail, f"B's b_f − A's b_f = {value} for every unit", fix)


def _peepholes_ok(a: LSTMDirection, b: LSTMDirection, sigma: tuple[int, ...], atol: float) -> bool:
    """Peepholes (stored apart from the kernels) may have followed the gate permutation or
    not: either counts."""
    pa = {"i": a.p_i, "f": a.p_f, "o": a.p_o}

    def same(want: np.ndarray | None, got: np.ndarray | None) -> bool:
        return (want is None) == (got is None) and (want is None or close(want, got, atol))

    pairs = [(g, GATES[sigma[k]]) for k, g in enumerate(GATES) if g != "g"]
    kept = all(same(pa[g], getattr(b, f"p_{g}")) for g, _ in pairs)
    moved = all(same(pa.get(src), getattr(b, f"p_{g}")) for g, src in pairs)
    return kept or moved


def _settings(a: LSTMDirection, b: LSTMDirection, atol: float) -> tuple[str, ...]:
    out = []
    for name in ("cell_clip", "gate_clip", "proj_clip"):
        if getattr(a, name) != getattr(b, name):
            out.append(f"{name} {getattr(a, name)} vs {getattr(b, name)}")
    for name in ("h0", "c0"):
        sa, sb = getattr(a, name), getattr(b, name)
        if sa is None and sb is None:
            continue
        size = a.output_size if name == "h0" else a.hidden_size
        sa = np.zeros(size) if sa is None else sa  # no stored state: zeros
        sb = np.zeros(size) if sb is None else sb
        if not close(sa, sb, atol):
            out.append(f"stored initial state {name} differs (both runs start from zeros)")
    if (a.W_p is None) != (b.W_p is None) or (
        a.W_p is not None and b.W_p is not None and not close(a.W_p, b.W_p, atol)
    ):
        out.append("projection W_p differs")
    return tuple(out)


@dataclass(frozen=True)
class _Candidate:
    """A sequence of structural moves; the ones marked ``on_b`` are undone on B."""

    steps: tuple[Move, ...]

    def may_explain(self, a: LSTMDirection, b: LSTMDirection, atol: float) -> bool:
        """A cheap necessary check on one row per gate block, for a single move."""
        if len(self.steps) != 1 or self.steps[0].rows is None:
            return True
        m = self.steps[0]
        H = a.hidden_size
        rows = [k * H for k in range(4)]
        if m.on_b:
            pa, pb = (a.W_x[rows], a.W_h[rows]), m.rows(b.W_x, b.W_h, rows)
        else:
            pa, pb = m.rows(a.W_x, a.W_h, rows), (b.W_x[rows], b.W_h[rows])
        return pa is not None and pb is not None and rows_match(pa, pb, atol)

    def arrays(self, a: LSTMDirection, b: LSTMDirection):
        pa, pb = (a.W_x, a.W_h), (b.W_x, b.W_h)
        for m in self.steps:
            moved = m.apply(*(pb if m.on_b else pa))
            if moved is None:
                return None
            pa, pb = (pa, moved) if m.on_b else (moved, pb)
        return pa, pb


#: Above this many kernel weights only single structural moves are tried (two chained moves
#: cost a copy of both kernels per candidate, hundreds of candidates).
PAIR_MOVES_LIMIT = 2_000_000


def _candidates(a: LSTMDirection) -> list[_Candidate]:
    singles = moves(a)
    out = [_Candidate(())] + [_Candidate((m,)) for m in singles]
    if a.W_x.size + a.W_h.size <= PAIR_MOVES_LIMIT:
        out += [
            _Candidate((m1, m2))
            for m1 in singles
            for m2 in singles
            if m1 is not m2 and not (m1.kind == m2.kind == "fused_rows_swapped")
        ]
    return out


def explain(a: LSTMDirection, b: LSTMDirection, rtol: float = 1e-5) -> Explanation | None:
    """The simplest exact explanation of B's direction by A's, or None."""
    if (a.W_x.shape, a.W_h.shape, a.b.shape) != (b.W_x.shape, b.W_h.shape, b.b.shape):
        return None
    atol = tolerance(a, rtol)
    H = a.hidden_size
    best: Explanation | None = None
    for cand in _candidates(a):
        base = len(cand.steps)
        if best is not None and base >= best.cost:
            break
        if not cand.may_explain(a, b, atol):
            continue
        arrays = cand.arrays(a, b)
        if arrays is None:
            continue
        for sigma in match_blocks(*arrays, atol):
            cost = base + (sigma != IDENTITY)
            if cost > MAX_MISTAKES or (best is not None and cost >= best.cost):
                continue
            if not _peepholes_ok(a, b, sigma, atol):
                continue
            bias = _bias_findings(permute_blocks(a.b, sigma), b.b, H, atol, MAX_MISTAKES - cost)
            if bias is None:
                continue
            found: list[Finding] = []
            if sigma != IDENTITY:
                detail, fix = describe_permutation(sigma, b)
                found.append(Finding("gate_permutation", detail, block_mapping(sigma), fix))
            found += [Finding(m.kind, m.detail, "", m.fix) for m in cand.steps]
            found.extend(bias)
            if best is not None and len(found) >= best.cost:
                continue
            pa, pb = arrays
            residual = max(
                max_abs(permute_blocks(x, sigma), y) for x, y in zip(pa, pb, strict=True)
            )
            best = Explanation(tuple(found), residual)
            if best.cost == 0:
                break
        if best is not None and best.cost == 0:
            break
    if best is None:
        return None
    acts = activation_findings(a, b)
    return Explanation(tuple(_evidence(best)) + tuple(acts), best.max_delta, _settings(a, b, atol))


def _evidence(best: Explanation) -> list[Finding]:
    """Fill in each finding's evidence with the measured residual."""
    out = []
    for f in best.findings:
        ev = f.evidence
        if f.kind == "gate_permutation":
            ev = f"{ev} (W_x, W_h and b), max |Δ| {best.max_delta:.3g}"
        elif f.kind in ("transposed", "fused_rows_swapped"):
            ev = f"after undoing it B's W_x and W_h equal A's, max |Δ| {best.max_delta:.3g}"
        else:
            ev = f"{ev}; W_x and W_h equal, max |Δ| {best.max_delta:.3g}"
        out.append(Finding(f.kind, f.detail, ev, f.fix))
    return out
