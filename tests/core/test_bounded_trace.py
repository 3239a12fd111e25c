"""The bounded trace (checkpoints every K steps, steps recomputed on demand) against the full
trace: every recorded and derived array bitwise equal, for LSTM (peepholes, projection, clips,
bidirectional, stacked with a dense layer between, go_backwards), GRU (both reset modes), the
plain RNN and a model mixing them; the same breakpoint stops and diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.core import GRUDirection, LSTMDirection, LSTMLayer, LSTMModel, RNNDirection, run
from lstmviz.core.activations import Activation
from lstmviz.core.bounded_run import run_bounded
from lstmviz.core.checkpointed_trace import BoundedTrace, wants_bounded
from lstmviz.core.debugger import Debugger
from lstmviz.core.dense import DenseLayer
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.core.trace_windows import StepArray, TraceTooLarge

T = 5000


def _lstm(rng: np.random.Generator, D: int, H: int, reverse: bool = False, **kw) -> LSTMDirection:
    P = kw["W_p"].shape[0] if "W_p" in kw else H
    return LSTMDirection(
        W_x=rng.normal(0, 0.5, (4 * H, D)),
        W_h=rng.normal(0, 0.5, (4 * H, P)),
        b=rng.normal(0, 0.2, 4 * H),
        reverse=reverse,
        **kw,
    )


def _gru(rng: np.random.Generator, D: int, H: int, reverse: bool = False, **kw) -> GRUDirection:
    return GRUDirection(
        rng.normal(0, 0.5, (3 * H, D)),
        rng.normal(0, 0.5, (3 * H, H)),
        rng.normal(0, 0.2, 3 * H),
        rng.normal(0, 0.2, 3 * H),
        reverse=reverse,
        **kw,
    )


def _rnn(rng: np.random.Generator, D: int, H: int, reverse: bool = False) -> RNNDirection:
    return RNNDirection(rng.normal(0, 0.5, (H, D)), rng.normal(0, 0.5, (H, H)), reverse=reverse)


def _models() -> dict[str, LSTMModel]:
    rng = np.random.default_rng(7)
    D, H = 5, 6
    peep = {k: rng.normal(0, 0.3, H) for k in ("p_i", "p_f", "p_o")}
    proj = {"W_p": rng.normal(0, 0.5, (3, H)), "cell_clip": 1.5, "proj_clip": 0.8}
    bi = LSTMLayer("bi", (_lstm(rng, D, H), _lstm(rng, D, H, True)))
    dense = DenseLayer("d", rng.normal(0, 0.4, (4, 2 * H)), rng.normal(0, 0.1, 4),
                       Activation("tanh"))  # fmt: skip
    head = DenseLayer("head", rng.normal(0, 0.4, (2, H)), rng.normal(0, 0.1, 2))
    return {
        "lstm_peepholes": LSTMModel((LSTMLayer("p", (_lstm(rng, D, H, **peep),)),)),
        "lstm_projection": LSTMModel((LSTMLayer("p", (_lstm(rng, D, H, **proj),)),)),
        "lstm_bi_stacked_head": LSTMModel(
            (bi, LSTMLayer("top", (_lstm(rng, 4, H),), before=(dense,))), head=(head,)
        ),
        "lstm_go_backwards_sum": LSTMModel(
            (
                LSTMLayer(
                    "gb",
                    (_lstm(rng, D, H, True), _lstm(rng, D, H)),
                    merge_mode=MergeMode.SUM,
                    output_order=OutputOrder.PROCESSING,
                ),
                LSTMLayer("top", (_lstm(rng, H, H),)),
            )
        ),
        "gru_after": LSTMModel(
            (LSTMLayer("g", (_gru(rng, D, H), _gru(rng, D, H, True)), kind="GRU"),)
        ),
        "gru_before": LSTMModel(
            (LSTMLayer("g", (_gru(rng, D, H, reset_after=False),), kind="GRU"),)
        ),
        "rnn": LSTMModel((LSTMLayer("r", (_rnn(rng, D, H), _rnn(rng, D, H, True)), kind="RNN"),)),
        "mixed": LSTMModel(
            (
                LSTMLayer("g", (_gru(rng, D, H),), kind="GRU"),
                LSTMLayer("l", (_lstm(rng, H, H),)),
                LSTMLayer("r", (_rnn(rng, H, H),), kind="RNN"),
            )
        ),
    }


MODELS = _models()


def _x(model: LSTMModel, n: int = T, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, model.input_size)).astype(np.float32)


def _assert_same(full, bounded) -> None:
    assert bounded.n_steps == full.n_steps
    for k, lt in enumerate(full.layers):
        blt = bounded.layers[k]
        np.testing.assert_array_equal(np.asarray(blt.output), lt.output)
        np.testing.assert_array_equal(np.asarray(blt.input), lt.input)
        for d, dt in enumerate(lt.directions):
            bd = blt.directions[d]
            names = [n for n in dt.recorded if getattr(dt, n) is not None]
            names += ["h_prev", "x"] + [f"{s}_prev" for s in dt.cell.state_names]
            for name in names:
                a, b = getattr(dt, name), getattr(bd, name)
                assert b is not None, name
                np.testing.assert_array_equal(np.asarray(b), a, err_msg=f"layer {k}.{d} {name}")
            for q in dt.cell.quantities:  # gates, states, pre-activations by the cell's names
                np.testing.assert_array_equal(np.asarray(bd.value(q)), dt.value(q))
            t = full.n_steps * 2 // 3
            assert bd.unit_values(t, 2) == dt.unit_values(t, 2)
            g = dt.cell.gate_names[0]
            assert bd.gate_terms_at(g, t - 1, 1) == dt.gate_terms_at(g, t - 1, 1)
            np.testing.assert_array_equal(bd.h_last, dt.h_last)
    if full.head_output is not None:
        np.testing.assert_array_equal(np.asarray(bounded.head_output), full.head_output)
    np.testing.assert_array_equal(np.asarray(bounded.network_output), full.network_output)
    np.testing.assert_array_equal(np.asarray(bounded.final_output), full.final_output)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_every_value_is_bitwise_the_full_traces(name: str, engine: str) -> None:
    model = MODELS[name]
    x = _x(model)
    full = run(model, x, engine=engine, trace="full")
    bounded = run_bounded(model, x, engine=engine, chunk=7)
    assert isinstance(bounded, BoundedTrace) and bounded.n_chunks == -(-T // 7)
    _assert_same(full, bounded)


def test_indexing_api_matches_a_full_trace() -> None:
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model)
    full = run(model, x, trace="full")
    bt = run(model, x, trace="bounded")
    f, bf = full.layers[0].directions[1].f, bt.layers[0].directions[1].f
    assert bf.shape == f.shape and len(bf) == T
    for key in (17, -1, slice(100, 260), slice(4990, None), slice(None, 30, 3), (55, 2),
                (slice(10, 20), slice(1, 3)), [3, 4000, 9], slice(300, 200, -7)):  # fmt: skip
        np.testing.assert_array_equal(bf[key], f[key], err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(bf[:, 2:4]), f[:, 2:4])  # lazy column view
    np.testing.assert_array_equal(bf[:, 3][100:120], f[:, 3][100:120])
    np.testing.assert_array_equal(bt.layers[1].output[2500], full.layers[1].output[2500])
    gru = MODELS["gru_after"]
    g_full = run(gru, _x(gru), trace="full").layers[0].directions[1]
    g_b = run(gru, _x(gru), trace="bounded").layers[0].directions[1]
    np.testing.assert_array_equal(g_b.gate("z")[40:90], g_full.gate("z")[40:90])
    np.testing.assert_array_equal(g_b.gate_pre("n")[7:9], g_full.gate_pre("n")[7:9])
    with pytest.raises(IndexError):
        bf[T]


def test_a_huge_range_refuses_instead_of_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    from lstmviz.core import trace_windows

    monkeypatch.setattr(trace_windows, "MAX_MATERIALIZE_BYTES", 50_000)
    model = MODELS["lstm_peepholes"]
    bt = run(model, _x(model), trace="bounded")
    with pytest.raises(TraceTooLarge, match=r"bounded trace would take .* stream with"):
        np.asarray(bt.layers[0].directions[0].f)
    assert bt.layers[0].directions[0].f[10:20].shape == (10, 6)


def test_run_picks_the_bounded_trace_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    model = MODELS["rnn"]
    x = _x(model, 3000)
    assert not wants_bounded(model, x)
    assert not isinstance(run(model, x), BoundedTrace)
    monkeypatch.setenv("LSTMVIZ_FULL_TRACE_LIMIT", "100000")
    assert wants_bounded(model, x)
    bt = run(model, x)
    assert isinstance(bt, BoundedTrace)
    assert not isinstance(run(model, x, trace="full"), BoundedTrace)
    with pytest.raises(ValueError, match="trace must be"):
        run(model, x, trace="lazy")  # type: ignore[arg-type]


def test_initial_states_and_bad_input() -> None:
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model, 600)
    rng = np.random.default_rng(3)
    h0 = [rng.normal(size=(2, 6)), rng.normal(size=6)]
    c0 = [rng.normal(size=(2, 6)), rng.normal(size=6)]
    _assert_same(run(model, x, h0, c0, trace="full"), run_bounded(model, x, h0, c0, chunk=9))
    bad = x.copy()
    bad[333, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf at step 333, feature 1"):
        run(model, bad, trace="bounded")
    with pytest.raises(ValueError, match="shape"):
        run(model, x[:, :2], trace="bounded")


def test_a_one_step_tail_is_never_a_chunk_of_its_own() -> None:
    """A one-row matmul goes through BLAS' matvec, which rounds differently."""
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model, 7 * 40 + 1)
    bt = run_bounded(model, x, chunk=7)
    assert bt.chunk_bounds(bt.n_chunks - 1) == (7 * 39, 7 * 40 + 1)
    _assert_same(run(model, x, trace="full"), bt)


