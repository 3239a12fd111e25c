"""TF1 ``GRUCell``, ``GRUBlockCell`` and ``BasicRNNCell`` checkpoint variables → canonical GRU
and plain-RNN directions (CONVENTIONS.md §7), placed in stacks like the LSTM cells (``scopes``).

- ``GRUCell`` (scope ``gru_cell``): ``gates/kernel [D+H, 2H]`` and ``gates/bias [2H]`` with
  column blocks r, u (u is the update gate z), ``candidate/kernel [D+H, H]`` and
  ``candidate/bias [H]``; TF ≤ 1.2 named them ``weights``/``biases``. The candidate reads
  ``[x, r ⊙ h]``: the reset comes before the recurrent product (``reset_after=False``), and
  ``new_h = u ⊙ h + (1 − u) ⊙ c``, which is the canonical ``(1 − z) ⊙ n + z ⊙ h``.
- ``GRUBlockCell`` (contrib; same equations): ``w_ru [D+H, 2H]``, ``b_ru [2H]``,
  ``w_c [D+H, H]``, ``b_c [H]`` in one scope.
- ``BasicRNNCell`` (scope ``basic_rnn_cell``): ``kernel [D+H, H]``, ``bias [H]``,
  ``h = activation(W [x, h] + b)``.

Rows ``:D`` of each kernel are the input weights, the rest the recurrent ones (transposed).
The gates' activation is always sigmoid; the candidate's (``activation``, default tanh) lives
only in the graph, so it is assumed unless ``activation=`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lstmviz.core.cells import GRU_CELL, RNN_CELL
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import Provenance, Setting, StoredTensor, freeze
from lstmviz.core.rnn import RNNDirection
from lstmviz.io.errors import LoadError
from lstmviz.io.tensorflow.keras_objects import user_activation
from lstmviz.io.tensorflow.scopes import BIASES, KERNELS, Cell

if TYPE_CHECKING:
    from lstmviz.io.tensorflow.bundle import Bundle

KINDS = ("GRUCell", "GRUBlockCell", "BasicRNNCell")


@dataclass
class RecurrentCell(Cell):
    """A TF1 GRU or plain-RNN cell: ``kernel``/``bias`` are the gates' (r, u) or the RNN's
    arrays; ``cand_kernel``/``cand_bias`` the GRU candidate's."""

    cand_kernel: str = ""
    cand_bias: str = ""
    names: dict[str, str] = field(default_factory=dict)  # role → variable name (for messages)

    @property
    def arrays(self) -> tuple[str, ...]:
        """Checkpoint keys of every array of the cell."""
        return tuple(k for k in (self.kernel, self.bias, self.cand_kernel, self.cand_bias) if k)


def _first(by_name: dict[str, str], scope: str, candidates: tuple[str, ...]) -> str | None:
    return next((f"{scope}/{c}" for c in candidates if f"{scope}/{c}" in by_name), None)


def find_cells(by_name: dict[str, str], used: set[str]) -> list[RecurrentCell]:
    """The GRUCell, GRUBlockCell and BasicRNNCell scopes among the variable names (names of
    arrays taken are added to ``used``)."""
    cells: list[RecurrentCell] = []
    for name in sorted(by_name):
        if name in used:
            continue
        scope, _, last = name.rpartition("/")
        found: dict[str, str | None] = {}
        kind = ""
        if last in KERNELS and scope.endswith("/gates"):  # GRUCell
            base = scope.removesuffix("/gates")
            found = {
                "kernel": name,
                "bias": _first(by_name, scope, BIASES),
                "cand_kernel": _first(by_name, f"{base}/candidate", KERNELS),
                "cand_bias": _first(by_name, f"{base}/candidate", BIASES),
            }
            scope, kind = base, "GRUCell"
        elif last == "w_ru":  # GRUBlockCell
            found = {
                "kernel": name,
                "bias": _first(by_name, scope, ("b_ru",)),
                "cand_kernel": _first(by_name, scope, ("w_c",)),
                "cand_bias": _first(by_name, scope, ("b_c",)),
            }
            kind = "GRUBlockCell"
        elif last in KERNELS and scope.rsplit("/", 1)[-1].startswith("basic_rnn_cell"):
            found = {"kernel": name, "bias": _first(by_name, scope, BIASES)}
            kind = "BasicRNNCell"
        if not kind:
            continue
        if any(v is None for v in found.values()):
            continue  # incomplete: listed with the other variables, not run
        used.update(v for v in found.values() if v)
        keys = {k: by_name[v] for k, v in found.items() if v}
        cells.append(
            RecurrentCell(
                scope,
                keys["kernel"],
                keys["bias"],
                kind,
                kernel_name=name,
                cand_kernel=keys.get("cand_kernel", ""),
                cand_bias=keys.get("cand_bias", ""),
                names={k: v for k, v in found.items() if v},
            )
        )
    return cells


