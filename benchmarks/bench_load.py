"""Opening a ~100 MB weights file of each format vs reading its bytes (target: ≤ 2×).

Each file is made by the real framework where that is cheap (``torch.save`` and safetensors of
a 3-layer ``nn.LSTM(1024, 1024)`` state dict, Keras 3 ``.keras``/``.weights.h5``/legacy ``.h5``
with ``KERAS_BACKEND=torch``, an ``onnx.helper`` graph, ``np.savez``; a TF1 checkpoint only if
a Python with TensorFlow is found, see ``--tf-python``) into a temporary folder. Then, per
file, ``Path.read_bytes()`` (every file of a checkpoint folder) and ``lstmviz.load_model`` are
timed alternately with a warm page cache; the ratio is min(load) / min(read). A second,
untimed load runs under ``tracemalloc`` and reports the peak of Python/NumPy allocations as a
multiple of the file size, and the lstmviz source lines holding the most memory at that peak:
a peak well above 1× means the reader holds more than one copy of the tensors at once.

Run: ``python benchmarks/bench_load.py [--size-mb 100] [--repeat 5] [--formats torch,onnx]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import _common  # benchmarks/_common.py: shared header helpers

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import numpy as np  # noqa: E402

LAYERS = 3


def hidden_for(size_mb: float) -> int:
    """H such that ``LAYERS`` layers of an LSTM(H → H) in float32 weigh about ``size_mb``."""
    return round((size_mb * 1e6 / (LAYERS * 4 * 4 * 2)) ** 0.5)


# ------------------------------------------------------------------------------ file makers
def torch_state(H: int) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(H, H, num_layers=LAYERS)
    return {k: v.detach().numpy() for k, v in lstm.state_dict().items()}


def make_torch(folder: Path, H: int) -> Path:
    import torch

    path = folder / "lstm.pt"
    torch.save({k: torch.from_numpy(v) for k, v in torch_state(H).items()}, path)
    return path


def make_safetensors(folder: Path, H: int) -> Path:
    from safetensors.numpy import save_file

    path = folder / "lstm.safetensors"
    save_file(torch_state(H), str(path))
    return path


def make_npz(folder: Path, H: int) -> Path:
    path = folder / "lstm.npz"
    np.savez(path, **torch_state(H))
    return path


def _keras_model(H: int):
    import keras

    layers = [keras.Input((None, H))]
    layers += [keras.layers.LSTM(H, return_sequences=True) for _ in range(LAYERS)]
    return keras.Sequential(layers)


def make_keras(folder: Path, H: int) -> Path:
    path = folder / "lstm.keras"
    _keras_model(H).save(path)
    return path


def make_keras_weights_h5(folder: Path, H: int) -> Path:
    path = folder / "lstm.weights.h5"
    _keras_model(H).save_weights(path)
    return path


def make_keras_legacy_h5(folder: Path, H: int) -> Path:
    import warnings

    path = folder / "lstm.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "legacy HDF5 format" warning
        _keras_model(H).save(path)
    return path


def make_onnx(folder: Path, H: int) -> Path:
    """One bidirectional LSTM node, input width 2H: the same ~size as 3 layers H → H."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    D = 2 * H
    w = {
        "W": rng.standard_normal((2, 4 * H, D), dtype=np.float32),
        "R": rng.standard_normal((2, 4 * H, H), dtype=np.float32),
        "B": rng.standard_normal((2, 8 * H), dtype=np.float32),
    }
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H, direction="bidirectional"
    )
    graph = helper.make_graph(
        [node],
        "big_lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 2, 1, H])],
        initializer=[numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    path = folder / "lstm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


TF1_SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
v1 = tf.compat.v1
v1.disable_v2_behavior()
H, L, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = v1.placeholder(tf.float32, [1, None, H])
cells = [v1.nn.rnn_cell.LSTMCell(H) for _ in range(L)]
v1.nn.dynamic_rnn(v1.nn.rnn_cell.MultiRNNCell(cells), x, dtype=tf.float32)
with v1.Session() as s:
    s.run(v1.global_variables_initializer())
    os.chdir(folder)
    v1.train.Saver().save(s, "model.ckpt", write_meta_graph=False)
"""


def find_tf_python() -> str | None:
    """A Python that can import TensorFlow (``LSTMVIZ_TF_PYTHON`` or a venv under /work/venvs)."""
    import subprocess

    env = os.environ.get("LSTMVIZ_TF_PYTHON")
    candidates = [env] if env else sorted(str(p) for p in Path("/work/venvs").glob("*/bin/python"))
    for py in candidates:
        probe = [py, "-c", "import tensorflow, tf_keras"]
        ok = subprocess.run(probe, capture_output=True, timeout=120)
        if ok.returncode == 0:
            return py
    return None


def make_tf1(folder: Path, H: int, tf_python: str | None = None) -> Path:
    import subprocess

    py = tf_python or find_tf_python()
    if py is None:
        raise RuntimeError("no Python with TensorFlow (set LSTMVIZ_TF_PYTHON)")
    ckpt = folder / "tf1"
    ckpt.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1 cells need tf-keras, not Keras 3
    cmd = [py, "-c", TF1_SCRIPT, str(H), str(LAYERS), str(ckpt)]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return ckpt


MAKERS: dict[str, Callable[[Path, int], Path]] = {
    "torch": make_torch,
    "safetensors": make_safetensors,
    "npz": make_npz,
    "keras": make_keras,
    "keras_weights_h5": make_keras_weights_h5,
    "keras_legacy_h5": make_keras_legacy_h5,
    "onnx": make_onnx,
    "tf1": make_tf1,
}


# ------------------------------------------------------------------------------ measuring
def read_all(path: Path) -> int:
    """The reference: every byte of the file (or of every file of a checkpoint folder)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return sum(len(p.read_bytes()) for p in files)


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def lazy_arrays(model) -> bool:
    """True if any weight is still backed by the file (memmap), i.e. loading deferred reading."""
    for layer in model.layers:
        for d in layer.directions:
            for a in (d.W_x, d.W_h, d.b):
                base = a
                while getattr(base, "base", None) is not None:
                    base = base.base
                if isinstance(base, np.memmap) or type(base).__name__ == "mmap":
                    return True
    return False


def peak_report(load: Callable[[], object], size: int, top: int = 4) -> tuple[float, list[str]]:
    """Peak traced allocations during ``load`` (× file size) and the lstmviz lines behind it.

    A profile hook samples the traced memory at every Python call/return; each time it reaches
    a new high (by ≥ 5 % of the file), a snapshot is kept, so the last one shows what was
    alive at the peak, grouped by the innermost lstmviz source line that allocated it.
    """
    tracemalloc.start(30)
    best = {"mem": 0, "snap": None}
    step = size // 20

    def hook(frame, event, arg) -> None:
        cur = tracemalloc.get_traced_memory()[0]
        if cur > best["mem"] + step:
            best["mem"] = cur
            best["snap"] = tracemalloc.take_snapshot()

    sys.setprofile(hook)
    try:
        load()
    finally:
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    lines: list[str] = []
    snap = best["snap"]
    if snap is not None:
        by_line: dict[str, int] = {}
        for stat in snap.statistics("traceback"):
            where = next(
                (
                    f"{Path(f.filename).relative_to(ROOT)}:{f.lineno}"
                    for f in reversed(stat.traceback)  # innermost frame first
                    if str(ROOT / "lstmviz") in f.filename
                ),
                "outside lstmviz",
            )
            by_line[where] = by_line.get(where, 0) + stat.size
        for where, nbytes in sorted(by_line.items(), key=lambda kv: -kv[1])[:top]:
            if nbytes > size // 10:
                lines.append(f"{nbytes / size:4.2f}× at {where}")
    return peak / size, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--formats", default=",".join(MAKERS), help="comma-separated subset")
    ap.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    ap.add_argument("--no-peak", action="store_true", help="skip the tracemalloc pass")
    args = ap.parse_args()

    import lstmviz.io as lio
    from lstmviz.io.probe import Probe

    H = hidden_for(args.size_mb)
    print(
        f"bench_load | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | commit "
        f"{_common.commit()} | {os.cpu_count()} cpus | load {os.getloadavg()[0]:.2f} | H={H}, "
        f"{LAYERS} layers | readers: {', '.join(r.name for r in lio.READERS)}"
    )
    header = (
        f"{'format':18s} {'reader':22s} {'MB':>6s} {'read ms':>8s} {'load ms':>8s} "
        f"{'ratio':>6s} {'peak×':>6s}  where the peak memory is held"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="lstmviz_bench_load_") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.formats.split(","):
            try:
                path = MAKERS[name](folder, H)
            except Exception as exc:  # a framework missing: say so, go on
                print(f"{name:18s} not measured: could not make the file ({exc})")
                continue
            reader = lio.find_reader(Probe.open(path))
            if reader is None:
                print(f"{name:18s} not measured: no reader accepts {path.name}")
                continue
            size = size_of(path)
            read_all(path)  # warm the page cache
            load = lambda p=path: lio.load_model(p)  # noqa: E731
            try:
                model = load()
            except Exception as exc:
                print(f"{name:18s} {reader.name:22s} load failed: {exc}")
                continue
            lazy = lazy_arrays(model)
            del model
            reads, loads = [], []
            for _ in range(args.repeat):
                reads.append(timed(lambda p=path: read_all(p)))
                loads.append(timed(load))
            ratio = min(loads) / min(reads)
            peak, where = (float("nan"), []) if args.no_peak else peak_report(load, size)
            flag = " (memmap: reads deferred)" if lazy else ""
            print(
                f"{name:18s} {reader.name:22s} {size / 1e6:6.1f} {min(reads) * 1e3:8.1f} "
                f"{min(loads) * 1e3:8.1f} {ratio:6.2f} {peak:6.2f}  "
                f"{'; '.join(where)}{flag}"
            )
            if not args.keep:
                for p in folder.iterdir():
                    if p.is_dir():
                        import shutil

                        shutil.rmtree(p)
                    else:
                        p.unlink()
    print(
        "ratio = min(load_model) / min(Path.read_bytes), both warm; peak× = tracemalloc peak "
        "during load / file size (1× = one copy of the tensors)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
