"""Which embedding a PyTorch state dict's LSTM reads (a state dict records no wiring).

Tiny torch modules are built and saved here; token ids through the chosen embedding are
checked against torch at 1e-5. An embedding with a D-wide module stored between it and the
LSTM (``embedding → inp = Linear(5, 5) → lstm``) is not used: running only the LSTM on the
looked-up rows would give numbers torch never computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import lstmviz


class Direct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 5)
        self.lstm = nn.LSTM(5, 6)
        self.fc = nn.Linear(6, 2)


class Through(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 5)
        self.inp = nn.Linear(5, 5)
        self.lstm = nn.LSTM(5, 6)
        self.fc = nn.Linear(6, 2)


def _saved(tmp_path: Path, module: nn.Module) -> Path:
    path = tmp_path / f"{type(module).__name__}.pt"
    torch.save(module.state_dict(), path)
    return path


def test_embedding_feeding_the_lstm_directly_is_taken_as_an_assumption(tmp_path):
    torch.manual_seed(0)
    module = Direct().eval()
    model = lstmviz.load_model(_saved(tmp_path, module))
    assert model.embedding is not None and model.embedding.shape == (20, 5)
    assert (
        "embedding = embedding.weight (20, 5), assumed to feed lstm directly (a state dict "
        "does not record wiring); not run: fc (Linear)" in model.notes
    )
    infos = {i.name: i for i in model.all_layers}
    assert infos["embedding"].note == "token embedding, assumed to feed lstm directly"
    assert infos["fc"].note == "not run by lstmviz"
    ids = [3, 1, 4, 1, 5, 9]
    with torch.no_grad():
        want = module.lstm(module.embedding(torch.tensor(ids)))[0].numpy()
    got = lstmviz.run(model, model.embedding[ids]).layers[0].output
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_embedding_with_a_module_stored_between_is_not_used(tmp_path):
    torch.manual_seed(1)
    module = Through().eval()
    model = lstmviz.load_model(_saved(tmp_path, module))
    assert model.embedding is None
    assert (
        "embedding.weight (20, 5) is not used for token ids: inp, stored between it and lstm, "
        "may run in between (a state dict does not record wiring); type 5-wide vectors instead"
        in model.notes
    )
    note = {i.name: i.note for i in model.all_layers}["embedding"]
    assert note == "not run by lstmviz: inp is stored between it and lstm"
    # what lstmviz runs is still the LSTM itself
    x = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    with torch.no_grad():
        want = module.lstm(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(lstmviz.run(model, x).layers[0].output, want, atol=1e-5)


def test_a_head_after_the_lstm_does_not_block_the_embedding(tmp_path):
    """fc = Linear(6, 5) outputs D-wide vectors too, but it is stored after the LSTM."""

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(9, 5)
            self.lstm = nn.LSTM(5, 6)
            self.fc = nn.Linear(6, 5)

    model = lstmviz.load_model(_saved(tmp_path, Head()))
    assert model.embedding is not None and model.embedding.shape == (9, 5)
