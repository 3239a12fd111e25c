"""Reparametrized and AWD weight-drop LSTM weights, against torch's own eval-mode forward.

Tiny ``nn.LSTM`` modules are built here, normalised with torch's utilities, saved with
``torch.save(state_dict)`` and loaded; lstmviz's output must match the module's at 1e-5.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

import lstmviz

D, H = 3, 4


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, D)).astype(np.float32)


def _torch_out(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x))[0].numpy()


def _load(tmp_path: Path, state: dict, name: str = "m.pt") -> lstmviz.LSTMModel:
    path = tmp_path / name
    torch.save(state, path)
    return lstmviz.load_model(path)


def _transforms(model) -> list[str]:
    return [t for layer in model.layers for d in layer.directions for t in d.provenance.transforms]


def _train_step(lstm: nn.Module) -> None:
    """One training forward, so spectral_norm's power iteration has updated u and v."""
    lstm.train()
    with torch.no_grad():
        lstm(torch.randn(2, D))


def test_parametrizations_weight_norm_default_and_other_dims(tmp_path):
    torch.manual_seed(0)
    lstm = nn.LSTM(D, H, num_layers=2, bidirectional=True)
    parametrizations.weight_norm(lstm, "weight_hh_l0")  # dim=0
    parametrizations.weight_norm(lstm, "weight_ih_l1_reverse", dim=1)
    parametrizations.weight_norm(lstm, "weight_hh_l1", dim=None)  # one norm over the tensor
    with torch.no_grad():  # make g differ from ‖v‖, so a wrong formula shows
        for p in lstm.parametrizations.values():
            p.original0.mul_(torch.rand_like(p.original0) + 0.5)
    x = _x()
    model = _load(tmp_path, lstm.state_dict())
    np.testing.assert_allclose(lstmviz.run(model, x).output, _torch_out(lstm, x), atol=1e-5)
    texts = _transforms(model)
    assert any(t.startswith("weight_hh_l0 = g·v/‖v‖ (dim 0) from parametrizations") for t in texts)
    assert any(t.startswith("weight_ih_l1_reverse = g·v/‖v‖ (dim 1)") for t in texts)
    assert any("(one norm over the whole tensor)" in t for t in texts)


def test_old_weight_norm_and_spectral_norm_hooks(tmp_path):
    torch.manual_seed(1)
    lstm = nn.LSTM(D, H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        nn.utils.weight_norm(lstm, "weight_hh_l0", dim=1)
    nn.utils.spectral_norm(lstm, "weight_ih_l0")
    _train_step(lstm)
    assert {"weight_hh_l0_g", "weight_ih_l0_orig", "weight_ih_l0_u"} <= set(lstm.state_dict())
    x = _x()
    model = _load(tmp_path, lstm.state_dict())
    np.testing.assert_allclose(lstmviz.run(model, x).output, _torch_out(lstm, x), atol=1e-5)
    texts = _transforms(model)
    assert (
        "weight_hh_l0 = g·v/‖v‖ (dim 1) from weight_hh_l0_g/weight_hh_l0_v (torch weight_norm)"
        in texts
    )
    assert any(t.startswith("weight_ih_l0 = weight_ih_l0_orig/σ (dim 0, σ = ") for t in texts)
    assert not [i for i in model.all_layers if not i.is_lstm]  # every piece was used


def test_parametrizations_spectral_norm(tmp_path):
    torch.manual_seed(2)
    lstm = nn.LSTM(D, H)
    parametrizations.spectral_norm(lstm, "weight_hh_l0")
    _train_step(lstm)
    x = _x()
    model = _load(tmp_path, lstm.state_dict())
    np.testing.assert_allclose(lstmviz.run(model, x).output, _torch_out(lstm, x), atol=1e-5)


def test_other_parametrizations_are_refused_naming_the_fix(tmp_path):
    class Double(nn.Module):
        def forward(self, w):
            return 2 * w

    lstm = nn.LSTM(D, H)
    parametrize.register_parametrization(lstm, "weight_hh_l0", Double())
    with pytest.raises(lstmviz.LoadError) as err:
        _load(tmp_path, lstm.state_dict())
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "m.pt: weight_hh_l0 is parametrized (parametrizations.weight_hh_l0.original), and "
        "lstmviz computes only weight_norm and spectral_norm; call "
        "torch.nn.utils.parametrize.remove_parametrizations(module, 'weight_hh_l0') (or "
        "remove_weight_norm / remove_spectral_norm) before saving the state_dict"
    )


def test_awd_raw_weight_wins_over_a_dropped_out_plain_copy(tmp_path):
    """Eval mode runs weight_hh_l0_raw; the plain weight beside it is the dropped-out one."""
    torch.manual_seed(3)
    lstm = nn.LSTM(D, H)
    state = dict(lstm.state_dict())
    state["weight_hh_l0_raw"] = state["weight_hh_l0"].clone()
    state["weight_hh_l0"] = nn.functional.dropout(state["weight_hh_l0"], 0.5, training=True)
    x = _x()
    model = _load(tmp_path, state)
    np.testing.assert_allclose(lstmviz.run(model, x).output, _torch_out(lstm, x), atol=1e-5)
    notes = model.layers[0].directions[0].provenance.notes
    assert any(n.startswith("weight_hh_l0_raw used instead of weight_hh_l0 (AWD") for n in notes)


def test_fastai_raw_weight_on_the_wrapper(tmp_path):
    """fastai's WeightDropout: rnns.0.weight_hh_l0_raw beside rnns.0.module.* (no weight_hh)."""
    torch.manual_seed(4)
    lstm = nn.LSTM(D, H)
    state = {f"rnns.0.module.{k}": v for k, v in lstm.state_dict().items() if k != "weight_hh_l0"}
    state["rnns.0.weight_hh_l0_raw"] = lstm.weight_hh_l0.detach().clone()
    x = _x()
    model = _load(tmp_path, state)
    np.testing.assert_allclose(lstmviz.run(model, x).output, _torch_out(lstm, x), atol=1e-5)
    notes = model.layers[0].directions[0].provenance.notes
    assert (
        "rnns.0.weight_hh_l0_raw used for weight_hh_l0 (AWD-LSTM weight drop, kept on the "
        "WeightDropout wrapper: eval runs it)" in notes
    )
