"""The thread team (``lstmviz.core.threads``): the same bits as one thread, fork-safe,
thread-safe, sized by ``LSTMVIZ_NUM_THREADS``.

Teams of 2 and 3 are forced here on small weights (``MIN_BYTES_PER_THREAD`` = 1) so that each
case is quick; a 2-core runner still runs them (three threads on two cores exercise the
yielding wait). Not timed: ``benchmarks/bench_core.py`` measures the speed.
"""

import multiprocessing
import os
import threading

import numpy as np
import pytest
from test_compute_compiled import one_direction, random_direction

from lstmviz.core import compiled, compute, run, threads
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import LSTMLayer, LSTMModel

F32 = np.dtype(np.float32)


def team_sizes(monkeypatch) -> list[int]:
    """The team size of every ``threads.run_team`` call from now on (the calls still run)."""
    sizes: list[int] = []
    real = threads.run_team

    def spy(kernel, args, n):
        sizes.append(n)
        return real(kernel, args, n)

    monkeypatch.setattr(threads, "run_team", spy)
    return sizes


@pytest.fixture
def small_teams(monkeypatch):
    """Teams of any size on any weights."""
    monkeypatch.setattr(threads, "MIN_BYTES_PER_THREAD", 1)
    monkeypatch.setattr(compiled, "PARALLEL_MIN_BYTES", 0)


def lstm_buffers(w, x):
    """The compiled engine's buffers of ``w`` over ``x``, input terms filled, states zero."""
    T, H = x.shape[0], w.hidden_size
    buf = compute._Buffers(w, T, F32)
    compute._input_terms(w, x, True, F32, out=buf.gates[:, H:])
    buf.c0[:] = 0.3
    buf.h0[:] = -0.2
    WpT = compute._projection_T(w, F32)
    m = buf.m
    if WpT is None:
        m, WpT = np.empty((0, 0), F32), np.empty((0, 0), F32)
        WpT.setflags(write=False)
    nan = float("nan")
    cc = nan if w.cell_clip is None else w.cell_clip
    pc = nan if w.proj_clip is None else w.proj_clip
    args = (buf.R, buf.Hb, buf.act_c, m, compute._packed_recurrent(w, F32), WpT, cc, pc)
    return buf, (*args, w.reverse)


def written(buf):
    """Every value the recurrence writes."""
    return [buf.gates, buf.c, buf.act_c, buf.h, buf.m_out()]


@pytest.mark.parametrize(
    "H, P, kw",
    [
        (64, None, {}),
        (128, None, {"cell_clip": 0.8}),
        (100, None, {}),
        (64, 24, {"proj_clip": 0.3}),
    ],
)
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_team_writes_the_serial_kernels_bits(small_teams, monkeypatch, H, P, kw, n, reverse):
    """Each element is computed by the same instructions whichever thread owns it (aligned
    64-unit chunks, blocks and units when H is not a multiple of 64, projected columns)."""
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", str(n))
    kernels = compiled.recurrence()
    rng = np.random.default_rng(H + n)
    w = random_direction(rng, D=5, H=H, P=P, reverse=reverse, **kw)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    serial, args = lstm_buffers(w, x)
    kernels.run_steps(*args)
    team, args = lstm_buffers(w, x)
    kernels.run_steps_parallel(*args)
    for a, b in zip(written(serial), written(team), strict=True):
        assert np.array_equal(a, b)