@pytest.mark.parametrize(
    "text",
    [
        "any f < 0.02",
        "|c| > 2.5 in unit 3",
        "o saturated > 40%",
        "mean h > 0.2 in layer 1",
        "max h_prev > 0.95 in layer 0 backward",
        "any z > 0.97",
        "NaN anywhere",
        "step 3210",
    ],
)
def test_breakpoints_stop_at_the_same_steps(text: str) -> None:
    for name in ("lstm_bi_stacked_head", "mixed"):
        model = MODELS[name]
        x = _x(model)
        runs = []
        for trace in (run(model, x, trace="full"), run_bounded(model, x, chunk=11)):
            dbg = Debugger(trace)
            dbg.add_breakpoint(text)
            dbg.go_to(2000)
            stops = [(dbg.run_to_breakpoint(fw), dbg.step) for fw in (True,) * 5 + (False,) * 5]
            runs.append(stops)
        assert runs[0] == runs[1], (name, text)


def test_breakpoints_fire_somewhere_in_these_cases() -> None:
    """The cases above are not vacuous: most of them stop before the sequence's end."""
    model = MODELS["lstm_bi_stacked_head"]
    dbg = Debugger(run_bounded(model, _x(model), chunk=11))
    fired = 0
    for text in ("any f < 0.02", "|c| > 2.5 in unit 3", "o saturated > 40%", "step 3210"):
        dbg.clear_breakpoints()
        dbg.add_breakpoint(text)
        dbg.go_to(0)
        fired += bool(dbg.run_to_breakpoint())
    assert fired >= 3


