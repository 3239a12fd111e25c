"""Damaged and crafted GRU/RNN files in every format the GRU readers read: each is refused
with one printable LoadError line, within the time and memory promise of tests/bounded.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from bounded import bounded_load
from test_gru_common import FIXTURES

F32 = np.float32


def _torch_bad_hh(path: Path) -> Path:
    sd = torch.nn.GRU(3, 4).state_dict()
    sd["weight_hh_l0"] = torch.zeros(12, 5)  # H = 5 by its columns, 12 rows = 3·4: no cell
    torch.save(sd, path)
    return path


def _torch_bad_bias(path: Path) -> Path:
    sd = torch.nn.GRU(3, 4).state_dict()
    sd["bias_hh_l0"] = torch.zeros(7)
    torch.save(sd, path)
    return path


def _torch_int(path: Path, safetensors: bool = False) -> Path:
    """A GRU whose weight_ih_l0 is stored as integers (a .pt or a .safetensors file)."""
    sd = torch.nn.GRU(3, 4).state_dict()
    sd["weight_ih_l0"] = torch.zeros(12, 3, dtype=torch.int64)
    if not safetensors:
        torch.save(sd, path)
        return path
    from safetensors.torch import save_file

    save_file(sd, str(path))
    return path


def _torch_gap(path: Path) -> Path:
    sd = torch.nn.GRU(3, 4, num_layers=3).state_dict()
    torch.save({k: v for k, v in sd.items() if "_l1" not in k}, path)
    return path


def _keras_h5(path: Path, bias_shape: tuple[int, ...], rec: tuple[int, ...] = (4, 12)) -> Path:
    """A Keras 2.2-style weights-only GRU layer with a bias of ``bias_shape``."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["layer_names"] = np.array([b"gru_1"])
        g = f.create_group("gru_1")
        names = [b"gru_1/kernel:0", b"gru_1/recurrent_kernel:0", b"gru_1/bias:0"]
        g.attrs["weight_names"] = np.array(names)
        g.create_dataset("gru_1/kernel:0", data=np.zeros((3, 12), F32))
        g.create_dataset("gru_1/recurrent_kernel:0", data=np.zeros(rec, F32))
        g.create_dataset("gru_1/bias:0", data=np.zeros(bias_shape, F32))
    return path


def _onnx_gru(path: Path, **change: object) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(FIXTURES / "onnx" / "gru_lbr1.onnx")
    node = model.graph.node[0]
    for name, value in change.items():
        if name == "W":
            init = next(t for t in model.graph.initializer if t.name == "W")
            init.CopyFrom(numpy_helper.from_array(np.zeros(value, F32), "W"))  # type: ignore[arg-type]
            continue
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])
    onnx.save_model(model, path)
    return path


