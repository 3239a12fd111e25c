"""Second red-team round (issue 18), madmom: a pickle's memo makes sharing free in the file.

The pickles are written by Python's own pickler from stand-in classes registered under madmom's
module names (the reader only sees module and class names), so the attacks are real pickles.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded_load

import lstmviz


@pytest.fixture
def madmom_classes(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Stand-ins for madmom's classes, picklable under madmom's own module names."""
    classes = {}
    for parent in ("madmom", "madmom.ml"):
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    for module, names in (
        ("madmom.ml.nn", ["NeuralNetwork"]),
        ("madmom.ml.nn.layers", ["LSTMLayer", "Gate"]),
    ):
        mod = types.ModuleType(module)
        monkeypatch.setitem(sys.modules, module, mod)
        for name in names:
            cls = type(name, (), {"__module__": module, "__qualname__": name})
            setattr(mod, name, cls)
            classes[name] = cls
    return classes


def _record(cls: type, **attrs: object) -> object:
    obj = cls.__new__(cls)
    obj.__dict__.update(attrs)
    return obj


def _network(classes: dict[str, type], H: int, copies: int) -> bytes:
    """One LSTMLayer (its four gates one shared Gate) listed ``copies`` times."""
    rng = np.random.default_rng(0)
    gate = _record(
        classes["Gate"],
        weights=rng.normal(size=(H, H)).astype(np.float32),
        recurrent_weights=rng.normal(size=(H, H)).astype(np.float32),
        bias=rng.normal(size=H).astype(np.float32),
    )
    layer = _record(
        classes["LSTMLayer"], input_gate=gate, forget_gate=gate, cell=gate, output_gate=gate
    )
    return pickle.dumps(_record(classes["NeuralNetwork"], layers=[layer] * copies), protocol=2)


@pytest.mark.parametrize(("H", "copies"), [(1024, 200), (64, 100_000)])
def test_one_layer_listed_many_times_is_refused_within_budget(
    tmp_path: Path, madmom_classes: dict[str, type], H: int, copies: int
) -> None:
    # before: 12 MB -> 891 MB peak in 2.6 s; 0.24 MB -> 806 MB (MemoryError under the cap)
    path = tmp_path / "net.pkl"
    path.write_bytes(_network(madmom_classes, H, copies))
    bounded_load(path).assert_refused("net.pkl", "listed many times")


def test_a_layer_listed_twice_still_loads_with_its_weights(
    tmp_path: Path, madmom_classes: dict[str, type]
) -> None:
    path = tmp_path / "net.pkl"
    path.write_bytes(_network(madmom_classes, 8, 2))
    model = lstmviz.load_model(path)
    assert len(model.layers) == 2
    gate = pickle.loads(path.read_bytes()).layers[0].cell
    first = model.layers[0].directions[0]
    # madmom's step: W_x stacks the four gates' weights.T as i, f, g (cell), o
    np.testing.assert_array_equal(first.W_x, np.concatenate([gate.weights.T] * 4))
    np.testing.assert_array_equal(model.layers[1].directions[0].W_h, first.W_h)


def test_a_pickle_of_many_small_objects_is_refused_within_the_promise(tmp_path: Path) -> None:
    # before: 18.5 MB of small dicts under "layers" ran 3.3 s to the object budget (48 MB +
    # 20 bytes per pickle byte: 418 MB); now it is held under 150 MB + 2 x the file (1.3 s)
    body = pickle.dumps([{"a": k, "b": (k, k + 1)} for k in range(600_000)], protocol=2)
    path = tmp_path / "net.pkl"
    head = b"\x80\x02cmadmom.ml.nn\nNeuralNetwork\n)\x81}X\x06\x00\x00\x00layers"
    path.write_bytes(head + body[2:-1] + b"sb.")
    # before: peak 255 MB; the memory budget, or now first the work budget, refuses it
    bounded_load(path).assert_refused("net.pkl", "budget")
