"""Every kind of file torch 2.13 writes for an LSTM, made here and run against torch itself.

torch.save of state dicts in the containers training code uses (Lightning-style, nested,
lists, numpy arrays, torch.device values, 'cuda:0' storages), torch.jit.save archives
(scripted and traced: their data.pkl is read as attribute dicts, code/ is never run) and
torch.export.save ``.pt2`` archives (raw weights + JSON config, and the < 2.8 layout written
by torch's own serializer). Sizes are tiny; the whole file runs in about a second.
"""

from __future__ import annotations

import collections
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstmviz
from lstmviz.io import LoadError

TOL = 1e-5
T = 5


def torch_output(lstm: nn.LSTM | nn.LSTMCell, x: np.ndarray) -> np.ndarray:
    """torch's own output for one unbatched sequence ``x (T, D)``."""
    with torch.no_grad():
        xt = torch.from_numpy(x)
        if isinstance(lstm, nn.LSTMCell):
            h = c = torch.zeros(lstm.hidden_size)
            out = []
            for t in range(len(xt)):
                h, c = lstm(xt[t], (h, c))
                out.append(h)
            return torch.stack(out).double().numpy()
        xt = xt[None] if lstm.batch_first else xt[:, None]
        y = lstm(xt.to(lstm.weight_ih_l0.dtype))[0]
        return (y[0] if lstm.batch_first else y[:, 0]).double().numpy()


def assert_matches(path: Path, lstm: nn.Module, **options: str) -> lstmviz.LSTMModel:
    model = lstmviz.load_model(path, **options)
    x = np.random.default_rng(0).standard_normal((T, lstm.input_size)).astype(np.float32)
    out = lstmviz.run(model, x).layers[-1].output
    np.testing.assert_allclose(out, torch_output(lstm, x), atol=TOL, rtol=0)
    return model


class Net(nn.Module):
    """Embedding → LSTM → head, the usual shape of a sequence model."""

    def __init__(self, **lstm: object) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 3)
        self.lstm = nn.LSTM(3, 4, **lstm)  # type: ignore[arg-type]
        dirs = 2 if self.lstm.bidirectional else 1
        self.fc = nn.Linear((self.lstm.proj_size or 4) * dirs, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0])


class EncDec(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(3, 4)
        self.decoder = nn.LSTM(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)[0])[0]


LSTMS: dict[str, Callable[[], nn.LSTM]] = {
    "1 layer": lambda: nn.LSTM(3, 4),
    "2 layers": lambda: nn.LSTM(3, 4, num_layers=2),
    "3 layers bidirectional proj": lambda: nn.LSTM(
        3, 5, num_layers=3, bidirectional=True, proj_size=2
    ),
    "batch_first dropout": lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True, dropout=0.5),
    "no bias bidirectional": lambda: nn.LSTM(3, 4, bias=False, bidirectional=True),
    "float64": lambda: nn.LSTM(3, 4).double(),
}


@pytest.mark.parametrize("kind", list(LSTMS))
def test_lstm_variants(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(1)
    lstm = LSTMS[kind]().eval()
    torch.save(lstm.state_dict(), tmp_path / "m.pt")
    assert_matches(tmp_path / "m.pt", lstm)


def lightning_checkpoint(net: nn.Module) -> dict:
    """The keys Lightning 2.x writes (``state_dict`` with the LightningModule's attribute path)."""
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 3}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "best_model_score": torch.tensor(0.25),
                "best_model_path": "/runs/epoch=2.ckpt",
            }
        },
        "optimizer_states": [torch.optim.Adam(net.parameters()).state_dict()],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 4, "lr": 1e-3},
    }


CONTAINERS: dict[str, Callable[[nn.Module], object]] = {
    "training checkpoint": lambda net: {
        "model_state_dict": net.state_dict(),
        "optimizer_state_dict": torch.optim.SGD(
            net.parameters(), lr=0.1, momentum=0.9
        ).state_dict(),
        "epoch": 7,
        "loss": torch.tensor(0.5),
    },
    "model key": lambda net: {"model": net.state_dict()},
    "nested dicts": lambda net: {"run": {"weights": {"net": net.state_dict()}}, "step": 5},
    "list": lambda net: [net.state_dict(), {"lr": 0.1}],
    "lightning": lightning_checkpoint,
    "DataParallel": lambda net: nn.DataParallel(net).state_dict(),
    "parameters": lambda net: dict(net.named_parameters()),
    "numpy arrays": lambda net: {k: v.numpy() for k, v in net.state_dict().items()},
    "device and Counter values": lambda net: {
        "state_dict": net.state_dict(),
        "device": torch.device("cuda", 0),
        "vocab": collections.Counter("hello"),
    },
}


