"""Hostile safetensors and NumPy files (see test_hostile_formats.py): headers declaring
terabytes or 40,000 axes, aliased and duplicate tensors, zip bombs and duplicate members."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_hostile_case import Case, write_zip
from test_hostile_cases_pickles import lstm_state

import lstmviz

# --- safetensors (lstmviz/io/arrays/safetensors.py) -----------------------------------------


def safetensors_file(header: dict | bytes, data: bytes, length: int | None = None):
    def make(folder: Path) -> Path:
        raw = header if isinstance(header, bytes) else json.dumps(header).encode()
        path = folder / "m.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
        return path

    return make


def _st_entries(state: dict[str, np.ndarray]) -> tuple[list[tuple[str, dict]], bytes]:
    entries, blob = [], b""
    for name, a in state.items():
        raw = a.astype("<f4").tobytes()
        entries.append(
            (
                name,
                {
                    "dtype": "F32",
                    "shape": list(a.shape),
                    "data_offsets": [len(blob), len(blob) + len(raw)],
                },
            )
        )
        blob += raw
    return entries, blob


def _json_pairs(pairs: list[tuple[str, object]]) -> bytes:
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}").encode()


def st_duplicate_key(folder: Path) -> Path:
    """weight_ih_l0 named twice over the same bytes, first as (2, 12), then as (12, 2): the
    library keeps the last entry (serde fills a HashMap), so the file loads as (12, 2)."""
    entries, blob = _st_entries(lstm_state(seed=1))
    first = ("weight_ih_l0", {**entries[0][1], "shape": [2, 12]})
    return safetensors_file(_json_pairs([first, *entries]), blob)(folder)


def st_as_the_library_reads_it(path: Path) -> None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        reference = load_file(path)
    except SafetensorError:
        with pytest.raises(lstmviz.LoadError):
            lstmviz.load_model(path)
        return
    model = lstmviz.load_model(path)
    np.testing.assert_array_equal(model.layers[0].directions[0].W_x, reference["weight_ih_l0"])
    assert reference["weight_ih_l0"].shape == (12, 2)


def st_aliased(folder: Path) -> Path:
    entries, blob = _st_entries(lstm_state())
    pairs = [*entries, ("weight_ih_l1", {**entries[1][1]})]  # l1 reads l0's W_h bytes
    return safetensors_file(_json_pairs(pairs), blob)(folder)


def st_many(folder: Path) -> Path:
    entries = {
        f"x{k}.weight_ih_l0": {
            "dtype": "F32",
            "shape": [4, 1],
            "data_offsets": [16 * k, 16 * k + 16],
        }
        for k in range(60_000)
    }
    return safetensors_file(entries, b"\0" * (16 * 60_000))(folder)


SAFETENSORS_CASES = {
    "safetensors: header nested 200,000 deep": Case(
        "depth",
        "safetensors",
        safetensors_file(b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", b""),
    ),
    "safetensors: 4 TB declared": Case(
        "size",
        "safetensors",
        safetensors_file(
            {"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}},
            b"\0" * 64,
        ),
    ),
    "safetensors: a shape of 40,000 axes": Case(
        "size",
        "safetensors",
        safetensors_file(
            {"w": {"dtype": "F32", "shape": [1 << 62] * 40_000, "data_offsets": [0, 16]}},
            b"\0" * 16,
        ),
    ),
    "safetensors: header length past the file": Case(
        "size", "safetensors", safetensors_file({"w": {}}, b"", length=(100 << 20) - 1)
    ),
    "safetensors: 60,000 tensors": Case("many", "safetensors", st_many),
    "safetensors: two tensors on the same bytes": Case("aliasing", "safetensors", st_aliased),
    "safetensors: a name given twice": Case(
        "duplicates", "safetensors", st_duplicate_key, "bounded", st_as_the_library_reads_it
    ),
    "safetensors: __metadata__ given twice": Case(
        "duplicates",
        "safetensors",
        safetensors_file(
            b'{"__metadata__": {}, "__metadata__": {}, '
            b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
            b"\0" * 4,
        ),
    ),
}


# --- NumPy (lstmviz/io/arrays/numpy_file.py) -------------------------------------------------


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _npy_header(shape: str, descr: str = "<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def npy_file(data: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "m.npy"
        path.write_bytes(data())
        return path

    return make


def npz_file(members: Callable[[], list], method=zipfile.ZIP_STORED) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        return write_zip(folder / "m.npz", members(), method)

    return make


def _keras_arrays(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [
        ("kernel.npy", _npy(rng.normal(size=(3, 16)).astype("f4"))),
        ("recurrent_kernel.npy", _npy(rng.normal(size=(4, 16)).astype("f4"))),
        ("bias.npy", _npy(np.zeros(16, "f4"))),
    ]


NUMPY_CASES = {
    "npy: header nested 5,000 deep": Case(
        "depth", "NumPy arrays", npy_file(lambda: _npy_header("(" * 4000 + ")" * 4000))
    ),
    "npy: 400 GB declared": Case(
        "size", "NumPy arrays", npy_file(lambda: _npy_header("(100000, 1000000)") + b"\0" * 64)
    ),
    "npy: 3,000 axes": Case(
        "size", "NumPy arrays", npy_file(lambda: _npy_header("(" + "2," * 3000 + ")") + b"\0" * 64)
    ),
    "npy: an object array": Case(
        "size",
        "NumPy arrays",
        npy_file(
            lambda: b"\x93NUMPY\x01\x00v\x00" + _npy_header("(1,)", "|O")[10:] + b"\x80\x02N."
        ),
    ),
    "npz: 5,000 members": Case(
        "many",
        "NumPy arrays",
        npz_file(lambda: [(f"a{k}.npy", _npy(np.zeros(1, "f4"))) for k in range(5_000)]),
    ),
    "npz: 160 MB of deflated zeros": Case(
        "compression",
        "NumPy arrays",
        npz_file(
            lambda: [*_keras_arrays()[1:], ("kernel.npy", _npy(np.zeros((10240, 4096), "f4")))],
            zipfile.ZIP_DEFLATED,
        ),
    ),
    "npz: 2,000 members claiming 60 MB each": Case(
        "compression",
        "NumPy arrays",
        npz_file(
            lambda: [(f"k{k}.npy", _npy_header("(15000000,)")) for k in range(2_000)],
        ),
    ),
    "npz: kernel stored twice": Case(
        "duplicates",
        "NumPy arrays",
        npz_file(lambda: [*_keras_arrays(1), _keras_arrays(2)[0]]),
    ),
}
