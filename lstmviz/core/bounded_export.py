"""Export of a bounded trace: streamed to NPZ window by window, or refused past a size.

A bounded trace (``checkpointed_trace``) recomputes its steps; writing every array of 10⁶
steps at H = 1024 would be ~50 GB, so past ``EXPORT_LIMIT`` bytes the export is refused with
what would work. Below it, one pass over the windows writes each array's rows into its own
``.npy`` file on disk (a memory map, so memory stays bounded), which are then deflated into
the ``.npz`` under the names of ``export.trace_arrays``: the file reads back exactly as the
full trace's export would.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.checkpointed_trace import BoundedTrace, Cancelled
from lstmviz.core.model import LSTMModel

#: Largest export (bytes of arrays) of a bounded trace.
EXPORT_LIMIT = 2 * 2**30


def export_bytes(trace: BoundedTrace) -> int:
    from lstmviz.core.export import trace_arrays

    total = 0
    for _name, arr in trace_arrays(trace):
        total += int(np.prod(arr.shape)) * np.dtype(arr.dtype).itemsize
    return total


def refuse_if_large(trace: BoundedTrace, what: str = "NPZ") -> None:
    _refuse_past_limit(trace.n_steps, export_bytes(trace), what)


def estimated_export_bytes(
    model: LSTMModel, n_steps: int, x_dtype: npt.DTypeLike = np.float32
) -> int:
    """What ``export_bytes`` of the run of ``n_steps`` steps of an ``x_dtype`` sequence will
    be, before running it: the exported arrays grow by the same bytes each step (measured on
    runs of 2 and 3 steps; the input is exported in its own dtype)."""
    from lstmviz.core.bounded_run import run_bounded

    def size(T: int) -> int:
        return export_bytes(run_bounded(model, np.zeros((T, model.input_size), x_dtype)))

    two, three = size(2), size(3)
    return two + (n_steps - 2) * (three - two)


def refuse_before_run(model: LSTMModel, x: npt.NDArray, what: str = "NPZ") -> None:
    """``refuse_if_large`` of the run of ``x``, without running it (the command line ran
    10⁶ steps, 35 s, before saying the export was too large)."""
    _refuse_past_limit(len(x), estimated_export_bytes(model, len(x), x.dtype), what)


def _refuse_past_limit(n_steps: int, size: int, what: str) -> None:
    if size > EXPORT_LIMIT:
        raise ValueError(
            f"the trace of {n_steps:,} steps would take {size / 2**30:,.1f} GiB as {what};"
            f" lstmviz streams at most {EXPORT_LIMIT / 2**30:.0f} GiB from a run kept as"
            " checkpoints: export a shorter sequence, or a range of steps from a script"
            " (trace.window(t0, t1))"
        )


def save_bounded_npz(
    trace: BoundedTrace, out: Path, cancel: Callable[[], bool] | None = None
) -> Path:
    """Every array of ``trace`` into ``out`` (compressed NPZ), one streaming pass."""
    from lstmviz.core.export import trace_arrays

    refuse_if_large(trace)
    shapes = {name: (arr.shape, np.dtype(arr.dtype)) for name, arr in trace_arrays(trace)}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".lstmviz-export-") as tmp:
        files = {name: Path(tmp) / f"{k}.npy" for k, name in enumerate(shapes)}
        maps = {}
        for name, (shape, dtype) in shapes.items():
            maps[name] = np.lib.format.open_memmap(files[name], "w+", dtype, tuple(shape))
        for a, win in trace.windows():
            if cancel is not None and cancel():
                raise Cancelled
            for name, arr in trace_arrays(win):
                m = maps[name]
                if m.ndim == 2 and m.shape[0] == trace.n_steps:
                    m[a : a + len(arr)] = arr
                else:
                    m[...] = arr  # the bias: no time axis
        for m in maps.values():
            m.flush()
        del maps
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, file in files.items():
                zf.write(file, arcname=f"{name}.npy")
    return out
