"""Explaining a GRU or plain-RNN direction of B by A's: gate order, bias scale, activations.

The LSTM search (``explain``) knows the LSTM's porting mistakes; for the other cells the ones
that carry over are a permuted gate order (GRU: PyTorch r,z,n vs Keras/ONNX z,r,h), both
biases doubled or halved, and a different activation. Orders are named from the cell
description's own table of framework orders, so a new cell kind needs nothing here.
"""

from __future__ import annotations

import numpy as np

from lstmviz.comparison.explain import (
    MAX_MISTAKES,
    Explanation,
    Finding,
    same_activation,
    scale_finding,
)
from lstmviz.comparison.structural import close, match_blocks, max_abs, permute

_BIASES = ("b", "b_x", "b_h")
_NAMES = {"keras": "Keras", "onnx": "ONNX", "torch": "PyTorch", "tf1": "TF1", "cudnn": "cuDNN"}
_ACTS = (("act_gate", "gate activation"), ("act_cand", "candidate activation"))


def _arrays(d) -> list[np.ndarray]:
    out = [d.W_x, d.W_h]
    out += [getattr(d, n) for n in _BIASES if getattr(d, n, None) is not None]
    return out


def _bias(d, name: str) -> np.ndarray:
    v = getattr(d, name, None)
    return np.zeros(d.W_x.shape[0], d.W_x.dtype) if v is None else v


def explain_cell(a, b, rtol: float = 1e-5) -> Explanation | None:
    """The simplest exact explanation of B's direction by A's for any cell kind."""
    cell = a.cell
    if b.cell.name != cell.name or (a.W_x.shape, a.W_h.shape) != (b.W_x.shape, b.W_h.shape):
        return None
    n = cell.n_gates
    scale = max([1.0] + [float(np.nanmax(np.abs(m), initial=0.0)) for m in _arrays(a)])
    atol = rtol * scale
    names = [x for x in _BIASES if hasattr(a, x)]
    for sigma in match_blocks((a.W_x, a.W_h), (b.W_x, b.W_h), atol, n):
        found: list[Finding] = []
        if sigma != tuple(range(n)):
            found.append(_permutation(sigma, a, b))
        pa = [permute(_bias(a, x), sigma) for x in names]
        pb = [_bias(b, x) for x in names]
        if not all(close(x, y, atol) for x, y in zip(pa, pb, strict=True)):
            nonzero = any(float(np.max(np.abs(x))) > atol for x in pa)
            s = next(
                (
                    s
                    for s in (2.0, 0.5)
                    if nonzero and all(close(s * x, y, atol) for x, y in zip(pa, pb, strict=True))
                ),
                None,
            )
            if s is None:
                continue
            found.append(scale_finding(s))
        if len(found) > MAX_MISTAKES:
            continue
        residual = max(max_abs(permute(x, sigma), y) for x, y in ((a.W_x, b.W_x), (a.W_h, b.W_h)))
        found = [
            Finding(f.kind, f.detail, f"{f.evidence}, max |Δ| {residual:.3g}", f.fix) for f in found
        ]
        return Explanation(tuple(found) + tuple(_activations(a, b)), residual, _settings(a, b))
    return None


def _activations(a, b) -> list[Finding]:
    out = []
    for attr, role in _ACTS:
        fa, fb = getattr(a, attr, None), getattr(b, attr, None)
        if fa is None or fb is None or same_activation(fa, fb):
            continue
        out.append(
            Finding(
                "activation_mismatch",
                f"A's {a.cell.name} {role} is {fa} = {fa.formula}, B's is {fb} = {fb.formula}",
                "same weights, different activation",
                f"run B with {fa} as its {role}",
            )
        )
    return out


def _settings(a, b) -> tuple[str, ...]:
    out = []
    for name in ("gate_clip", "reset_after"):
        va, vb = getattr(a, name, None), getattr(b, name, None)
        if va != vb:
            out.append(f"{name} {va} vs {vb}")
    return tuple(out)


def _order(d) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(canonical gates in stored order, the file's own letters) B's file was read in."""
    gates = d.cell.gate_names
    perm, letters = tuple(d.provenance.perm), tuple(d.provenance.gate_order)
    if sorted(perm) != list(range(len(gates))) or len(letters) != len(gates):
        return gates, gates
    return tuple(gates[perm.index(p)] for p in range(len(gates))), letters


def _permutation(sigma: tuple[int, ...], a, b) -> Finding:
    gates = a.cell.gate_names
    read_gates, read_letters = _order(b)
    written = tuple(gates[sigma[gates.index(g)]] for g in read_gates)
    orders = a.cell.orders
    names = [
        k
        for k, o in orders.items()
        if tuple(gates[o.perm.index(p)] for p in range(len(gates))) == written and k != "canonical"
    ]
    letters = orders[names[0]].names if names else written
    source = (
        f"{'/'.join(_NAMES.get(k, k) for k in names)} order {','.join(letters)}"
        if names
        else f"order {','.join(written)} (no framework's)"
    )
    readers = [
        _NAMES.get(k, k)
        for k, o in orders.items()
        if tuple(o.names) == read_letters and k != "canonical"
    ]
    read = f" ({'/'.join(readers)} order)" if readers else ""
    detail = f"B is stored in {source} read as {','.join(read_letters)}{read}"
    moved = [f"B's {g} block = A's {gates[s]} block" for g, s in zip(gates, sigma, strict=True)]
    evidence = ", ".join(m for m, k in zip(moved, range(len(gates)), strict=True) if sigma[k] != k)
    idx = [written.index(g) for g in read_gates]
    fix = (
        f"reorder the gate blocks of B's kernels and biases to {','.join(read_letters)} "
        f"before writing (stored blocks [{', '.join(map(str, idx))}])"
    )
    return Finding("gate_permutation", detail, evidence, fix)
