"""Breakpoint text parsing and evaluation against direct loops over the trace."""

import numpy as np
import pytest

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.breakpoints import (
    ConditionBreakpoint,
    Kind,
    StepBreakpoint,
    parse_breakpoint,
)


def make_trace(T: int = 12, H: int = 16):
    rng = np.random.default_rng(3)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)) * 2,
            W_h=rng.normal(size=(4 * H, H)),
            b=rng.normal(size=4 * H),
            reverse=reverse,
        )

    model = LSTMModel(
        layers=(
            LSTMLayer("a", (direction(2),)),
            LSTMLayer("b", (direction(H), direction(H, reverse=True))),
        )
    )
    return run(model, rng.normal(size=(T, 2)) * 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("step 12", StepBreakpoint("step 12", step=12)),
        ("t=3", StepBreakpoint("t=3", step=3)),
        (
            "any f < 0.05",
            ConditionBreakpoint("any f < 0.05", quantity="f", op="<", threshold=0.05),
        ),
        (
            "|c| > 5 in unit 12",
            ConditionBreakpoint(
                "|c| > 5 in unit 12", quantity="c", op=">", threshold=5, absolute=True, units=(12,)
            ),
        ),
        (
            "o saturated > 90%",
            ConditionBreakpoint(
                "o saturated > 90%", kind=Kind.SATURATED, quantity="o", op=">", threshold=0.9
            ),
        ),
        ("NaN anywhere", ConditionBreakpoint("NaN anywhere", kind=Kind.NONFINITE)),
        (
            "mean h > 0.5 in layer 1 backward",
            ConditionBreakpoint(
                "mean h > 0.5 in layer 1 backward",
                quantity="h",
                op=">",
                threshold=0.5,
                reduce="mean",
                layers=(1,),
                directions=(1,),
            ),
        ),
        (
            "forward all i >= 0.5 in units 1-3, 7 in layer 0",
            ConditionBreakpoint(
                "forward all i >= 0.5 in units 1-3, 7 in layer 0",
                quantity="i",
                op=">=",
                threshold=0.5,
                reduce="all",
                layers=(0,),
                directions=(0,),
                units=(1, 2, 3, 7),
            ),
        ),
    ],
)
def test_parse(text, expected):
    bp = parse_breakpoint(text)
    assert bp == expected
    assert type(bp) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty breakpoint"),
        ("q > 1", "unknown value 'q'"),
        ("f is small", "cannot read breakpoint 'f is small'; examples:"),
        ("o saturated > 2", "0..1 or a percentage"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_breakpoint(text)


def test_any_f_below_matches_loop():
    trace = make_trace()
    lowest = np.min([dt.f.min(axis=1) for lt in trace.layers for dt in lt.directions], axis=0)
    cut = float(np.median(lowest))  # fires at about half of the steps
    bp = parse_breakpoint(f"any f < {cut}")
    expected = np.zeros(trace.n_steps, bool)
    for lt in trace.layers:
        for dt in lt.directions:
            for t in range(trace.n_steps):
                expected[t] |= any(v < cut for v in dt.f[t])
    assert bp.mask(trace).tolist() == expected.tolist()
    assert expected.any() and not expected.all()  # a meaningful threshold for this fixture


def test_abs_c_in_unit_and_hit_details():
    trace = make_trace()
    c = trace.layers[0].directions[0].c
    threshold = float(np.median(np.abs(c[:, 12])))
    bp = parse_breakpoint(f"|c| > {threshold} in unit 12 in layer 0")
    mask = bp.mask(trace)
    assert mask.tolist() == [abs(c[t, 12]) > threshold for t in range(trace.n_steps)]
    t = int(np.flatnonzero(mask)[0])
    (hit,) = bp.hits(trace, t)
    assert (hit.layer, hit.direction, hit.units) == (0, 0, (12,))
    assert "unit 12" in hit.describe() and f"step {t}" in hit.describe()
    assert bp.hits(trace, int(np.flatnonzero(~mask)[0])) == ()


def test_saturation_share_matches_count():
    trace = make_trace()
    o = trace.layers[1].directions[0].o
    share = [sum(1 for v in o[t] if v < 0.05 or v > 0.95) / 16 for t in range(trace.n_steps)]
    cut = sorted(share)[len(share) // 2]
    bp = parse_breakpoint(f"o saturated > {cut * 100}% in layer 1 forward")
    assert bp.mask(trace).tolist() == [s > cut for s in share]
    t = int(np.argmax(share))
    (hit,) = bp.hits(trace, t)
    assert hit.value == pytest.approx(share[t])
    assert hit.units == tuple(u for u in range(16) if o[t, u] < 0.05 or o[t, u] > 0.95)


def test_mean_reduction_and_scope():
    trace = make_trace()
    h = trace.layers[1].directions[1].h
    cut = float(np.median(h.mean(axis=1)))
    bp = parse_breakpoint(f"mean h > {cut} in layer 1 backward")
    assert bp.mask(trace).tolist() == [h[t].mean() > cut for t in range(trace.n_steps)]


def test_nonfinite_finds_the_first_bad_step():
    trace = make_trace()
    bp = parse_breakpoint("NaN anywhere")
    assert not bp.mask(trace).any()
    dt = trace.layers[1].directions[0]
    c = dt.c.copy()
    c[5, 3] = np.nan
    object.__setattr__(dt, "c", c)  # simulate an overflow in a recorded array
    assert np.flatnonzero(bp.mask(trace)).tolist() == [5]
    (hit,) = bp.hits(trace, 5)
    assert (hit.layer, hit.direction, hit.units) == (1, 0, (3,))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("step 12", "the sequence has steps 0–11"),
        ("|c| > 5 in unit 16", "have 16 units (0–15)"),
        ("any f < 0.1 in units 20-22 in layer 1", "have 16 units (0–15)"),
        ("mean h > 0.5 in layer 2", "the model has 2 layers (0–1)"),
        ("any f < 0.1 in layer 0 backward", "no layer in its scope has that direction"),
    ],
)
def test_a_breakpoint_outside_the_model_says_why_it_never_fires(text, why):
    trace = make_trace()  # 12 steps, 2 layers of 16 units, layer 1 bidirectional
    bp = parse_breakpoint(text)
    assert not bp.mask(trace).any()
    assert why in bp.unreachable(trace)


@pytest.mark.parametrize(
    "text", ["step 11", "|c| > 50 in unit 15", "any f < 0.1 in units 3, 40", "NaN anywhere"]
)
def test_a_breakpoint_in_scope_is_not_called_unreachable(text):
    assert parse_breakpoint(text).unreachable(make_trace()) is None
