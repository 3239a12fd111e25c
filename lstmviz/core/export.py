"""Write a Trace to files other tools read: NPZ with named arrays, CSV for spreadsheets.

Names follow ``layer{k}/{forward|backward}/{array}`` (e.g. ``layer0/forward/f``, for a GRU
layer ``layer0/forward/z``: the arrays are the cell's own, ``direction_arrays``), plus ``x``
(the input), ``output`` (the last recurrent layer's), ``head_output`` (the model's dense head, when
it has one) and ``layer{k}/input|output``; rows are time steps in time order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import LSTM_CELL
from lstmviz.core.trace import CellTrace, Trace

#: Recorded per-direction arrays of an LSTM, in the order a step computes them.
DIRECTION_ARRAYS = (
    "z_x", "z_h", "b", "peep", "pre", "i", "f", "g", "o", "c", "act_c", "m", "h",
    "h_prev", "c_prev",
)  # fmt: skip


def direction_arrays(dt: CellTrace) -> tuple[str, ...]:
    """The arrays exported for one direction, from its cell description: the pre-activation
    terms, the bias, the gates, the states (each once: a plain RNN's ``n`` is its ``h``) and
    the states each step started from. LSTM: ``DIRECTION_ARRAYS``; GRU:
    ``z_x z_h b cand_h pre r z n h h_prev``."""
    cell = dt.cell
    if cell is LSTM_CELL:
        return DIRECTION_ARRAYS
    terms = tuple(n for n in dt.derived_names if n not in ("z_x", "z_h", "pre"))
    gates = tuple(g for g in cell.gate_names if getattr(dt, g) is not dt.h)
    states = tuple(s for s in cell.state_names if s != "h")
    prev = tuple(f"{s}_prev" for s in cell.state_names)
    return ("z_x", "z_h", "b", *terms, "pre", *gates, *states, *cell.extras, "h", *prev)


def direction_name(d: int) -> str:
    return "backward" if d else "forward"


def trace_arrays(trace: Trace) -> Iterator[tuple[str, npt.NDArray[np.floating]]]:
    """Every recorded array with its export name (``peep`` only when the model has peepholes)."""
    yield "x", trace.x
    yield "output", trace.output
    if trace.head_output is not None:
        yield "head_output", trace.head_output
    for k, lt in enumerate(trace.layers):
        yield f"layer{k}/input", lt.input
        yield f"layer{k}/output", lt.output
        for d, dt in enumerate(lt.directions):
            for name in direction_arrays(dt):
                arr = getattr(dt, name)
                if arr is not None:
                    yield f"layer{k}/{direction_name(d)}/{name}", arr


def save_trace_npz(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Save every recorded array (compressed), named as in ``trace_arrays``; returns the path.

    Readable with ``np.load(path, allow_pickle=False)``: no object arrays are written.
    """
    out = Path(path)
    if out.suffix.lower() != ".npz":
        out = out.with_name(out.name + ".npz")  # np.savez would append it silently anyway
    if getattr(trace, "bounded", False):  # recomputed steps: streamed, or refused when huge
        from lstmviz.core.bounded_export import save_bounded_npz

        return save_bounded_npz(trace, out)  # type: ignore[arg-type]
    arrays = {name: np.asarray(arr) for name, arr in trace_arrays(trace)}
    with open(out, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return out


def _columns(name: str, arr: np.ndarray) -> list[str]:
    return [f"{name}[{j}]" for j in range(arr.shape[1])]


def save_trace_csv(trace: Trace, path_or_dir: str | os.PathLike[str]) -> list[Path]:
    """``*.csv``: one wide table, a row per step and a column per value (``layer0/forward/f[3]``).

    Any other path is a folder (created if needed) with one CSV per array, named like
    ``layer0_forward_f.csv``, whose header row names the units. The bias ``b`` has no time
    axis, so it goes in as a single row. Returns the files written.
    """
    target = Path(path_or_dir)
    if getattr(trace, "bounded", False):
        raise ValueError(
            f"a run of {trace.n_steps:,} steps keeps only checkpoints: export it as NPZ "
            "(streamed), not CSV"
        )
    per_step = [(n, a) for n, a in trace_arrays(trace) if a.ndim == 2]
    if target.suffix.lower() == ".csv":
        header = ["step"]
        blocks = [np.arange(trace.n_steps, dtype=np.float64)[:, None]]
        for name, arr in per_step:
            header += _columns(name, arr)
            blocks.append(np.asarray(arr, dtype=np.float64))
        _write_csv(target, header, np.hstack(blocks), first_int=True)
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, arr in trace_arrays(trace):
        file = target / (name.replace("/", "_") + ".csv")
        rows = np.atleast_2d(np.asarray(arr, dtype=np.float64))
        if arr.ndim == 2:
            rows = np.hstack([np.arange(arr.shape[0])[:, None], rows])
            header = ["step", *_columns(name, arr)]
        else:
            header = _columns(name, rows)
        _write_csv(file, header, rows, first_int=arr.ndim == 2)
        written.append(file)
    return written


def _write_csv(path: Path, header: list[str], rows: np.ndarray, first_int: bool) -> None:
    # %.17g floats so a CSV round trip is exact; the step column stays an integer.
    fmt = ["%.17g"] * rows.shape[1]
    if first_int:
        fmt[0] = "%d"
    np.savetxt(path, rows, fmt=fmt, delimiter=",", header=",".join(header), comments="")
