"""The vectorised core against a per-unit, per-step loop written from the textbook equations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, MergeMode, OutputOrder, run
from lstmviz.core.activations import Activation


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def textbook(w: LSTMDirection, xs: np.ndarray) -> np.ndarray:
    """Scalar loops; returns h in time order. Peepholes and projection included."""
    T, D = xs.shape
    H, P = w.hidden_size, w.output_size
    h = [0.0] * P
    c = [0.0] * H
    out = np.zeros((T, P))
    steps = range(T - 1, -1, -1) if w.reverse else range(T)
    for t in steps:
        z = []
        for r in range(4 * H):
            s = float(w.b[r])
            s += sum(float(w.W_x[r, d]) * xs[t, d] for d in range(D))
            s += sum(float(w.W_h[r, k]) * h[k] for k in range(P))
            z.append(s)
        new_c, m = [], []
        for u in range(H):
            pi = float(w.p_i[u]) * c[u] if w.p_i is not None else 0.0
            pf = float(w.p_f[u]) * c[u] if w.p_f is not None else 0.0
            i = sig(z[u] + pi)
            f = sig(z[H + u] + pf)
            g = math.tanh(z[2 * H + u])
            cu = f * c[u] + i * g
            if w.cell_clip is not None:
                cu = max(-w.cell_clip, min(w.cell_clip, cu))
            po = float(w.p_o[u]) * cu if w.p_o is not None else 0.0
            o = sig(z[3 * H + u] + po)
            new_c.append(cu)
            m.append(o * math.tanh(cu))
        c = new_c
        h = (
            [sum(float(w.W_p[p, u]) * m[u] for u in range(H)) for p in range(P)]
            if w.W_p is not None
            else m
        )
        out[t] = h
    return out


def random_direction(rng, D, H, P=None, peep=False, reverse=False, clip=None) -> LSTMDirection:
    out = P or H
    return LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)),
        W_h=rng.normal(size=(4 * H, out)) * 0.5,
        b=rng.normal(size=4 * H),
        p_i=rng.normal(size=H) if peep else None,
        p_f=rng.normal(size=H) if peep else None,
        p_o=rng.normal(size=H) if peep else None,
        W_p=rng.normal(size=(P, H)) if P else None,
        cell_clip=clip,
        reverse=reverse,
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    T=st.integers(1, 6),
    D=st.integers(1, 4),
    H=st.integers(1, 5),
    proj=st.booleans(),
    peep=st.booleans(),
    reverse=st.booleans(),
    clip=st.sampled_from([None, 0.7, 3.0]),
)
def test_core_matches_textbook(seed, T, D, H, proj, peep, reverse, clip):
    rng = np.random.default_rng(seed)
    P = max(1, H - 1) if proj else None
    w = random_direction(rng, D, H, P, peep, reverse, clip)
    layer = LSTMLayer("l", (w,), output_order=OutputOrder.TIME)
    x = rng.normal(size=(T, D))
    trace = run(LSTMModel((layer,)), x, dtype=np.float64)
    np.testing.assert_allclose(trace.layers[0].output, textbook(w, x), atol=1e-10)
    d = trace.layers[0].directions[0]
    np.testing.assert_allclose(
        d.pre - d.peep if d.peep is not None else d.pre, d.z_x + d.z_h + d.b, atol=1e-12
    )


@pytest.mark.parametrize("mode", list(MergeMode))
def test_bidirectional_stack_matches_textbook(mode):
    rng = np.random.default_rng(3)
    fw, bw = random_direction(rng, 3, 4), random_direction(rng, 3, 4, reverse=True)
    l1 = LSTMLayer("bi", (fw, bw), merge_mode=mode)
    width = l1.output_size
    l2 = LSTMLayer("top", (random_direction(rng, width, 2),))
    x = rng.normal(size=(5, 3))
    trace = run(LSTMModel((l1, l2)), x, dtype=np.float64)
    a, b = textbook(fw, x), textbook(bw, x)
    merged = {
        MergeMode.CONCAT: np.concatenate([a, b], 1),
        MergeMode.NONE: np.concatenate([a, b], 1),
        MergeMode.SUM: a + b,
        MergeMode.MUL: a * b,
        MergeMode.AVE: (a + b) / 2,
    }[mode]
    np.testing.assert_allclose(trace.layers[0].output, merged, atol=1e-10)
    np.testing.assert_allclose(
        trace.layers[1].output, textbook(l2.directions[0], merged), atol=1e-10
    )


def test_go_backwards_processing_order():
    rng = np.random.default_rng(4)
    w = random_direction(rng, 2, 3, reverse=True)
    x = rng.normal(size=(6, 2))
    trace = run(
        LSTMModel((LSTMLayer("gb", (w,), output_order=OutputOrder.PROCESSING),)),
        x,
        dtype=np.float64,
    )
    np.testing.assert_allclose(trace.layers[0].output, textbook(w, x)[::-1], atol=1e-10)


def test_hard_sigmoid_variants_differ_and_bare_name_is_refused():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 2.9])
    k2, k3 = Activation("hard_sigmoid_k2")(x), Activation("hard_sigmoid_k3")(x)
    np.testing.assert_allclose(k2, np.clip(0.2 * x + 0.5, 0, 1))
    np.testing.assert_allclose(k3, np.clip(x / 6 + 0.5, 0, 1))
    assert not np.allclose(k2, k3)
    with pytest.raises(ValueError, match="hard_sigmoid_k2"):
        Activation("hard_sigmoid")


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((4, 2)), r"\(T, 3\)"),
        (np.zeros((0, 3)), "empty"),
        (np.array([[0.0, np.nan, 1.0]]), "NaN"),
        ([["a", "b", "c"]], r"\(T, 3\)"),
    ],
)
def test_bad_input_raises_valueerror_naming_shape(x, match):
    rng = np.random.default_rng(0)
    model = LSTMModel((LSTMLayer("l", (random_direction(rng, 3, 2),)),))
    with pytest.raises(ValueError, match=match):
        run(model, x)


def test_classic_parameter_counts():
    """Keras LSTM(1) on 1 feature: 12 parameters; on 2 features: 16; 4(DH + H² + H) in general."""
    for D, H, want in [(1, 1, 12), (2, 1, 16), (12, 64, 19_712)]:
        w = LSTMDirection(W_x=np.zeros((4 * H, D)), W_h=np.zeros((4 * H, H)), b=np.zeros(4 * H))
        assert w.n_params == want == 4 * (D * H + H * H + H)


def test_arrays_are_read_only():
    rng = np.random.default_rng(0)
    w = random_direction(rng, 2, 2)
    with pytest.raises(ValueError):
        w.W_x[0, 0] = 1.0
