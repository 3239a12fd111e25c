"""What ``run`` records: every intermediate of every step, computed once.

Arrays are in **time order**: row ``t`` of a reverse direction is the step that consumed
``x_t`` (which that direction processed as its ``T-1-t``-th step). Stepping through a
``Trace`` never recomputes anything, so going back is free.

The recurrence stores only what a step cannot be explained without: the gates, ``c``,
``act_cell(c)``, ``m`` and ``h`` (``h_prev``/``c_prev`` are views of the same buffers shifted
by one row). The three pre-activation terms, the peephole terms and their sum are
sequence-wide products, so they are derived on first use in one matmul each and cached:
for T = 10,000 steps at H = 1024 that keeps a fresh trace at 7H floats per step instead of
19H (benchmarks/bench_memory.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from lstmviz.core.cells import CellDescription, Term
from lstmviz.core.dense import apply_all
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel

if TYPE_CHECKING:
    from lstmviz.core.trace_cells import GRUDirectionTrace, RNNDirectionTrace

FloatArray = npt.NDArray[np.floating]

#: Arrays of a ``DirectionTrace`` that are derived on first use (``materialize`` forces them).
DERIVED = ("z_x", "z_h", "peep", "pre")


class CellTrace:
    """What every direction's trace offers by the cell's names (``weights.cell``), whatever
    the cell: gates, states, pre-activations and their terms, so breakpoints, statistics,
    exports and views need not know which cell ran. Subclasses are frozen dataclasses with
    ``weights``, ``x``, ``b``, ``h``, ``h_prev``, one ``(T, H)`` array per gate name and the
    derived ``z_x``, ``z_h``, ``pre``."""

    #: Names of the arrays derived on first use (``materialize`` computes them).
    derived_names: ClassVar[tuple[str, ...]] = ()
    weights: Any
    x: FloatArray
    b: FloatArray
    h: FloatArray
    h_prev: FloatArray
    pre: FloatArray

    @property
    def cell(self) -> CellDescription:
        return self.weights.cell  # type: ignore[no-any-return]

    @cached_property
    def z_x(self) -> FloatArray:
        """``(T, gates·H)`` input contribution ``x_t W_xᵀ`` (every cell's, in its gate order)."""
        return self.x @ self.weights.W_x.astype(self.b.dtype, copy=False).T

    @cached_property
    def z_h(self) -> FloatArray:
        """``(T, gates·H)`` recurrent contribution ``h_(t-1) W_hᵀ``."""
        return self.h_prev @ self.weights.W_h.astype(self.b.dtype, copy=False).T

    @property
    def reverse(self) -> bool:
        return bool(self.weights.reverse)

    @property
    def n_steps(self) -> int:
        return self.h.shape[0]

    def gate(self, name: str) -> FloatArray:
        """``(T, H)`` values of gate ``name`` (one of ``cell.gate_names``)."""
        return getattr(self, self.cell.gate(name).name)  # type: ignore[no-any-return]

    def state(self, name: str) -> FloatArray:
        """``(T, width)`` state ``name`` after each step (``h``, ``c``); ``<name>_prev`` the
        state each step started from."""
        base = name.removesuffix("_prev")
        if base not in self.cell.state_names:
            raise KeyError(f"{self.cell.name} has no state {base!r}")
        return getattr(self, name)  # type: ignore[no-any-return]

    def value(self, name: str) -> FloatArray:
        """Any per-step quantity of ``cell.quantities`` by name: a gate, a state (or its
        ``_prev``), an extra (``act_c``, ``m``) or a pre-activation ``pre_<gate>``."""
        if name.startswith("pre_"):
            return self.gate_pre(name[4:])
        if name not in self.cell.quantities:
            raise KeyError(
                f"{self.cell.name} records no {name!r}; it has {', '.join(self.cell.quantities)}"
            )
        return getattr(self, name)  # type: ignore[no-any-return]

    def gate_pre(self, gate: str) -> FloatArray:
        """``(T, H)`` pre-activation of one gate (the argument of its activation)."""
        return self.pre[:, self.cell.block(gate, self.weights.hidden_size)]

    def term(self, gate: str, key: str) -> FloatArray | None:
        """One term of a gate's pre-activation (``cell.gate(gate).terms``): ``(T, H)``, or
        ``(H,)`` for the bias; None when this direction does not have it (no peepholes)."""
        block = self.cell.block(gate, self.weights.hidden_size)
        if key == "b":
            return self.b[block]
        value = getattr(self, key)
        if value is None:
            return None
        return value if value.shape[1] == block.stop - block.start else value[:, block]

    def terms(self, gate: str) -> list[tuple[Term, FloatArray]]:
        """The terms of a gate's pre-activation this direction has, in the cell's order:
        they sum to ``gate_pre(gate)`` (before an ONNX gate clip)."""
        out = []
        for t in self.cell.gate(gate).terms:
            value = self.term(gate, t.key)
            if value is not None:
                out.append((t, value))
        return out

    def unit_values(self, t: int, u: int) -> dict[str, Any]:
        """One unit's numbers at step ``t`` by slot name, for ``Equation.fill``: every
        quantity, plus the activation names. A gate's equation reads its own terms from
        ``gate_terms_at``."""
        values: dict[str, Any] = {
            name: float(self.value(name)[t, u])
            for name in self.cell.quantities
            if self.value(name).shape[1] > u
        }
        for role in ("act_gate", "act_cand", "act_cell"):
            act = getattr(self.weights, role, None)
            if act is not None:
                values[role] = act.name
        return values

    def gate_terms_at(self, gate: str, t: int, u: int) -> dict[str, float]:
        """``{term key: value}`` of one unit's gate pre-activation at step ``t``."""
        return {term.key: float(v[u] if v.ndim == 1 else v[t, u]) for term, v in self.terms(gate)}

    @property
    def recorded(self) -> tuple[str, ...]:
        """Every array of this trace that may hold values, in the order a step computes them
        (LSTM: ``z_x z_h peep pre i f g o c act_c m h``; GRU: ``z_x z_h cand_h pre r z n h``);
        an entry may be None (``peep`` without peepholes)."""
        cell = self.cell
        states = tuple(s for s in cell.state_names if s != "h")
        return (*self.derived_names, *cell.gate_names, *states, *cell.extras, "h")

    def processing_step(self, t: int) -> int:
        """How many steps this direction had done before consuming ``x_t``."""
        return self.n_steps - 1 - t if self.reverse else t

    def state_last(self, name: str = "h") -> FloatArray:
        """A state after the last processed step."""
        arr = self.state(name)
        return arr[0] if self.reverse else arr[-1]

    @property
    def h_last(self) -> FloatArray:
        """Final hidden state (after the last processed step)."""
        return self.h[0] if self.reverse else self.h[-1]

    def materialize(self) -> Any:
        """Compute every derived array now (e.g. in a worker thread before the GUI reads them)."""
        for name in self.derived_names:
            getattr(self, name)
        return self

    @property
    def nbytes(self) -> int:
        """Bytes held by this trace's own buffers (shared views counted once)."""
        return _nbytes(self)


@dataclass(frozen=True, eq=False)
class DirectionTrace(CellTrace):
    """One direction of one layer over the whole sequence.

    ``z_x = x_t W_xᵀ``, ``z_h = h_{t-1} W_hᵀ`` and ``b`` are the three contributions to the
    pre-activation; ``peep`` holds the peephole terms (zeros in the g block), so
    ``pre = z_x + z_h + b + peep`` is the argument of the gate activations (before any ONNX
    ``gate_clip``). ``m = o ⊙ act_cell(c)`` is h before a projection; ``h`` is the state
    passed on (``W_p m`` with a projection). ``h_prev``/``c_prev`` are the states each step
    started from, so a step can be explained on its own. ``z_x``, ``z_h``, ``peep`` and ``pre``
    are computed on first access (one matmul over the sequence) and then kept.
    """

    derived_names: ClassVar[tuple[str, ...]] = DERIVED

    weights: LSTMDirection
    x: FloatArray  # (T, D) the layer input this direction read
    b: FloatArray  # (4H,)
    i: FloatArray  # (T, H)
    f: FloatArray
    g: FloatArray
    o: FloatArray
    c: FloatArray  # (T, H) after clipping
    act_c: FloatArray  # (T, H) act_cell(c)
    m: FloatArray  # (T, H)
    h: FloatArray  # (T, out)
    h_prev: FloatArray  # (T, out)
    c_prev: FloatArray  # (T, H)

    @cached_property
    def peep(self) -> FloatArray | None:
        """``(T, 4H)`` peephole terms ``p_i c_{t-1}``, ``p_f c_{t-1}``, 0, ``p_o c_t``, or None."""
        w = self.weights
        if not w.has_peepholes:
            return None
        H = w.hidden_size
        out = np.zeros((self.n_steps, 4 * H), dtype=self.b.dtype)
        for k, (p, c) in enumerate(((w.p_i, self.c_prev), (w.p_f, self.c_prev))):
            if p is not None:
                np.multiply(c, p.astype(out.dtype, copy=False), out=out[:, k * H : (k + 1) * H])
        if w.p_o is not None:
            np.multiply(self.c, w.p_o.astype(out.dtype, copy=False), out=out[:, 3 * H :])
        return out

    @cached_property
    def pre(self) -> FloatArray:
        """``(T, 4H)`` gate pre-activations ``z_x + z_h + b + peep``."""
        out = self.z_x + self.b
        out += self.z_h
        if self.peep is not None:
            out += self.peep
        return out

    @property
    def c_last(self) -> FloatArray:
        return self.c[0] if self.reverse else self.c[-1]


@dataclass(frozen=True)
class LayerTrace:
    """A layer's directions plus its merged ``output (T, out_dim)`` as the framework gives it."""

    layer: LSTMLayer
    input: FloatArray  # (T, D)
    directions: tuple[DirectionTrace | GRUDirectionTrace | RNNDirectionTrace, ...]
    output: FloatArray  # (T, out_dim)

    @property
    def last_output(self) -> FloatArray:
        """What a framework returns with ``return_sequences=False``: each direction's last
        processed step (whatever ``output_order``), merged."""
        if self.layer.bidirectional:
            # Keras merges each sub-layer's last processed step: t = T-1 for the direction
            # reading forwards, t = 0 for the reverse one (h_last knows which).
            from lstmviz.core.compute import merge

            fw, bw = self.directions
            return merge(fw.h_last[None], bw.h_last[None], self.layer.merge_mode)[0]
        return self.directions[0].h_last


@dataclass(frozen=True)
class Trace:
    """The result of ``run(model, x)``: one ``LayerTrace`` per layer."""

    model: LSTMModel
    x: FloatArray  # (T, D)
    layers: tuple[LayerTrace, ...]
    head_output: FloatArray | None = None  # (T, n_out): the model's dense head at every step

    @property
    def n_steps(self) -> int:
        return self.x.shape[0]

    @property
    def output(self) -> FloatArray:
        """The last layer's output, ``(T, out_dim)``."""
        return self.layers[-1].output

    @property
    def network_output(self) -> FloatArray:
        """What the whole network gives at every step: the head's output when the model has
        a head, else the last LSTM layer's output."""
        return self.output if self.head_output is None else self.head_output

    @property
    def final_output(self) -> FloatArray:
        """What the framework returns for the whole sequence: ``network_output`` when the
        last LSTM returns sequences; else one vector, the head applied to that layer's
        ``last_output`` (for a bidirectional layer both directions' last processed steps
        merged, which is no row of the per-step output)."""
        last = self.layers[-1]
        if last.layer.return_sequences:
            return self.network_output
        out = np.asarray(last.last_output, dtype=self.x.dtype)[None]
        if self.model.head:
            out = apply_all(self.model.head, out)
        return out[0]

    def materialize(self) -> Trace:
        """Compute every derived array of every direction now; returns self."""
        for lt in self.layers:
            for dt in lt.directions:
                dt.materialize()
        return self

    @property
    def nbytes(self) -> int:
        """Bytes held by the trace: every direction's buffers plus layer outputs and x."""
        total = self.x.nbytes + (0 if self.head_output is None else self.head_output.nbytes)
        for lt in self.layers:
            total += sum(dt.nbytes for dt in lt.directions)
            if not any(np.shares_memory(lt.output, dt.h) for dt in lt.directions):
                total += lt.output.nbytes
        return total


def _nbytes(obj: object) -> int:
    """Sum of the distinct base buffers of every array attribute (views counted once)."""
    seen: dict[int, int] = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray) and name != "x":  # x is the previous layer's output
            base = value
            while isinstance(base.base, np.ndarray):
                base = base.base
            seen[id(base)] = base.nbytes
    return sum(seen.values())