def gru(rng, H, reset_after, reverse=False):
    return GRUDirection(
        W_x=rng.normal(size=(3 * H, 4)),
        W_h=rng.normal(size=(3 * H, H)) * 0.4,
        b_x=rng.normal(size=3 * H),
        b_h=rng.normal(size=3 * H),
        reset_after=reset_after,
        reverse=reverse,
    )


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_gru_team_gives_the_serial_trace_bit_for_bit(
    small_teams, monkeypatch, reset_after, reverse
):
    """``run`` of a GRU on 2 and 3 threads: identical arrays (the same instructions per
    element); on one thread the same to float32 rounding (its input terms are BLAS' GEMM)."""
    rng = np.random.default_rng(4)
    model = LSTMModel((LSTMLayer("g", (gru(rng, 128, reset_after, reverse),)),))
    x = rng.normal(size=(300, 4))
    traces = []
    for n in (1, 2, 3):
        monkeypatch.setenv("LSTMVIZ_NUM_THREADS", str(n))
        traces.append(run(model, x, engine="numba").layers[0].directions[0])
    for name in ("r", "z", "n", "h"):
        assert np.array_equal(getattr(traces[1], name), getattr(traces[2], name)), name
        np.testing.assert_allclose(getattr(traces[0], name), getattr(traces[1], name), atol=2e-6)


@pytest.mark.parametrize("reset_after", [True, False])
def test_the_gru_team_kernel_writes_the_serial_kernels_bits(small_teams, monkeypatch, reset_after):
    from lstmviz.core import compute_cells

    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "3")
    kernels = compiled.recurrence()
    rng = np.random.default_rng(11)
    w = gru(rng, 192, reset_after)  # 3 chunks of 64 units: one per thread
    G_in = rng.normal(size=(80, 3 * 192)).astype(np.float32)
    outs = []
    for k in (kernels._replace(gru_steps_parallel=None), kernels):  # serial, then the team
        G, Hb = G_in.copy(), np.full((81, 192), 0.1, np.float32)
        compute_cells._gru_compiled(w, G, Hb, k)
        outs.append((G, Hb))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])


def test_run_on_a_team_agrees_with_one_thread(small_teams, monkeypatch):
    """An LSTM's ``run`` on a team also computes ``x W_xᵀ + b`` on the team (packed FMAs, not
    BLAS' GEMM, whose summation order differs): teams of any size give identical traces, and
    one thread agrees with them to float32 rounding."""
    rng = np.random.default_rng(5)
    model = one_direction(random_direction(rng, D=16, H=128))
    x = rng.normal(size=(300, 16))
    outs = {}
    for n in (1, 2, 3):
        monkeypatch.setenv("LSTMVIZ_NUM_THREADS", str(n))
        outs[n] = run(model, x).layers[0].directions[0]
    for name in ("i", "f", "g", "o", "c", "h"):
        assert np.array_equal(getattr(outs[2], name), getattr(outs[3], name)), name
        np.testing.assert_allclose(getattr(outs[1], name), getattr(outs[2], name), atol=2e-6)


def test_the_thread_count_comes_from_the_environment_else_the_cores(monkeypatch):
    monkeypatch.delenv("LSTMVIZ_NUM_THREADS", raising=False)
    assert threads.requested() == threads.cores() >= 1
    assert compiled.recurrence().threads() == threads.cores()
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "3")
    assert compiled.recurrence().threads() == 3
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "x")
    assert threads.requested() == threads.cores()


def test_a_container_quota_caps_the_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    for text, want in (("200000 100000\n", 2), ("150000 100000", 2), ("max 100000", None)):
        cpu_max.write_text(text)
        assert threads._cgroup_quota(str(cpu_max)) == want
    assert threads._cgroup_quota(str(tmp_path / "missing")) is None


def test_runs_use_as_many_threads_as_asked_and_only_where_it_pays(monkeypatch):
    sizes = team_sizes(monkeypatch)
    rng = np.random.default_rng(6)
    big = one_direction(random_direction(rng, D=4, H=256))  # 1 MiB of packed W_h
    x = rng.normal(size=(260, 4))
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "1")
    run(big, x)
    assert sizes == []
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "3")
    run(big, x)
    assert sizes == [2]  # input terms and recurrence in one call: 1 MiB keeps 2 busy
    assert threads.team_size(4 << 20, 64) == 3  # 4 MiB: the three asked for
    sizes.clear()
    run(one_direction(random_direction(rng, D=4, H=64)), x)  # 64 KiB: one thread
    assert sizes == []


