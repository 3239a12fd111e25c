"""The compiled engine (numba, the ``fast`` extra) against torch and against the NumPy loop.

numba is in the test extra, so these run in CI; the engine must give the same trace as the
NumPy loop (to float32 rounding) and torch's outputs at 1e-5, including clips, projection,
reverse directions, initial states and NaN propagation.
"""

import numpy as np
import pytest
import torch
from test_compute_paths import reference
from test_compute_torch import copy_weights, torch_forward, torch_lstm

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, compiled, compute, run

FIELDS = ("i", "f", "g", "o", "c", "act_c", "m", "h")


def one_direction(w: LSTMDirection) -> LSTMModel:
    return LSTMModel((LSTMLayer("l", (w,)),))


def random_direction(rng, D=3, H=5, P=None, **kw) -> LSTMDirection:
    return LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, P or H)) * 0.6,
        b=rng.normal(size=4 * H),
        W_p=rng.normal(size=(P, H)) * 0.5 if P else None,
        **kw,
    )


def assert_both_directions_follow_the_equations(w: LSTMDirection, rng, T: int) -> None:
    """The compiled engine's trace of ``w`` reading forwards and backwards, against the
    equations step by step (``reference``), every recorded field at 1e-5."""
    for reverse in (False, True):
        w = w.replace(reverse=reverse)
        x = rng.normal(size=(T, w.input_size)) * 2
        fast = run(one_direction(w), x, engine="numba").layers[0].directions[0]
        want = reference(w, x)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(fast, name), want[name], atol=1e-5, err_msg=name)


def test_numba_is_installed_with_the_test_extra():
    assert compiled.recurrence() is not None


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("bidirectional, proj", [(False, 0), (True, 0), (False, 3), (True, 3)])
def test_compiled_matches_torch(bidirectional, proj):
    lstm = torch_lstm(bidirectional, proj, torch.float32, 11)
    model = copy_weights(lstm)
    n_dir, out = 1 + bidirectional, proj or 6
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    h0 = rng.normal(size=(2, n_dir, out)) * 0.5
    c0 = rng.normal(size=(2, n_dir, 6)) * 0.5
    y, (h_n, c_n) = torch_forward(lstm, x, h0, c0)
    trace = run(model, x, list(h0), list(c0), engine="numba")
    np.testing.assert_allclose(trace.layers[-1].output, y[:, 0].numpy(), atol=1e-5, rtol=0)
    last = trace.layers[-1].directions
    np.testing.assert_allclose(last[0].h[-1], h_n[2 * n_dir - n_dir, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(last[0].c[-1], c_n[2 * n_dir - n_dir, 0].numpy(), atol=1e-5)
    if bidirectional:  # the backward direction ends at time 0
        np.testing.assert_allclose(last[1].h[0], h_n[-1, 0].numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reverse": True},
        {"cell_clip": 0.7},
        {"P": 2, "proj_clip": 0.4},
        {"P": 3, "cell_clip": 1.5, "reverse": True},
    ],
)
@pytest.mark.parametrize("H", [5, 16])  # the last packed block zero-padded, or 4H % 64 == 0
def test_compiled_agrees_with_numpy_and_the_textbook(kw, H):
    rng = np.random.default_rng(len(kw))
    w = random_direction(rng, H=H, **kw)
    x = rng.normal(size=(30, w.input_size)) * 2
    fast = run(one_direction(w), x, engine="numba").layers[0].directions[0]
    slow = run(one_direction(w), x, engine="numpy").layers[0].directions[0]
    want = reference(w, x)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), atol=2e-6)
        np.testing.assert_allclose(getattr(fast, name), want[name], atol=1e-5, err_msg=name)
    if "cell_clip" in kw:
        assert np.abs(fast.c).max() <= kw["cell_clip"]
    np.testing.assert_allclose(fast.pre, slow.pre, atol=1e-5)  # derived arrays agree too


def test_saturated_gates_reach_exactly_zero_and_one():
    rng = np.random.default_rng(3)
    w = random_direction(rng, H=4)
    w = w.replace(W_x=w.W_x * 50)
    x = rng.normal(size=(20, 3))
    fast = run(one_direction(w), x, engine="numba").layers[0].directions[0]
    slow = run(one_direction(w), x, engine="numpy").layers[0].directions[0]
    for name in ("i", "f", "o"):
        gate = getattr(fast, name)
        assert gate.min() >= 0.0 and gate.max() <= 1.0
        np.testing.assert_array_equal(gate == 1.0, getattr(slow, name) == 1.0)


