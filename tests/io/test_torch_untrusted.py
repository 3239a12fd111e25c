"""Hostile and broken torch files: nothing in a file may run, every failure is a LoadError."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import lstmviz
from lstmviz.io import LoadError
from lstmviz.io.torch import archive as torch_zip

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch"


def write_torch_zip(
    path: Path,
    pkl: bytes,
    storages: dict[str, bytes],
    prefix: str = "archive",
    byteorder: str | None = "little",
) -> Path:
    """A zip laid out as torch.save lays it out, with our own data.pkl."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            zf.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"{prefix}/data/{key}", raw)
        zf.writestr(f"{prefix}/version", "3\n")
    return path


def reduce_pickle(module: str, name: str, args: tuple) -> bytes:
    """Protocol 2 bytes for ``module.name(*args)`` via GLOBAL + REDUCE (names written as given)."""
    body = pickle.dumps(args, protocol=2)[2:-1]  # tuple-building ops without header and STOP
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + body + b"R."


class Payload:
    """Pickles as ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def marker_command(marker: Path) -> str:
    return f"touch {marker}"


def hostile_pickles(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name → (data.pkl bytes, the global the error must name)."""
    cmd = marker_command(marker)
    nested = {"model_state_dict": OrderedDict(weight_ih_l0=Payload(os.system, cmd)), "epoch": 1}
    return {
        "os.system": (reduce_pickle("os", "system", (cmd,)), "os.system"),
        "posix.system": (pickle.dumps(Payload(os.system, cmd), protocol=2), "posix.system"),
        "builtins.eval": (
            reduce_pickle("builtins", "eval", (f"__import__('os').system({cmd!r})",)),
            "builtins.eval",
        ),
        "__builtin__.eval": (
            reduce_pickle("__builtin__", "eval", (f"__import__('os').system({cmd!r})",)),
            "builtins.eval",
        ),
        "subprocess.Popen": (
            pickle.dumps(Payload(subprocess.Popen, ["touch", str(marker)]), protocol=2),
            "subprocess.Popen",
        ),
        "nested in dict": (pickle.dumps(nested, protocol=2), "posix.system"),
        "protocol 4 STACK_GLOBAL": (
            pickle.dumps(Payload(os.system, cmd), protocol=4),
            "posix.system",
        ),
        "protocol 0 INST": (f"(S'{cmd}'\nios\nsystem\n.".encode(), "os.system"),
    }


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


def test_payload_is_live_under_plain_pickle(marker: Path) -> None:
    """The payload really runs when unpickled without restriction (so the test below can fail)."""
    pkl = hostile_pickles(marker)["os.system"][0]
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=pkl, check=True)
    assert marker.exists()


@pytest.mark.parametrize("variant", list(hostile_pickles(Path("m"))))
def test_hostile_pickle_does_not_run(tmp_path: Path, marker: Path, variant: str) -> None:
    pkl, refused = hostile_pickles(marker)[variant]
    path = write_torch_zip(tmp_path / "model.pt", pkl, {"0": bytes(16)})
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    message = str(info.value)
    assert message.startswith("model.pt: ")
    assert f"pickle wants global {refused}" in message
    assert "torch.save(model.state_dict(), path)" in message
    assert not marker.exists()


def test_pickled_lstm_module_is_read_as_data(tmp_path: Path) -> None:
    """torch.save(nn.LSTM): a NEWOBJ + BUILD of torch.nn.modules.rnn.LSTM, read as a record."""
    path = tmp_path / "whole.pt"
    lstm = nn.LSTM(3, 4, num_layers=2).eval()
    torch.save(lstm, path)
    model = lstmviz.load_model(path)
    x = torch.randn(6, 1, 3)
    with torch.no_grad():
        want = lstm(x)[0][:, 0].double().numpy()
    got = lstmviz.run(model, x[:, 0].numpy()).layers[-1].output
    assert abs(got - want).max() < 1e-5
    assert any("torch.nn.modules.rnn.LSTM" in n for n in model.notes)