def test_two_python_threads_running_at_once_get_the_right_traces(small_teams, monkeypatch):
    """One call holds the team; a concurrent one runs serially (no oversubscription, no
    deadlock between two half-formed teams)."""
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "2")
    rng = np.random.default_rng(7)
    model = one_direction(random_direction(rng, D=4, H=128))
    xs = [rng.normal(size=(400, 4)) for _ in range(4)]
    want = [run(model, x).output for x in xs]
    got: dict[int, np.ndarray] = {}

    def work(k):
        got[k] = run(model, xs[k]).output

    workers = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=60)
    for k in range(4):
        np.testing.assert_allclose(got[k], want[k], atol=2e-6)


def test_a_failing_thread_aborts_the_team_instead_of_hanging(small_teams):
    from lstmviz.core import threads_kernels

    rng = np.random.default_rng(8)
    w = random_direction(rng, D=3, H=64)
    _, args = lstm_buffers(w, rng.normal(size=(50, 3)).astype(np.float32))
    scratch = np.zeros(args[4].shape[0] * 64, np.float32)

    def kernel(*a):
        if a[-2] == 1:
            raise ZeroDivisionError("worker failed")
        return threads_kernels.lstm_team(*a)

    with pytest.raises(ZeroDivisionError):
        threads.run_team(kernel, (*args, scratch), 2)
    assert threads.run_team(threads_kernels.lstm_team, (*args, scratch), 2)  # usable again


def child_runs(model, x, want) -> None:
    """In a forked child: run on the team again, exit 0 on the same output."""
    same = np.array_equal(run(model, x).output, want)
    os._exit(0 if same else 3)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() exists on POSIX only")
def test_a_forked_child_runs_on_its_own_team(small_teams, monkeypatch):
    """After a threaded run, a child made by fork() (os.fork and multiprocessing's "fork"
    start) runs ``lstmviz.run`` on threads again and exits 0: no C threading layer's state
    is inherited (GNU OpenMP aborted such a child)."""
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "2")
    model = one_direction(random_direction(np.random.default_rng(1), D=3, H=256))
    x = np.random.default_rng(2).normal(size=(300, 3))
    want = run(model, x).output
    assert any(t.name == "lstmviz-team" for t in threading.enumerate())  # threads did run
    pid = os.fork()
    if pid == 0:
        try:
            child_runs(model, x, want)
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    proc = multiprocessing.get_context("fork").Process(target=child_runs, args=(model, x, want))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 0


def test_alone_runs_the_team_kernels_on_this_thread_with_the_teams_bits(monkeypatch):
    """``threads.alone()`` (a bounded trace's short recomputations): no team call, the same
    kernels as the team, so bit-for-bit the team's trace (BLAS' input terms would differ)."""
    rng = np.random.default_rng(8)
    model = one_direction(random_direction(rng, D=16, H=256))  # 1 MiB: a team of 2 pays
    x = rng.normal(size=(300, 16))
    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", "2")
    sizes = team_sizes(monkeypatch)
    team = run(model, x).layers[0].directions[0]
    assert sizes and max(sizes) == 2
    sizes.clear()
    with threads.alone():
        alone = run(model, x).layers[0].directions[0]
    assert max(sizes) == 1  # asked for a team of one: run_team runs nothing, serial runs
    for name in ("i", "f", "g", "o", "c", "h"):
        assert np.array_equal(getattr(team, name), getattr(alone, name)), name
    sizes.clear()
    run(model, x)
    assert max(sizes) == 2  # only inside the block