def _onnx_gru_stack(path: Path, change: str) -> Path:
    """The 3-node GRU stack of gru_real with its first W fed at run time ("w_input"), or its
    second W taking 7 inputs where the first node gives 6 ("no_chain")."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(FIXTURES.parent / "gru_real" / "stacked_gru_h_in.onnx")
    if change == "w_input":
        model.graph.input.append(
            helper.make_tensor_value_info("w_in", onnx.TensorProto.FLOAT, [1, 18, 5])
        )
        next(n for n in model.graph.node if n.name == "/gru/GRU").input[1] = "w_in"
    else:
        init = next(t for t in model.graph.initializer if t.name == "onnx::GRU_256")
        init.CopyFrom(numpy_helper.from_array(np.zeros((1, 18, 7), F32), init.name))
    onnx.save_model(model, path)
    return path


def _tf1_bad_candidate(folder: Path) -> Path:
    from test_tf1_bad_files import write_bundle

    rng = np.random.default_rng(0)
    return write_bundle(
        folder,
        {
            "rnn/gru_cell/gates/kernel": rng.normal(size=(7, 8)).astype(F32),
            "rnn/gru_cell/gates/bias": rng.normal(size=8).astype(F32),
            "rnn/gru_cell/candidate/kernel": rng.normal(size=(7, 5)).astype(F32),
            "rnn/gru_cell/candidate/bias": rng.normal(size=5).astype(F32),
        },
    )


def _tf1_gru_stack_off_by_one(folder: Path) -> Path:
    """Two stacked GRUCells (H = 4) whose second kernel has rows for 5 inputs, not 4."""
    from test_tf1_bad_files import write_bundle

    rng = np.random.default_rng(0)
    arrays = {}
    for k, d in ((0, 3), (1, 5)):
        scope = f"rnn/multi_rnn_cell/cell_{k}/gru_cell"
        arrays[f"{scope}/gates/kernel"] = rng.normal(size=(d + 4, 8)).astype(F32)
        arrays[f"{scope}/gates/bias"] = rng.normal(size=8).astype(F32)
        arrays[f"{scope}/candidate/kernel"] = rng.normal(size=(d + 4, 4)).astype(F32)
        arrays[f"{scope}/candidate/bias"] = rng.normal(size=4).astype(F32)
    return write_bundle(folder, arrays)


def _madmom_no_cell(path: Path) -> Path:
    data = (FIXTURES / "madmom" / "rnn.pkl").read_bytes()
    # the RecurrentLayer record loses its recurrent weights: the key renamed in place
    path.write_bytes(data.replace(b"recurrent_weights", b"recurrent_wxights"))
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "torch weight_hh fits no cell": (
        lambda d: _torch_bad_hh(d / "g.pt"),
        "is no recurrent module lstmviz knows",
    ),
    "torch bias of the wrong length": (
        lambda d: _torch_bad_bias(d / "g.pt"),
        "bias_hh_l0 has shape (7,), expected (12,)",
    ),
    "torch GRU weights stored as integers": (  # 'recurrent weights', not 'LSTM weights'
        lambda d: _torch_int(d / "g.pt"),
        "weight_ih_l0 has dtype int64; recurrent weights must be float16",
    ),
    "safetensors GRU weights stored as integers": (
        lambda d: _torch_int(d / "g.safetensors", safetensors=True),
        "weight_ih_l0 has dtype int64; recurrent weights must be float16",
    ),
    "torch missing middle layer": (lambda d: _torch_gap(d / "g.pt"), "lacks weight_ih_l1"),
    "keras bias fits neither reset mode": (
        lambda d: _keras_h5(d / "g.h5", (5,)),
        "bias:0 has shape (5,), expected (12,) (reset_after=False); the file is damaged",
    ),
    "keras weights-only recurrent kernel not a matrix": (  # H from it: 3H columns, not 4H
        lambda d: _keras_h5(d / "g.h5", (12,), rec=(12,)),
        "recurrent_kernel has shape (12,), expected (H, 3H)",
    ),
    "onnx W not 3H rows": (
        lambda d: _onnx_gru(d / "g.onnx", W=(1, 10, 3)),
        "W has shape (1, 10, 3), expected (1, 3H, D)",
    ),
    "onnx GRU weights fed at run time": (
        lambda d: _onnx_gru_stack(d / "g.onnx", "w_input"),
        "lstmviz reads recurrent weights stored as initializers",
    ),
    "onnx GRU stack that does not chain": (
        lambda d: _onnx_gru_stack(d / "g.onnx", "no_chain"),
        "the stacked GRU nodes do not fit together (layer 1 expects 7 inputs",
    ),
    "onnx hidden_size lies": (
        lambda d: _onnx_gru(d / "g.onnx", hidden_size=5),
        "hidden_size=5",
    ),
    "onnx one activation": (
        lambda d: _onnx_gru(d / "g.onnx", activations=["Sigmoid"]),
        "1 activations; expected 2 per direction",
    ),
    "tf1 candidate does not fit the gates": (
        _tf1_bad_candidate,
        "do not fit gates of H = 4",
    ),
    "tf1 GRU stack that does not chain": (
        _tf1_gru_stack_off_by_one,
        "the GRU layers do not chain",
    ),
    "madmom recurrent layer without recurrent weights": (
        lambda d: _madmom_no_cell(d / "r.pkl"),
        "recurrent_weights is not a matrix",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_gru_file_is_refused_in_bounds(tmp_path: Path, case: str) -> None:
    make, needle = CASES[case]
    path = make(tmp_path)
    bounded_load(path).assert_refused(needle)
