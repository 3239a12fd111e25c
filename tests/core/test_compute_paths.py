"""The fast sigmoid/tanh loop, the general loop, and the arrays derived on first use.

``reference`` is the equations of CONVENTIONS.md §1 written step by step with the model's own
``Activation`` callables (float64, one allocation per intermediate): the loop lstmviz had
before it was optimised, kept here as the yardstick for every activation kind and clip.
"""

import numpy as np
import pytest

from lstmviz.core import Activation, LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.activations import NAMES
from lstmviz.core.compute import _fast_path


def reference(w: LSTMDirection, x: np.ndarray) -> dict[str, np.ndarray]:
    T, H = len(x), w.hidden_size
    gc = w.gate_clip

    def act(fn, z):
        return fn(np.clip(z, -gc, gc) if gc is not None else z)

    h, c = np.zeros(w.output_size), np.zeros(H)
    out = {k: np.zeros((T, H)) for k in ("i", "f", "g", "o", "c", "act_c", "m")}
    out["h"], out["pre"] = np.zeros((T, w.output_size)), np.zeros((T, 4 * H))
    zero = np.zeros(H)
    p_i, p_f, p_o = (zero if p is None else p for p in (w.p_i, w.p_f, w.p_o))
    for t in range(T - 1, -1, -1) if w.reverse else range(T):
        z = w.W_x @ x[t] + w.W_h @ h + w.b
        z[:H] += p_i * c
        z[H : 2 * H] += p_f * c
        i, f = act(w.act_gate, z[:H]), act(w.act_gate, z[H : 2 * H])
        g = act(w.act_cand, z[2 * H : 3 * H])
        c = f * c + i * g
        if w.cell_clip is not None:
            c = np.clip(c, -w.cell_clip, w.cell_clip)
        z[3 * H :] += p_o * c
        o = act(w.act_gate, z[3 * H :])
        m = o * w.act_cell(c)
        h = m if w.W_p is None else w.W_p @ m
        if w.W_p is not None and w.proj_clip is not None:
            h = np.clip(h, -w.proj_clip, w.proj_clip)
        for k, v in zip(
            ("i", "f", "g", "o", "c", "act_c", "m", "h", "pre"),
            (i, f, g, o, c, w.act_cell(c), m, h, z),
            strict=True,
        ):
            out[k][t] = v
    return out


def direction(rng, D=3, H=4, P=None, **kw) -> LSTMDirection:
    return LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, P or H)) * 0.6,
        b=rng.normal(size=4 * H),
        W_p=rng.normal(size=(P, H)) if P else None,
        **kw,
    )


def check(w: LSTMDirection, dtype=np.float64, atol=1e-12) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, w.input_size)) * 2
    dt = run(LSTMModel((LSTMLayer("l", (w,)),)), x, dtype=dtype).layers[0].directions[0]
    want = reference(w, x)
    for name, arr in want.items():
        np.testing.assert_allclose(getattr(dt, name), arr, atol=atol, rtol=atol, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("role", ["act_gate", "act_cand", "act_cell"])
def test_every_activation_in_every_role(name, role):
    rng = np.random.default_rng(NAMES.index(name))
    w = direction(rng, **{role: Activation(name)})
    w = w.replace(W_x=w.W_x * 0.3, W_h=w.W_h * 0.3)  # unbounded activations stay finite
    assert not _fast_path(w) or name in ("sigmoid", "tanh")
    with np.errstate(over="ignore"):
        check(w)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reverse": True},
        {"cell_clip": 0.5},
        {"gate_clip": 0.8},
        {"P": 2, "proj_clip": 0.3},
        {"P": 5, "reverse": True, "cell_clip": 1.0},
        {"peep": True},
        {"peep": True, "gate_clip": 1.5, "cell_clip": 0.7, "P": 3, "proj_clip": 0.4},
        {"peep_only": "p_o", "reverse": True},
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_clips_peepholes_projection(kw, dtype, atol):
    rng = np.random.default_rng(11)
    kw = dict(kw)
    if kw.pop("peep", False):
        kw.update(p_i=rng.normal(size=4), p_f=rng.normal(size=4), p_o=rng.normal(size=4))
    if "peep_only" in kw:
        kw[kw.pop("peep_only")] = rng.normal(size=4)
    check(direction(rng, **kw), dtype, atol)


def test_fast_and_general_loops_agree():
    """A gate clip too large to bite forces the general loop over the same arithmetic."""
    rng = np.random.default_rng(2)
    w = direction(rng, D=5, H=16, P=7, cell_clip=2.0)
    w = w.replace(W_h=w.W_h * 0.3)  # contractive, so float32 rounding does not grow
    slow = w.replace(gate_clip=1e30)
    assert _fast_path(w) and not _fast_path(slow)
    x = rng.normal(size=(40, 5))
    for dtype, atol in [(np.float32, 1e-6), (np.float64, 1e-13)]:
        a = run(LSTMModel((LSTMLayer("l", (w,)),)), x, dtype=dtype).layers[0].directions[0]
        b = run(LSTMModel((LSTMLayer("l", (slow,)),)), x, dtype=dtype).layers[0].directions[0]
        for name in ("i", "f", "g", "o", "c", "act_c", "m", "h", "pre", "z_h"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=atol, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True])