def test_torchscript_archive_is_read_as_data_only(tmp_path: Path, marker: Path) -> None:
    """TorchScript's ``__torch__`` classes become attribute dicts; other globals stay refused."""
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), path)
    with pytest.raises(LoadError, match=r"holds no LSTM, GRU or RNN weights .*found weight, bias"):
        lstmviz.load_model(path)
    hostile = tmp_path / "hostile_script.pt"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(hostile, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):
                data = hostile_pickles(marker)["os.system"][0]
            zout.writestr(info.filename, data)
    with pytest.raises(LoadError, match=r"pickle wants global os\.system"):
        lstmviz.load_model(hostile)
    assert not marker.exists()


class FakeStorage:
    def __init__(self, key: str, numel: int, kind: type = torch.FloatStorage) -> None:
        self.key, self.numel, self.kind = key, numel, kind


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, FakeStorage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def tensor(storage: FakeStorage, offset: int, size: tuple, stride: tuple) -> Payload:
    return Payload(
        torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, OrderedDict()
    )


def torch_pickle(obj: object) -> bytes:
    import io

    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def state_pickle(**tensors: object) -> bytes:
    return torch_pickle(OrderedDict(tensors))


def lstm_tensors(storage: FakeStorage, w_ih_offset: int = 0, w_ih_stride: tuple = (2, 1)) -> dict:
    """A tiny LSTM (D=2, H=1) in one storage of 14 floats: w_ih 4x2, w_hh 4x1, and no biases."""
    return {
        "weight_ih_l0": tensor(storage, w_ih_offset, (4, 2), w_ih_stride),
        "weight_hh_l0": tensor(storage, 8, (4, 1), (1, 1)),
    }


def test_crafted_zip_loads_when_consistent(tmp_path: Path) -> None:
    """The crafting helpers make a valid file, so the bad variants below fail for their flaw."""
    storage = FakeStorage("0", 12)
    raw = struct.pack("<12f", *range(12))
    path = write_torch_zip(tmp_path / "ok.pt", state_pickle(**lstm_tensors(storage)), {"0": raw})
    d = lstmviz.load_model(path).layers[0].directions[0]
    assert d.W_x.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert d.W_h.ravel().tolist() == [8, 9, 10, 11]


PLAIN = FIXTURES / "plain.pt"
RAW12 = struct.pack("<12f", *range(12))
S12 = FakeStorage("0", 12)
BAD: dict[str, tuple[object, str]] = {}  # name → (make(path) -> None, expected message part)


def bad(
    name: str, expect: str, pkl: bytes | None = None, storages: dict | None = None, **kw: object
):
    """Register a bad file: a torch-style zip from ``pkl``, or made by the decorated function."""

    def register(make: object) -> object:
        BAD[name] = (make, expect)
        return make

    if pkl is not None:
        register(lambda path: write_torch_zip(path, pkl, storages or {}, **kw))
    return register


bad("empty", "file is empty")(lambda path: path.write_bytes(b""))
bad("truncated", "damaged zip archive")(lambda path: path.write_bytes(PLAIN.read_bytes()[:1500]))
bad("header_only", "damaged zip archive")(lambda path: path.write_bytes(PLAIN.read_bytes()[:100]))
bad("missing_storage", "archive/data/0 is missing", state_pickle(**lstm_tensors(S12)))
bad("short_storage", "declares 12", state_pickle(**lstm_tensors(S12)), {"0": RAW12[:20]})
bad(
    "offset_outside",
    "reaches past the end of storage 0",
    state_pickle(**lstm_tensors(S12, w_ih_offset=5)),
    {"0": RAW12},
)
bad(
    "stride_outside",
    "reaches past the end of storage 0",
    state_pickle(**lstm_tensors(S12, w_ih_stride=(4, 1))),
    {"0": RAW12},
)
bad(
    "huge_shape",
    "(stride-0 or overlapping view)",
    state_pickle(weight_ih_l0=tensor(S12, 0, (1 << 40, 1 << 40), (0, 0))),
    {"0": RAW12},
)
bad(
    "negative_offset",
    "malformed shape or stride",
    state_pickle(**lstm_tensors(S12), x=tensor(S12, -1, (1,), (1,))),
    {"0": RAW12},
)
bad("bad_persistent_id", "unknown persistent id", b"\x80\x02(X\x05\x00\x00\x00stormK\x00tQ.")
bad("garbage_pickle", "data.pkl is damaged", b"\x80\x02}q\x00(X\x01")
bad("bad_byteorder", "byteorder member says 'middle'", state_pickle(), byteorder="middle")
bad(
    "no_lstm",
    "holds no LSTM, GRU or RNN weights",
    state_pickle(**{"fc.weight": tensor(S12, 0, (3, 4), (4, 1))}),
    {"0": RAW12},
)
bad(
    "int_weights",
    "dtype int64; recurrent weights must be float",
    state_pickle(**lstm_tensors(FakeStorage("0", 12, torch.LongStorage))),
    {"0": bytes(96)},
)
bad(
    "missing_hh_l1",
    "lacks weight_hh_l1",
    state_pickle(**lstm_tensors(S12), weight_ih_l1=tensor(S12, 0, (4, 1), (1, 1))),
    {"0": RAW12},
)