@pytest.mark.parametrize("H", [4, 16])
def test_nan_in_the_weights_spreads_as_in_numpy(H):
    rng = np.random.default_rng(4)
    w = random_direction(rng, H=H)
    W_h = w.W_h.copy()
    W_h[H + 1, 2] = np.nan  # f of unit 1 reads h_(t-1) of unit 2 (0 · NaN is NaN at step 0)
    w = w.replace(W_h=W_h)
    x = rng.normal(size=(6, 3))
    fast = run(one_direction(w), x, engine="numba").layers[0].directions[0]
    slow = run(one_direction(w), x, engine="numpy").layers[0].directions[0]
    for name in FIELDS:
        np.testing.assert_array_equal(np.isnan(getattr(fast, name)), np.isnan(getattr(slow, name)))
    assert np.isnan(fast.f[0, 1]) and not np.isnan(fast.f[0, [0, 2, 3]]).any()
    assert np.isnan(fast.h[-1]).all()  # through c, h and W_h it reaches every unit


def test_auto_uses_the_compiled_loop_only_where_it_pays():
    rng = np.random.default_rng(5)
    small = random_direction(rng, H=8)
    long_T, short_T = compiled.MIN_COMPILED_STEPS, compiled.MIN_COMPILED_STEPS - 1
    f32 = np.dtype(np.float32)
    kernels = compiled.recurrence()
    assert compute._compiled_kernels("auto", small, long_T, f32) is kernels
    assert compute._compiled_kernels("auto", small, short_T, f32) is None
    assert compute._compiled_kernels("numba", small, short_T, f32) is kernels
    assert compute._compiled_kernels("auto", small, long_T, np.dtype(np.float64)) is None
    assert compute._compiled_kernels("numpy", small, long_T, f32) is None
    peep = small.replace(p_i=np.ones(8), p_f=np.ones(8), p_o=np.ones(8))
    assert compute._compiled_kernels("numba", peep, long_T, f32) is None  # general loop only


@pytest.mark.parametrize("H, P", [(13, None), (6, 17), (9, 3), (16, None), (32, 7), (16, 21)])
def test_packed_matvec_matches_the_equations_with_and_without_padding(H, P):
    """4H a multiple of 64 (16, 32) or not (its last block zero-padded, computed in a
    scratch row), P a multiple of the projection's 4 rows or not, blocks walked in
    alternating order from step to step, both directions."""
    rng = np.random.default_rng(7)
    w = random_direction(rng, H=H, P=P, cell_clip=0.8, proj_clip=0.3 if P else None)
    assert_both_directions_follow_the_equations(w, rng, T=25)


@pytest.mark.parametrize("G", [4, 64, 100, 128])
def test_pack_puts_each_block_of_64_gate_columns_in_one_run_of_memory(G):
    WhT = np.arange(3 * G, dtype=np.float32).reshape(3, G)
    Wk = compiled.pack(WhT)
    assert Wk.shape == (-(-G // 64), 3, 64) and Wk.flags.c_contiguous
    unpacked = Wk.transpose(1, 0, 2).reshape(3, -1)
    np.testing.assert_array_equal(unpacked[:, :G], WhT)
    assert not unpacked[:, G:].any()  # the padding adds nothing to the sums


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("proj", [0, 5])
def test_packed_kernel_matches_torch(proj):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(4, 32, num_layers=2, bidirectional=True, proj_size=proj).eval()
    model = copy_weights(lstm)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 4))
    out = proj or 32
    h0, c0 = rng.normal(size=(2, 2, out)) * 0.5, rng.normal(size=(2, 2, 32)) * 0.5
    y, _ = torch_forward(lstm, x, h0, c0)
    trace = run(model, x, list(h0), list(c0), engine="numba")
    np.testing.assert_allclose(trace.layers[-1].output, y[:, 0].numpy(), atol=1e-5, rtol=0)


def test_packed_kernel_refuses_weights_that_do_not_fit_the_buffers():
    """The packed matvec is LLVM IR that reads without bounds checks; its caller is checked.
    Read-only weights, as ``compute`` passes them: no second compiled signature."""
    kernels = compiled.recurrence()
    f32, nan, ro = np.float32, float("nan"), compiled._readonly
    T, H = 2, 16
    R, Hb, act_c = np.zeros((T + 1, 5 * H), f32), np.zeros((T + 1, H), f32), np.zeros((T, H), f32)
    none, no_proj = np.zeros((0, 0), f32), ro(np.zeros((0, 0), f32))
    Wk = ro(np.zeros((1, H, 64), f32))
    bad_weights = [(2, H, 64), (1, 8, 64), (0, H, 64), (1, H, 32)]
    for shape in bad_weights:
        with pytest.raises(ValueError, match="packed"):
            kernels.run_steps(
                R, Hb, act_c, none, ro(np.zeros(shape, f32)), no_proj, nan, nan, False
            )
    with pytest.raises(ValueError, match="buffers"):
        kernels.run_steps(R[:2], Hb, act_c, none, Wk, no_proj, nan, nan, False)
    with pytest.raises(ValueError, match="without a projection"):
        kernels.run_steps(R, np.zeros((T + 1, 4), f32), act_c, none, Wk, no_proj, nan, nan, False)
    P = 4  # a projection: h is P wide, m (T, H), W_pᵀ (H, P)
    Hp, Wkp = np.zeros((T + 1, P), f32), ro(np.zeros((1, P, 64), f32))
    for m, WpT in [
        (none, (H, P)),
        (np.zeros((T, H), f32), (H, 1)),
        (np.zeros((T, 3), f32), (H, P)),
    ]:
        with pytest.raises(ValueError, match="projection"):
            kernels.run_steps(R, Hp, act_c, m, Wkp, ro(np.zeros(WpT, f32)), nan, nan, False)
    kernels.run_steps(R, Hb, act_c, none, Wk, no_proj, nan, nan, False)
    WpT = ro(np.zeros((H, P), f32))
    kernels.run_steps(R, Hp, act_c, np.zeros((T, H), f32), Wkp, WpT, nan, nan, False)


