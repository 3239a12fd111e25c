"""The Qt-free Debugger: cursor moves, events only on real change, breakpoints, selection."""

import numpy as np
import pytest

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.breakpoints import StepBreakpoint
from lstmviz.core.debugger import Change, Debugger, Selection


def make_model(seed: int = 0, D: int = 3, H: int = 5) -> LSTMModel:
    """Two layers, the second bidirectional: covers reverse directions and merging."""
    rng = np.random.default_rng(seed)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)),
            W_h=rng.normal(size=(4 * H, H)) * 0.5,
            b=rng.normal(size=4 * H),
            reverse=reverse,
        )

    return LSTMModel(
        layers=(
            LSTMLayer("lstm", (direction(D),)),
            LSTMLayer("bi", (direction(H), direction(H, reverse=True))),
        )
    )


@pytest.fixture
def debugger() -> Debugger:
    x = np.random.default_rng(1).normal(size=(10, 3))
    return Debugger(run(make_model(), x))


def test_moves_and_clamps(debugger: Debugger):
    assert debugger.step == 0 and debugger.n_steps == 10
    assert debugger.step_forward() and debugger.step == 1
    debugger.last()
    assert debugger.step == 9 and debugger.at_end
    assert not debugger.step_forward() and debugger.step == 9
    debugger.go_to(-5)
    assert debugger.step == 0
    assert not debugger.step_back()
    debugger.go_to(100)
    assert debugger.step == 9
    debugger.first()
    assert debugger.step == 0


def test_events_only_on_real_change(debugger: Debugger):
    events: list[Change] = []
    unsubscribe = debugger.subscribe(events.append)
    debugger.go_to(0)  # already there
    debugger.step_back()  # clamped, no move
    assert events == []
    debugger.step_forward()
    assert events == [Change.STEP]
    debugger.select(unit=2)
    debugger.select(unit=2)
    assert events == [Change.STEP, Change.SELECTION]
    unsubscribe()
    unsubscribe()  # idempotent
    debugger.step_forward()
    assert len(events) == 2


def test_stepping_back_returns_the_same_arrays(debugger: Debugger):
    """No recomputation: the trace object is the same before and after moving."""
    trace = debugger.trace
    debugger.go_to(7)
    debugger.go_to(2)
    assert debugger.trace is trace


def test_run_to_step_breakpoints(debugger: Debugger):
    debugger.add_breakpoint("step 4")
    debugger.add_breakpoint(StepBreakpoint("step 7", step=7))
    hits = debugger.run_to_breakpoint()
    assert debugger.step == 4 and [h.step for h in hits] == [4]
    assert debugger.hits == hits
    debugger.run_to_breakpoint()
    assert debugger.step == 7
    # past the last breakpoint: continue to the end, with no hit
    assert debugger.run_to_breakpoint() == () and debugger.step == 9
    # and backwards
    debugger.run_to_breakpoint(forward=False)
    assert debugger.step == 7
    debugger.step_back()
    assert debugger.hits == ()  # any other move clears the hit


def test_disable_remove_toggle(debugger: Debugger):
    bp = debugger.add_breakpoint("step 3")
    assert debugger.add_breakpoint("step 3") == bp and len(debugger.breakpoints) == 1
    bp = debugger.set_enabled(bp, False)
    assert not debugger.breakpoint_mask().any()
    debugger.run_to_breakpoint()
    assert debugger.step == 9
    debugger.set_enabled(bp, True)
    assert np.flatnonzero(debugger.breakpoint_mask()).tolist() == [3]
    debugger.toggle_step_breakpoint(3)
    assert debugger.breakpoints == ()
    debugger.toggle_step_breakpoint(5)
    assert np.flatnonzero(debugger.breakpoint_mask()).tolist() == [5]
    debugger.clear_breakpoints()
    assert debugger.breakpoints == ()


def test_conditional_breakpoint_matches_direct_search(debugger: Debugger):
    trace = debugger.trace
    f = trace.layers[1].directions[1].f
    threshold = float(np.quantile(f, 0.2))
    debugger.add_breakpoint(f"any f < {threshold} in layer 1 backward")
    expected = [t for t in range(10) if any(f[t, u] < threshold for u in range(5))]
    seen = []
    while True:
        hits = debugger.run_to_breakpoint()
        if not hits:
            break
        seen.append(debugger.step)
        (hit,) = hits
        assert (hit.layer, hit.direction) == (1, 1)
        assert list(hit.units) == [u for u in range(5) if f[debugger.step, u] < threshold]
    assert seen == [t for t in expected if t > 0]


def test_selection_is_clamped_and_validated(debugger: Debugger):
    debugger.select(layer=5, direction=3, unit=99)
    assert debugger.selection == Selection(1, 1, 4, "f")
    debugger.select(layer=0)
    assert debugger.selection.direction == 0  # layer 0 has a single direction
    with pytest.raises(ValueError, match="gate must be one of"):
        debugger.select(gate="x")


def test_set_trace_keeps_cursor_when_it_fits(debugger: Debugger):
    events: list[Change] = []
    debugger.go_to(8)
    debugger.subscribe(events.append)
    short = run(make_model(), np.zeros((4, 3)))
    debugger.set_trace(short)
    assert debugger.step == 3 and debugger.trace is short
    assert Change.TRACE in events[0] and Change.STEP in events[0]
