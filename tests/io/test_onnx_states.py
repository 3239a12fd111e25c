"""ONNX initial_h/initial_c stored in the file: lstmviz.run starts from them, as onnxruntime does.

Fixtures from ``tests/fixtures/onnx/make_fixtures.py states``: torch modules with learned h0/c0
(both exporters; expected outputs from torch) and a bidirectional ``onnx.helper`` graph whose
states hold a batch of two equal rows (onnxruntime's outputs). Tolerance 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from lstmviz.core.compute import run
from lstmviz.io import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"


def expected(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.expected.npz") as data:
        return dict(data)


def final_states(trace) -> tuple[np.ndarray, np.ndarray]:
    """(layers*dirs, H) like ONNX Y_h / torch h_n: a reverse direction ends at t = 0."""
    pairs = [
        (d.h[0 if d.weights.reverse else -1], d.c[0 if d.weights.reverse else -1])
        for layer in trace.layers
        for d in layer.directions
    ]
    return np.stack([h for h, _ in pairs]), np.stack([c for _, c in pairs])


@pytest.mark.parametrize("name", ["torch_learned_h0", "dynamo_learned_h0", "states_bidir_b2"])
def test_run_starts_from_the_stored_states(name):
    exp = expected(name)
    model = load_model(FIXTURES / f"{name}.onnx")
    trace = run(model, exp["x"])
    np.testing.assert_allclose(trace.output, exp["Y"], atol=1e-5)
    h, c = final_states(trace)
    np.testing.assert_allclose(h, exp["Y_h"], atol=1e-5)
    np.testing.assert_allclose(c, exp["Y_c"], atol=1e-5)
    for layer in model.layers:
        for d in layer.directions:
            prov = d.provenance
            assert d.h0 is not None and d.c0 is not None
            assert any("read from the file as the initial states" in t for t in prov.transforms)
            assert prov.setting("initial_h").assumed is False
            assert not any("initial_" in n for n in prov.notes)
    # the caller's states still win, and the stored ones matter
    shapes = [(len(layer.directions), layer.hidden_size) for layer in model.layers]
    zeros = [np.zeros(s) for s in shapes]
    assert np.abs(run(model, exp["x"], h0=zeros, c0=zeros).output - exp["Y"]).max() > 1e-3


def _edited(tmp_path: Path, edit) -> Path:
    """states_bidir_b2.onnx with ``edit(model, arrays)`` applied to its initializers."""
    model = onnx.load(FIXTURES / "states_bidir_b2.onnx")
    arrays = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    edit(model, arrays)
    del model.graph.initializer[:]
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in arrays.items())
    path = tmp_path / "edited.onnx"
    onnx.save_model(model, path)
    return path


def test_layout_1_states_are_batch_major(tmp_path):
    """layout=1 stores initial_h as [batch, dirs, H]; same weights → onnxruntime's layout-0 Y."""

    def to_layout_1(model, arrays):
        node = model.graph.node[0]
        node.attribute.append(onnx.helper.make_attribute("layout", 1))
        for k in ("h0", "c0"):
            arrays[k] = np.ascontiguousarray(arrays[k].transpose(1, 0, 2))

    exp = expected("states_bidir_b2")
    model = load_model(_edited(tmp_path, to_layout_1))
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["Y"], atol=1e-5)


def test_a_batch_of_different_states_keeps_zeros_with_a_note(tmp_path):
    def differ(model, arrays):
        arrays["h0"][:, 1] += 1.0

    model = load_model(_edited(tmp_path, differ))
    d = model.layers[0].directions[0]
    assert d.h0 is None and d.c0 is not None
    assert (
        "initial_h ('h0') is stored for a batch of 2 different rows; lstmviz runs one sequence "
        "and starts it from zeros (lstmviz.run takes h0=/c0=)" in d.provenance.notes
    )