def test_diagnostics_stream_to_the_full_traces_numbers() -> None:
    from lstmviz.core import diagnostics as diag

    model = MODELS["mixed"]
    x = _x(model)
    full, bt = run(model, x, trace="full"), run_bounded(model, x, chunk=13)
    for a, b in zip(diag.report(full), diag.report(bt), strict=True):
        np.testing.assert_array_equal(b.saturation, a.saturation)
        np.testing.assert_array_equal(b.dead, a.dead)
        np.testing.assert_allclose(b.mean_forget, a.mean_forget, rtol=1e-6)
    assert diag.first_nonfinite(bt) == diag.first_nonfinite(full)
    for k in (0, 1):
        for unit in (None, 4):
            np.testing.assert_array_equal(
                diag.forget_product(bt.layers[k].directions[0], unit),
                diag.forget_product(full.layers[k].directions[0], unit),
            )
    sat = diag.saturation_table(bt.layers[1].directions[0])
    np.testing.assert_array_equal(sat, diag.saturation_table(full.layers[1].directions[0]))


def test_overview_envelopes_hold_every_value() -> None:
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model)
    full, bt = run(model, x, trace="full"), run_bounded(model, x, chunk=10)
    B = bt.overview_block
    for (k, d), quantities in ((key, v) for key, v in bt.overview.items() if len(key) == 2
                               and isinstance(key[0], int)):  # fmt: skip
        for name, mm in quantities.items():
            arr = getattr(full.layers[k].directions[d], name)
            for b in (0, mm.lo.shape[0] // 2, mm.lo.shape[0] - 1):
                rows = arr[b * B : (b + 1) * B]
                np.testing.assert_array_equal(mm.lo[b], rows.min(0))
                np.testing.assert_array_equal(mm.hi[b], rows.max(0))
    out = bt.overview[("output", 1)]
    np.testing.assert_array_equal(out.hi[3], full.layers[1].output[3 * B : 4 * B].max(0))
    head = bt.overview[("head",)]
    np.testing.assert_array_equal(head.lo[0], full.head_output[:B].min(0))


def test_export_streams_the_full_traces_npz_or_refuses(tmp_path, monkeypatch) -> None:
    from lstmviz.core import bounded_export
    from lstmviz.core.export import save_trace_csv, save_trace_npz

    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model, 1500)
    full = np.load(save_trace_npz(run(model, x, trace="full"), tmp_path / "full.npz"))
    bt = run_bounded(model, x, chunk=8)
    got = np.load(save_trace_npz(bt, tmp_path / "bounded.npz"))
    assert sorted(got.files) == sorted(full.files)
    for name in full.files:
        np.testing.assert_array_equal(got[name], full[name], err_msg=name)
    with pytest.raises(ValueError, match="export it as NPZ"):
        save_trace_csv(bt, tmp_path / "t.csv")
    monkeypatch.setattr(bounded_export, "EXPORT_LIMIT", 100_000)
    with pytest.raises(ValueError, match=r"would take .* GiB as NPZ.*trace.window"):
        save_trace_npz(bt, tmp_path / "big.npz")


