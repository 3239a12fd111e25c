"""Trace export round trips: every recorded array, named, exactly."""

import numpy as np

from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, run
from lstmviz.core.export import DIRECTION_ARRAYS, save_trace_csv, save_trace_npz


def make_trace():
    rng = np.random.default_rng(2)
    H = 4

    def direction(d_in, reverse=False, peep=False):
        return LSTMDirection(
            W_x=rng.normal(size=(4 * H, d_in)),
            W_h=rng.normal(size=(4 * H, H)),
            b=rng.normal(size=4 * H),
            p_i=rng.normal(size=H) if peep else None,
            p_f=rng.normal(size=H) if peep else None,
            p_o=rng.normal(size=H) if peep else None,
            reverse=reverse,
        )

    model = LSTMModel(
        layers=(
            LSTMLayer("a", (direction(3, peep=True),)),
            LSTMLayer("b", (direction(H), direction(H, reverse=True))),
        )
    )
    return run(model, rng.normal(size=(7, 3)))


def expected_arrays(trace):
    out = {"x": trace.x, "output": trace.output}
    for k, lt in enumerate(trace.layers):
        out[f"layer{k}/input"] = lt.input
        out[f"layer{k}/output"] = lt.output
        for d, dt in enumerate(lt.directions):
            for name in DIRECTION_ARRAYS:
                if getattr(dt, name) is not None:
                    out[f"layer{k}/{('forward', 'backward')[d]}/{name}"] = getattr(dt, name)
    return out


def test_npz_round_trip(tmp_path):
    trace = make_trace()
    path = save_trace_npz(trace, tmp_path / "t.npz")
    want = expected_arrays(trace)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(want)
        for name, arr in want.items():
            np.testing.assert_array_equal(data[name], arr, err_msg=name)
    assert "layer0/forward/peep" in want and "layer1/forward/peep" not in want
    assert "layer1/backward/f" in want and "layer0/forward/c_prev" in want


def test_npz_suffix_added(tmp_path):
    assert save_trace_npz(make_trace(), tmp_path / "trace").name == "trace.npz"


def test_csv_wide_round_trip(tmp_path):
    trace = make_trace()
    (path,) = save_trace_csv(trace, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "step" and "layer1/backward/f[3]" in header
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    assert table.shape[0] == trace.n_steps
    np.testing.assert_array_equal(table[:, 0], np.arange(trace.n_steps))
    col = header.index("layer1/backward/f[0]")
    np.testing.assert_array_equal(table[:, col : col + 4], trace.layers[1].directions[1].f)
    col = header.index("x[0]")
    np.testing.assert_array_equal(table[:, col : col + 3], trace.x)


def test_csv_folder(tmp_path):
    trace = make_trace()
    files = save_trace_csv(trace, tmp_path / "out")
    names = {f.name for f in files}
    assert "layer0_forward_f.csv" in names and "layer0_forward_b.csv" in names
    f = np.loadtxt(tmp_path / "out" / "layer0_forward_f.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(f[:, 1:], trace.layers[0].directions[0].f)
    b = np.loadtxt(tmp_path / "out" / "layer0_forward_b.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(b, trace.layers[0].directions[0].b)
