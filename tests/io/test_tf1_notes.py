"""TF1 graphs whose numbers lstmviz cannot reproduce as loaded must say why, in a note.

Fixtures from make_note_fixtures.py (TF 2.15, control flow v1 and v2): ResidualWrapper,
``sequence_length`` and a fed ``initial_state``. The notes must appear, and what lstmviz does
compute must match TensorFlow where the note says it should: the steps before the length, the
run from a fed h0/c0, and the bare cell's output plus its input. An initial state whose value
the files hold (make_state_fixtures.py: a placeholder_with_default's Const, a Const, a learned
variable) is read, so the run matches TensorFlow as loaded. Also: a SavedModel's
``variables/`` checkpoint (make_savedmodel_fixture.py) keeps the model's layer order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstmviz.core.compute import run
from lstmviz.io import load_model
from lstmviz.io.tensorflow.context import RESIDUAL_NOTE, SEQ_LEN_BW_NOTE, SEQ_LEN_NOTE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"
TOL = 1e-5
STATE_WORDS = "feeds its own initial state"


def _load(name: str):
    with np.load(FIXTURES / name / "expected.npz") as data:
        return load_model(FIXTURES / name), dict(data)


def _dir_notes(model) -> list[tuple[str, ...]]:
    return [d.provenance.notes for layer in model.layers for d in layer.directions]


def test_residual_wrapper_is_noted_and_is_the_only_difference() -> None:
    model, exp = _load("residual_cfv2")
    assert any(RESIDUAL_NOTE in n for n in model.notes)
    assert [RESIDUAL_NOTE in n for n in _dir_notes(model)] == [True]
    out = run(model, exp["x"]).layers[0].output
    assert np.abs(out + exp["x"] - exp["output"]).max() <= TOL  # TF: cell(x) + x


def test_residual_in_multi_rnn_cell_marks_only_that_layer() -> None:
    model, exp = _load("multi_residual_cfv1")
    assert [RESIDUAL_NOTE in n for n in _dir_notes(model)] == [False, True]
    note = next(n for n in model.notes if RESIDUAL_NOTE in n)
    assert note.startswith("rnn/multi_rnn_cell/cell_1/")
    trace = run(model, exp["x"])
    first, second = (layer.output for layer in trace.layers)
    assert np.abs(second + first - exp["output"]).max() <= TOL


def test_sequence_length_is_noted_and_steps_before_it_match() -> None:
    model, exp = _load("seq_len_cfv2")
    assert any(SEQ_LEN_NOTE in n for n in model.notes)
    assert [SEQ_LEN_NOTE in n for n in _dir_notes(model)] == [True]
    n = int(exp["length"])
    out = run(model, exp["x"]).layers[0].output
    assert np.abs(out[:n] - exp["output"][:n]).max() <= TOL
    assert np.all(exp["output"][n:] == 0) and np.abs(out[n:]).max() > 1e-3  # what the note says


def test_bidirectional_sequence_length_notes_the_backward_direction() -> None:
    model, exp = _load("bidi_seq_len_cfv1")
    fw, bw = _dir_notes(model)
    assert any(SEQ_LEN_NOTE in n and SEQ_LEN_BW_NOTE not in n for n in fw)
    assert any(SEQ_LEN_BW_NOTE in n for n in bw)
    n = int(exp["length"])
    out = run(model, exp["x"][:n]).layers[0].output  # cut to the length, both directions match
    assert np.abs(out - exp["output"][:n]).max() <= TOL


STATE_FIXTURES = {  # folder → the words of the note that says where the state came from
    "init_state_cfv2": "default initial state (from h0, c0)",
    "init_state_multi_cfv1": "default initial state (from h0_",
    "init_state_static": "default initial state (from h0, c0)",
    "init_state_var_cfv2": "read from checkpoint variable init/h0, checkpoint variable init/c0",
    "init_state_const_var_cfv1": "read from Const h0_const, checkpoint variable init/c0",
}


@pytest.mark.parametrize("name", sorted(STATE_FIXTURES))
def test_graph_initial_state_is_read_and_matches_tf_without_h0_c0(name: str) -> None:
    """placeholder_with_default of a Const, a Const, a (tiled) learned variable: TF's h0/c0."""
    model, exp = _load(name)
    dirs = [d for layer in model.layers for d in layer.directions]
    assert len(dirs) == len(exp["h0"])
    for d, h0, c0 in zip(dirs, exp["h0"], exp["c0"], strict=True):
        assert np.array_equal(d.h0, h0.reshape(-1)) and np.array_equal(d.c0, c0.reshape(-1))
        assert any(t.startswith("initial state read from") for t in d.provenance.transforms)
        assert any(STATE_FIXTURES[name] in n for n in d.provenance.notes)
    everything = [*model.notes, *(n for notes in _dir_notes(model) for n in notes)]
    assert not [n for n in everything if STATE_WORDS in n]  # nothing left at zeros
    out = run(model, exp["x"]).layers[-1].output
    assert np.abs(out - exp["output"]).max() <= TOL
    zeros = [np.zeros_like(d.h0) for d in dirs], [np.zeros_like(d.c0) for d in dirs]
    zero = run(model, exp["x"], h0=zeros[0], c0=zeros[1]).layers[-1].output
    assert np.abs(zero - exp["output"]).max() > 1e-3  # the stored state matters


def test_fed_placeholder_state_is_noted_and_matches_with_h0_c0() -> None:
    """A plain placeholder's value is in no file: zeros, the note, and h0/c0 make it match."""
    model, exp = _load("init_state_placeholder_cfv1")
    assert all(d.h0 is None and d.c0 is None for layer in model.layers for d in layer.directions)
    assert [any(STATE_WORDS in n for n in notes) for notes in _dir_notes(model)] == [True]
    assert any(STATE_WORDS in n and "h0" in n and "c0" in n for n in model.notes)
    zero = run(model, exp["x"]).layers[-1].output
    assert np.abs(zero - exp["output"]).max() > 1e-3  # the note is needed
    trace = run(model, exp["x"], h0=list(exp["h0"]), c0=list(exp["c0"]))
    assert np.abs(trace.layers[-1].output - exp["output"]).max() <= TOL


@pytest.mark.parametrize(
    "name", ["basic", "multi", "bidi", "static_all", "block", "cfv2_multi_tf215", "stack_bidi"]
)
def test_plain_graphs_get_none_of_these_notes(name: str) -> None:
    model = load_model(FIXTURES / name)
    words = (RESIDUAL_NOTE, SEQ_LEN_NOTE, STATE_WORDS)
    everything = [*model.notes, *(n for notes in _dir_notes(model) for n in notes)]
    assert not [n for n in everything if any(w in n for w in words)]


def test_savedmodel_variables_keep_the_model_order() -> None:
    """A SavedModel keys the LSTM as ``variables/0…``; its Dense head must still come after."""
    model, exp = _load("savedmodel_vars_tf215")
    kinds = [info.kind for info in model.all_layers]
    assert kinds == ["LSTM", "Dense"]
    assert not [n for n in model.notes if "before" in n]
    out = run(model, exp["x"]).layers[0].output
    assert np.abs(out - exp["output"]).max() <= TOL