@pytest.mark.parametrize("first_pass_bytes", [1, 3000])
def test_first_pass_in_single_chunks_or_runs_of_chunks(monkeypatch, first_pass_bytes) -> None:
    """The first pass runs many chunks per call; its checkpoints are read off the rows at
    each chunk's edge, so a run of one chunk per call or a few per call gives the same."""
    from lstmviz.core import checkpointed_trace

    monkeypatch.setattr(checkpointed_trace, "FIRST_PASS_BYTES", first_pass_bytes)
    for name in ("lstm_bi_stacked_head", "gru_after", "lstm_go_backwards_sum"):
        model = MODELS[name]
        x = _x(model, 700)
        _assert_same(run(model, x, trace="full"), run_bounded(model, x, chunk=6))


def test_a_jump_recomputes_a_prefix_then_the_whole_chunk() -> None:
    """A first jump into a chunk recomputes up to that step (a suffix for a reverse
    direction); asking for more of it recomputes it whole: the same values either way."""
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model, 900)
    full = run(model, x, trace="full")
    bt = run_bounded(model, x, chunk=20)
    for k, d, t in ((1, 0, 403), (0, 1, 403), (0, 0, 611), (0, 1, 611)):
        dt, ft = bt.layers[k].directions[d], full.layers[k].directions[d]
        for step in (t, t + 5, t - 3):
            assert dt.unit_values(step, 1) == ft.unit_values(step, 1)
            np.testing.assert_array_equal(dt.z_h[step], ft.z_h[step])
    for t in (0, 403, 899):  # one row of a dense layer's product, computed on two
        np.testing.assert_array_equal(bt.layers[1].input[t], full.layers[1].input[t])
        np.testing.assert_array_equal(bt.head_output[t], full.head_output[t])
        one = bt.window(t, t + 1)
        np.testing.assert_array_equal(one.head_output[0], full.head_output[t])
        np.testing.assert_array_equal(one.layers[1].input[0], full.layers[1].input[t])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_per_step_array_of_a_bounded_direction_is_recomputed_by_range(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No per-step quantity of a bounded direction is computed from whole arrays: with a
    tiny materialize budget each one still gives a short range, equal to the full trace's
    (``z_h`` once came from ``CellTrace``'s ``h_prev @ W_hᵀ`` over every step)."""
    from lstmviz.core import trace_windows

    model = MODELS[name]
    x = _x(model)
    full = run(model, x, trace="full")
    bt = run(model, x, trace="bounded")
    monkeypatch.setattr(trace_windows, "MAX_MATERIALIZE_BYTES", 4096)
    for k, layer in enumerate(bt.layers):
        for d, dt in enumerate(layer.directions):
            ft = full.layers[k].directions[d]
            for q in (*dt._widths, *(f"pre_{g}" for g in dt.cell.gate_names)):
                value = dt.value(q) if q.startswith("pre_") else getattr(dt, q)
                assert isinstance(value, StepArray), (q, type(value))
                want = ft.value(q) if q.startswith("pre_") else getattr(ft, q)
                np.testing.assert_array_equal(value[20:25], want[20:25], err_msg=q)
            for gate in dt.cell.gate_names:
                for (_, part), (_, want) in zip(
                    dt.terms(gate), full.layers[k].directions[d].terms(gate), strict=True
                ):
                    got = part if part.ndim == 1 else part[3:5]
                    np.testing.assert_array_equal(got, want if want.ndim == 1 else want[3:5])


def test_a_jump_recomputes_on_one_thread_with_the_teams_bits(monkeypatch) -> None:
    """The first pass runs on the team; a jump's short recompute on the calling thread alone
    (``threads.alone``), bit for bit the full trace's."""
    from test_threads import team_sizes

    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "2")
    rng = np.random.default_rng(11)
    H, D = 256, 8  # 1 MiB of packed W_h: a team of two pays
    w = LSTMDirection(rng.normal(0, 0.1, (4 * H, D)), rng.normal(0, 0.1, (4 * H, H)),
                      rng.normal(0, 0.1, 4 * H))  # fmt: skip
    model = LSTMModel((LSTMLayer("lstm", (w,)),))
    x = rng.normal(size=(640, D)).astype(np.float32)
    full = run(model, x, trace="full", engine="numba")
    sizes = team_sizes(monkeypatch)
    bt = run_bounded(model, x, engine="numba", chunk=32)
    assert 2 in sizes
    sizes.clear()
    for t in (5, 333, 639, 100):
        for name in ("i", "f", "g", "o", "c", "h", "z_h", "pre"):
            got = getattr(bt.layers[0].directions[0], name)[t]
            np.testing.assert_array_equal(got, getattr(full.layers[0].directions[0], name)[t])
    assert sizes and set(sizes) == {1}


def test_two_threads_recomputing_at_once_get_the_full_traces_values(monkeypatch) -> None:
    """The window's thread jumps while a worker scans: both recompute through one small LRU
    cache (evicting each other's chunks) and read the full trace's values."""
    import sys
    import threading

    from lstmviz.core import checkpointed_trace

    monkeypatch.setattr(checkpointed_trace, "CACHE_BYTES", 1)  # evict at every insert
    sys.setswitchinterval(1e-6)  # switch threads between any two bytecodes, near enough
    model = MODELS["lstm_bi_stacked_head"]
    x = _x(model, 3000)
    full = run(model, x, trace="full")
    bt = run_bounded(model, x, chunk=8)
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for t in rng.integers(0, 48, 300):  # a few chunks: hits and evictions race
                k, d = int(rng.integers(0, 2)), int(rng.integers(0, 2))
                d = min(d, len(bt.layers[k].directions) - 1)
                for name in ("h", "c", "z_h", "pre"):
                    got = getattr(bt.layers[k].directions[d], name)[int(t)]
                    want = getattr(full.layers[k].directions[d], name)[int(t)]
                    np.testing.assert_array_equal(got, want)
        except BaseException as exc:  # reported below, never lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for th in threads:
        th.start()
    try:
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(0.005)
    assert errors == []


def test_a_range_is_recomputed_in_long_calls_and_a_jump_in_one_chunk(monkeypatch) -> None:
    """A streaming pass (``windows``) and a long ``direction_rows`` recompute runs of whole
    chunks in calls of up to ``GROUP_STEPS`` from the checkpoint where each run starts (its
    last chunk's going backward), not one call per chunk; the values stay the full trace's.
    A jump still recomputes no more than its chunk."""
    from lstmviz.core import checkpointed_trace as ct

    model = MODELS["lstm_go_backwards_sum"]  # a reverse direction below a forward layer
    x = _x(model, 3000)
    full = run(model, x, trace="full")
    bt = run_bounded(model, x, chunk=10)
    lengths: list[int] = []
    real = ct._run_chunk

    def spy(w, inp, states, dtype, engine):
        lengths.append(len(inp))
        return real(w, inp, states, dtype, engine)

    monkeypatch.setattr(ct, "_run_chunk", spy)
    monkeypatch.setattr(ct, "GROUP_STEPS", 400)
    for a, win in bt.windows(steps=1000):
        np.testing.assert_array_equal(win.layers[1].output, full.layers[1].output[a : a + 1000])
        for d in (0, 1):
            np.testing.assert_array_equal(
                win.layers[0].directions[d].f, full.layers[0].directions[d].f[a : a + 1000]
            )
    # 3 windows × 3 directions, each in runs of ≤ 40 chunks: 27 calls at most, none of one chunk
    assert lengths and max(lengths) == 400 and min(lengths) >= 100 and len(lengths) <= 27
    bt._cache.clear()
    lengths.clear()
    np.testing.assert_array_equal(
        bt.direction_rows(0, 1, "c", 5, 2995), full.layers[0].directions[1].c[5:2995]
    )
    assert max(lengths) == 400 and len(lengths) <= 8
    bt._cache.clear()
    lengths.clear()
    np.testing.assert_array_equal(
        bt.layers[0].directions[0].h[1234], full.layers[0].directions[0].h[1234]
    )
    assert max(lengths) <= 10


@pytest.mark.parametrize("d", [0, 1])
def test_the_diagnostics_view_needs_one_pass_for_the_product_and_the_report(d) -> None:
    """``trace_stream.prepare`` (the diagnostics view's worker job) folds the shown
    direction's retention product into the report's pass, in that direction's processing
    order (backward for the reverse direction, d = 0 here): one pass recomputing the run, not
    two; every number is the full trace's."""
    from lstmviz.core import diagnostics as diag
    from lstmviz.core import trace_stream

    model = MODELS["lstm_go_backwards_sum"]
    x = _x(model, 2000)
    full, bt = run(model, x, trace="full"), run_bounded(model, x, chunk=10)
    passes = []
    real = bt.windows

    def counting(*args, **kw):
        passes.append(kw.get("backward", False))
        return real(*args, **kw)

    bt.windows = counting  # type: ignore[method-assign]
    for unit in (None, 3):
        dt = bt.layers[0].directions[d]
        trace_stream.prepare(bt, dt, unit)
        want = diag.forget_product(full.layers[0].directions[d], unit)
        np.testing.assert_array_equal(diag.forget_product(dt, unit), want)
    assert passes == [dt.reverse]  # the second unit's product: direction_rows, not windows
    for a, b in zip(diag.report(full), diag.report(bt), strict=True):
        np.testing.assert_array_equal(b.saturation, a.saturation)
        np.testing.assert_array_equal(b.dead, a.dead)
        np.testing.assert_allclose(b.mean_forget, a.mean_forget, rtol=1e-6)
    assert diag.first_nonfinite(bt) == diag.first_nonfinite(full)