@pytest.mark.parametrize("H", [128, 100])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("n", [2, 3])
def test_input_terms_in_the_teams_call_are_the_input_kernels_bits(
    small_teams, monkeypatch, H, reverse, n
):
    """``run_steps_parallel(..., inputs)`` computes ``x W_xᵀ + b`` in the recurrence's team
    call (``lstm_direction_team``): the same values as ``input_terms_team`` on one thread and
    then the serial recurrence, whoever claims which block; and the same when the team is
    taken and it all runs on this thread."""
    from lstmviz.core import threads_kernels

    monkeypatch.setenv("LSTMVIZ_NUM_THREADS", str(n))
    kernels = compiled.recurrence()
    rng = np.random.default_rng(H + n + reverse)
    w = random_direction(rng, D=6, H=H, reverse=reverse)
    x = rng.normal(size=(45, 6)).astype(np.float32)
    inputs = compute._team_inputs(w, x, kernels, F32)
    assert inputs is not None or (4 * H) % 64
    if inputs is None:  # 4H not a multiple of 64: BLAS computes them, as the engine does
        return
    want, args = lstm_buffers(w, x)
    want.gates[:, H:] = np.nan
    sync = np.zeros(threads._SYNC_LEN, np.int64)
    threads_kernels.input_terms_team(*inputs, want.R, int(reverse), H, sync, 0, 1)
    kernels.run_steps(*args)
    sizes = team_sizes(monkeypatch)
    for taken in (False, True):
        got, args = lstm_buffers(w, x)
        got.gates[:, H:] = np.nan  # every input term must be written again
        team = threads._team["team"]
        if taken:
            team.busy.acquire()
        try:
            kernels.run_steps_parallel(*args, inputs)
        finally:
            if taken:
                team.busy.release()
        for a, b in zip(written(want), written(got), strict=True):
            assert np.array_equal(a, b)
    assert len(sizes) == 2 and min(sizes) >= 2  # one team call each; the second found it taken


@pytest.mark.skipif(
    threads._sched_getcpu() is None or len(os.sched_getaffinity(0)) < 2,
    reason="sets CPU affinity: Linux with 2 or more CPUs only",
)
def test_the_workers_may_run_anywhere_but_on_the_callers_cpu(monkeypatch):
    """Before the workers are woken, each may run on every CPU this thread may use except the
    one it runs on now, so the OS cannot put a woken worker on the caller's core (where the
    two would take turns at every barrier); the caller's own CPUs are left alone."""
    allowed = os.sched_getaffinity(0)
    seen: dict[int, set[int]] = {}

    def kernel(sync, tid, n):
        seen[tid] = os.sched_getaffinity(0)
        return True

    for cpu in sorted(allowed)[:2]:
        monkeypatch.setitem(threads._getcpu, "function", lambda cpu=cpu: cpu)
        assert threads.run_team(kernel, (), 3)
        assert seen[1] == seen[2] == allowed - {cpu}
        assert seen[0] == allowed == os.sched_getaffinity(0)
    monkeypatch.setitem(threads._getcpu, "function", lambda: -1)  # unknown: nothing changes
    assert threads.run_team(kernel, (), 3)
    assert seen[1] == allowed - {sorted(allowed)[1]}

    def refused(*args):
        raise OSError("not permitted")

    monkeypatch.setitem(threads._getcpu, "function", lambda: sorted(allowed)[0])
    monkeypatch.setattr(threads.os, "sched_setaffinity", refused)
    assert threads.run_team(kernel, (), 3)  # the team runs all the same


def test_a_new_team_knows_its_workers_thread_ids_before_its_first_call(monkeypatch) -> None:
    """``grow`` returns once each worker has said its OS thread id, however late the new
    thread gets to run, so the very first team call can already keep the workers off the
    caller's CPU."""
    import time

    real = threads._work

    def late(*args):
        time.sleep(0.05)  # a new thread scheduled late (a busy machine)
        real(*args)

    monkeypatch.setattr(threads, "_work", late)
    team = threads._Team()
    team.grow(2)
    assert len(team.native_ids) == 2 and len(set(team.native_ids)) == 2
    assert threading.get_native_id() not in team.native_ids
    team.grow(2)  # enough already: no more threads
    assert team.workers == 2 and len(team.native_ids) == 2
