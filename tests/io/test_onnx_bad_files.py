"""Every broken or unsupported ONNX file raises a one-line LoadError naming the problem.

Cases are mutated copies of the committed fixtures (made by tests/fixtures/onnx/make_fixtures.py),
edited with the onnx package and saved to a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lstmviz.io import LoadError, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"


def mutate(base: str, edit: Callable[[onnx.ModelProto], None]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        model = onnx.load(FIXTURES / base)
        edit(model)
        path = folder / "model.onnx"
        onnx.save_model(model, path)
        return path

    return make


def lstm_node(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "LSTM")


def set_attr(name: str, value: object, op: str = "LSTM") -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        node = next(n for n in model.graph.node if n.op_type == op)
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])

    return edit


def replace_init(name: str, tensor: TensorProto) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        inits = [t for t in model.graph.initializer if t.name != name]
        del model.graph.initializer[:]
        model.graph.initializer.extend([*inits, tensor])

    return edit


def w_computed(model: onnx.ModelProto) -> None:
    """W = Add(W0, W0): a value only known at run time."""
    w = next(t for t in model.graph.initializer if t.name == "W")
    w.name = "W0"
    model.graph.node.insert(0, helper.make_node("Add", ["W0", "W0"], ["W"], name="make_w"))


def w_graph_input(model: onnx.ModelProto) -> None:
    w = next(t for t in model.graph.initializer if t.name == "W")
    model.graph.initializer.remove(w)
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 16, 3]))


def external_location(location: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        model = onnx.load(FIXTURES / "external.onnx", load_external_data=False)
        for t in model.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
        sub = folder / "sub"
        sub.mkdir()
        shutil.copy(FIXTURES / "external.weights", folder / "external.weights")
        path = sub / "model.onnx"
        onnx.save_model(model, path)
        return path

    return make


def external_truncated(folder: Path) -> Path:
    shutil.copy(FIXTURES / "external.onnx", folder / "external.onnx")
    data = (FIXTURES / "external.weights").read_bytes()
    (folder / "external.weights").write_bytes(data[: len(data) // 2])
    return folder / "external.onnx"


def external_missing(folder: Path) -> Path:
    shutil.copy(FIXTURES / "external.onnx", folder / "external.onnx")
    return folder / "external.onnx"


def truncated(fraction: float) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        data = (FIXTURES / "torch_bidir2.onnx").read_bytes()
        path = folder / "model.onnx"
        path.write_bytes(data[: int(len(data) * fraction)])
        return path

    return make


def copy_fixture(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        return Path(shutil.copy(FIXTURES / name, folder))

    return make


def absurd_dims(model: onnx.ModelProto) -> None:
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1, 1 << 40, 3])
    t.raw_data = bytes(48)
    replace_init("W", t)(model)


def wrong_raw_size(model: onnx.ModelProto) -> None:
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1, 16, 3])
    t.raw_data = bytes(40)
    replace_init("W", t)(model)


ZEROS_W = np.zeros((1, 16, 3))

CASES = {
    "truncated half": (truncated(0.5), "truncated or damaged ONNX file"),
    "truncated header": (truncated(0.02), "truncated or damaged ONNX file"),
    "input_forget": (mutate("peepholes.onnx", set_attr("input_forget", 1)), "input_forget=1"),
    "computed W": (
        mutate("peepholes.onnx", w_computed),
        "is not stored in the file: it depends on an Add node ('make_w')",
    ),
    "W graph input": (mutate("peepholes.onnx", w_graph_input), "graph input"),
    "int W": (
        mutate(
            "peepholes.onnx", replace_init("W", numpy_helper.from_array(ZEROS_W.astype("i4"), "W"))
        ),
        "dtype int32",
    ),
    "W rows": (
        mutate(
            "peepholes.onnx",
            replace_init("W", numpy_helper.from_array(np.zeros((1, 12, 3), "f4"), "W")),
        ),
        "hidden_size=4",
    ),
    "B shape": (
        mutate(
            "peepholes.onnx",
            replace_init("B", numpy_helper.from_array(np.zeros((1, 16), "f4"), "B")),
        ),
        "B has shape (1, 16)",
    ),
    "absurd dims": (mutate("peepholes.onnx", absurd_dims), "absurd dims"),
    "raw size": (mutate("peepholes.onnx", wrong_raw_size), "is damaged"),
    "unknown activation": (
        mutate("peepholes.onnx", set_attr("activations", ["Sigmoid", "Gelu", "Tanh"])),
        "activation 'Gelu'",
    ),
    "two activations": (
        mutate("peepholes.onnx", set_attr("activations", ["Sigmoid", "Tanh"])),
        "2 activations",
    ),
    "negative clip": (mutate("peepholes.onnx", set_attr("clip", -1.0)), "clip=-1"),
    "direction": (mutate("peepholes.onnx", set_attr("direction", "sideways")), "sideways"),
    "GRU negative clip": (  # a GRU opens since issue 14 (tests/io/test_gru_onnx.py)
        mutate("gru_only.onnx", set_attr("clip", -1.0, op="GRU")),
        "has clip=-1.0; a clip threshold must be positive",
    ),
    "dynamo dropped projection": (
        copy_fixture("dynamo_proj.onnx"),
        "initial_c has shape (1, 1, 4) but W is for hidden_size 2; the exporter dropped",
    ),
    "external ..": (external_location("../external.weights"), "outside the model's folder"),
    "external absolute": (external_location("/etc/passwd"), "outside the model's folder"),
    "external truncated": (external_truncated, "truncated"),
    "external missing": (external_missing, "missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_raises_one_line_load_error(tmp_path, case):
    make, needle = CASES[case]
    path = make(tmp_path)
    with pytest.raises(LoadError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(Path(path).name)
    assert needle in message


def test_reader_needs_neither_onnx_nor_protobuf():
    """The file is decoded by field number: a bad file fails the same without the packages."""
    code = (
        "import sys; sys.modules['onnx'] = sys.modules['google.protobuf'] = None\n"
        "import lstmviz\n"
        f"m = lstmviz.load_model({str(FIXTURES / 'activations_bidir.onnx')!r})\n"
        "assert m.layers[0].bidirectional\n"
        f"g = lstmviz.load_model({str(FIXTURES / 'gru_only.onnx')!r})\n"
        "assert g.layers[0].kind == 'GRU'\n"
        "assert 'onnx' not in [k for k, v in sys.modules.items() if v is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