def _activation(user: str | None, file: str) -> tuple[object, Setting]:
    if user is not None:
        act = user_activation(user, file, "activation")
        return act, Setting("activation", act.name, assumed=False, note="given by the user")
    note = "not stored in the checkpoint; TF default tanh; pass activation= to override"
    return user_activation("tanh", file, "activation"), Setting("activation", "tanh", True, note)


def _split(kernel: np.ndarray, D: int) -> tuple[np.ndarray, np.ndarray]:
    return kernel[:D].T, kernel[D:].T


def direction(
    bundle: Bundle, cell: RecurrentCell, reverse: bool, activation: str | None
) -> GRUDirection | RNNDirection:
    """The canonical direction of one TF1 GRU or plain-RNN cell."""
    file = bundle.index_path.name
    entries = bundle.entries
    kernel, bias = bundle.read(cell.kernel), bundle.read(cell.bias)
    gru = cell.kind != "BasicRNNCell"
    n = 2 if gru else 1
    if bias.ndim != 1 or bias.shape[0] % n or not bias.shape[0]:
        raise LoadError(f"{file}: {cell.names['bias']} has shape {bias.shape}, expected ({n}H,)")
    H = bias.shape[0] // n
    D = kernel.shape[0] - H if kernel.ndim == 2 else 0
    if kernel.ndim != 2 or kernel.shape[1] != n * H or D < 1:
        raise LoadError(
            f"{file}: {cell.names['kernel']} has shape {kernel.shape}, expected (D + {H}, {n * H})"
        )
    act, act_setting = _activation(activation, file)
    k = entries[cell.kernel]
    stored = [
        StoredTensor("W_x", cell.kernel, k.shape, True, 0, k.dtype_name, blocks=tuple(range(n))),
        StoredTensor("W_h", cell.kernel, k.shape, True, D, k.dtype_name, blocks=tuple(range(n))),
        StoredTensor(
            "b",
            cell.bias,
            entries[cell.bias].shape,
            dtype=entries[cell.bias].dtype_name,
            blocks=tuple(range(n)),
        ),
    ]
    transforms = [
        f"{cell.names['kernel']} rows [0:{D}] → W_x, rows [{D}:{D + H}] → W_h; transposed"
    ]
    if gru:
        ck, cb = bundle.read(cell.cand_kernel), bundle.read(cell.cand_bias)
        if ck.shape != (D + H, H) or cb.shape != (H,):
            raise LoadError(
                f"{file}: {cell.names['cand_kernel']} {ck.shape} / {cell.names['cand_bias']} "
                f"{cb.shape} do not fit gates of H = {H}, D = {D}; expected ({D + H}, {H}), ({H},)"
            )
        c = entries[cell.cand_kernel]
        stored += [
            StoredTensor("W_x", cell.cand_kernel, c.shape, True, 0, c.dtype_name, blocks=(2,)),
            StoredTensor("W_h", cell.cand_kernel, c.shape, True, D, c.dtype_name, blocks=(2,)),
            StoredTensor(
                "b", cell.cand_bias, cb.shape, dtype=entries[cell.cand_bias].dtype_name, blocks=(2,)
            ),
        ]
        gx, gh = _split(kernel, D)
        cx, ch = _split(ck, D)
        transforms += [
            f"{cell.names['cand_kernel']} rows split the same way: the candidate block n",
            "gates r, u (u = z) then the candidate: r, z, n as stored; b_h = 0 (one bias each)",
        ]
        order = GRU_CELL.stored_order("tf1")
        W_x, W_h = np.concatenate([gx, cx]), np.concatenate([gh, ch])
        b_x = np.concatenate([bias, cb])
    else:
        order = RNN_CELL.stored_order("keras")
        W_x, W_h = _split(kernel, D)
        b_x = bias
    narrow = sorted({t.dtype for t in stored if t.dtype in ("float16", "bfloat16")})
    if narrow:
        transforms.append(f"{'/'.join(narrow)} widened to float32")
    settings = (act_setting,)
    if gru:
        settings += (
            Setting("reset_after", False, assumed=False, note=f"{cell.kind}: r ⊙ h before W_h"),
        )
    provenance = Provenance(
        framework="TensorFlow 1 " + cell.kind,
        source_format="TensorFlow V2 checkpoint",
        gate_order=order.names,
        perm=order.perm,
        stored=tuple(stored),
        transforms=tuple(transforms),
        settings=settings,
        notes=(f"scope {cell.scope}",),
    )
    arrays = {
        "W_x": freeze(np.ascontiguousarray(W_x)),
        "W_h": freeze(np.ascontiguousarray(W_h)),
    }
    try:
        if gru:
            return GRUDirection(
                **arrays,
                b_x=freeze(np.array(b_x)),
                reset_after=False,
                act_cand=act,  # type: ignore[arg-type]
                reverse=reverse,
                provenance=provenance,
            )
        return RNNDirection(
            **arrays,
            b=freeze(np.array(b_x)),
            act_cand=act,  # type: ignore[arg-type]
            reverse=reverse,
            provenance=provenance,
        )
    except ValueError as exc:
        raise LoadError(f"{file}: {cell.scope} cannot be a {cell.kind} ({exc})") from exc