def test_engine_is_checked(monkeypatch):
    model = one_direction(random_direction(np.random.default_rng(6)))
    with pytest.raises(ValueError, match="engine"):
        run(model, np.zeros((3, 3)), engine="fortran")
    monkeypatch.setattr(compiled, "recurrence", lambda: None)  # as where numba has no wheel
    with pytest.raises(RuntimeError, match=r"numba is not installed.*pip install numba"):
        run(model, np.zeros((3, 3)), engine="numba")
    assert run(model, np.zeros((300, 3))).layers[0].output.shape == (300, 5)  # auto: NumPy


@pytest.fixture
def fresh_kernels():
    """Kernels resolved again in the test (and once more after it, with its settings gone)."""
    compiled.reset()
    yield
    compiled.reset()


def test_kernels_can_be_prepared_in_the_background(fresh_kernels):
    assert not compiled.ready()
    thread = compiled.prepare_in_background()
    thread.join(timeout=120)
    assert compiled.ready() and compiled.recurrence() is not None


def test_engine_numba_says_why_it_is_unavailable(fresh_kernels, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("no LLVM target here")

    monkeypatch.setattr(compiled, "_warm_up", broken)
    model = one_direction(random_direction(np.random.default_rng(6)))
    with pytest.raises(RuntimeError, match="numba is installed but could not compile here"):
        run(model, np.zeros((3, 3)), engine="numba")
    assert run(model, np.zeros((300, 3))).layers[0].output.shape == (300, 5)  # auto: NumPy


def test_the_warm_up_compiles_the_signature_every_real_call_uses(monkeypatch):
    """Prepared weights are read-only, which numba types apart from writable arrays: a
    warm-up with other flags left a second compile for the first real run (seconds, on the
    GUI thread)."""
    import numba

    from lstmviz.core import _numba_kernels

    seen = []

    def record(*args):
        seen.append(tuple(numba.typeof(a) for a in args))

    monkeypatch.setattr(_numba_kernels, "run_steps", record)
    for projection in (False, True):
        compiled._warm_up(_numba_kernels.run_steps, projection=projection)
    warm = set(seen)
    seen.clear()
    kernels = compiled.Kernels(record, None, lambda: 1)
    monkeypatch.setattr(compiled, "recurrence", lambda: kernels)
    rng = np.random.default_rng(3)
    for P in (None, 3):
        run(one_direction(random_direction(rng, H=6, P=P)), rng.normal(size=(5, 3)), engine="numba")
    assert set(seen) <= warm and len(warm) == 1


@pytest.mark.parametrize("H, P", [(13, None), (16, None), (32, 7)])
def test_parallel_kernel_matches_the_equations(monkeypatch, H, P):
    """Each step shared by a team of two threads (``run_steps_parallel``, lstmviz.core.threads)
    and the input terms computed by it, forced here for small weights; padded and projected
    cases, both directions."""
    from lstmviz.core import threads

    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "2")
    monkeypatch.setattr(compiled, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(threads, "MIN_BYTES_PER_THREAD", 1)
    rng = np.random.default_rng(9)
    w = random_direction(rng, H=H, P=P, cell_clip=0.9, proj_clip=0.5 if P else None)
    assert_both_directions_follow_the_equations(w, rng, T=40)


def test_the_parallel_kernel_is_chosen_only_where_it_pays():
    def kernel(*a):
        return None

    big = np.zeros((compiled.PARALLEL_MIN_BYTES // 4,), np.float32)
    small = big[:-1]
    assert compiled.Kernels(kernel, kernel, lambda: 2).parallel_for(big)
    assert not compiled.Kernels(kernel, kernel, lambda: 2).parallel_for(small)
    assert not compiled.Kernels(kernel, kernel, lambda: 1).parallel_for(big)
    assert not compiled.Kernels(kernel, None, lambda: 2).parallel_for(big)


def test_parallel_input_terms_refuse_weights_that_do_not_fit_the_buffers():
    from lstmviz.core import threads, threads_kernels

    def input_terms_parallel(Wxk, xa, R, first):  # one thread of a team of one
        sync = np.zeros(threads._SYNC_LEN, np.int64)
        threads_kernels.input_terms_team(Wxk, xa, R, first, 16, sync, 0, 1)

    f32 = np.float32
    R, xa = np.zeros((4, 80), f32), np.zeros((3, 5), f32)  # H = 16: one block of 64 lanes
    for Wxk, first in ((np.zeros((2, 5, 64), f32), 0), (np.zeros((1, 4, 64), f32), 0)):
        with pytest.raises(ValueError, match="packed"):
            input_terms_parallel(Wxk, xa, R, first)
    with pytest.raises(ValueError, match="packed"):  # rows past the buffer's end
        input_terms_parallel(np.zeros((1, 5, 64), f32), xa, R, 2)
    input_terms_parallel(np.zeros((1, 5, 64), f32), xa, R, 1)


@pytest.mark.parametrize("T", [1, 3, 4, 7, 9, 33])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_input_terms_several_rows_per_pass_give_one_rows_bits(T, n):
    """``input_terms_team`` multiplies ``INPUT_ROWS`` steps per pass over a weight block:
    every value is bit for bit ``_add_packed_block`` from zero, one row at a time (what the
    kernel did before), for any T (whole passes and the rows left over), any row and column
    offset and any team; and it is ``x W_xᵀ`` to float32 rounding."""
    from lstmviz.core import _numba_kernels, threads, threads_kernels

    @_numba_kernels._njit
    def one_row_at_a_time(Wxk, xa, out, first, col0):
        for jb in range(Wxk.shape[0]):
            for t in range(xa.shape[0]):
                z = out[first + t, col0:]
                for j in range(jb * 64, jb * 64 + 64):
                    z[j] = 0.0
                _numba_kernels._add_packed_block(Wxk, xa[t], z, jb)

    rng = np.random.default_rng(T * 10 + n)
    D, G, first, col0 = 13, 3 * 64, 2, 24
    W = rng.normal(size=(D, G)).astype(np.float32)
    xa = rng.normal(size=(T, D)).astype(np.float32)
    Wxk = compiled.pack(W)
    want = np.full((T + 3, col0 + G + 5), 7.0, np.float32)
    one_row_at_a_time(Wxk, xa, want, first, col0)
    got = np.full_like(want, 7.0)
    args = (Wxk, xa, got, first, col0)
    if n == 1:
        threads_kernels.input_terms_team(*args, np.zeros(threads._SYNC_LEN, np.int64), 0, 1)
    else:  # blocks go to whichever thread claims them first
        assert threads.run_team(threads_kernels.input_terms_team, args, n)
    assert np.array_equal(got, want)
    block = got[first : first + T, col0 : col0 + G]
    assert np.allclose(block, xa.astype(np.float64) @ W, rtol=1e-5, atol=1e-5)
    assert (got[:first] == 7.0).all() and (got[first + T :] == 7.0).all()
    assert (got[:, :col0] == 7.0).all() and (got[:, col0 + G :] == 7.0).all()


def test_the_compiled_tanh_is_accurate_and_never_leaves_minus_one_to_one():
    from lstmviz.core import _numba_kernels

    @_numba_kernels._njit
    def tanh_all(x, out):
        for j in range(x.shape[0]):
            out[j] = _numba_kernels.tanh32(x[j])

    x = np.concatenate([np.linspace(-12, 12, 200_001), [0.0, -0.0, 1e-30, np.inf, -np.inf]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    tanh_all(x, out)
    assert np.abs(out - np.tanh(x.astype(np.float64))).max() < 3.5e-7
    assert out.min() >= -1.0 and out.max() <= 1.0
    nan = np.array([np.nan], np.float32)
    tanh_all(nan, out[:1])
    assert np.isnan(out[0])


def test_a_slow_first_compile_is_announced(fresh_kernels, monkeypatch, caplog):
    import time

    real = compiled._warm_up

    def slow(*args, **kw):
        time.sleep(0.2)
        real(*args, **kw)

    monkeypatch.setattr(compiled, "COMPILE_NOTICE_S", 0.05)
    monkeypatch.setattr(compiled, "_warm_up", slow)
    with caplog.at_level("WARNING", logger="lstmviz.core.compiled"):
        assert compiled.recurrence() is not None
    assert "compiling its numba kernels, once per machine" in caplog.text
