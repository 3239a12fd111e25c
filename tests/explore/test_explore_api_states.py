"""run_corpus against PyTorch's own LSTM, chunking, progress and cancel, bidirectional layers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmviz
from lstmviz.explore import Cancelled, Corpus, Vocabulary, run_corpus
from lstmviz.explore import states as states_module
from lstmviz.resources import example

BRACKETS = example("brackets")
GRU_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "gru" / "torch" / "gru_model.pt"


def test_bracket_states_match_pytorch():
    """h of every document equals nn.LSTM's output on the same ids (embedding included)."""
    model = lstmviz.load_model(BRACKETS.model)
    vocab = Vocabulary.from_file(BRACKETS.vocabulary)
    corpus = Corpus.from_text(BRACKETS.corpus, vocab)
    states = run_corpus(model, corpus, quantities=("h", "c", "f"))
    sd = torch.load(BRACKETS.model, weights_only=True)
    embed = torch.nn.Embedding.from_pretrained(sd["embed.weight"])
    lstm = torch.nn.LSTM(8, 32, batch_first=True)
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    h = states.values("h")
    assert h.shape == (corpus.n_tokens, 32) and h.dtype == np.float32
    for d in (0, 7, 199):
        ids = torch.from_numpy(corpus.documents[d].ids)[None]
        with torch.no_grad():
            out, (_, c_n) = lstm(embed(ids))
        a, b = corpus.doc_starts[d], corpus.doc_starts[d + 1]
        np.testing.assert_allclose(h[a:b], out[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(states.values("c")[b - 1], c_n[0, 0].numpy(), atol=1e-5)
    assert states.values("f").min() >= 0 and states.values("f").max() <= 1
    with pytest.raises(ValueError, match="'o' was not recorded"):
        states.values("o")


def _tiny_model(tmp_path, bidirectional=False, D=3, H=5):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H, bidirectional=bidirectional, batch_first=True)
    path = tmp_path / ("bi.pt" if bidirectional else "uni.pt")
    torch.save({f"lstm.{k}": v for k, v in lstm.state_dict().items()}, path)
    return lstmviz.load_model(path), lstm


def test_long_documents_run_in_chunks_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(states_module, "CHUNK", 16)
    model, lstm = _tiny_model(tmp_path)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((T, 3)).astype(np.float32) for T in (50, 7, 33)]
    calls = []
    states = run_corpus(model, Corpus.from_arrays(xs), progress=lambda d, n: calls.append((d, n)))
    with torch.no_grad():
        want = np.concatenate([lstm(torch.from_numpy(x)[None])[0][0].numpy() for x in xs])
    np.testing.assert_allclose(states.values(), want, atol=1e-5)
    assert calls[-1] == (90, 90) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert states.complete and states.n_units == 5


def test_cancel_stops_between_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(states_module, "CHUNK", 10)
    model, _ = _tiny_model(tmp_path)
    corpus = Corpus.from_arrays([np.zeros((100, 3))])
    event = threading.Event()

    def progress(done, total):
        if done >= 30:
            event.set()

    with pytest.raises(Cancelled, match="after 30 of 100 tokens") as info:
        run_corpus(model, corpus, progress=progress, cancel=event)
    partial = info.value.states
    assert not partial.complete and partial.n_done == 30


def test_bidirectional_layer_output_and_directions(tmp_path):
    model, lstm = _tiny_model(tmp_path, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((12, 3)).astype(np.float32)
    corpus = Corpus.from_arrays([x, x[:5]])
    both = run_corpus(model, corpus)
    with torch.no_grad():
        want = lstm(torch.from_numpy(x)[None])[0][0].numpy()
    assert both.n_units == 10  # [forward, backward] as nn.LSTM concatenates them
    np.testing.assert_allclose(both.values()[:12], want, atol=1e-5)
    back = run_corpus(model, corpus, direction=1, quantities=("h", "c"))
    np.testing.assert_allclose(back.values()[:12], want[:, 5:], atol=1e-5)
    assert back.values("c").shape == (17, 5)
    assert run_corpus(model, corpus, quantities=("i",)).values("i").shape == (17, 10)


def test_argument_errors(tmp_path):
    model, _ = _tiny_model(tmp_path)
    corpus = Corpus.from_arrays([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="layer 2: the model has 1 LSTM layers"):
        run_corpus(model, corpus, layer=2)
    with pytest.raises(ValueError, match="quantities must be"):
        run_corpus(model, corpus, quantities=("z",))
    gru = lstmviz.load_model(GRU_MODEL)  # two GRU layers: counted as GRU layers, not LSTM
    with pytest.raises(ValueError, match=r"layer 2: the model has 2 GRU layers \(0\.\.1\)"):
        run_corpus(gru, Corpus.from_arrays([np.zeros((4, gru.input_size))]), layer=2)
    with pytest.raises(ValueError, match="4 values per step"):
        run_corpus(model, Corpus.from_arrays([np.zeros((4, 4))]))


def test_large_corpora_are_stored_as_float16(tmp_path, monkeypatch):
    monkeypatch.setattr(states_module, "MAX_FLOAT32_BYTES", 100)
    model, _ = _tiny_model(tmp_path)
    st = run_corpus(model, Corpus.from_arrays([np.ones((10, 3))]))
    assert st.values().dtype == np.float16
    assert (
        run_corpus(model, Corpus.from_arrays([np.ones((10, 3))]), dtype=np.float32).values().dtype
        == np.float32
    )


def test_gru_layers_run_in_chunks_too(tmp_path, monkeypatch):
    monkeypatch.setattr(states_module, "CHUNK", 8)
    torch.manual_seed(1)
    gru = torch.nn.GRU(3, 4, batch_first=True)
    path = tmp_path / "gru.pt"
    torch.save({f"gru.{k}": v for k, v in gru.state_dict().items()}, path)
    model = lstmviz.load_model(path)
    x = np.random.default_rng(2).standard_normal((30, 3)).astype(np.float32)
    states = run_corpus(model, Corpus.from_arrays([x]), quantities=("h", "z"))
    with torch.no_grad():
        want = gru(torch.from_numpy(x)[None])[0][0].numpy()
    np.testing.assert_allclose(states.values(), want, atol=1e-5)
    assert states.values("z").shape == (30, 4)
    with pytest.raises(ValueError, match="some of r, z, n, h for layer 0"):
        run_corpus(model, Corpus.from_arrays([x]), quantities=("c",))
