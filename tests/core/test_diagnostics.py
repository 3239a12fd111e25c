"""Diagnostics against direct loops and counts."""

import numpy as np
import pytest

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.diagnostics import (
    dead_units,
    first_nonfinite,
    forget_product,
    memory_span,
    report,
    saturation,
    saturation_table,
)


def make_trace(T: int = 9, H: int = 6):
    rng = np.random.default_rng(5)

    def direction(d_in: int, reverse: bool = False, scale: float = 1.0) -> LSTMDirection:
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)) * 2 * scale,
            W_h=rng.normal(size=(4 * H, H)) * scale,
            b=rng.normal(size=4 * H) * 2,
            reverse=reverse,
        )

    model = LSTMModel(
        layers=(
            LSTMLayer("a", (direction(2),)),
            LSTMLayer("b", (direction(H), direction(H, reverse=True))),
        )
    )
    return run(model, rng.normal(size=(T, 2)))


def test_saturation_matches_count():
    dt = make_trace().layers[0].directions[0]
    T, H = dt.i.shape
    for gate in "ifo":
        v = getattr(dt, gate)
        direct = [
            sum(1 for t in range(T) if v[t, u] < 0.05 or v[t, u] > 0.95) / T for u in range(H)
        ]
        assert saturation(dt, gate).tolist() == pytest.approx(direct)
    assert saturation_table(dt).shape == (3, H)


def _direct_product(f: np.ndarray, s: int, t: int, reverse: bool) -> float:
    steps = range(t, s) if reverse else range(s + 1, t + 1)
    return float(np.prod([f[k] for k in steps]))


@pytest.mark.parametrize("direction", [0, 1])
def test_forget_product_matches_loop(direction):
    dt = make_trace().layers[1].directions[direction]
    T, H = dt.f.shape
    per_unit = forget_product(dt, unit=2)
    mean = forget_product(dt)
    for s in range(T):
        for t in range(T):
            later = t <= s if dt.reverse else t >= s
            if not later:
                assert np.isnan(per_unit[s, t]) and np.isnan(mean[s, t])
                continue
            assert per_unit[s, t] == pytest.approx(_direct_product(dt.f[:, 2], s, t, dt.reverse))
            avg = np.mean([_direct_product(dt.f[:, u], s, t, dt.reverse) for u in range(H)])
            assert mean[s, t] == pytest.approx(avg)


def test_forget_product_with_a_closed_gate_is_exact():
    """A forget gate of exactly 0 (hard sigmoid) erases memory: log sums would give NaN."""
    dt = make_trace().layers[0].directions[0]
    f = dt.f.copy()
    f[4] = 0.0
    object.__setattr__(dt, "f", f)
    p = forget_product(dt, unit=0)
    assert p[2, 5] == 0.0 and p[4, 5] == pytest.approx(f[5, 0])


def test_memory_span_bounds():
    dt = make_trace().layers[0].directions[0]
    span = memory_span(dt)
    assert span.shape == (6,) and (span >= 0).all() and (span <= 8).all()


def test_dead_units_and_report():
    trace = make_trace()
    dt = trace.layers[0].directions[0]
    m = dt.m.copy()
    m[:, 3] = 1e-4
    object.__setattr__(dt, "m", m)
    assert dead_units(dt).tolist() == [u for u in range(6) if np.abs(m[:, u]).max() < 1e-2]
    assert 3 in dead_units(dt).tolist()
    reports = report(trace)
    assert [(r.layer, r.direction) for r in reports] == [(0, 0), (1, 0), (1, 1)]
    assert "layer 0 forward:" in reports[0].summary() and "dead units" in reports[0].summary()


def test_first_nonfinite():
    trace = make_trace()
    assert first_nonfinite(trace) is None
    dt = trace.layers[1].directions[1]
    h = dt.h.copy()
    h[6, 0] = np.inf
    h[6, 2] = np.nan
    object.__setattr__(dt, "h", h)
    g = trace.layers[0].directions[0].g.copy()
    g[7, 1] = np.nan
    object.__setattr__(trace.layers[0].directions[0], "g", g)
    bad = first_nonfinite(trace)
    assert (bad.step, bad.layer, bad.direction, bad.array, bad.count) == (6, 1, 1, "h", 2)
    assert bad.describe() == "first NaN/Inf at step 6: layer 1 backward, h (2 values)"


def test_first_nonfinite_proves_finite_lstm_terms_without_computing_them():
    """An LSTM's pre-activation terms (``z_x``, ``z_h``, ``peep``, ``pre``: (T, 4H) products)
    are proven finite from bounds on their operands instead of being computed; a term that
    does overflow (its gate, sigmoid(±inf), stays finite) or reads a NaN is still found."""
    from lstmviz.core import diagnostics

    rng = np.random.default_rng(3)
    H, D, T = 5, 3, 12
    peep = {k: rng.normal(size=H) for k in ("p_i", "p_f", "p_o")}
    w = LSTMDirection(rng.normal(size=(4 * H, D)), rng.normal(size=(4 * H, H)),
                      rng.normal(size=4 * H), **peep)  # fmt: skip
    model = LSTMModel((LSTMLayer("l", (w,)),))
    x = rng.normal(size=(T, D))
    trace = run(model, x, engine="numpy")
    assert first_nonfinite(trace) is None
    dt = trace.layers[0].directions[0]
    assert not {"z_x", "z_h", "peep", "pre"} & set(vars(dt))  # none was computed
    assert diagnostics._proven_finite(dt) == {"z_x", "z_h", "peep", "pre"}

    # x W_xᵀ overflows float32 at step 4 (x = 3e38 there): found in z_x, the first term
    big = x.copy()
    big[4] = 3e38
    trace = run(model, big, engine="numpy")
    assert "z_x" not in diagnostics._proven_finite(trace.layers[0].directions[0])
    bad = first_nonfinite(trace)
    assert (bad.step, bad.array) == (4, "z_x")
    big[4] = 1e36  # large, finite products: a bound past 1e30 proves nothing, the check says so
    trace = run(model, big, engine="numpy")
    assert "pre" not in diagnostics._proven_finite(trace.layers[0].directions[0])
    assert np.isfinite(trace.layers[0].directions[0].pre).all() and first_nonfinite(trace) is None
    # a NaN weight: no bound, every term checked
    W_h = w.W_h.copy()
    W_h[7, 2] = np.nan
    nan_w = LSTMDirection(w.W_x, W_h, w.b, **peep)
    trace = run(LSTMModel((LSTMLayer("l", (nan_w,)),)), x, engine="numpy")
    assert "z_h" not in diagnostics._proven_finite(trace.layers[0].directions[0])
    assert first_nonfinite(trace).array == "z_h"