def test_states_are_shifted_views_and_derived_arrays_add_up(reverse):
    rng = np.random.default_rng(8)
    w = direction(rng, D=2, H=3, reverse=reverse, p_f=rng.normal(size=3), p_o=rng.normal(size=3))
    x = rng.normal(size=(6, 2))
    h0, c0 = rng.normal(size=3), rng.normal(size=3)
    dt = (
        run(LSTMModel((LSTMLayer("l", (w,)),)), x, [h0], [c0], dtype=np.float64)
        .layers[0]
        .directions[0]
    )
    prev = slice(1, None) if reverse else slice(None, -1)
    nxt = slice(None, -1) if reverse else slice(1, None)
    first = -1 if reverse else 0
    np.testing.assert_array_equal(dt.h_prev[nxt], dt.h[prev])
    np.testing.assert_array_equal(dt.c_prev[nxt], dt.c[prev])
    np.testing.assert_array_equal(dt.h_prev[first], h0)
    np.testing.assert_array_equal(dt.c_prev[first], c0)
    assert np.shares_memory(dt.h, dt.h_prev) and np.shares_memory(dt.c, dt.c_prev)
    np.testing.assert_allclose(dt.pre, dt.z_x + dt.z_h + dt.b + dt.peep, atol=1e-12)
    np.testing.assert_allclose(dt.peep[:, :3], 0.0)  # no p_i
    np.testing.assert_allclose(dt.peep[:, 3:6], w.p_f * dt.c_prev, atol=1e-15)
    np.testing.assert_allclose(dt.peep[:, 9:], w.p_o * dt.c, atol=1e-15)
    np.testing.assert_allclose(dt.f, 1 / (1 + np.exp(-dt.gate_pre("f"))), atol=1e-12)
    np.testing.assert_allclose(dt.m, dt.o * np.tanh(dt.c), atol=1e-15)
    assert dt.z_h is dt.z_h  # computed once, then cached


def test_materialize_and_nbytes():
    rng = np.random.default_rng(0)
    w = direction(rng, D=8, H=32)
    trace = run(LSTMModel((LSTMLayer("l", (w,)),)), rng.normal(size=(50, 8)))
    dt = trace.layers[0].directions[0]
    fresh = dt.nbytes
    # gates + c (5H) and h (H) with one spare row each, act_c (H); m is h: 4 bytes each
    assert fresh == 4 * (51 * 5 * 32 + 51 * 32 + 50 * 32 + 4 * 32)
    trace.materialize()
    assert dt.nbytes == fresh + 3 * 4 * 50 * 4 * 32  # z_x, z_h, pre (no peepholes)
    assert trace.nbytes >= dt.nbytes + trace.x.nbytes
