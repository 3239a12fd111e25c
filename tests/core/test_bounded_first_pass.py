"""The bounded trace's first pass carries a column of layers along each group of chunks
(``core.first_pass``): every layer's rows run once for a forward stack (it once recomputed
every layer below for each layer: L(L+1)/2 layer passes), and every value stays bitwise the
full trace's for stacks of every cell kind, bidirectional layers in any place, dense layers
between, heads, processing-order outputs, merge modes, initial states and small chunks."""

from __future__ import annotations

import numpy as np
import pytest
from test_bounded_trace import _assert_same, _gru, _lstm, _rnn, _x

from lstmviz.core import LSTMLayer, LSTMModel, run
from lstmviz.core import checkpointed_trace as ct
from lstmviz.core.activations import Activation
from lstmviz.core.bounded_run import run_bounded
from lstmviz.core.checkpointed_trace import Cancelled
from lstmviz.core.dense import DenseLayer
from lstmviz.core.first_pass import plan
from lstmviz.core.model import MergeMode, OutputOrder


def _models() -> dict[str, LSTMModel]:
    rng = np.random.default_rng(11)
    D, H = 4, 5

    def dense(n_out: int, n_in: int, act: str = "tanh") -> DenseLayer:
        return DenseLayer("d", rng.normal(0, 0.4, (n_out, n_in)), rng.normal(0, 0.1, n_out),
                          Activation(act))  # fmt: skip

    def bi(kind: str, d_in: int, merge: MergeMode = MergeMode.CONCAT, **kw) -> LSTMLayer:
        make = {"LSTM": _lstm, "GRU": _gru, "RNN": _rnn}[kind]
        pair = (make(rng, d_in, H), make(rng, d_in, H, True))
        return LSTMLayer(kind.lower(), pair, merge_mode=merge, kind=kind, **kw)

    def one(kind: str, d_in: int, reverse: bool = False, **kw) -> LSTMLayer:
        make = {"LSTM": _lstm, "GRU": _gru, "RNN": _rnn}[kind]
        return LSTMLayer(kind.lower(), (make(rng, d_in, H, reverse),), kind=kind, **kw)

    head = (dense(3, H, "linear"), dense(2, 3))
    return {
        "lstm3": LSTMModel((one("LSTM", D), one("LSTM", H), one("LSTM", H))),
        "gru3_head": LSTMModel((one("GRU", D), one("GRU", H), one("GRU", H)), head=head),
        "rnn3": LSTMModel((one("RNN", D), one("RNN", H), one("RNN", H))),
        "mixed_dense_between": LSTMModel(
            (one("RNN", D), one("LSTM", 3, before=(dense(3, H),)), one("GRU", H))
        ),
        "bi_then_forward_head": LSTMModel(
            (bi("LSTM", D), one("LSTM", 4, before=(dense(4, 2 * H),)), one("GRU", H)),
            head=head,
        ),
        "forward_then_bi_sum": LSTMModel(
            (one("LSTM", D), one("LSTM", H), bi("LSTM", H, MergeMode.SUM))
        ),
        "bi_stack_merges": LSTMModel(
            (
                bi("GRU", D, MergeMode.AVE),
                bi("LSTM", H, MergeMode.MUL),
                bi("RNN", H, MergeMode.NONE),
                one("LSTM", 2 * H),
            ),
            head=(dense(2, H),),
        ),
        "reverse_in_the_middle": LSTMModel(
            (one("LSTM", D), one("GRU", H, reverse=True), one("LSTM", H), one("RNN", H, True)),
            head=(dense(2, H),),
        ),
        "processing_order": LSTMModel(
            (
                one("LSTM", D),
                bi("LSTM", H, MergeMode.CONCAT, output_order=OutputOrder.PROCESSING),
                one("LSTM", 2 * H, reverse=True, output_order=OutputOrder.PROCESSING),
                one("GRU", H),
            ),
            head=(dense(2, H),),
        ),
    }


MODELS = _models()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(
    ("chunk", "n"),  # T < 256 runs the NumPy engine, from 256 on the compiled one
    [(2, 301), (3, 300), (9, 9 * 40 + 1), (16, 413), (5, 203)],
)
def test_every_value_is_bitwise_the_full_traces(name: str, chunk: int, n: int) -> None:
    model = MODELS[name]
    x = _x(model, n, seed=chunk)
    bt = run_bounded(model, x, chunk=chunk)
    if n % chunk == 1:  # a one-step tail joins the chunk before it
        assert bt.chunk_bounds(bt.n_chunks - 1) == (n - chunk - 1, n)
    _assert_same(run(model, x, trace="full"), bt)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_handful_of_steps(name: str) -> None:
    """One step (a one-row chunk, as the full run's one-row products), two, three, five."""
    model = MODELS[name]
    for n in (1, 2, 3, 5):
        x = _x(model, n)
        _assert_same(run(model, x, trace="full"), run_bounded(model, x, chunk=2))


@pytest.mark.parametrize("first_pass_bytes", [1, 2000, 40_000])
@pytest.mark.parametrize("name", ["bi_then_forward_head", "bi_stack_merges", "processing_order"])
def test_groups_of_one_chunk_or_many_give_the_same_bits(monkeypatch, first_pass_bytes, name):
    monkeypatch.setattr(ct, "FIRST_PASS_BYTES", first_pass_bytes)
    model = MODELS[name]
    x = _x(model, 500)
    _assert_same(run(model, x, trace="full"), run_bounded(model, x, chunk=7))


