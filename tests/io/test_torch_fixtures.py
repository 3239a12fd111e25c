"""Committed torch 2.13 / safetensors fixtures against torch's own outputs (make_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.core.model import MergeMode, OutputOrder
from lstmviz.io import ChoiceRequired, LoadError, find_reader
from lstmviz.io.probe import Probe

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "torch"
TOL = 1e-5


def expected_for(path: Path, key: str = "") -> dict[str, np.ndarray]:
    stem = path.name.rsplit(".", 1)[0]
    data = np.load(HERE / f"{stem}.expected.npz")
    prefix = f"{key}/" if key else ""
    return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


def check_against_torch(model: lstmviz.LSTMModel, exp: dict[str, np.ndarray]) -> None:
    """Output, h_n and c_n of ``run`` equal torch's (h_n index = layer * dirs + dir)."""
    trace = lstmviz.run(model, exp["x"])
    np.testing.assert_allclose(trace.layers[-1].output, exp["output"], atol=TOL, rtol=0)
    h_n = [d.h_last for layer in trace.layers for d in layer.directions]
    c_n = [d.c_last for layer in trace.layers for d in layer.directions]
    np.testing.assert_allclose(np.stack(h_n), exp["h_n"], atol=TOL, rtol=0)
    np.testing.assert_allclose(np.stack(c_n), exp["c_n"], atol=TOL, rtol=0)


CASES = [
    # file, n_layers, bidirectional, layer kind
    ("plain.pt", 1, False, "LSTM"),
    ("archive_prefix.ckpt", 1, False, "LSTM"),
    ("checkpoint.pth", 1, False, "LSTM"),
    ("lightning_hydra.tar", 1, False, "LSTM"),
    ("data_parallel.bin", 1, False, "LSTM"),
    ("bidir2.pt", 2, True, "LSTM"),
    ("proj.pt", 2, True, "LSTM"),
    ("nobias.pt", 1, False, "LSTM"),
    ("cell.pt", 1, False, "LSTMCell"),
    ("half.pt", 2, False, "LSTM"),
    ("bf16.pt", 1, True, "LSTM"),
    ("lstm.safetensors", 2, False, "LSTM"),
    ("bf16_st.safetensors", 1, False, "LSTM"),
]


@pytest.mark.parametrize(("name", "n_layers", "bidir", "kind"), CASES)
def test_fixture_matches_torch(name: str, n_layers: int, bidir: bool, kind: str) -> None:
    path = HERE / name
    model = lstmviz.load_model(path)
    assert len(model.layers) == n_layers
    assert all(layer.bidirectional == bidir and layer.kind == kind for layer in model.layers)
    assert model.framework == "PyTorch"
    stem = "bf16_st" if name == "bf16_st.safetensors" else name.rsplit(".", 1)[0]
    check_against_torch(model, dict(np.load(HERE / f"{stem}.expected.npz")))


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_provenance_records_the_pytorch_layout(name: str) -> None:
    model = lstmviz.load_model(HERE / name)
    fmt = "safetensors" if name.endswith(".safetensors") else "PyTorch zip (torch.save)"
    assert model.source_format == fmt
    for layer in model.layers:
        if layer.bidirectional:
            assert layer.merge_mode is MergeMode.CONCAT
        assert layer.output_order is OutputOrder.TIME
        for d in layer.directions:
            prov = d.provenance
            assert prov.framework == "PyTorch" and prov.source_format == fmt
            assert prov.gate_order == ("i", "f", "g", "o") and prov.perm == (0, 1, 2, 3)
            roles = {t.role: t for t in prov.stored}
            assert roles["W_x"].name.rpartition(".")[2].startswith("weight_ih")
            assert roles["W_x"].shape == (4 * d.hidden_size, d.input_size)
            assert ("_reverse" in roles["W_x"].name) == d.reverse
            if "b_hh" in roles and "b_ih" in roles:
                assert "bias_ih + bias_hh summed into b" in prov.transforms


