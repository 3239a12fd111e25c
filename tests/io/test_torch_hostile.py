"""More hostile torch files, one table: each a one-line LoadError within a second, nothing run.

Complements test_torch_untrusted.py: code-execution gadgets beyond os.system (getattr chains,
runpy, importlib, torch's own loaders, NumPy's reconstructors, TorchScript class names),
memo and recursion tricks, and storages or zip members that lie about their size.
"""

from __future__ import annotations

import pickle
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_torch_untrusted import (
    S12,
    FakeStorage,
    lstm_tensors,
    reduce_pickle,
    state_pickle,
    tensor,
    torch_pickle,
    write_torch_zip,
)

import lstmviz
from lstmviz.io import LoadError

RAW12 = struct.pack("<12f", *range(12))


def marker_pickles(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name → (data.pkl that would create ``marker`` if unpickled freely, refused global)."""
    cmd = f"open({str(marker)!r}, 'w')"
    py = f"import os; os.system('touch {marker}')"
    getattr_chain = (
        b"\x80\x02cbuiltins\ngetattr\n"
        b"cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R"
        b"X\x06\x00\x00\x00system\x86R"
        + pickle.dumps((f"touch {marker}",), protocol=2)[2:-1]
        + b"R."
    )
    return {
        "builtins.getattr chain": (getattr_chain, "builtins.__import__"),
        "builtins.exec": (reduce_pickle("builtins", "exec", (cmd,)), "builtins.exec"),
        "runpy._run_code": (reduce_pickle("runpy", "_run_code", (py, {})), "runpy._run_code"),
        "importlib.import_module": (
            reduce_pickle("importlib", "import_module", ("os",)),
            "importlib.import_module",
        ),
        "torch.load": (reduce_pickle("torch", "load", (str(marker),)), "torch.load"),
        "torch.serialization.load": (
            reduce_pickle("torch.serialization", "load", (str(marker),)),
            "torch.serialization.load",
        ),
        "torch.jit.load": (reduce_pickle("torch.jit", "load", (str(marker),)), "torch.jit.load"),
        "numpy.load allow_pickle": (
            reduce_pickle("numpy", "load", (str(marker), None, True)),
            "numpy.load",
        ),
        "numpy _reconstruct of a callable": (
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncos\nsystem\n"
            + pickle.dumps((0,), protocol=2)[2:-1]
            + pickle.dumps(b"b", protocol=3)[2:-1]
            + b"\x87R.",
            "os.system",
        ),
        "numpy.testing helper": (
            reduce_pickle("numpy.testing._private.utils", "runstring", (py, {})),
            "numpy.testing._private.utils.runstring",
        ),
        "torch._utils non-rebuild": (
            reduce_pickle("torch._utils", "_import_dotted_name", ("os.system",)),
            "torch._utils._import_dotted_name",
        ),
        "pickle.loads nested": (
            reduce_pickle("pickle", "loads", (reduce_pickle("os", "system", (cmd,)),)),
            "pickle.loads",
        ),
        "operator.attrgetter": (
            reduce_pickle("operator", "attrgetter", ("system",)),
            "operator.attrgetter",
        ),
        "functools.partial": (reduce_pickle("functools", "partial", (0,)), "functools.partial"),
        "__torch__ outside TorchScript": (
            reduce_pickle("__torch__.evil", "Module", ()),
            "__torch__.evil.Module",
        ),
    }


@pytest.mark.parametrize("name", list(marker_pickles(Path("m"))))
def test_code_execution_gadgets_are_refused(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    pkl, refused = marker_pickles(marker)[name]
    path = write_torch_zip(tmp_path / "evil.pt", pkl, {"0": RAW12})
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    message = str(info.value)
    assert message.startswith("evil.pt: ") and "\n" not in message
    assert f"pickle wants global {refused}" in message
    assert not marker.exists()


def numpy_state(shape: tuple, dtype: str, raw: object) -> bytes:
    """A NumPy array pickle laid out as numpy writes it, with our own shape, dtype and bytes."""
    frag = lambda obj, protocol=2: pickle.dumps(obj, protocol=protocol)[2:-1]  # noqa: E731
    dtype_obj = b"cnumpy\ndtype\n" + frag((dtype, False, True)) + b"R"
    dtype_obj += frag((3, "<", None, None, None, -1, -1, 0)) + b"b"
    state = b"(K\x01" + frag(shape) + dtype_obj + b"\x89" + frag(raw, 3) + b"t"
    head = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    return head + frag((0,)) + frag(b"b", 3) + b"\x87R" + state + b"b."


def storage_pickle(numel: int) -> bytes:
    return state_pickle(weight_ih_l0=tensor(FakeStorage("0", numel), 0, (4, 2), (2, 1)))


#: name → (data.pkl, storages, expected message part)
STREAMS: dict[str, tuple[bytes, dict[str, bytes], str]] = {
    "negative stride": (
        state_pickle(**lstm_tensors(S12, w_ih_stride=(2, -1))),
        {"0": RAW12},
        "malformed shape or stride",
    ),
    "absurd numel": (storage_pickle(10**18), {"0": RAW12}, "declares 1000000000000000000"),
    "numel not an int": (
        torch_pickle({"w": tensor(FakeStorage("0", 12), 0, (4,), (1,))}).replace(
            b"K\x0c", b"G@(\x00\x00\x00\x00\x00\x00"
        ),
        {"0": RAW12},
        "malformed storage reference",
    ),
    "self-referencing list": (b"\x80\x02]q\x00h\x00a.", {}, "holds no LSTM, GRU or RNN weights"),
    "memo get before put": (b"\x80\x02h\x05.", {}, "data.pkl is damaged"),
    "dict nested 200 deep": (
        b"\x80\x02" + b"}X\x01\x00\x00\x00a" * 200 + b"}" + b"s" * 200 + b".",
        {},
        "nested too deeply",
    ),
    "numpy array bytes lie": (
        numpy_state((10**6, 10**6), "f4", b"\x00" * 16),
        {},
        "bytes do not match its shape",
    ),
    "numpy object array": (numpy_state((2,), "O8", [1, 2]), {}, "single tensor, not a state"),
    "call a dtype": (b"\x80\x02ctorch\nfloat32\n)R.", {}, "data.pkl is damaged"),
    "BUILD on OrderedDict with a list": (
        b"\x80\x02ccollections\nOrderedDict\n)R]b.",
        {},
        "BUILD on OrderedDict is not allowed",
    ),
    "_codecs.encode utf-16": (
        reduce_pickle("_codecs", "encode", ("x", "utf-16")),
        {},
        "latin1 bytes only",
    ),
    "omegaconf names are never imported": (
        reduce_pickle("omegaconf", "OmegaConf.load", ("/etc/passwd",)),
        {},
        "holds no LSTM, GRU or RNN weights",
    ),
    "path parts that are not strings": (
        reduce_pickle("pathlib", "PosixPath", (1, 2)),
        {},
        "a pickled path whose parts are not strings",
    ),
    "torch.device with a list": (
        reduce_pickle("torch", "device", ([1],)),
        {},
        "torch.device with arguments",
    ),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_hostile_streams(tmp_path: Path, name: str) -> None:
    pkl, storages, expect = STREAMS[name]
    path = write_torch_zip(tmp_path / "bad.pt", pkl, storages)
    start = time.perf_counter()
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    assert time.perf_counter() - start < 2.0  # the promise (issue 18): answer within 2 s
    message = str(info.value)
    assert message.startswith("bad.pt: ") and "\n" not in message
    assert expect in message


def deflated_storage_bomb(path: Path) -> None:
    """torch never compresses; a deflated storage claiming 80 MB from 20 KB is a bomb."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", storage_pickle(20_000_000))
        zf.writestr("archive/data/0", bytes(range(256)) * 80)  # 20 KB, barely compressible
    data = bytearray(path.read_bytes())
    cd = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # second entry: data/0
    struct.pack_into("<I", data, cd + 24, 80_000_000)  # its declared uncompressed size
    path.write_bytes(bytes(data))


def nested_pt2_bomb(path: Path) -> None:
    """A .pt2 whose config points a weight at a record that is not there."""
    config = b'{"config": {"lstm.weight_ih_l0": {"path_name": "../../x", "use_pickle": false,'
    config += (
        b' "tensor_meta": {"dtype": 7, "sizes": [{"as_int": 4}], "strides": [{"as_int": 1}]}}}}'
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/archive_format", "pt2")
        zf.writestr("m/data/weights/model_weights_config.json", config)


ZIPS: dict[str, tuple[Callable[[Path], None], str]] = {
    "deflated storage bomb": (deflated_storage_bomb, "(damaged or a zip bomb)"),
    "pt2 record outside": (nested_pt2_bomb, "zip member m/data/weights/../../x is missing"),
}


@pytest.mark.parametrize("name", list(ZIPS))
def test_hostile_archives(tmp_path: Path, name: str) -> None:
    make, expect = ZIPS[name]
    path = tmp_path / "bad.pt"
    make(path)
    start = time.perf_counter()
    with pytest.raises(LoadError) as info:
        lstmviz.load_model(path)
    assert time.perf_counter() - start < 2.0  # the promise (issue 18): answer within 2 s
    assert expect in str(info.value)