def test_overviews_of_merged_outputs_and_head_are_exact() -> None:
    """A sum/ave/mul output's and the head's envelopes are folded in by the sweeps."""
    model = MODELS["bi_stack_merges"]
    x = _x(model, 640)
    full, bt = run(model, x, trace="full"), run_bounded(model, x, chunk=5)
    B = bt.overview_block
    n = -(-640 // B)
    for key, want in [(("output", k), lt.output) for k, lt in enumerate(full.layers)] + [
        (("head",), full.head_output)
    ]:
        mm = bt.overview[key]
        assert mm.lo.shape[0] == n
        for b in range(n):
            np.testing.assert_array_equal(mm.lo[b], want[b * B : (b + 1) * B].min(0), str(key))
            np.testing.assert_array_equal(mm.hi[b], want[b * B : (b + 1) * B].max(0), str(key))


def test_initial_states_reach_every_layer_of_a_pipelined_stack() -> None:
    model = MODELS["bi_then_forward_head"]
    x = _x(model, 333)
    rng = np.random.default_rng(5)
    h0 = [rng.normal(size=(2, 5)), rng.normal(size=5), rng.normal(size=5)]
    c0 = [rng.normal(size=(2, 5)), rng.normal(size=5), None]
    full = run(model, x, h0, c0, trace="full")
    _assert_same(full, run_bounded(model, x, h0, c0, chunk=4))
    plain = run(model, x, trace="full")  # the states given do reach the top layer
    assert not np.array_equal(full.layers[2].directions[0].h[0], plain.layers[2].directions[0].h[0])


def _count_rows(monkeypatch: pytest.MonkeyPatch, model: LSTMModel) -> dict[tuple[int, int], int]:
    """Rows each direction runs through the per-direction runner during ``run_bounded``."""
    where = {id(w): (k, d) for k, lay in enumerate(model.layers)
             for d, w in enumerate(lay.directions)}  # fmt: skip
    rows: dict[tuple[int, int], int] = dict.fromkeys(where.values(), 0)
    rows.update(dict.fromkeys([("calls", k, d) for k, d in where.values()], 0))
    real = ct._run_chunk

    def counting(w, x, states, dtype, engine):
        rows[where[id(w)]] += len(x)
        rows[("calls", *where[id(w)])] += 1
        return real(w, x, states, dtype, engine)

    monkeypatch.setattr(ct, "_run_chunk", counting)
    return rows


def test_a_forward_stack_runs_each_layers_rows_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old first pass recomputed layer 0 for layer 1 and layers 0-1 for layer 2: layer 0
    ran 3T rows. Now each runs T, plus the first chunk once more (the direction traces'
    probe in ``_make_layers``)."""
    model = MODELS["lstm3"]
    T, K = 2000, 10
    rows = _count_rows(monkeypatch, model)
    run_bounded(model, _x(model, T), chunk=K)
    assert all(T <= rows[(k, 0)] <= T + 3 * K for k in range(3)), rows


def test_a_head_and_dense_layers_add_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    model = MODELS["gru3_head"]
    T, K = 1500, 10
    rows = _count_rows(monkeypatch, model)
    run_bounded(model, _x(model, T), chunk=K)
    assert all(T <= rows[(k, 0)] <= T + 3 * K for k in range(3)), rows


def test_a_bidirectional_bottom_layer_costs_one_extra_direction_pass(monkeypatch) -> None:
    """Its reverse direction first, then the forward sweep runs the forward direction,
    recomputes the reverse one on the same input and carries the output up."""
    model = MODELS["bi_then_forward_head"]
    T, K = 1200, 8
    rows = _count_rows(monkeypatch, model)
    run_bounded(model, _x(model, T), chunk=K)
    assert T <= rows[(0, 0)] <= T + 3 * K, rows
    assert 2 * T <= rows[(0, 1)] <= 2 * T + 3 * K, rows
    assert all(T <= rows[(k, 0)] <= T + 3 * K for k in (1, 2)), rows


def test_layers_below_a_later_sweep_are_recomputed_a_group_at_a_time(monkeypatch) -> None:
    """Forward layers under a bidirectional one: the backward sweep recomputes them once,
    in calls as long as a group (``layer_input_rows`` would go a chunk of K at a time)."""
    model = MODELS["forward_then_bi_sum"]
    T, K = 1200, 8
    rows = _count_rows(monkeypatch, model)
    run_bounded(model, _x(model, T), chunk=K)
    for k in (0, 1):
        assert 2 * T <= rows[(k, 0)] <= 2 * T + 3 * K, rows
        assert rows[("calls", k, 0)] <= 6, rows  # two sweeps of one group, and chunk 0
    assert 2 * T <= rows[(2, 0)] <= 2 * T + 3 * K and T <= rows[(2, 1)] <= T + 3 * K, rows


def test_the_plan_of_a_bidirectional_stack() -> None:
    sweeps = plan(MODELS["bi_then_forward_head"])
    assert [(s.backward, [(st.k, st.run, st.redo) for st in s.stages]) for s in sweeps] == [
        (True, [(0, (1,), ())]),
        (False, [(0, (0,), (1,)), (1, (0,), ()), (2, (0,), ())]),
    ]
    # every direction is first-passed exactly once, whatever the model
    for model in MODELS.values():
        ran = [(st.k, d) for s in plan(model) for st in s.stages for d in st.run]
        want = [(k, d) for k, lay in enumerate(model.layers) for d in range(len(lay.directions))]
        assert sorted(ran) == want


def test_progress_rises_to_one_and_cancel_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct, "FIRST_PASS_BYTES", 2000)  # many groups per sweep
    model = MODELS["bi_stack_merges"]
    x = _x(model, 800)
    seen: list[float] = []
    run_bounded(model, x, chunk=4, progress=seen.append)
    assert seen and seen == sorted(seen) and seen[0] >= 0 and seen[-1] <= 1
    assert seen[-1] > 0.8
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        run_bounded(model, x, chunk=4, cancel=cancel)