@pytest.mark.parametrize("kind", list(CONTAINERS))
def test_checkpoint_containers(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(2)
    net = Net().eval()
    torch.save(CONTAINERS[kind](net), tmp_path / "ckpt.pt")
    model = assert_matches(tmp_path / "ckpt.pt", net.lstm)
    assert model.layers[0].name.endswith("lstm")


def test_lightning_notes_and_numpy_scalars(tmp_path: Path) -> None:
    net = Net()
    ckpt = lightning_checkpoint(net)
    ckpt["best_acc"] = np.float64(0.75)
    torch.save(ckpt, tmp_path / "last.ckpt")
    model = lstmviz.load_model(tmp_path / "last.ckpt")
    assert model.layers[0].name == "model.lstm"
    assert "state dict found under 'state_dict'" in model.notes
    assert "best_acc = 0.75" in model.notes and "epoch = 3" in model.notes
    assert model.embedding is not None and model.embedding.shape == (10, 3)


class Vocab:
    """A project's own data class (OpenNMT/torchtext keep vocabularies like this)."""

    def __init__(self, tokens: list[str]) -> None:
        self.itos = tokens
        self.stoi = {t: k for k, t in enumerate(tokens)}


class Holder:
    """A project's own wrapper holding the weights as an attribute."""

    def __init__(self, state: dict) -> None:
        self.weights = state
        self.step = 10


def test_project_data_classes_are_kept_as_inert_records(tmp_path: Path) -> None:
    """Instances of classes lstmviz never imports (protocol 2 NEWOBJ + BUILD) become plain
    attribute dicts: the vocabulary beside the weights, or a wrapper around them, loads."""
    torch.manual_seed(9)
    net = Net().eval()
    torch.save({"model": net.state_dict(), "vocab": Vocab(["<s>", "a"])}, tmp_path / "onmt.pt")
    assert_matches(tmp_path / "onmt.pt", net.lstm)
    torch.save({"run": Holder(net.state_dict())}, tmp_path / "held.pt")
    model = assert_matches(tmp_path / "held.pt", net.lstm)
    assert model.layers[0].name == "run.weights.lstm"


def test_whole_pickled_model_is_read_inertly(tmp_path: Path) -> None:
    """torch.save(model) of a user module: its class is recorded, never imported, and the
    LSTM's weights come from the modules' _parameters."""
    import sys
    import types

    user = types.ModuleType("lstmviz_test_user_models")
    user.Net = type("Net", (Net,), {"__module__": "lstmviz_test_user_models"})  # type: ignore[attr-defined]
    sys.modules[user.__name__] = user
    try:
        torch.manual_seed(3)
        net = user.Net().eval()  # type: ignore[attr-defined]
        torch.save({"epoch": 1, "model": net}, tmp_path / "whole.pt")
        torch.save(net, tmp_path / "bare.pt")
    finally:
        del sys.modules[user.__name__]
    model = assert_matches(tmp_path / "whole.pt", net.lstm)
    assert any("whole pickled model (lstmviz_test_user_models.Net)" in n for n in model.notes)
    assert model.embedding is not None  # emb.weight found through _modules
    assert_matches(tmp_path / "bare.pt", net.lstm)
    assert "lstmviz_test_user_models" not in sys.modules


def rewrite_pickle(src: Path, dst: Path, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):
                assert old in data
                data = data.replace(old, new)
            zout.writestr(info.filename, data)


def test_cuda_storage_locations_are_read_as_cpu_data(tmp_path: Path) -> None:
    """A GPU run saves location 'cuda:0' in every persistent id; the bytes are the same."""
    lstm = nn.LSTM(3, 4)
    torch.save(lstm.state_dict(), tmp_path / "cpu.pt")
    rewrite_pickle(
        tmp_path / "cpu.pt",
        tmp_path / "gpu.pt",
        b"X\x03\x00\x00\x00cpu",
        b"X\x06\x00\x00\x00cuda:0",
    )
    assert_matches(tmp_path / "gpu.pt", lstm)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_buffer_saves_with_every_pickle_protocol(tmp_path: Path, protocol: int) -> None:
    """torch.save to a BytesIO names the inner folder 'archive'; no byteorder record either."""
    lstm = nn.LSTM(3, 4)
    buf = io.BytesIO()
    torch.save(lstm.state_dict(), buf, pickle_protocol=protocol, _disable_byteorder_record=True)
    (tmp_path / "m.bin").write_bytes(buf.getvalue())
    assert zipfile.ZipFile(tmp_path / "m.bin").namelist()[0] == "archive/data.pkl"
    assert_matches(tmp_path / "m.bin", lstm)


def test_shared_and_strided_storages(tmp_path: Path) -> None:
    """Both biases slices of one storage, weights as transposed views."""
    lstm = nn.LSTM(3, 4)
    sd = lstm.state_dict()
    both = torch.cat([sd["bias_ih_l0"], sd["bias_hh_l0"]])
    sd["bias_ih_l0"], sd["bias_hh_l0"] = both[:16], both[16:]
    sd["weight_hh_l0"] = sd["weight_hh_l0"].T.contiguous().T
    assert not sd["weight_hh_l0"].is_contiguous()
    torch.save(sd, tmp_path / "views.pt")
    assert_matches(tmp_path / "views.pt", lstm)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_checkpoints(tmp_path: Path, dtype: torch.dtype) -> None:
    lstm = nn.LSTM(3, 4, num_layers=2)
    sd = {k: v.to(dtype) for k, v in lstm.state_dict().items()}
    lstm.load_state_dict({k: v.float() for k, v in sd.items()})  # torch on the same weights
    torch.save(sd, tmp_path / "half.pt")
    assert_matches(tmp_path / "half.pt", lstm)


def test_lstm_cell_checkpoint(tmp_path: Path) -> None:
    cell = nn.LSTMCell(3, 4)
    torch.save({"cell": cell.state_dict()}, tmp_path / "cell.pt")
    model = assert_matches(tmp_path / "cell.pt", cell)
    assert model.layers[0].kind == "LSTMCell"


SCRIPTED: dict[str, Callable[[nn.Module], torch.jit.ScriptModule]] = {
    "script": torch.jit.script,
    "trace": lambda net: torch.jit.trace(net, torch.randn(T, 1, 3)),
}


@pytest.mark.parametrize("how", list(SCRIPTED))
def test_torchscript_weights_are_read_without_running_code(tmp_path: Path, how: str) -> None:
    torch.manual_seed(3)
    net = Net(num_layers=2, bidirectional=True, proj_size=2).eval()
    torch.jit.save(SCRIPTED[how](net), tmp_path / "net.pt", _extra_files={"info.txt": "x"})
    model = assert_matches(tmp_path / "net.pt", net.lstm)
    assert model.source_format == "TorchScript zip (torch.jit.save)"
    assert any("code not run" in n for n in model.notes)
    assert model.embedding is not None and model.embedding.shape == (10, 3)
    names = {info.name for info in model.all_layers}
    assert {"lstm", "fc", "emb"} <= names  # _flat_weights copies are not listed


def test_frozen_torchscript_is_explained(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.freeze(torch.jit.script(Net().eval())), tmp_path / "frozen.pt")
    with pytest.raises(LoadError, match="frozen or optimized module keeps its weights as unnamed"):
        lstmviz.load_model(tmp_path / "frozen.pt")


def test_torch_export_pt2_with_two_lstms(tmp_path: Path) -> None:
    torch.manual_seed(4)
    net = EncDec().eval()
    program = torch.export.export(net, (torch.randn(T, 1, 3),))
    torch.export.save(program, tmp_path / "encdec.pt2")
    with pytest.raises(lstmviz.io.ChoiceRequired) as info:
        lstmviz.load_model(tmp_path / "encdec.pt2")
    assert set(info.value.choices) == {"encoder", "decoder"}
    model = assert_matches(tmp_path / "encdec.pt2", net.encoder, prefix="encoder")
    assert model.source_format == "PyTorch ExportedProgram (torch.export.save)"
    assert_matches(tmp_path / "encdec.pt2", net.decoder, prefix="decoder")


def test_torch_export_before_2_8_layout(tmp_path: Path) -> None:
    """torch < 2.8 wrote flat members; the state dict is a torch.save archive inside the zip."""
    from torch._export.serde.serialize import serialize

    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True).eval()
    artifact = serialize(torch.export.export(lstm, (torch.randn(T, 1, 3),)))
    with zipfile.ZipFile(tmp_path / "old.pt2", "w") as zf:  # as torch 2.5's torch.export.save
        zf.writestr("serialized_exported_program.json", artifact.exported_program)
        zf.writestr("serialized_state_dict.pt", artifact.state_dict)
        zf.writestr("serialized_constants.pt", artifact.constants)
        zf.writestr("serialized_example_inputs.pt", artifact.example_inputs)
        zf.writestr("version", "8.0")
    model = assert_matches(tmp_path / "old.pt2", lstm)
    assert any("torch < 2.8 layout" in n for n in model.notes)


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "meta tensors": (
        lambda p: torch.save(nn.LSTM(3, 4, device="meta").state_dict(), p),
        "is on the 'meta' device (a shape without values)",
    ),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("kind", list(REFUSED))
def test_unreadable_files_say_what_to_save_instead(tmp_path: Path, kind: str) -> None:
    make, expect = REFUSED[kind]
    make(tmp_path / "m.pt")
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(tmp_path / "m.pt")
    message = str(info.value)
    assert message.startswith("m.pt: ") and "\n" not in message
    assert expect in message
    assert "state_dict" in message
