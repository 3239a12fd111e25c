"""Hostile PyTorch zips and madmom pickles (see test_hostile_formats.py): nesting that recurses in
C, opcodes declaring gigabytes, stride-0 storages, deflated opcode streams, duplicate members."""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from test_hostile_case import Bytes, Case, write_zip

import lstmviz

# --- PyTorch ---------------------------------------------------------------------------------


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage, size: tuple, stride: tuple, offset: int = 0) -> None:
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        import torch

        return torch._utils._rebuild_tensor_v2, (*self.args, False, collections.OrderedDict())


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            import torch

            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def lstm_state(d: int = 2, h: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "weight_ih_l0": rng.normal(size=(4 * h, d)).astype("<f4"),
        "weight_hh_l0": rng.normal(size=(4 * h, h)).astype("<f4"),
        "bias_ih_l0": rng.normal(size=4 * h).astype("<f4"),
        "bias_hh_l0": rng.normal(size=4 * h).astype("<f4"),
    }


def torch_members(state: dict[str, np.ndarray], first_key: int = 0) -> list:
    """(name, bytes) of a torch.save zip of ``state`` (one storage per tensor)."""
    obj, members, prefix = collections.OrderedDict(), [], "archive"
    for k, (name, a) in enumerate(state.items(), start=first_key):
        strides = tuple(s // 4 for s in a.strides)
        obj[name] = _Tensor(_Storage(str(k), a.size), a.shape, strides)
        members.append((f"{prefix}/data/{k}", a.tobytes()))
    return [
        (f"{prefix}/data.pkl", torch_pickle(obj)),
        (f"{prefix}/byteorder", b"little"),
        *members,
        (f"{prefix}/version", b"3\n"),
    ]


def torch_zip(pkl: Bytes, storages: dict[str, Bytes] | None = None, method=zipfile.ZIP_STORED):
    def make(folder: Path) -> Path:
        def get(b: Bytes) -> bytes:
            return b() if callable(b) else b

        members = [("archive/data.pkl", get(pkl)), ("archive/byteorder", b"little")]
        members += [(f"archive/data/{k}", get(v)) for k, v in (storages or {}).items()]
        return write_zip(folder / "m.pt", [*members, ("archive/version", b"3\n")], method)

    return make


def torch_stride0(folder: Path) -> Path:
    """8 layers of H = 4096 whose W_h are stride-0 views of one 16 KB storage (> 2.5 GB)."""
    s, h, obj = _Storage("0", 4096), 4096, collections.OrderedDict()
    for k in range(8):
        obj[f"weight_ih_l{k}"] = _Tensor(s, (4 * h, 1 if k == 0 else h), (0, 1 if k else 0))
        obj[f"weight_hh_l{k}"] = _Tensor(s, (4 * h, h), (0, 1))
    data = np.zeros(4096, "<f4").tobytes()
    return torch_zip(torch_pickle(obj), {"0": data})(folder)


def torch_shared_storage(folder: Path) -> Path:
    """Every tensor a view into one storage (what torch.save of tied weights writes): loads."""
    state = lstm_state()
    flat = np.concatenate([a.ravel() for a in state.values()])
    obj, offset, s = collections.OrderedDict(), 0, _Storage("0", flat.size)
    for name, a in state.items():
        obj[name] = _Tensor(s, a.shape, tuple(x // 4 for x in a.strides), offset)
        offset += a.size
    return torch_zip(torch_pickle(obj), {"0": flat.tobytes()})(folder)


def torch_duplicate_storage(folder: Path) -> Path:
    first, second = lstm_state(seed=1), lstm_state(seed=2)
    members = torch_members(first)
    members.insert(3, ("archive/data/0", second["weight_ih_l0"].tobytes()))
    return write_zip(folder / "m.pt", members)


def torch_duplicate_pickle(folder: Path) -> Path:
    first, second = torch_members(lstm_state(seed=1)), torch_members(lstm_state(seed=2), 4)
    return write_zip(folder / "m.pt", [*first, second[0], *second[2:-1]])


def torch_many_keys(folder: Path) -> Path:
    """An LSTM among 30,000 other tensors (optimizer-state-like extras, views of one storage):
    listing and grouping keys must stay linear."""
    members = torch_members(lstm_state())
    obj: dict = collections.OrderedDict()
    state, extras = lstm_state(), _Storage("extra", 30_000)
    for k, (name, a) in enumerate(state.items()):
        obj[name] = _Tensor(_Storage(str(k), a.size), a.shape, tuple(x // 4 for x in a.strides))
    for k in range(30_000):
        obj[f"extra.block{k % 300}.param{k}"] = _Tensor(extras, (1,), (1,), k)
    storages = [m for m in members if "/data/" in m[0]]
    extra = ("archive/data/extra", np.zeros(30_000, "<f4").tobytes())
    pkl = ("archive/data.pkl", torch_pickle(obj))
    return write_zip(folder / "m.pt", [pkl, members[1], *storages, extra, members[-1]])


def torch_as_torch_reads_it_or_refused(path: Path) -> None:
    """Whichever copy of a duplicate member ``torch.load`` takes (torch 2.x: the last one)."""
    import torch

    try:
        model = lstmviz.load_model(path)
    except lstmviz.LoadError:
        return
    expected = torch.load(path, weights_only=True)["weight_ih_l0"].numpy()
    np.testing.assert_array_equal(model.layers[0].directions[0].W_x, expected)


PICKLE_PROTO = b"\x80\x02"
BIG = ((1 << 20, 1 << 20), (1 << 20, 1))  # size, stride of a 4 TB tensor
WIDE = ((1 << 15, 1 << 11), (1 << 11, 1))  # 256 MB
TORCH_CASES = {
    "torch: tuple key nested 300,000 deep": Case(
        "depth", "PyTorch", torch_zip(PICKLE_PROTO + b"})" + b"\x85" * 300_000 + b"Ns.")
    ),
    "torch: lists nested 100,000 deep": Case(
        "depth", "PyTorch", torch_zip(PICKLE_PROTO + b"]" * 100_000 + b"a" * 99_999 + b".")
    ),
    "torch: a list holding itself 60,000 times (DUP)": Case(
        "depth", "PyTorch", torch_zip(PICKLE_PROTO + b"](" + b"2" * 60_000 + b"e.")
    ),
    "torch: BYTEARRAY8 of 3 GB in 330 bytes": Case(
        "size",
        "PyTorch",
        torch_zip(b"\x80\x05\x96" + (3 << 30).to_bytes(8, "little") + b"\0" * 300),
    ),
    "torch: BINBYTES8 of 3 GB": Case(
        "size", "PyTorch", torch_zip(b"\x80\x04\x8e" + (3 << 30).to_bytes(8, "little") + b"\0" * 64)
    ),
    "torch: BINUNICODE8 of 3 GB": Case(
        "size", "PyTorch", torch_zip(b"\x80\x04\x8d" + (3 << 30).to_bytes(8, "little") + b"a" * 64)
    ),
    "torch: LONG4 of 2 GB": Case(
        "size", "PyTorch", torch_zip(PICKLE_PROTO + b"\x8b" + (2 << 30).to_bytes(4, "little"))
    ),
    "torch: storage numel past its member": Case(
        "size",
        "PyTorch",
        torch_zip(
            lambda: torch_pickle({"weight_ih_l0": _Tensor(_Storage("0", 1 << 40), *BIG)}),
            {"0": b"\0" * 64},
        ),
    ),
    "torch: stride-0 views of one storage as 8 layers of H=4096": Case(
        "aliasing", "PyTorch", torch_stride0
    ),
    "torch: every tensor a view of one storage": Case(
        "aliasing", "PyTorch", torch_shared_storage, expect="bounded"
    ),
    "torch: 60 MB of deflated no-op opcodes": Case(
        "compression",
        "PyTorch",
        torch_zip(lambda: PICKLE_PROTO + b"N0" * 30_000_000 + b"}.", None, zipfile.ZIP_DEFLATED),
    ),
    "torch: 256 MB of deflated zero storage": Case(
        "compression",
        "PyTorch",
        torch_zip(
            lambda: torch_pickle({"weight_hh_l0": _Tensor(_Storage("0", 1 << 26), *WIDE)}),
            {"0": lambda: b"\0" * (1 << 28)},
            zipfile.ZIP_DEFLATED,
        ),
    ),
    "torch: storage member stored twice": Case(
        "duplicates",
        "PyTorch",
        torch_duplicate_storage,
        "bounded",
        torch_as_torch_reads_it_or_refused,
    ),
    "torch: data.pkl stored twice": Case(
        "duplicates",
        "PyTorch",
        torch_duplicate_pickle,
        "bounded",
        torch_as_torch_reads_it_or_refused,
    ),
    "torch: an LSTM among 30,000 extras": Case("many", "PyTorch", torch_many_keys, "bounded"),
}


# --- madmom NeuralNetwork pickles ------------------------------------------------------------


def madmom_pickle(body: Callable[[], bytes], protocol: int = 2) -> Callable[[Path], Path]:
    """A pickle that names madmom's network class first (what the reader sniffs), then
    ``body``: the hostile part."""

    def make(folder: Path) -> Path:
        path = folder / "beats.pkl"
        head = bytes([0x80, protocol]) + b"cmadmom.ml.nn.layers\nLSTMLayer\n0"
        path.write_bytes(head + body())
        return path

    return make


MADMOM_CASES = {
    "madmom: tuple key nested 300,000 deep": Case(
        "depth", "madmom", madmom_pickle(lambda: b"})" + b"\x85" * 300_000 + b"Ns.")
    ),
    "madmom: BYTEARRAY8 of 3 GB": Case(
        "size",
        "madmom",
        madmom_pickle(lambda: b"\x96" + (3 << 30).to_bytes(8, "little") + b"\0" * 64, 5),
    ),
    "madmom: a list holding itself 60,000 times (DUP)": Case(
        "many", "madmom", madmom_pickle(lambda: b"](" + b"2" * 60_000 + b"e.")
    ),
    "madmom: 2,000,000 no-op opcodes": Case(
        "many", "madmom", madmom_pickle(lambda: b"N0" * 2_000_000 + b"}."), "bounded"
    ),
    "madmom: a dict key set twice": Case(
        "duplicates",
        "madmom",
        madmom_pickle(lambda: b"}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u."),
    ),
}
