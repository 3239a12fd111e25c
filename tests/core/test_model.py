"""The canonical model keeps its arrays immutable without copying them more than needed."""

import pickle

import numpy as np
import pytest

from lstmviz.core import (
    Activation,
    DenseLayer,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    OutputOrder,
    run,
)


def _direction(W_x: np.ndarray) -> LSTMDirection:
    return LSTMDirection(W_x=W_x, W_h=np.zeros((8, 2)), b=np.zeros(8))


def test_writable_input_is_copied_and_frozen():
    W_x = np.ones((8, 3))
    w = _direction(W_x)
    W_x[0, 0] = 5.0  # the caller's array stays theirs
    assert w.W_x[0, 0] == 1.0
    with pytest.raises(ValueError):
        w.W_x[0, 0] = 2.0


def test_replace_does_not_copy_frozen_weights():
    w = _direction(np.ones((8, 3)))
    assert w.replace(reverse=True).W_x is w.W_x


def test_read_only_view_of_a_writable_array_is_still_copied():
    base = np.ones((8, 3))
    view = base[:]
    view.setflags(write=False)
    w = _direction(view)
    base[0, 0] = 7.0
    assert w.W_x[0, 0] == 1.0


def test_array_over_immutable_bytes_is_kept():
    buf = np.ones((8, 3), dtype=np.float32).tobytes()
    arr = np.frombuffer(buf, dtype=np.float32).reshape(8, 3)
    assert _direction(arr).W_x is arr


def test_half_precision_is_widened():
    w = _direction(np.ones((8, 3), dtype=np.float16))
    assert w.W_x.dtype == np.float32


def test_derived_arrays_are_made_once_read_only_and_not_pickled():
    w = _direction(np.ones((8, 3)))
    calls = []

    def make():
        calls.append(1)
        return np.arange(3.0)

    first = w.derived("k", make)
    assert w.derived("k", make) is first and len(calls) == 1
    with pytest.raises(ValueError):
        first[0] = 9.0
    again = pickle.loads(pickle.dumps(w))
    assert np.array_equal(again.W_x, w.W_x) and "_derived" not in again.__dict__
    assert "_derived" not in w.replace(reverse=True).__dict__


def test_runs_on_prepared_weights_match_runs_on_a_fresh_copy():
    rng = np.random.default_rng(4)
    H, D = 3, 2
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, D)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )
    m = LSTMModel((LSTMLayer("l", (w,)),))
    x = rng.normal(size=(300, D))
    cases = [(np.float32, "numpy"), (np.float32, "numba"), (np.float64, "numpy")]

    def fresh(dt, engine):
        return run(LSTMModel((LSTMLayer("l", (w.replace(),)),)), x, dtype=dt, engine=engine)

    want = {case: fresh(*case).output for case in cases}
    for _ in range(2):  # the second pass runs on the copies the first one prepared
        for dt, engine in reversed(cases):
            out = run(m, x, dtype=dt, engine=engine).output
            assert out.dtype == dt
            np.testing.assert_array_equal(out, want[dt, engine])
    # [W_x.T; b] and W_h.T for float32 and float64, and the compiled engine's packed W_h.T
    assert len(w.__dict__["_derived"]) == 5


def test_dense_head_runs_at_every_step_after_the_last_layer():
    rng = np.random.default_rng(9)
    H = 3
    w = LSTMDirection(
        W_x=rng.normal(size=(4 * H, 2)), W_h=rng.normal(size=(4 * H, H)), b=rng.normal(size=4 * H)
    )
    W1, b1, W2 = rng.normal(size=(4, H)), rng.normal(size=4), rng.normal(size=(1, 4))
    head = (
        DenseLayer("hidden", W1, b1, Activation("relu")),
        DenseLayer("out", W2, None, Activation("sigmoid")),
    )
    model = LSTMModel((LSTMLayer("l", (w,)),), head=head)
    x = rng.normal(size=(5, 2))
    trace = run(model, x, dtype=np.float64)
    h = trace.output
    want = 1 / (1 + np.exp(-(np.maximum(h @ W1.T + b1, 0) @ W2.T)))
    np.testing.assert_allclose(trace.head_output, want, atol=1e-12)
    assert trace.network_output is trace.head_output
    plain = run(model.replace(head=()), x)
    assert plain.head_output is None and plain.network_output is plain.output
    with pytest.raises(ValueError, match="expects 5 inputs"):
        model.replace(head=(DenseLayer("bad", np.zeros((1, 5))),))


