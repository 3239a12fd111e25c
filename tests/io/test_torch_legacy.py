"""Pickles read inertly: legacy torch files, bare pickles, whole models, foreign classes.

Every file is written here by real torch (or ``pickle``) and its LSTM run against torch's own
forward at 1e-5. Nothing of a file is imported: the user classes live in a throw-away module
that is removed from ``sys.modules`` before loading, and the test checks it stays gone.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from bounded import bounded_load
from torch import nn

import lstmviz
from lstmviz.io import LoadError

TOL = 1e-5
USER = "lstmviz_test_legacy_user"


def torch_run(lstm: nn.LSTM, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return lstm(torch.from_numpy(x)[:, None])[0][:, 0].double().numpy()


def assert_parity(path: Path, lstm: nn.LSTM, **options: object) -> lstmviz.LSTMModel:
    model = lstmviz.load_model(path, **options)
    x = np.random.default_rng(1).standard_normal((7, lstm.input_size)).astype(np.float32)
    got = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(got, torch_run(lstm, x), atol=TOL, rtol=0)
    return model


@pytest.fixture
def user_module() -> Iterator[types.ModuleType]:
    """A module of 'project' classes that exists only while files are written."""
    mod = types.ModuleType(USER)

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(7, 3)
            self.rnn = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
            self.out = nn.Linear(10, 2)

    class TaskConfig:  # a trainer's own hyper-parameter object
        def __init__(self, n: int) -> None:
            self.n, self.name = n, "tagger"

    class Schedule:  # pickled through REDUCE with arguments (a namedtuple-like record)
        def __init__(self, a: int, b: float) -> None:
            self.a, self.b = a, b

        def __reduce__(self) -> tuple:
            return Schedule, (self.a, self.b)

    for cls in (Tagger, TaskConfig, Schedule):
        cls.__module__ = USER
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    sys.modules[USER] = mod
    yield mod
    sys.modules.pop(USER, None)


def forget(mod: types.ModuleType) -> None:
    sys.modules.pop(mod.__name__, None)


@pytest.mark.parametrize("layers", [1, 2])
def test_legacy_state_dict(tmp_path: Path, layers: int) -> None:
    """torch.save(..., _use_new_zipfile_serialization=False): five pickles then raw storages."""
    torch.manual_seed(layers)
    lstm = nn.LSTM(3, 4, num_layers=layers).eval()
    path = tmp_path / "legacy.pt"
    torch.save(lstm.state_dict(), path, _use_new_zipfile_serialization=False)
    model = assert_parity(path, lstm)
    assert model.source_format.startswith("PyTorch legacy pickle")


def test_legacy_checkpoint_with_views_and_half(tmp_path: Path) -> None:
    """Tensors viewing one storage (legacy view_metadata) and float16 weights."""
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4).eval()
    flat = torch.cat([p.detach().reshape(-1) for p in lstm.parameters()])
    views, at = {}, 0
    for name, p in lstm.named_parameters():
        views[name] = flat[at : at + p.numel()].view_as(p)
        at += p.numel()
    path = tmp_path / "views.pt"
    torch.save({"model_state_dict": views, "epoch": 4}, path, _use_new_zipfile_serialization=False)
    assert_parity(path, lstm)
    half = {k: v.half() for k, v in lstm.state_dict().items()}
    torch.save(half, tmp_path / "half.pt", _use_new_zipfile_serialization=False)
    ref = nn.LSTM(3, 4).eval()
    ref.load_state_dict({k: v.float() for k, v in half.items()})
    assert_parity(tmp_path / "half.pt", ref)


def test_legacy_whole_model(tmp_path: Path, user_module: types.ModuleType) -> None:
    torch.manual_seed(5)
    net = user_module.Tagger().eval()
    path = tmp_path / "whole_legacy.pt"
    torch.save(net, path, _use_new_zipfile_serialization=False)
    forget(user_module)
    model = assert_parity(path, net.rnn)
    assert any(f"whole pickled model ({USER}.Tagger)" in n for n in model.notes)
    assert USER not in sys.modules


def test_whole_model_in_a_lightning_style_checkpoint(
    tmp_path: Path, user_module: types.ModuleType
) -> None:
    """Hyper-parameters naming foreign classes, built by NEWOBJ and by REDUCE with arguments."""
    torch.manual_seed(6)
    net = user_module.Tagger().eval()
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {
            "config": user_module.TaskConfig(3),
            "schedule": user_module.Schedule(1, 0.5),
            "lr": 1e-3,
        },
        "epoch": 2,
    }
    path = tmp_path / "lightning.ckpt"
    torch.save(ckpt, path)
    forget(user_module)
    assert_parity(path, net.rnn)
    assert USER not in sys.modules


def test_bare_pickle_of_numpy_arrays(tmp_path: Path) -> None:
    """pickle.dump of {name: ndarray}: the arrays are rebuilt from bytes, NumPy never called."""
    torch.manual_seed(7)
    lstm = nn.LSTM(3, 4).eval()
    arrays = {f"enc.{k}": v.numpy() for k, v in lstm.state_dict().items()}
    for protocol in (2, 4, 5):
        path = tmp_path / f"arrays{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        model = assert_parity(path, lstm)
        assert model.source_format == "Python pickle"


def test_library_model_object_is_named(tmp_path: Path) -> None:
    """A library's own pickled model (madmom's layers hold NumPy arrays): refused by name."""
    mod = types.ModuleType("madmom.ml.nn.layers")

    class LSTMLayer:
        def __init__(self) -> None:
            self.input_gate = np.zeros((3, 4), np.float32)
            self.cell = np.ones((4, 4), np.float32)

    LSTMLayer.__module__ = mod.__name__
    LSTMLayer.__qualname__ = "LSTMLayer"
    mod.LSTMLayer = LSTMLayer  # type: ignore[attr-defined]
    parents = ["madmom", "madmom.ml", "madmom.ml.nn"]
    for name in parents:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[mod.__name__] = mod
    try:
        data = pickle.dumps({"layers": [LSTMLayer()]}, protocol=2)
    finally:
        for name in [*parents, mod.__name__]:
            del sys.modules[name]
    path = tmp_path / "madmom_model.pkl"
    path.write_bytes(data)
    with pytest.raises(
        LoadError, match=r"pickled madmom object \(madmom\.ml\.nn\.layers\.LSTMLayer"
    ):
        lstmviz.load_model(path)


def test_gru_model_is_named(tmp_path: Path) -> None:
    torch.save({"model": nn.GRU(3, 4).state_dict()}, tmp_path / "gru.pt")
    model = lstmviz.load_model(tmp_path / "gru.pt")  # a GRU opens (tests/io/test_gru_torch.py)
    assert [layer.kind for layer in model.layers] == ["GRU"]


LEGACY_BREAKS = {
    "truncated storage": lambda b: b[:-7],
    "storage count lies": lambda b: b.replace(b"\x0c\x00\x00\x00\x00\x00\x00\x00", b"\xff" * 8, 1),
    "cut in the pickle": lambda b: b[:200],
}


@pytest.mark.parametrize("name", list(LEGACY_BREAKS))
def test_damaged_legacy_files_are_refused_in_bounds(tmp_path: Path, name: str) -> None:
    good = tmp_path / "good.pt"
    torch.save({"w": torch.arange(12.0)}, good, _use_new_zipfile_serialization=False)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(LEGACY_BREAKS[name](good.read_bytes()))
    bounded_load(bad).assert_refused("bad.pt")


def test_hostile_bare_and_legacy_pickles_run_nothing(tmp_path: Path) -> None:
    """The new routes into the unpickler refuse code gadgets as the zip route does."""
    import os

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {marker}",)

    bare = tmp_path / "evil.pkl"
    bare.write_bytes(pickle.dumps({"w": Payload()}, protocol=4))
    bounded_load(bare).assert_refused("evil.pkl", "posix.system")
    legacy = tmp_path / "evil_legacy.pt"
    torch.save({"w": torch.zeros(2), "x": Payload()}, legacy, _use_new_zipfile_serialization=False)
    bounded_load(legacy).assert_refused("evil_legacy.pt", "posix.system")
    assert not marker.exists()


def test_training_history_in_stdlib_containers_is_kept_inert(tmp_path: Path) -> None:
    """A deque of losses beside the weights is recorded, not called, and does not sink the file."""
    from collections import deque

    torch.manual_seed(8)
    lstm = nn.LSTM(3, 4).eval()
    path = tmp_path / "history.pt"
    torch.save({"model_state_dict": lstm.state_dict(), "losses": deque([0.5, 0.25])}, path)
    assert_parity(path, lstm)
