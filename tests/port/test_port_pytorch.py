"""pytorch target: the .pt (written without torch) and .safetensors load into nn.LSTM."""

from __future__ import annotations

import numpy as np
import port_models as pm
import pytest
import torch
from safetensors.torch import load_file

import lstmviz
from lstmviz.port import ExportError


def torch_output(lstm: torch.nn.LSTM, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return lstm(torch.from_numpy(x)[:, None])[0][:, 0].numpy()


def build(code: str) -> torch.nn.LSTM:
    return eval(code.splitlines()[1].split(" = ", 1)[1], {"torch": torch})


CASES = {
    "stacked": pm.stacked,
    "bidirectional": pm.bidirectional,
    "projected": pm.projected,
    "torch_proj_fixture": lambda: lstmviz.load_model(pm.FIXTURES / "torch/proj.pt"),
    "keras_fixture": lambda: lstmviz.load_model(pm.FIXTURES / "keras/keras216_full.h5"),
}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_nn_lstm(tmp_path, case, suffix):
    model = CASES[case]()
    path = tmp_path / f"model{suffix}"
    result = lstmviz.export(model, "pytorch", path)
    sd = torch.load(path, weights_only=True) if suffix == ".pt" else load_file(path)
    assert all(k.startswith(("weight_", "bias_")) for k in sd)
    lstm = build(result.code)
    lstm.load_state_dict(sd)  # strict: every nn.LSTM name, nothing else
    x = pm.sequence(model)
    np.testing.assert_allclose(torch_output(lstm, x), pm.reference(model, x), atol=1e-5)
    back = lstmviz.load_model(path)
    pm.assert_same_weights(model, back)
    assert not np.any(sd["bias_hh_l0"].numpy())  # the summed bias is all in bias_ih
    assert any("bias_hh" in note for note in result.notes)


def test_pt_pickle_names_only_allowed_globals(tmp_path):
    """The pickle references nothing torch.load(weights_only=True) would refuse."""
    import pickletools
    import zipfile

    lstmviz.export(pm.stacked(), "pytorch", tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as zf:
        pkl = zf.read("archive/data.pkl")
        records = [n for n in zf.namelist() if "/data/" in n]
        offsets = [zf.getinfo(n).header_offset for n in records]
    names = {arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL"}
    assert names == {
        "collections OrderedDict",
        "torch._utils _rebuild_tensor_v2",
        "torch FloatStorage",
    }
    assert len(records) == 8 and offsets  # one record per tensor


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (pm.peephole, "peepholes, which pytorch cannot hold; export to onnx"),
        (pm.hard_sigmoid, "activations hard_sigmoid_k3"),
        (lambda: pm.bidirectional(merge=lstmviz.core.model.MergeMode.SUM), "merge_mode sum"),
        (pm.go_backwards, "go_backwards"),
        (lambda: lstmviz.load_model(pm.FIXTURES / "tf1/peep_proj/model.ckpt"), "peepholes"),
        (
            lambda: lstmviz.load_model(pm.FIXTURES / "onnx/dynamo_learned_h0.onnx"),
            "stored initial states h0/c0, which pytorch cannot hold; export to onnx or numpy",
        ),
    ],
)
def test_refuses_what_nn_lstm_cannot_hold(tmp_path, make, needle):
    with pytest.raises(ExportError, match=needle) as info:
        lstmviz.export(make(), "pytorch", tmp_path / "x.pt")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.pt").exists()


def test_head_left_out_with_a_note(tmp_path):
    result = lstmviz.export(pm.with_head(), "pytorch", tmp_path / "h.pt")
    assert any("head" in note for note in result.notes)