def test_checkpoint_container_prefix_embedding_and_other_layers() -> None:
    model = lstmviz.load_model(HERE / "checkpoint.pth")
    assert model.layers[0].name == "encoder.lstm"
    w_x = model.layers[0].directions[0].provenance.stored[0]
    assert w_x.name == "encoder.lstm.weight_ih_l0"
    assert model.embedding is not None and model.embedding.shape == (12, 4)
    assert "epoch = 7" in model.notes
    kinds = {info.name: info for info in model.all_layers}
    assert kinds["encoder.lstm"].is_lstm and kinds["encoder.lstm"].note == "shown"
    assert kinds["encoder.embedding"].kind == "Embedding"
    assert kinds["classifier"].kind == "Linear"
    optim = kinds["optimizer_state_dict"]
    assert optim.kind == "tensor" and optim.note == "optimizer state"
    assert any(name.endswith("exp_avg") for name, _ in optim.weights)


def test_lightning_checkpoint_with_omegaconf_paths_and_datetimes() -> None:
    """Hydra's DictConfig, pathlib.Path, datetime and defaultdict values are data, not code:
    they are kept as inert placeholders (never imported) and the weights load."""
    model = lstmviz.load_model(HERE / "lightning_hydra.tar")
    assert model.layers[0].name == "model.lstm"
    assert "epoch = 4" in model.notes and "hparams_name = 'cfg'" in model.notes
    assert model.embedding is not None and model.embedding.shape == (12, 4)


def test_module_prefix_is_kept_in_names() -> None:
    model = lstmviz.load_model(HERE / "data_parallel.bin")
    assert model.layers[0].name == "module"
    assert model.layers[0].directions[0].provenance.stored[0].name == "module.weight_ih_l0"


def test_projection_bias_free_and_half_are_recorded() -> None:
    proj = lstmviz.load_model(HERE / "proj.pt").layers[1].directions[1]
    assert proj.W_p is not None and proj.W_p.shape == (2, 6) and proj.output_size == 2
    assert proj.input_size == 4  # P * dirs
    assert any("weight_hr_l1_reverse" in n and "P = 2" in n for n in proj.provenance.notes)
    nobias = lstmviz.load_model(HERE / "nobias.pt").layers[0].directions[0]
    assert not nobias.b.any() and "bias=False: b = 0" in nobias.provenance.notes
    for name, dtype in (("half.pt", "float16"), ("bf16.pt", "bfloat16")):
        d = lstmviz.load_model(HERE / name).layers[0].directions[0]
        assert d.W_x.dtype == np.float32
        assert {t.dtype for t in d.provenance.stored} == {dtype}
        assert f"{dtype} widened to float32" in d.provenance.transforms


def test_two_lstms_need_a_prefix_then_each_matches_torch() -> None:
    path = HERE / "two_lstms.pt"
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(path)
    err = info.value
    assert isinstance(err, LoadError)
    assert err.option == "prefix" and set(err.choices) == {"encoder", "decoder"}
    assert "two_lstms.pt" in str(err) and "encoder" in str(err)
    for prefix in err.choices:
        model = lstmviz.load_model(path, prefix=prefix)
        assert model.layers[0].name == prefix
        check_against_torch(model, expected_for(path, prefix))
        notes = {i.name: i.note for i in model.all_layers}
        other = "decoder" if prefix == "encoder" else "encoder"
        assert notes[other] == f"not shown; load with prefix='{other}'"
    enc = lstmviz.load_model(path, prefix="encoder.")
    assert enc.embedding is not None and enc.embedding.shape == (10, 4)
    dec = lstmviz.load_model(path, prefix="decoder")
    assert dec.embedding is None  # the embedding width 4 is not the decoder's input width 5
    with pytest.raises(ChoiceRequired, match="no LSTM under prefix 'head'"):
        lstmviz.load_model(path, prefix="head")


def test_safetensors_metadata_and_embedding() -> None:
    model = lstmviz.load_model(HERE / "lstm.safetensors")
    assert "metadata format = pt" in model.notes
    assert model.embedding is not None and model.embedding.shape == (7, 3)
    assert model.layers[0].name == "rnn layer 0"


@pytest.mark.parametrize("name", [c[0] for c in CASES] + ["two_lstms.pt"])
def test_sniffers_pick_the_right_reader(name: str) -> None:
    reader = find_reader(Probe.open(HERE / name))
    assert reader is not None
    assert reader.name == ("safetensors" if name.endswith(".safetensors") else "PyTorch")
    assert "prefix" in reader.options
