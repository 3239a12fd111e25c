"""TorchScript reach and dynamic-quantized LSTMs, against committed torch outputs.

Fixtures and the torch results beside them come from ``make_script_fixtures.py``: a module
holding its LSTM in a private attribute, two LSTMs in one archive (a prefix= choice), a
torch 1.x-style archive (6-element storage ids, HalfStorage, 'cuda:0'), and a 2-layer
bidirectional LSTM quantized with ``quantize_dynamic`` as a state dict and as TorchScript.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.io import ChoiceRequired

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "torch"
TOL = 1e-5
#: lstmviz runs the dequantized weights in float; torch's quantized LSTM also rounds each
#: step's input and h to 8 bits (dynamic activation quantization), which moves outputs by a
#: few 1e-3 on these weights (measured max 2.2e-3 for the bidirectional 2-layer fixture).
QUANTIZED_TOL = 1e-2


def expected(stem: str, key: str = "") -> dict[str, np.ndarray]:
    data = np.load(HERE / f"{stem}.expected.npz")
    prefix = f"{key}/" if key else ""
    return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}


def output(path: Path, x: np.ndarray, **options: str) -> np.ndarray:
    return lstmviz.run(lstmviz.load_model(path, **options), x).layers[-1].output


def test_lstm_in_a_private_attribute() -> None:
    exp = expected("script_private")
    model = lstmviz.load_model(HERE / "script_private.pt")
    assert model.layers[0].name == "_model layer 0"
    np.testing.assert_allclose(
        output(HERE / "script_private.pt", exp["x"]), exp["output"], atol=TOL
    )


def test_two_models_in_one_archive_are_a_choice() -> None:
    with pytest.raises(ChoiceRequired) as info:
        lstmviz.load_model(HERE / "script_two.pt")
    assert set(info.value.choices) == {"_enc", "_dec"}
    for prefix in ("_enc", "_dec"):
        exp = expected("script_two", prefix)
        got = output(HERE / "script_two.pt", exp["x"], prefix=prefix)
        np.testing.assert_allclose(got, exp["output"], atol=TOL)


def test_torch_1x_archive_with_trailing_none_half_and_cuda() -> None:
    exp = expected("script_v1")
    model = lstmviz.load_model(HERE / "script_v1.pt")
    stored = model.layers[0].directions[0].provenance.stored
    assert {t.dtype for t in stored} == {"float16"}
    np.testing.assert_allclose(output(HERE / "script_v1.pt", exp["x"]), exp["output"], atol=TOL)


@pytest.mark.parametrize("stem", ["qlstm_sd", "qlstm_script"])
def test_dynamic_quantized_lstm(stem: str) -> None:
    exp = expected(stem)
    path = HERE / f"{stem}.pt"
    model = lstmviz.load_model(path)
    assert len(model.layers) == 2 and len(model.layers[0].directions) == 2
    got = lstmviz.run(model, exp["x"]).layers[-1].output
    np.testing.assert_allclose(got, exp["output"], atol=TOL)  # torch's own dequantization
    gap = np.abs(got - exp["quantized_output"]).max()
    assert 0 < gap < QUANTIZED_TOL  # torch's quantized run, activations rounded too
    transforms = model.layers[0].directions[1].provenance.transforms
    assert any("dequantized from a dynamic-quantized LSTM" in t for t in transforms)
    assert any("dynamic-quantized LSTM (qint8)" in n for n in model.notes)


def test_float16_dynamic_quantized_lstm() -> None:
    """float16 packing keeps float weights (rounded to half) and computes in float32: lstmviz
    matches torch's quantized run itself."""
    exp = expected("qlstm_fp16")
    model = lstmviz.load_model(HERE / "qlstm_fp16.pt")
    got = lstmviz.run(model, exp["x"]).layers[-1].output
    np.testing.assert_allclose(got, exp["output"], atol=TOL)
    assert any("float16 packed weights" in n for n in model.notes)


def test_per_channel_dynamic_quantized_lstm(tmp_path: Path) -> None:
    """per_channel_dynamic_qconfig: each row of a weight has its own scale and zero point
    (``_rebuild_qtensor`` with per_channel_affine); matched against torch's dequantization."""
    import warnings

    import torch
    from torch import nn

    warnings.simplefilter("ignore")
    torch.manual_seed(22)
    lstm = nn.Sequential(nn.LSTM(3, 5, num_layers=2)).eval()
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    q = torch.ao.quantization.quantize_dynamic(lstm, {nn.LSTM: qconfig})
    path = tmp_path / "per_channel.pt"
    torch.save(q.state_dict(), path)
    assert b"per_channel_affine" in path.read_bytes()
    weights = q[0]._weight_bias()
    ref = nn.LSTM(3, 5, num_layers=2).eval()
    ref.load_state_dict(
        {**{k: v.dequantize() for k, v in weights["weight"].items()}, **weights["bias"]}
    )
    x = torch.randn(9, 3)
    with torch.no_grad():
        want = ref(x[:, None])[0][:, 0].numpy()
    got = output(path, x.numpy())
    np.testing.assert_allclose(got, want, atol=TOL)
