"""A cell kind lstmviz does not ship, added from outside the core: the minimal gated unit (MGU,
Zhou et al. 2016): ``f = σ(W_f x + U_f h + b_f)``, ``n = tanh(W_n x + U_n (f ⊙ h) + b_n)``,
``h' = (1 − f) ⊙ h + f ⊙ n``.

Its cell description, direction class, trace class and forward pass are all defined here;
nothing in ``lstmviz.core`` names it, yet the model, ``run``, breakpoints, diagnostics, the
trace export, summaries, shapes text, weight statistics, stored layouts, the debugger and the
equation explainer all handle it. That is the claim of the cell description: the next cell kind
is data plus its own equations, not edits across the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np
import pytest

from lstmviz.core import LSTMLayer, LSTMModel, Provenance, StoredTensor, compute, run
from lstmviz.core.activations import SIGMOID, TANH, Activation
from lstmviz.core.breakpoints import parse_breakpoint
from lstmviz.core.cells import (
    CellDescription,
    Equation,
    Gate,
    State,
    StoredOrder,
    Term,
    gate_equation,
)
from lstmviz.core.debugger import Debugger
from lstmviz.core.diagnostics import forget_product, report
from lstmviz.core.equations import explain
from lstmviz.core.export import trace_arrays
from lstmviz.core.gate_stats import gate_stats
from lstmviz.core.model import FloatArray, RecurrentDirection
from lstmviz.core.shapes_text import shapes_explained
from lstmviz.core.stored_layout import canonical_panels, stored_panels, stored_ref
from lstmviz.core.summary import model_summary
from lstmviz.core.trace import CellTrace

_X, _H, _B = Term("z_x", "W_x·x_t"), Term("z_h", "W_h·h_(t-1)"), Term("b", "b")
_F = Gate("f", "forget", "gate", (_X, _H, _B))
_N = Gate("n", "candidate", "candidate", (_X, Term("cand_h", "W_h·(f⊙h_(t-1))"), _B))
MGU_CELL = CellDescription(
    "MGU",
    (_F, _N),
    (State("h", "hidden state"),),
    (
        gate_equation(_F),
        gate_equation(_N),
        Equation("h", "h = (1 − f)·h_(t-1) + f·n", "(1 − {f})·{h_prev} + {f}·{n}"),
    ),
    {"canonical": StoredOrder(("f", "n"), (0, 1)), "stacked": StoredOrder(("n", "f"), (1, 0))},
    retention_gate="f",
    retention_complement=True,
)  # fmt: skip


@dataclass(frozen=True)
class MGUDirection(RecurrentDirection):
    W_x: FloatArray  # (2H, D) blocks f, n
    W_h: FloatArray  # (2H, H)
    b: FloatArray  # (2H,)
    act_gate: Activation = SIGMOID
    act_cand: Activation = TANH
    reverse: bool = False
    provenance: Provenance = field(default_factory=lambda: Provenance(framework="unknown"))
    h0: FloatArray | None = None

    array_fields: ClassVar[tuple[str, ...]] = ("W_x", "W_h", "b", "h0")
    cell: ClassVar[CellDescription] = MGU_CELL

    def __post_init__(self) -> None:
        self._freeze_fields()

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def has_peepholes(self) -> bool:
        return False


@dataclass(frozen=True, eq=False)
class MGUTrace(CellTrace):
    derived_names: ClassVar[tuple[str, ...]] = ("z_x", "z_h", "cand_h", "pre")
    weights: MGUDirection
    x: FloatArray
    b: FloatArray
    f: FloatArray
    n: FloatArray
    h: FloatArray
    h_prev: FloatArray

    @cached_property
    def z_x(self) -> FloatArray:
        return self.x @ self.weights.W_x.T

    @cached_property
    def z_h(self) -> FloatArray:
        return self.h_prev @ self.weights.W_h.T

    @cached_property
    def cand_h(self) -> FloatArray:
        H = self.weights.hidden_size
        return (self.f * self.h_prev) @ self.weights.W_h[H:].T

    @cached_property
    def pre(self) -> FloatArray:
        H = self.weights.hidden_size
        out = self.z_x + self.b
        out[:, :H] += self.z_h[:, :H]
        out[:, H:] += self.cand_h
        return out


def run_mgu(w: MGUDirection, x: FloatArray, h0: FloatArray | None, *, dtype, engine) -> MGUTrace:
    x = np.asarray(x, dtype=dtype)
    T, H = x.shape[0], w.hidden_size
    f, n, hs, hp = (np.empty((T, H), dtype) for _ in range(4))
    h = np.zeros(H, dtype) if h0 is None else np.asarray(h0, dtype)
    for s in range(T):
        t = T - 1 - s if w.reverse else s
        hp[t] = h
        f[t] = w.act_gate(w.W_x[:H] @ x[t] + w.W_h[:H] @ h + w.b[:H])
        n[t] = w.act_cand(w.W_x[H:] @ x[t] + w.W_h[H:] @ (f[t] * h) + w.b[H:])
        h = hs[t] = (1 - f[t]) * h + f[t] * n[t]
    return MGUTrace(w, x, w.b.astype(dtype), f, n, hs, hp)


@pytest.fixture(autouse=True)
def _registered():
    """The one registration a new cell kind needs: direction class, runner (and through the
    class's ``cell``, its description). Undone after each test so no other test sees MGU."""
    compute.register(MGUDirection, run_mgu)
    yield
    compute.unregister(MGUDirection)


rng = np.random.default_rng(0)
D, H = 3, 4


def _model() -> LSTMModel:
    stacked = rng.normal(size=(D + H, 2 * H))  # as a TF1-like file: [x; h] rows, blocks n, f
    prov = Provenance(
        "a framework",
        gate_order=("n", "f"),
        perm=MGU_CELL.perm("stacked"),
        stored=(
            StoredTensor("W_x", "mgu/kernel", (D + H, 2 * H), transposed=True),
            StoredTensor("W_h", "mgu/kernel", (D + H, 2 * H), transposed=True, offset=D),
            StoredTensor("b", "mgu/bias", (2 * H,)),
        ),
    )
    canon = np.concatenate([stacked[:, H:], stacked[:, :H]], axis=1)  # to f, n
    w = MGUDirection(canon[:D].T, canon[D:].T, rng.normal(size=2 * H), provenance=prov)
    bw = MGUDirection(canon[:D].T, canon[D:].T, np.zeros(2 * H), reverse=True)
    return LSTMModel((LSTMLayer("mgu", (w, bw), kind="Bidirectional(MGU)"),))


def test_a_new_cell_kind_runs_through_the_whole_core() -> None:
    model = _model()
    x = rng.normal(size=(20, D))
    trace = run(model, x, dtype=np.float64)
    dt = trace.layers[0].directions[0]
    assert trace.output.shape == (20, 2 * H) and dt.cell is MGU_CELL
    for gate in ("f", "n"):
        total = sum(np.broadcast_to(v, (20, H)) for _, v in dt.terms(gate))
        np.testing.assert_allclose(total, dt.gate_pre(gate), atol=1e-12)
    # breakpoints, diagnostics (retention = 1 − f), export, debugger, equations
    np.testing.assert_array_equal(parse_breakpoint("any f > 0.9").mask(trace), (dt.f > 0.9).any(1))
    P = forget_product(dt, size=None)
    np.testing.assert_allclose(P[2, 5], np.prod(1 - dt.f[3:6], axis=0).mean())
    assert "mean 1 − f" in report(trace)[0].summary()
    names = [n for n, _ in trace_arrays(trace) if n.startswith("layer0/forward/")]
    assert [n.split("/")[-1] for n in names] == [
        "z_x", "z_h", "b", "cand_h", "pre", "f", "n", "h", "h_prev",
    ]  # fmt: skip
    assert Debugger(trace).selection.gate == "f"
    lines = explain(dt, 4, 2)
    assert [g for g, _ in lines] == ["f", "n", None]
    assert lines[2][1].startswith("h = (1 − f)·h_(t-1) + f·n = ")
    # model text, shapes, statistics, stored layout
    w = model.layers[0].directions[0]
    assert "(D + H, 2·H)" in "\n".join(shapes_explained(w))
    assert "MGU: 2 gate block(s) f, n" in model_summary(model)
    assert {s.gate for s in gate_stats(w)} == {"f", "n"}
    assert [p.key for p in canonical_panels(w)] == ["W_x", "W_h", "b"]
    stored = {p.key: p for p in stored_panels(w)}
    assert stored["mgu/kernel"].block_labels == ("n", "f")
    assert stored_ref(w, "W_h", 1, 2) == f"mgu/kernel[{D + 2}, {H + 1}]"  # f unit 1 → stored f


def test_the_registration_is_the_only_place_a_new_cell_is_named() -> None:
    """No module of the core, the workspace or the views names the made-up cell: it is known
    only through ``compute.register``, and ``unregister`` forgets it again."""
    from pathlib import Path

    import lstmviz
    from lstmviz.core.breakpoints import gate_quantities, quantities
    from lstmviz.core.cells import registered

    assert MGU_CELL in registered() and "f" in gate_quantities()
    assert {"f", "n", "pre_f", "pre_n"} <= set(quantities())
    root = Path(lstmviz.__file__).parent
    for package in ("core", "workspace", "gui"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in ("MGU", "MGUDirection", "MGUTrace", "run_mgu"):
                assert name not in text, f"{path.relative_to(root)} names {name}"
    compute.unregister(MGUDirection)
    assert MGU_CELL not in registered()
    with pytest.raises(TypeError, match=r"compute\.register"):
        run(_model(), rng.normal(size=(3, D)))
    compute.register(MGUDirection, run_mgu)  # the fixture unregisters it


def test_the_breakpoint_parser_learns_the_names_of_a_registered_cell() -> None:
    """A gate no shipped cell has (``u``) is unknown until its cell is registered, and again
    after it is unregistered; its pre-activation comes with it."""
    from lstmviz.core import cells

    keep = Gate("u", "keep", "gate", (_X, _H, _B))
    cell = CellDescription("keep-only", (keep,), (State("h", "hidden state"),), ())
    with pytest.raises(ValueError, match="unknown value 'u'"):
        parse_breakpoint("any u > 0.5")
    cells.register(cell)
    try:
        assert parse_breakpoint("u saturated > 50%").quantity == "u"
        assert parse_breakpoint("any pre_u > 1 in unit 2").quantity == "pre_u"
    finally:
        cells.unregister(cell)
    with pytest.raises(ValueError, match="only gates saturate"):
        parse_breakpoint("u saturated > 50%")
