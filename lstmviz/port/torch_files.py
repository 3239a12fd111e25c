"""``torch.save``-compatible ``.pt`` zips and ``.safetensors`` files, written without torch.

A ``.pt`` is a zip (stored, not deflated) of ``archive/data.pkl`` (pickle protocol 2),
``archive/data/<key>`` (each tensor's raw little-endian bytes), ``byteorder``, ``version`` and
``.format_version``, as torch's ``serialization._save`` writes it. The pickle is written
opcode by opcode so that it references only what ``torch.load(weights_only=True)`` allows:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage``
(persistent ids ``('storage', torch.FloatStorage, key, 'cpu', numel)``). Records are padded to
64 bytes in the zip, as torch's writer aligns them, so torch can memory-map them.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

ALIGN = 64


def _unicode(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


_ORDERED_DICT = b"ccollections\nOrderedDict\n)R"


def state_dict_pickle(shapes: Mapping[str, tuple[int, ...]]) -> bytes:
    """The ``data.pkl`` of an OrderedDict of float32 tensors; tensor ``n`` uses storage ``n``."""
    out = bytearray(b"\x80\x02" + _ORDERED_DICT + b"(")
    for key, (name, shape) in enumerate(shapes.items()):
        numel = int(np.prod(shape)) if shape else 1
        stride = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
        out += _unicode(name)
        out += b"ctorch._utils\n_rebuild_tensor_v2\n("
        persistent = [_unicode("storage"), b"ctorch\nFloatStorage\n", _unicode(str(key))]
        out += _tuple([*persistent, _unicode("cpu"), _int(numel)]) + b"Q"
        out += _int(0)
        out += _tuple([_int(n) for n in shape])
        out += _tuple([_int(n) for n in stride])
        out += b"\x89" + _ORDERED_DICT + b"tR"
    out += b"u."
    return bytes(out)


def _aligned_info(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A stored entry whose data starts on a multiple of ``ALIGN`` (padding in ``extra``)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    offset = zf.fp.tell() + 30 + len(name.encode("utf-8"))  # type: ignore[union-attr]
    pad = (-(offset + 4)) % ALIGN
    info.extra = struct.pack("<HH", 0x5A4C, pad) + b"\0" * pad  # a private extra-field id
    return info


def write_pt(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Write ``tensors`` (float32, C order) as a ``torch.save`` zip of an OrderedDict."""
    prefix = "archive"  # what torch.save writes for file objects; torch.load takes any
    arrays = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in tensors.items()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        records = [
            ("data.pkl", state_dict_pickle({k: a.shape for k, a in arrays.items()})),
            ("byteorder", b"little"),
            (".format_version", b"1"),
            (".storage_alignment", b"64"),
        ]
        records += [(f"data/{n}", a.tobytes()) for n, a in enumerate(arrays.values())]
        records += [("version", b"3\n")]
        for name, data in records:
            zf.writestr(_aligned_info(zf, f"{prefix}/{name}"), data)


def write_safetensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]
) -> None:
    """Write float32 ``tensors`` and string ``metadata`` in the safetensors layout (the JSON
    header padded with spaces to 8 bytes, offsets from the end of the header)."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    blobs, offset = [], 0
    for name, value in tensors.items():
        raw = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        for raw in blobs:
            fh.write(raw)
