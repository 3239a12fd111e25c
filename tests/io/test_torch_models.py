"""Files torch writes for less common state dicts, built here with torch 2.13 (cheap sizes)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstmviz
from lstmviz.io import ChoiceRequired

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch"
TOL = 1e-5


def torch_reference(lstm: nn.LSTM, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return lstm(torch.from_numpy(x))[0].double().numpy()


def assert_runs_like(path: Path, lstm: nn.LSTM, **options: str) -> lstmviz.LSTMModel:
    model = lstmviz.load_model(path, **options)
    x = (
        np.random.default_rng(0)
        .standard_normal((5, lstm.input_size))
        .astype(lstm.weight_ih_l0.detach().numpy().dtype)
    )
    out = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(out, torch_reference(lstm, x), atol=TOL, rtol=0)
    return model


def test_views_with_offsets_and_transposed_strides(tmp_path: Path) -> None:
    """Tensors that are views into one storage keep their offset and strides in the file."""
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4)
    sd = lstm.state_dict()
    flat = torch.cat([sd[k].T.flatten() if sd[k].ndim == 2 else sd[k] for k in sd])
    views, start = {}, 0
    for k, v in sd.items():
        n = v.numel()
        chunk = flat[start : start + n]
        views[k] = chunk.view(v.shape[1], v.shape[0]).T if v.ndim == 2 else chunk
        start += n
    assert not views["weight_ih_l0"].is_contiguous()
    assert views["bias_hh_l0"].storage_offset() > 0
    torch.save(views, tmp_path / "views.pt")
    assert_runs_like(tmp_path / "views.pt", lstm)


def test_parameters_pickle_protocol_4_and_float64(tmp_path: Path) -> None:
    lstm = nn.LSTM(2, 3).double()
    torch.save(dict(lstm.named_parameters()), tmp_path / "params.pt", pickle_protocol=4)
    model = assert_runs_like(tmp_path / "params.pt", lstm)
    assert model.layers[0].directions[0].W_x.dtype == np.float64


def test_integer_tensors_new_dtypes_and_python_objects_are_tolerated(tmp_path: Path) -> None:
    """BatchNorm's int64 counter, uint16 (_rebuild_tensor_v3), numpy scalars, argparse args."""
    net = nn.Sequential(nn.BatchNorm1d(3), nn.LSTM(3, 4))
    state = net.state_dict()
    state["mask"] = torch.ones(4, dtype=torch.bool)
    state["ids"] = torch.tensor([1, 2, 3], dtype=torch.int32).to(torch.uint16)
    checkpoint = {
        "state_dict": state,
        "best_acc": np.float64(0.5),
        "args": argparse.Namespace(lr=0.1),
        "step": torch.tensor(12),
        "history": [1.0, 2.0],
    }
    torch.save(checkpoint, tmp_path / "ckpt.tar")
    model = assert_runs_like(tmp_path / "ckpt.tar", net[1])
    shapes = {name: shape for info in model.all_layers for name, shape in info.weights}
    assert shapes["0.num_batches_tracked"] == ()
    assert shapes["ids"] == (3,) and shapes["step"] == ()
    assert model.layers[0].name == "1"


def test_gru_beside_an_lstm_is_listed_not_loaded(tmp_path: Path) -> None:
    class Both(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(3, 4)
            self.lstm = nn.LSTM(4, 2)

    both = Both()
    torch.save(both.state_dict(), tmp_path / "both.pt")
    with pytest.raises(ChoiceRequired, match=r"2 recurrent modules \(gru, lstm\)"):
        lstmviz.load_model(tmp_path / "both.pt")  # a GRU opens too (test_gru_torch.py)
    model = assert_runs_like(tmp_path / "both.pt", both.lstm, prefix="lstm")
    info = {i.name: i for i in model.all_layers}
    assert info["gru"].kind == "GRU"
    assert info["gru"].note == "not shown; load with prefix='gru'"
    assert lstmviz.load_model(tmp_path / "both.pt", prefix="gru").layers[0].kind == "GRU"


def test_awd_lstm_raw_weights(tmp_path: Path) -> None:
    """AWD-LSTM's WeightDrop stores ``weight_hh_l0_raw`` instead of ``weight_hh_l0``."""
    lstm = nn.LSTM(3, 4)
    sd = {
        f"rnns.0.module.{k}_raw" if k.startswith("weight_hh") else f"rnns.0.module.{k}": v
        for k, v in lstm.state_dict().items()
    }
    torch.save(sd, tmp_path / "awd.pt")
    model = assert_runs_like(tmp_path / "awd.pt", lstm)
    names = [t.name for t in model.layers[0].directions[0].provenance.stored]
    assert "rnns.0.module.weight_hh_l0_raw" in names


def test_big_endian_storages(tmp_path: Path) -> None:
    """``byteorder = big`` (torch on a big-endian host): same numbers after swapping."""
    src = FIXTURES / "plain.pt"
    dst = tmp_path / "big.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            zout.writestr(info.filename, data)
    a = lstmviz.load_model(src).layers[0].directions[0]
    b = lstmviz.load_model(dst).layers[0].directions[0]
    np.testing.assert_array_equal(a.W_x, b.W_x)
    np.testing.assert_array_equal(a.b, b.b)


def test_reader_never_imports_torch() -> None:
    code = (
        "import sys, lstmviz; "
        f"m = lstmviz.load_model({str(FIXTURES / 'checkpoint.pth')!r}); "
        f"lstmviz.load_model({str(FIXTURES / 'lstm.safetensors')!r}); "
        "bad = [n for n in ('torch', 'safetensors') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