def test_direction_labels_follow_the_framework_names_and_say_how_time_is_read():
    def d(reverse):
        return LSTMDirection(
            W_x=np.zeros((4, 1)), W_h=np.zeros((4, 1)), b=np.zeros(4), reverse=reverse
        )

    plain = LSTMLayer("bi", (d(False), d(True)))
    assert [plain.direction_label(k) for k in (0, 1)] == ["forward", "backward"]
    assert not plain.reversed_output
    flipped = LSTMLayer("bi", (d(True), d(False)), output_order=OutputOrder.PROCESSING)
    assert [flipped.direction_label(k) for k in (0, 1)] == [
        "forward (reads time backwards)",
        "backward (reads time forwards)",
    ]
    assert flipped.reversed_output
    assert LSTMLayer("gb", (d(True),)).direction_label(0) == "backward"


def test_summary_says_what_the_network_returns_after_the_head():
    from lstmviz.core.summary import model_summary

    rng = np.random.default_rng(2)
    w = LSTMDirection(W_x=rng.normal(size=(8, 3)), W_h=rng.normal(size=(8, 2)), b=np.zeros(8))
    bare = LSTMModel((LSTMLayer("l", (w,)),))
    assert bare.head_output_size == 2
    assert "input size 3; output size 2;" in model_summary(bare)
    headed = bare.replace(head=(DenseLayer("head", W=rng.normal(size=(5, 2))),))
    assert headed.output_size == 2 and headed.head_output_size == 5
    assert "last LSTM output size 2; network output size 5 (after the head)" in model_summary(
        headed
    )


def _one_layer(rng) -> LSTMModel:
    w = LSTMDirection(
        W_x=rng.normal(size=(64, 3)), W_h=rng.normal(size=(64, 16)) * 0.5, b=rng.normal(size=64)
    )
    return LSTMModel((LSTMLayer("l", (w,)),))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copied_models_stay_read_only_so_prepared_weights_never_go_stale(how):
    import copy

    rng = np.random.default_rng(5)
    m = _one_layer(rng)
    x = rng.normal(size=(300, 3))
    m2 = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(run(m2, x).output, run(m, x).output)
    with pytest.raises(ValueError):
        m2.layers[0].directions[0].W_h[1, :] = 0.0


def test_a_weight_made_writable_again_is_not_served_from_the_cache():
    rng = np.random.default_rng(6)
    m = _one_layer(rng)
    x = rng.normal(size=(300, 3))
    before = run(m, x).output  # prepares and keeps the internal layout
    W_h = m.layers[0].directions[0].W_h
    W_h.setflags(write=True)  # deliberate, but possible on an array that owns its memory
    W_h[:, :] = 0.0
    after = run(m, x).output
    want = run(LSTMModel((LSTMLayer("l", (m.layers[0].directions[0].replace(),)),)), x).output
    np.testing.assert_allclose(after, want, atol=1e-6)
    assert not np.allclose(after, before)


def test_memory_someone_else_can_write_is_copied(tmp_path):
    buf = bytearray(np.ones((8, 3)).tobytes())
    behind_readonly_view = np.frombuffer(memoryview(buf).toreadonly()).reshape(8, 3)
    assert _direction(behind_readonly_view).W_x is not behind_readonly_view
    np.save(tmp_path / "w.npy", np.ones((8, 3)))
    mapped = np.load(tmp_path / "w.npy", mmap_mode="r")  # the file can be rewritten
    assert _direction(mapped).W_x is not mapped


def test_someone_elses_read_only_array_is_copied_since_they_may_write_it_again():
    rng = np.random.default_rng(7)
    own = rng.normal(size=(64, 16))
    own.setflags(write=False)
    w = LSTMDirection(W_x=rng.normal(size=(64, 3)), W_h=own[:], b=np.zeros(64))
    m = LSTMModel((LSTMLayer("l", (w,)),))
    x = rng.normal(size=(300, 3))
    before = run(m, x).output
    own.setflags(write=True)
    own[:] = 0.0  # the caller's array changes; the model's weights do not
    assert w.W_h.any()
    np.testing.assert_array_equal(run(m, x).output, before)


def test_stored_roles_are_typed_and_unknown_roles_refused():
    from lstmviz.core.model import StoredPart, StoredRole, StoredTensor

    t = StoredTensor("W_h", "rnn/kernel", (76, 256), transposed=True, offset=12)
    assert t.role is StoredRole.W_h and t.part is StoredPart.RECURRENT_WEIGHTS
    assert f"{t.role}" == "W_h" and t.role == "W_h"
    assert StoredTensor("b_ih", "bias_ih_l0", (16,)).part is StoredPart.BIAS
    assert StoredTensor("recurrent_cudnn", "k", (4, 16)).role.canonical == "W_h"
    assert StoredTensor("P", "P", (1, 12)).part is StoredPart.PEEPHOLE
    with pytest.raises(TypeError, match="unknown stored role 'kernel'"):
        StoredTensor("kernel", "k", (3, 16))


def test_every_stored_role_has_a_part():
    from lstmviz.core.model import StoredPart, StoredRole

    assert all(isinstance(r.part, StoredPart) for r in StoredRole)
