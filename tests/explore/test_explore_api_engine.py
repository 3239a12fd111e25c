"""run_corpus's engine, CorpusStates.from_trace (the debugger's run reused) and the public
default threshold, against nn.LSTM and run_corpus itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmviz
from lstmviz import explore
from lstmviz.core.bounded_run import run_bounded
from lstmviz.explore import Corpus, CorpusStates, run_corpus, select
from lstmviz.explore import states as states_module


def _tiny_model(tmp_path, bidirectional=False, D=3, H=6):
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(D, H, bidirectional=bidirectional, batch_first=True)
    path = tmp_path / ("bi.pt" if bidirectional else "uni.pt")
    torch.save({f"lstm.{k}": v for k, v in lstm.state_dict().items()}, path)
    return lstmviz.load_model(path), lstm


def _xs(*lengths, D=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((T, D)).astype(np.float32) for T in lengths]


def test_engine_reaches_run_and_every_engine_gives_torchs_states(tmp_path, monkeypatch):
    model, lstm = _tiny_model(tmp_path)
    xs = _xs(40, 9)
    corpus = Corpus.from_arrays(xs)
    seen: list[str] = []
    real_run = states_module.run

    def spy(*args, **kwargs):
        seen.append(kwargs["engine"])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(states_module, "run", spy)
    with torch.no_grad():
        want = np.concatenate([lstm(torch.from_numpy(x)[None])[0][0].numpy() for x in xs])
    for engine in ("numpy", "numba", "auto"):
        seen.clear()
        got = run_corpus(model, corpus, engine=engine).values()
        assert seen and set(seen) == {engine}
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="engine must be one of auto, numpy, numba"):
        run_corpus(model, corpus, engine="gpu")


def test_from_trace_equals_run_corpus_for_each_quantity(tmp_path):
    model, lstm = _tiny_model(tmp_path)
    (x,) = _xs(57, seed=4)
    trace = lstmviz.run(model, x, trace="full")
    corpus = Corpus.from_arrays([x], tokens=[[f"t{k}" for k in range(len(x))]])
    reused = CorpusStates.from_trace(trace, 0, corpus=corpus, quantities=("h", "c", "f"))
    fresh = run_corpus(model, corpus, quantities=("h", "c", "f"))
    assert reused.corpus is corpus and reused.complete and reused.layer == 0
    for q in ("h", "c", "f"):
        assert reused.values(q).dtype == np.float32
        np.testing.assert_allclose(reused.values(q), fresh.values(q), atol=1e-6)
    with torch.no_grad():
        out = lstm(torch.from_numpy(x)[None])[0][0].numpy()
    np.testing.assert_allclose(reused.values("h"), out, atol=1e-5)
    # select and match answer the same on both
    for thr in (explore.DEFAULT_THRESHOLD, 0.0):
        assert select(reused, 10, 14, thr) == select(fresh, 10, 14, thr)
    default = CorpusStates.from_trace(trace)  # the corpus is trace.x alone
    assert default.corpus.n_tokens == len(x)
    np.testing.assert_array_equal(default.values(), reused.values())


def test_from_trace_of_a_bidirectional_layer_per_direction(tmp_path):
    model, lstm = _tiny_model(tmp_path, bidirectional=True)
    (x,) = _xs(30, seed=2)
    trace = lstmviz.run(model, x, trace="full")
    corpus = Corpus.from_arrays([x])
    for direction in (None, 0, 1):
        reused = CorpusStates.from_trace(trace, corpus=corpus, direction=direction)
        fresh = run_corpus(model, corpus, direction=direction)
        np.testing.assert_allclose(reused.values(), fresh.values(), atol=1e-6)
    with torch.no_grad():
        out = lstm(torch.from_numpy(x)[None])[0][0].numpy()
    np.testing.assert_allclose(CorpusStates.from_trace(trace).values(), out, atol=1e-5)


def test_from_trace_refuses_what_it_cannot_be(tmp_path):
    model, _ = _tiny_model(tmp_path)
    (x,) = _xs(20)
    trace = lstmviz.run(model, x, trace="full")
    with pytest.raises(ValueError, match="the corpus has 25 tokens, the run 20 steps"):
        CorpusStates.from_trace(trace, corpus=Corpus.from_arrays(_xs(25)))
    with pytest.raises(ValueError, match="layer 1: the model has 1"):
        CorpusStates.from_trace(trace, 1)
    with pytest.raises(ValueError, match="quantities must be some of"):
        CorpusStates.from_trace(trace, quantities=("q",))
    bounded = run_bounded(model, x)
    with pytest.raises(ValueError, match=r"a full trace is needed.*run_corpus"):
        CorpusStates.from_trace(bounded)


def test_default_threshold_is_public_and_the_apis_default(tmp_path):
    assert explore.DEFAULT_THRESHOLD == 0.3  # LSTMVis' default
    assert "DEFAULT_THRESHOLD" in explore.__all__
    assert explore.UnitSet([1], 0, 2).threshold == explore.DEFAULT_THRESHOLD
    rng = np.random.default_rng(5)
    values = np.tanh(np.cumsum(rng.standard_normal((80, 16)), axis=0) / 3).astype(np.float32)
    states = explore.states_from_arrays(Corpus.from_arrays([np.zeros((80, 1))]), values)
    implicit = select(states, 20, 26)
    assert implicit.threshold == explore.DEFAULT_THRESHOLD
    assert implicit == select(states, 20, 26, explore.DEFAULT_THRESHOLD)
    want = np.flatnonzero((values[20:26] >= explore.DEFAULT_THRESHOLD).all(axis=0))
    np.testing.assert_array_equal(implicit.units, want)
    assert ("h", explore.DEFAULT_THRESHOLD) in run_corpus(
        _tiny_model(tmp_path)[0], Corpus.from_arrays(_xs(12))
    )._indexes
