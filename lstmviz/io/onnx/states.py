"""The initial states an ONNX ``LSTM`` node starts from (inputs 5 and 6, CONVENTIONS.md §3.6).

``initial_h``/``initial_c`` are ``[dirs, batch, H]`` (``[batch, dirs, H]`` with ``layout=1``).
torch exports a model with learned h0/c0 parameters as constants sliced per layer, hand-built
graphs use initializers; both are read here so ``lstmviz.run`` starts where onnxruntime does.
lstmviz runs one sequence, so a state is taken only when the batch has one row or all rows are
equal; otherwise zeros are kept with a note. States computed at run time (zeros broadcast to
the batch, as torch writes them without learned states) need no note; anything else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmviz.core.model import Setting
from lstmviz.io.errors import LoadError
from lstmviz.io.onnx.fold import MAX_DEPTH, OPS, Folder, NotConstant
from lstmviz.io.onnx.proto import Node, quote

_RUN_HINT = "lstmviz.run takes h0=/c0="


@dataclass
class InitialStates:
    """Per direction ``(H,)`` states read from the node (None: zeros), and what to record."""

    h0: list[np.ndarray | None]
    c0: list[np.ndarray | None]
    notes: list[str] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)


def _runtime_zeros(folder: Folder, name: str) -> bool:
    """True for zeros broadcast to a run-time shape (torch's exporters write initial states so:
    ``Expand(zeros, Shape(X)...)``, at opset 7 the old ``ConstantFill``; others use
    ``ConstantOfShape``), possibly sliced per layer."""
    node = folder.graph.producer(name)
    for _ in range(MAX_DEPTH):
        if node is None or node.op_type not in OPS or not node.inputs:
            break
        node = folder.graph.producer(node.inputs[0])
    if node is None or node.op_type not in ("Expand", "ConstantOfShape", "ConstantFill", "Tile"):
        return False
    if node.op_type == "ConstantFill":
        return not node.attrs.get("value", 0.0)
    if node.op_type == "ConstantOfShape":
        value = node.attrs.get("value")
        if value is None:
            return True  # the default fill is a float 0
        try:
            return not np.any(folder.tensor(value, "ConstantOfShape value"))
        except LoadError:
            return False
    try:
        return bool(node.inputs) and not np.any(folder.value(node.inputs[0], "initial state"))
    except (NotConstant, LoadError):
        return False


def _per_direction(
    value: np.ndarray, what: str, name: str, dirs: int, hidden: int, layout: int, where: str
) -> tuple[list[np.ndarray] | None, str]:
    """``(H,)`` per direction from a stored ``[dirs, batch, H]`` state, or None and why not.

    Stored states must be ``hidden`` wide: torch's dynamo exporter writes an LSTM with
    ``proj_size`` as a plain LSTM of width P, dropping the projection, and only the
    initial_c of width H gives it away.
    """
    if value.ndim != 3 or value.shape[-1] != hidden:
        raise LoadError(
            f"{where}: {what} has shape {value.shape} but W is for hidden_size {hidden}; "
            "the exporter dropped something (torch.onnx dynamo drops proj_size "
            "projections); open the PyTorch state_dict instead"
        )
    if value.dtype.kind != "f":
        raise LoadError(f"{where}: {what} ({quote(name)}) has dtype {value.dtype}; expected floats")
    state = np.transpose(value, (1, 0, 2)) if layout == 1 else value  # → [dirs, batch, H]
    if state.shape[0] != dirs:
        raise LoadError(
            f"{where}: {what} has shape {value.shape}, which is not for {dirs} direction(s)"
        )
    batch = state.shape[1]
    if batch == 0:
        raise LoadError(f"{where}: {what} has shape {value.shape} with an empty batch axis")
    if batch > 1 and not all(np.array_equal(state[:, 0], state[:, b], True) for b in range(batch)):
        return None, (
            f"{what} ({quote(name)}) is stored for a batch of {batch} different rows; lstmviz runs "
            f"one sequence and starts it from zeros ({_RUN_HINT})"
        )
    dtype = np.result_type(state.dtype, np.float32)  # float16 widened
    rows = [np.array(state[d, 0], dtype=dtype) for d in range(dirs)]
    return rows, ""


def initial_states(
    folder: Folder, node: Node, dirs: int, hidden: int, layout: int, where: str
) -> InitialStates:
    """The node's constant initial_h/initial_c per direction, plus notes and provenance."""
    inputs = list(node.inputs) + [""] * 8
    out = InitialStates(h0=[None] * dirs, c0=[None] * dirs)
    read = []
    for k, what, key in ((5, "initial_h", "h0"), (6, "initial_c", "c0")):
        name = inputs[k]
        if not name:
            continue
        try:
            value = folder.value(name, what)
        except (NotConstant, LoadError) as exc:
            if _runtime_zeros(folder, name):
                continue  # zeros, which is where lstmviz starts anyway
            reason = exc.reason if isinstance(exc, NotConstant) else str(exc)
            out.notes.append(
                f"{what} depends on {reason}; lstmviz starts from zero states ({_RUN_HINT})"
            )
            continue
        rows, why = _per_direction(value, what, name, dirs, hidden, layout, where)
        if rows is None:
            out.notes.append(why)
        elif np.any(value):  # stored zeros are the default: nothing to record
            setattr(out, key, rows)
            read.append(f"{what} ({quote(name)})")
            out.settings.append(
                Setting(
                    what,
                    f"read from the file ({quote(name)} {tuple(value.shape)})",
                    assumed=False,
                    note="lstmviz.run starts from it unless h0=/c0= are passed",
                )
            )
    if read:
        out.transforms.append(f"{' and '.join(read)} read from the file as the initial states")
    return out
