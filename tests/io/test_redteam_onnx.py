"""Second red-team round (issue 18), ONNX: one initializer named by many LSTM nodes.

A protobuf cannot alias bytes, but a graph can name one tensor from any number of nodes: 30 LSTM
nodes sharing one 16 MB ``W`` made 1 GB of layer copies from a 32 MB file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from bounded import bounded_load
from onnx import TensorProto, helper, numpy_helper

import lstmviz


def _shared_stack(path: Path, H: int, n: int, transpose: bool = False) -> np.ndarray:
    """``n`` LSTM nodes in a chain, all reading the initializers W and R (optionally each W
    through its own pair of Transposes, so every layer names a different folded tensor)."""
    rng = np.random.default_rng(0)
    W = (rng.normal(size=(1, 4 * H, H)) * 0.3).astype(np.float32)
    R = (rng.normal(size=(1, 4 * H, H)) * 0.3).astype(np.float32)
    inits = [
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(R, "R"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
    ]
    nodes, prev = [], "x"
    for k in range(n):
        w = "W"
        if transpose:
            nodes.append(helper.make_node("Transpose", ["W"], [f"Wt{k}"], perm=[0, 2, 1]))
            nodes.append(helper.make_node("Transpose", [f"Wt{k}"], [f"W{k}"], perm=[0, 2, 1]))
            w = f"W{k}"
        nodes.append(
            helper.make_node("LSTM", [prev, w, "R"], [f"y{k}"], hidden_size=H, name=f"l{k}")
        )
        nodes.append(helper.make_node("Squeeze", [f"y{k}", "ax"], [f"s{k}"]))
        prev = f"s{k}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, H])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return np.concatenate([W[0], R[0]])


def test_one_initializer_shared_by_many_lstm_nodes_is_refused(tmp_path: Path) -> None:
    # before: 32 MB file (30 x H=1024) -> 999 MB peak, 2.4 s (loaded); 1.8 MB (20,000 x H=64)
    # -> 820 MB; 8 MB (14 x H=512) here -> 260 MB
    for name, H, n, transpose in (
        ("big", 512, 14, False),
        ("many", 64, 3000, False),
        ("folded", 512, 14, True),
    ):
        path = tmp_path / f"{name}.onnx"
        _shared_stack(path, H, n, transpose)
        bounded_load(path).assert_refused(path.name, "shared by many LSTM nodes")


def test_a_few_lstm_nodes_sharing_weights_run_as_onnx_defines_them(tmp_path: Path) -> None:
    path = tmp_path / "two.onnx"
    H = 6
    WR = _shared_stack(path, H, 3)
    W, R = WR[: 4 * H], WR[4 * H :]
    i, o, f, c = np.split(np.arange(4 * H), 4)  # ONNX gate blocks i, o, f, c -> torch i, f, g, o
    perm = np.concatenate([i, f, c, o])
    ref = torch.nn.LSTM(H, H, num_layers=3, bias=False)
    with torch.no_grad():
        for k in range(3):
            getattr(ref, f"weight_ih_l{k}").copy_(torch.from_numpy(W[perm]))
            getattr(ref, f"weight_hh_l{k}").copy_(torch.from_numpy(R[perm]))
    x = np.random.default_rng(1).normal(size=(7, H)).astype(np.float32)
    expected = ref(torch.from_numpy(x)[:, None])[0][:, 0].detach().numpy()
    trace = lstmviz.run(lstmviz.load_model(path), x)
    np.testing.assert_allclose(trace.layers[-1].output, expected, atol=1e-5)
