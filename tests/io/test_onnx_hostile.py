"""Hostile ONNX files: each a one-line LoadError within a second, nothing read outside the folder.

Graphs are built with onnx.helper (or as raw protobuf bytes where onnx would refuse to write
them) around the committed ``peepholes`` / ``external`` fixtures: external data that escapes
the model's folder through '..', absolute paths or a symlink, lying offsets and lengths,
absurd dims, Concat chains that would inflate a small tensor into gigabytes, over-deep
folding chains, and protobuf that is not protobuf.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from bounded import bounded_load
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
SECRET = "secret.weights"


def external(location: str, **entries: str) -> Callable[[Path], Path]:
    """external.onnx in ``folder/model`` with every tensor pointing at ``location``."""

    def make(folder: Path) -> Path:
        model = onnx.load(FIXTURES / "external.onnx", load_external_data=False)
        for t in model.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
                elif entry.key in entries:
                    entry.value = entries[entry.key]
        (folder / SECRET).write_bytes((FIXTURES / "external.weights").read_bytes())
        inner = folder / "model"
        inner.mkdir()
        shutil.copy(FIXTURES / "external.weights", inner / "external.weights")
        onnx.save_model(model, inner / "m.onnx")
        return inner / "m.onnx"

    return make


def symlink_out(folder: Path) -> Path:
    path = external("link.weights")(folder)
    os.symlink(folder / SECRET, path.parent / "link.weights")
    return path


def graph_with(nodes: list, inits: list, folder: Path) -> Path:
    """The peepholes fixture with W replaced by the output of ``nodes`` over ``inits``."""
    model = onnx.load(FIXTURES / "peepholes.onnx")
    kept = [t for t in model.graph.initializer if t.name != "W"]
    del model.graph.initializer[:]
    model.graph.initializer.extend([*kept, *inits])
    for node in reversed(nodes):
        model.graph.node.insert(0, node)
    path = folder / "m.onnx"
    onnx.save_model(model, path)
    return path


def concat_bomb(folder: Path) -> Path:
    """W = Concat(x, x) 30 times over: 2**30 copies of 4 floats if anyone evaluated it."""
    nodes = [helper.make_node("Concat", ["c0", "c0"], ["c1"], axis=0)]
    nodes += [
        helper.make_node("Concat", [f"c{k}"] * 2, [f"c{k + 1}"], axis=0) for k in range(1, 30)
    ]
    nodes.append(helper.make_node("Identity", ["c30"], ["W"]))
    return graph_with(nodes, [numpy_helper.from_array(np.zeros(4, "f4"), "c0")], folder)


def deep_chain(folder: Path) -> Path:
    nodes = [helper.make_node("Identity", [f"w{k}"], [f"w{k + 1}"]) for k in range(100)]
    nodes.append(helper.make_node("Identity", ["w100"], ["W"]))
    w = numpy_helper.from_array(np.zeros((1, 16, 3), "f4"), "w0")
    return graph_with(nodes, [w], folder)


def bad_reshape(folder: Path) -> Path:
    shape = numpy_helper.from_array(np.array([-1, -1], np.int64), "shape")
    w = numpy_helper.from_array(np.zeros((1, 16, 3), "f4"), "w0")
    node = helper.make_node("Reshape", ["w0", "shape"], ["W"])
    return graph_with([node], [w, shape], folder)


def dims_absurd(folder: Path) -> Path:
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[-1, 16, 3])
    return graph_with([], [t], folder)


def raw(content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "m.onnx"
        path.write_bytes(content)
        return path

    return make


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "external ../": (external(f"../{SECRET}"), "outside the model's folder"),
    "external sub/../../": (external(f"sub/../../{SECRET}"), "outside the model's folder"),
    "external absolute": (external(str(Path("/etc/passwd"))), "outside the model's folder"),
    "external symlink out": (symlink_out, "outside the model's folder"),
    "external negative offset": (external("external.weights", offset="-8"), "at offset -8"),
    "external huge length": (
        external("external.weights", length=str(1 << 40)),
        "the data file is truncated or does not match",
    ),
    "external offset text": (
        external("external.weights", offset="0x10"),
        "bad external offset/length",
    ),
    "external empty location": (external(""), "outside the model's folder"),
    "negative dims": (dims_absurd, "absurd dims [-1, 16, 3]"),
    "concat bomb": (concat_bomb, "refusing a memory bomb"),
    "chain of 100 Identity nodes": (deep_chain, "a chain of more than 32 nodes"),
    "impossible reshape": (bad_reshape, "comes from a Reshape node that cannot be applied"),
    "group wire type": (raw(b"\x08\x07\x3a\x02\x0b\x0c"), "truncated or damaged ONNX file"),
    "field number 0": (raw(b"\x08\x07\x3a\x02\x00\x00"), "truncated or damaged ONNX file"),
    "overlong varint": (raw(b"\x08\x07\x3a\x0b" + b"\xff" * 11), "truncated or damaged"),
    "graph length past the end": (raw(b"\x08\x07\x3a\xff\xff\xff\x7f\x0a"), "truncated"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_onnx(tmp_path: Path, case: str) -> None:
    """Refused in a forked child under the memory cap and time limit (``bounded_load``)."""
    make, needle = CASES[case]
    path = make(tmp_path)
    out = bounded_load(path)
    out.assert_refused(needle)
    assert out.message.startswith(f"{path.name}: "), out