@bad("no_pkl", "no */data.pkl")
def _no_pkl(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", RAW12)


@bad("odd_rows", "rnn.weight_ih_l0 has 10 rows for rnn.weight_hh_l0's H = 4, not 4H (LSTM)")
def _odd_rows(path: Path) -> None:
    sd = nn.GRU(3, 4).state_dict()  # GRU and RNN open since the cell description (issue 14)
    torch.save({"rnn": {**sd, "weight_ih_l0": torch.zeros(10, 3)}}, path)


@bad("one_tensor", "single tensor, not a state dict")
def _one_tensor(path: Path) -> None:
    torch.save(torch.zeros(3), path)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_file_raises_one_line_load_error(tmp_path: Path, name: str) -> None:
    make, expect = BAD[name]
    path = tmp_path / f"{name}.pt"
    make(path)  # type: ignore[operator]
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "\n" not in message
    assert expect in message


def test_declared_size_of_a_zip_bomb_is_refused(tmp_path: Path) -> None:
    """A member whose central directory claims far more bytes than it stores is not read."""
    data = bytearray((FIXTURES / "plain.pt").read_bytes())
    cd = data.index(b"PK\x01\x02")  # first central directory entry: plain/data.pkl
    assert data[cd + 46 : cd + 46 + 14] == b"plain/data.pkl"
    struct.pack_into("<I", data, cd + 24, 3_000_000_000)  # uncompressed size
    path = tmp_path / "bomb.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="declares 3000000000 bytes"):
        lstmviz.load_model(path)


def test_oversized_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_zip, "MAX_PICKLE_BYTES", 100)
    with pytest.raises(LoadError, match=r"data.pkl is .* bytes, more than 100"):
        lstmviz.load_model(FIXTURES / "plain.pt")


STREAMS = {
    # name: (data.pkl, expected message part)
    "bytearray_alloc": (
        reduce_pickle("builtins", "bytearray", (10**12,)),
        "global builtins.bytearray",
    ),
    "build_on_tensor": (
        torch_pickle(tensor(S12, 0, (4, 2), (2, 1)))[:-1] + b"}X\x05\x00\x00\x00shapeK\x00sb.",
        "BUILD on LazyTensor is not allowed",
    ),
    "deep_nesting": (b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".", "nested too deeply"),
    "huge_memo_index": (b"\x80\x02]r\xff\xff\xff\x7f.", "holds no LSTM, GRU or RNN weights"),
    "exec_via_ext_code": (b"\x80\x02\x82\x01.", "data.pkl is damaged"),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_hostile_streams_fail_fast_and_cleanly(tmp_path: Path, name: str) -> None:
    """Allocation bombs, BUILD on our records, deep nesting, huge memo indexes, EXT codes."""
    import time

    pkl, expect = STREAMS[name]
    path = write_torch_zip(tmp_path / f"{name}.pt", pkl, {"0": RAW12})
    start = time.perf_counter()
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    assert time.perf_counter() - start < 2.0  # the promise (issue 18): answer within 2 s
    assert expect in str(info.value)
