"""The Qt-free Workspace: one event per real change, a model change clamps the selection
before anyone hears of it, stale job results are dropped, breakpoint hits are followed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel
from lstmviz.workspace import Change, Job, Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gui"))
from model_factories import keras_like


def two_layer(H: int = 6, D: int = 2, seed: int = 0) -> LSTMModel:
    rng = np.random.default_rng(seed)

    def direction(d_in: int, reverse: bool = False) -> LSTMDirection:
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)),
            W_h=rng.normal(size=(4 * H, H)) * 0.5,
            b=rng.normal(size=4 * H),
            reverse=reverse,
        )

    return LSTMModel(
        (LSTMLayer("a", (direction(D),)), LSTMLayer("b", (direction(H), direction(H, True))))
    )


class Recorder:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.events: list[tuple[Change, object]] = []
        for change in Change:
            ws.subscribe(change, self.on_event)

    def on_event(self, event) -> None:
        # what a view would read at that moment
        trace = self.ws.trace
        self.events.append((event.change, self.ws.selection, trace))

    def kinds(self) -> list[Change]:
        return [c for c, _s, _t in self.events]


def test_a_new_model_clamps_the_selection_before_any_event():
    ws = Workspace()
    ws.set_model(keras_like(D=3, H=24)[0])
    ws.ensure_trace()
    ws.select(unit=15)
    ws.go_to_step(40)
    rec = Recorder(ws)
    small = keras_like(D=3, H=8)[0]
    ws.set_model(small)
    assert rec.kinds()[0] is Change.MODEL
    for _change, selection, trace in rec.events:
        assert selection.unit == 7  # clamped before the first listener ran
        assert trace is None  # the previous model's run is gone, not shown
    ws.ensure_trace()
    assert ws.trace.model is small and ws.step == 40  # the step is kept where it fits


def test_events_only_on_real_change():
    ws = Workspace()
    ws.set_model(two_layer())
    ws.ensure_trace()
    rec = Recorder(ws)
    ws.select(layer=0, unit=0)  # unchanged
    ws.go_to_step(0)
    assert rec.events == []
    ws.select(unit=3)
    ws.select(unit=3)
    ws.go_to_step(5)
    ws.go_to_step(5)
    assert rec.kinds() == [Change.SELECTION, Change.STEP]
    ws.select(layer=9, direction=5, unit=99)  # clamped to the model
    assert (ws.selection.layer, ws.selection.direction, ws.selection.unit) == (1, 1, 5)


def test_a_bad_sequence_keeps_the_previous_one():
    ws = Workspace()
    ws.set_model(two_layer())
    ws.ensure_trace()
    before, trace = ws.sequence, ws.trace
    rec = Recorder(ws)
    assert not ws.set_sequence(np.zeros((4, 3)))
    assert ws.sequence is before and ws.trace is trace
    assert rec.kinds() == [Change.ERROR]
    assert "3 values per timestep" in ws.last_error


def test_a_hit_in_another_layer_selects_it():
    ws = Workspace()
    ws.set_model(two_layer())
    ws.set_sequence(np.random.default_rng(1).normal(size=(30, 2)))
    ws.ensure_trace()
    dt = ws.trace.layers[1].directions[1]
    cut = float(np.quantile(dt.f.min(axis=1), 0.5))
    ws.add_breakpoint(f"any f < {cut:.6f} in layer 1 backward")
    assert (ws.selection.layer, ws.selection.direction) == (0, 0)
    hits = ws.run_to_breakpoint()
    assert hits and (ws.selection.layer, ws.selection.direction) == (1, 1)
    assert ws.selection.unit in hits[0].units


def test_no_breakpoint_says_so_in_a_note():
    ws = Workspace()
    ws.set_model(two_layer())
    ws.ensure_trace()
    rec = Recorder(ws)
    ws.run_to_breakpoint()
    assert Change.NOTE in rec.kinds() and "No breakpoints are set" in ws.note


class ManualRunner:
    """Holds jobs until the test finishes them: the order a thread pool might use."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def submit(self, job: Job) -> None:
        self.jobs.append(job)

    def finish(self, job: Job) -> None:
        job.done(*job.execute())


def test_a_superseded_or_stale_result_is_dropped():
    runner = ManualRunner()
    ws = Workspace(runner)
    first = two_layer(seed=1)
    ws.set_model(first)
    ws.ensure_trace()
    old_run = runner.jobs[-1]
    assert ws.busy and ws.trace is None
    ws.set_model(two_layer(seed=2))  # cancels the first run
    ws.ensure_trace()
    new_run = runner.jobs[-1]
    assert old_run.cancelled
    runner.finish(old_run)  # arrives late: dropped
    assert ws.trace is None
    runner.finish(new_run)
    assert ws.trace is not None and ws.trace.model is ws.model and not ws.busy


def test_progress_and_cancel_of_a_job():
    ws = Workspace(ManualRunner())
    seen = []
    ws.subscribe(Change.BUSY, lambda e: seen.append(e.value))
    job = ws.submit("export", "exporting", lambda j: j.report(0.5), lambda r, e: None)
    ws.runner.finish(job)
    assert ("exporting", 0.5) in [item for value in seen for item in value]
    assert seen[-1] == ()
    job = ws.submit("export", "exporting", lambda j: (j.report(0.1), j.report(0.2)), print)
    ws.cancel("export")
    _result, error = job.execute()
    assert error is not None and type(error).__name__ == "Cancelled"


@pytest.mark.parametrize("wait", [True, False])
def test_open_a_file_and_a_bad_file(tmp_path, wait):
    ws = Workspace()
    errors = []
    ws.subscribe(Change.ERROR, lambda e: errors.append(e.value))
    bad = tmp_path / "empty.h5"
    bad.write_bytes(b"")
    ws.open(bad, wait=wait)
    assert ws.model is None and errors and errors[0][0] == "load" and "empty.h5" in errors[0][1]


def test_an_event_caused_by_a_listener_waits_until_all_heard_the_current_one():
    """A view that asks for the run when it hears MODEL (a small run finishes at once) must
    not make the next listener hear TRACE before MODEL."""
    ws = Workspace()
    ws.subscribe(Change.MODEL, lambda e: ws.ensure_trace())
    heard: list[Change] = []
    ws.subscribe((Change.MODEL, Change.TRACE), lambda e: heard.append(e.change))
    ws.set_model(two_layer())
    assert ws.trace is not None
    assert heard[0] is Change.MODEL and Change.TRACE in heard[1:]


def test_a_step_asked_for_while_the_run_computes_is_applied_when_it_arrives():
    runner = ManualRunner()
    ws = Workspace(runner)
    ws.set_model(two_layer(seed=1))
    ws.ensure_trace()
    runner.finish(runner.jobs[-1])
    ws.go_to_step(7)
    ws.set_model(two_layer(seed=2))
    ws.ensure_trace()
    assert ws.trace is None and ws.step == 7
    ws.go_to_step(12)
    steps = []
    ws.subscribe(Change.STEP, lambda e: steps.append(ws.step))
    runner.finish(runner.jobs[-1])
    assert ws.step == 12 and ws.debugger.step == 12 and steps == [12]
