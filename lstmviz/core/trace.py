"""What ``run`` records: every intermediate of every step, computed once.

Arrays are in **time order**: row ``t`` of a reverse direction is the step that consumed
``x_t`` (which that direction processed as its ``T-1-t``-th step). Stepping through a
``Trace`` never recomputes anything, so going back is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lstmviz.core.model import GATES, LSTMDirection, LSTMLayer, LSTMModel

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class DirectionTrace:
    """One direction of one layer over the whole sequence.

    ``z_x = x_t W_xᵀ``, ``z_h = h_{t-1} W_hᵀ`` and ``b`` are the three contributions to the
    pre-activation; ``peep`` holds the peephole terms (zeros in the g block), so
    ``pre = z_x + z_h + b + peep`` is the argument of the gate activations (before any ONNX
    ``gate_clip``). ``m = o ⊙ act_cell(c)`` is h before a projection; ``h`` is the state
    passed on (``W_p m`` with a projection). ``h_prev``/``c_prev`` are the states each step
    started from, so a step can be explained on its own.
    """

    weights: LSTMDirection
    z_x: FloatArray  # (T, 4H)
    z_h: FloatArray  # (T, 4H)
    b: FloatArray  # (4H,)
    peep: FloatArray | None  # (T, 4H) or None
    pre: FloatArray  # (T, 4H)
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

    @property
    def reverse(self) -> bool:
        return self.weights.reverse

    @property
    def n_steps(self) -> int:
        return self.h.shape[0]

    def gate_pre(self, gate: str) -> FloatArray:
        """``(T, H)`` pre-activation of one gate."""
        k, H = GATES.index(gate), self.weights.hidden_size
        return self.pre[:, k * H : (k + 1) * H]

    def processing_step(self, t: int) -> int:
        """How many steps this direction had done before consuming ``x_t``."""
        return self.n_steps - 1 - t if self.reverse else t

    @property
    def h_last(self) -> FloatArray:
        """Final hidden state (after the last processed step)."""
        return self.h[0] if self.reverse else self.h[-1]

    @property
    def c_last(self) -> FloatArray:
        return self.c[0] if self.reverse else self.c[-1]


@dataclass(frozen=True)
class LayerTrace:
    """A layer's directions plus its merged ``output (T, out_dim)`` as the framework gives it."""

    layer: LSTMLayer
    input: FloatArray  # (T, D)
    directions: tuple[DirectionTrace, ...]
    output: FloatArray  # (T, out_dim)

    @property
    def last_output(self) -> FloatArray:
        """What a framework returns with ``return_sequences=False``."""
        if self.layer.bidirectional:
            # Keras: forward's last step merged with backward's last processed step (t = 0).
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

    @property
    def n_steps(self) -> int:
        return self.x.shape[0]

    @property
    def output(self) -> FloatArray:
        """The last layer's output, ``(T, out_dim)``."""
        return self.layers[-1].output
