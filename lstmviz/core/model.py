"""The one canonical LSTM data model every reader produces (see CONVENTIONS.md §1).

Per layer and direction: ``W_x (4H, D)``, ``W_h (4H, H or P)``, ``b (4H,)`` with row blocks in
gate order **i, f, g, o**; all biases summed and any runtime forget bias folded into ``b_f``.
``Provenance`` remembers how the file stored it, so the GUI can show the stored layout and say
which settings were read and which were assumed. Arrays are made read-only on construction.

Layers and models are not LSTM-only despite their names (kept: every reader and view uses
them): a layer holds directions of one cell kind (``LSTMDirection``, ``gru.GRUDirection``,
``rnn.RNNDirection``; ``layer.cell`` is its ``cells.CellDescription``) and a model may mix
kinds. ``RecurrentLayer``/``RecurrentModel`` are the neutral names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lstmviz.core.activations import SIGMOID, TANH, Activation
from lstmviz.core.cells import LSTM_CELL, CellDescription
from lstmviz.core.direction import (  # noqa: F401 (re-exported: model is where readers look)
    FloatArray,
    RecurrentDirection,
    _frozen,
    _immutable,
    freeze,
)
from lstmviz.core.provenance import Provenance, Setting, StoredTensor  # noqa: F401
from lstmviz.core.stored_role import StoredPart, StoredRole  # noqa: F401

if TYPE_CHECKING:
    from lstmviz.core.gru import GRUDirection
    from lstmviz.core.rnn import RNNDirection

#: The LSTM's gates (kept for the LSTM-only code; other cells: ``cell.gate_names``).
GATES: tuple[str, ...] = LSTM_CELL.gate_names
GATE_NAMES: dict[str, str] = {g.name: g.long_name for g in LSTM_CELL.gates}


class MergeMode(enum.Enum):
    """How a bidirectional layer combines its two directions (Keras ``merge_mode``)."""

    CONCAT = "concat"
    SUM = "sum"
    MUL = "mul"
    AVE = "ave"
    NONE = "none"  # Keras merge_mode=None: two separate outputs; the trace shows them concatenated


class OutputOrder(enum.Enum):
    """Where a layer whose first direction reads backwards puts its outputs.

    Keras ``go_backwards=True`` returns the sequence in processing (reversed) order, ONNX
    ``direction=reverse`` re-aligns it to time order. A Keras ``Bidirectional`` wrapping a
    ``go_backwards`` layer merges in time order and then returns the merged sequence reversed
    (its forward layer's processing order): that is a bidirectional layer with PROCESSING.
    """

    TIME = "time"
    PROCESSING = "processing"


#: ``LSTMDirection``'s array fields (frozen on construction and on unpickling).
_ARRAY_FIELDS = ("W_x", "W_h", "b", "p_i", "p_f", "p_o", "W_p", "h0", "c0")


@dataclass(frozen=True)
class LSTMDirection(RecurrentDirection):
    """The weights of one direction of one layer, in canonical form.

    Shapes: ``W_x (4H, D)``, ``W_h (4H, H or P)``, ``b (4H,)``, peepholes ``(H,)``,
    ``W_p (P, H)``. ``reverse`` means this direction reads time backwards.
    """

    W_x: FloatArray
    W_h: FloatArray
    b: FloatArray
    p_i: FloatArray | None = None
    p_f: FloatArray | None = None
    p_o: FloatArray | None = None
    W_p: FloatArray | None = None
    act_gate: Activation = SIGMOID
    act_cand: Activation = TANH
    act_cell: Activation = TANH
    cell_clip: float | None = None
    gate_clip: float | None = None
    proj_clip: float | None = None
    reverse: bool = False
    provenance: Provenance = field(default_factory=lambda: Provenance(framework="unknown"))
    #: Initial states the file stores (ONNX ``initial_h``/``initial_c`` constants): ``(P,)``
    #: and ``(H,)``; ``run`` starts from them unless the caller passes h0/c0. None: zeros.
    h0: FloatArray | None = None
    c0: FloatArray | None = None

    array_fields: ClassVar[tuple[str, ...]] = _ARRAY_FIELDS
    cell: ClassVar[CellDescription] = LSTM_CELL

    def __post_init__(self) -> None:
        self._freeze_fields()
        H4 = self.W_x.shape[0] if self.W_x.ndim == 2 else -1
        if self.W_x.ndim != 2 or H4 % 4 or H4 == 0:
            raise ValueError(f"W_x must be (4H, D), got {self.W_x.shape}")
        H = H4 // 4
        P = self.W_p.shape[0] if self.W_p is not None else H
        if self.W_p is not None and self.W_p.shape != (P, H):
            raise ValueError(f"W_p must be (P, {H}), got {self.W_p.shape}")
        if self.W_h.shape != (4 * H, P):
            raise ValueError(f"W_h must be ({4 * H}, {P}), got {self.W_h.shape}")
        if self.b.shape != (4 * H,):
            raise ValueError(f"b must be ({4 * H},), got {self.b.shape}")
        for name in ("p_i", "p_f", "p_o", "c0"):
            p = getattr(self, name)
            if p is not None and p.shape != (H,):
                raise ValueError(f"{name} must be ({H},), got {p.shape}")
        if self.h0 is not None and self.h0.shape != (P,):
            raise ValueError(f"h0 must be ({P},), got {self.h0.shape}")
        for name in ("cell_clip", "gate_clip", "proj_clip"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive or None, got {v}")
        for name in ("act_gate", "act_cand", "act_cell"):
            act = getattr(self, name)
            if not act.elementwise:
                raise ValueError(
                    f"{name} {act.name} is not element-wise; an LSTM needs one that is"
                )

    @property
    def output_size(self) -> int:
        """Width of h_t: P with a projection, else H."""
        return self.W_h.shape[1]

    @property
    def has_peepholes(self) -> bool:
        return any(p is not None for p in (self.p_i, self.p_f, self.p_o))

    def replace(self, **changes: Any) -> LSTMDirection:
        return replace(self, **changes)


@dataclass(frozen=True)
class LSTMLayer:
    """One recurrent layer (any one cell kind): one direction, or two (one reading forwards,
    one backwards) merged by ``merge_mode`` in the order given (concat puts ``directions[0]``
    first).

    Usually ``directions[0]`` reads forwards. Keras ``Bidirectional(LSTM(go_backwards=True))``
    is ``(reverse, forward)``: its forward layer reads backwards and the backward copy reads
    forwards. When ``directions[0]`` is ``reverse`` the (merged) output comes in
    ``output_order``: PROCESSING is that direction's processing order, i.e. reversed in time.
    ``return_sequences`` is informational: the trace always keeps the full sequence and the
    framework's single output is ``LayerTrace.last_output``.
    """

    name: str
    #: Directions of one cell kind (``LSTMDirection``, ``GRUDirection`` or ``RNNDirection``).
    directions: tuple[LSTMDirection | GRUDirection | RNNDirection, ...]
    merge_mode: MergeMode = MergeMode.CONCAT
    output_order: OutputOrder = OutputOrder.TIME
    return_sequences: bool = True
    kind: str = (
        "LSTM"  # the class name in the file, e.g. "LSTM", "CuDNNLSTM", "Bidirectional(LSTM)"
    )
    #: Per-step layers (``lstmviz.core.dense``) the previous LSTM's output goes through before
    #: this layer, e.g. a Dense or LayerNormalization between two Keras LSTMs.
    before: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if len(self.directions) not in (1, 2):
            raise ValueError("a layer has one or two directions")
        if len({d.cell for d in self.directions}) != 1:
            raise ValueError("both directions of a layer must be the same kind of cell")
        if len(self.directions) == 2:
            fw, bw = self.directions
            if fw.reverse == bw.reverse:
                raise ValueError(
                    "a bidirectional layer has one direction reading forwards and one reverse"
                )
            if fw.input_size != bw.input_size or fw.output_size != bw.output_size:
                raise ValueError("both directions must have the same sizes")

    @property
    def bidirectional(self) -> bool:
        return len(self.directions) == 2

    @property
    def cell(self) -> CellDescription:
        """The description of the cell both directions compute."""
        return self.directions[0].cell

    @property
    def reversed_output(self) -> bool:
        """Keras ``Bidirectional`` around a ``go_backwards`` layer: the merged sequence is
        returned in reversed time order."""
        return self.bidirectional and self.output_order is OutputOrder.PROCESSING

    def direction_label(self, d: int) -> str:
        """``forward`` / ``backward`` as the framework names direction ``d`` (a bidirectional
        layer's first direction is its forward layer), plus how it reads time when that is
        not what the name says (Keras' forward layer with go_backwards=True reads backwards)."""
        reverse = self.directions[d].reverse
        if not self.bidirectional:
            return "backward" if reverse else "forward"
        name = "backward" if d else "forward"
        if reverse != bool(d):
            name += " (reads time backwards)" if reverse else " (reads time forwards)"
        return name

    @property
    def input_size(self) -> int:
        return self.directions[0].input_size

    @property
    def hidden_size(self) -> int:
        return self.directions[0].hidden_size

    @property
    def output_size(self) -> int:
        """Width of this layer's output per step, after merging the directions."""
        width = self.directions[0].output_size
        if self.bidirectional and self.merge_mode in (MergeMode.CONCAT, MergeMode.NONE):
            return 2 * width
        return width

    @property
    def n_params(self) -> int:
        return sum(d.n_params for d in self.directions)

    @property
    def n_stored_params(self) -> int:
        return sum(d.n_stored_params for d in self.directions)


@dataclass(frozen=True)
class LayerInfo:
    """Any layer found in the file, LSTM or not, for the model summary."""

    name: str
    kind: str  # class name: "LSTM", "Dense", "Embedding", "GRU", ...
    weights: tuple[tuple[str, tuple[int, ...]], ...] = ()
    is_lstm: bool = False
    note: str = ""

    @property
    def n_params(self) -> int:
        return int(sum(int(np.prod(shape)) for _, shape in self.weights))


def chain_width(transforms: tuple[Any, ...], width: int, where: str) -> int:
    """The width after per-step ``transforms`` (``core.dense``) fed ``width`` values; a
    ValueError names the one that does not fit."""
    for t in transforms:
        if t.input_size is not None and t.input_size != width:
            raise ValueError(f"{where}: {t.name} expects {t.input_size} inputs, gets {width}")
        width = t.output_size(width)
    return width


@dataclass(frozen=True)
class LSTMModel:
    """A stack of recurrent layers (LSTM, GRU, plain RNN, mixed), each feeding the next, plus
    what else the file held."""

    layers: tuple[LSTMLayer, ...]
    source_path: str = ""
    source_format: str = ""  # "Keras HDF5 (full model)", "PyTorch zip", ...
    framework: str = ""  # "Keras 2.2.4", "PyTorch 2.13", "TensorFlow 1 checkpoint", ...
    all_layers: tuple[LayerInfo, ...] = ()
    embedding: FloatArray | None = None  # (vocab, D) when an Embedding precedes the first LSTM
    head: tuple[Any, ...] = ()  # ``core.dense`` layers after the last LSTM, applied every step
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a model needs at least one LSTM layer")
        for k in range(1, len(self.layers)):
            layer = self.layers[k]
            want = chain_width(layer.before, self.layers[k - 1].output_size, f"layer {k}")
            if want != layer.input_size:
                raise ValueError(
                    f"layer {k} expects {layer.input_size} inputs but layer {k - 1} gives {want}"
                )
        if self.embedding is not None:
            object.__setattr__(self, "embedding", _frozen(self.embedding, "embedding"))
        chain_width(self.head, self.layers[-1].output_size, "head")

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        """Width of the last LSTM layer's output per step."""
        return self.layers[-1].output_size

    @property
    def head_output_size(self) -> int:
        """Width of what the network returns per step: after the head, if there is one."""
        return chain_width(self.head, self.output_size, "head")

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    def replace(self, **changes: Any) -> LSTMModel:
        return replace(self, **changes)


#: Cell-neutral names: a layer or model may hold LSTM, GRU or plain RNN directions.
RecurrentLayer = LSTMLayer
RecurrentModel = LSTMModel
