"""The one canonical LSTM data model every reader produces (see CONVENTIONS.md §1).

Per layer and direction: ``W_x (4H, D)``, ``W_h (4H, H or P)``, ``b (4H,)`` with row blocks in
gate order **i, f, g, o**; all biases summed and any runtime forget bias folded into ``b_f``.
``Provenance`` remembers how the file stored it, so the GUI can show the stored layout and say
which settings were read and which were assumed. Arrays are made read-only on construction.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from lstmviz.core.activations import SIGMOID, TANH, Activation
from lstmviz.core.cells import LSTM_CELL, CellDescription
from lstmviz.core.stored_role import StoredPart, StoredRole

if TYPE_CHECKING:
    from lstmviz.core.gru import GRUDirection
    from lstmviz.core.rnn import RNNDirection

FloatArray = npt.NDArray[np.floating]

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


@dataclass(frozen=True)
class StoredTensor:
    """One array as the file stored it, and how it maps to the canonical form.

    ``role``: what the array is (a ``StoredRole``; readers may pass its name as a string).
    ``transposed``: stored as ``[in, 4H]`` (Keras, TF1) rather than ``[4H, in]``.
    ``offset``: first row (before transposing) of this role inside a shared array, e.g. the
    ``W_h`` rows of a TF1 kernel start at ``D``.
    """

    role: StoredRole
    name: str
    shape: tuple[int, ...]
    transposed: bool = False
    offset: int = 0
    dtype: str = "float32"
    shared_by: int = 1  # directions stored in this one array (ONNX: leading dirs axis)
    #: Stored gate blocks this array holds, in its own order, when it holds only some (TF1
    #: GRUCell: ``gates/kernel`` holds r, u = blocks (0, 1), ``candidate/kernel`` block (2,)).
    #: Empty: all of the cell's blocks.
    blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        try:
            role = StoredRole(self.role)
        except ValueError:
            raise TypeError(
                f"unknown stored role {self.role!r}; add it to lstmviz.core.model.StoredRole"
            ) from None
        object.__setattr__(self, "role", role)

    @property
    def part(self) -> StoredPart:
        return self.role.part


@dataclass(frozen=True)
class Setting:
    """A hyperparameter the model needs, and whether the file said so or it was assumed."""

    name: str
    value: Any
    assumed: bool
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a direction's weights came from and every transformation applied to them."""

    framework: str  # e.g. "Keras 2.2.4", "PyTorch", "ONNX opset 14"
    source_format: str = ""  # e.g. "Keras HDF5 full model"
    gate_order: tuple[str, ...] = ("i", "f", "g", "o")  # stored names, e.g. ("i", "j", "f", "o")
    perm: tuple[int, ...] = (0, 1, 2, 3)  # canonical block k = stored block perm[k]
    interleaved: bool = False  # Chainer-style per-unit interleaving
    stored: tuple[StoredTensor, ...] = ()
    transforms: tuple[str, ...] = ()  # "kernel transposed", "bias_ih + bias_hh summed", ...
    settings: tuple[Setting, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def assumed(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.settings if s.assumed)

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    #: The canonical gate names the blocks are shown as (set by the direction: i,f,g,o for
    #: the LSTM, r,z,n for the GRU).
    shown_as: tuple[str, ...] = ("i", "f", "g", "o")

    def describe(self) -> str:
        """One line such as *stored as i,f,c,o (Keras 2.2.4, transposed); shown as i,f,g,o*."""
        extra = [self.framework]
        if any(s.transposed for s in self.stored):
            extra.append("transposed")
        shown = ",".join(self.shown_as)
        text = f"stored as {','.join(self.gate_order)} ({', '.join(extra)}); shown as {shown}"
        assumed = [f"{s.name}={s.value} (default assumed)" for s in self.assumed]
        return "; ".join([text, *assumed])


#: ``LSTMDirection``'s array fields (frozen on construction and on unpickling).
_ARRAY_FIELDS = ("W_x", "W_h", "b", "p_i", "p_f", "p_o", "W_p", "h0", "c0")

#: Arrays lstmviz made read-only itself (``freeze``), by id: nobody else holds them writable.
_OWNED: dict[int, weakref.ReferenceType[np.ndarray]] = {}


def freeze(arr: np.ndarray) -> np.ndarray:
    """Make ``arr`` read-only and remember that lstmviz did, so a model keeps it (and views
    of it) without copying. Only for arrays nobody else holds: a reader's own fresh arrays.
    Someone else's read-only array is copied, since its owner may make it writable again."""
    arr.setflags(write=False)
    key = id(arr)
    _OWNED[key] = weakref.ref(arr, lambda _, key=key: _OWNED.pop(key, None))
    return arr


def _immutable(arr: np.ndarray) -> bool:
    """True when nothing can write to ``arr``'s memory: it and every array it views are
    read-only, and the memory is an array ``freeze`` made read-only or a ``bytes`` object.
    A read-only view of a writable array, an array read-only by its owner's choice, a
    bytearray behind a read-only memoryview, or a memory-mapped file is not enough."""
    base: Any = arr
    owned = False
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        ref = _OWNED.get(id(base))
        owned = owned or (ref is not None and ref() is base)
        base = base.base
    while isinstance(base, memoryview):
        if not base.readonly:
            return False
        base = base.obj
    return owned or isinstance(base, bytes)


def _frozen(a: Any, name: str) -> FloatArray:
    """A read-only float copy of ``a``; an already immutable float array is kept as is, so a
    model built from frozen arrays (``replace``, readers) does not copy its weights again."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.itemsize >= 4 and _immutable(a):
        return a
    arr = np.array(a, dtype=np.result_type(np.asarray(a).dtype, np.float32), copy=True)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array, got {arr.dtype}")
    return freeze(arr)


class RecurrentDirection:
    """What every direction class shares (``LSTMDirection``, ``GRUDirection``,
    ``RNNDirection``): read-only weight arrays named by ``array_fields``, the ``derived`` cache
    of engine-ready copies, pickling, and gate blocks by the cell's names. Subclasses are
    frozen dataclasses with ``W_x (n_gates·H, D)``, ``reverse``, ``provenance`` and ``h0``."""

    #: The direction's array fields, frozen on construction and on unpickling.
    array_fields: ClassVar[tuple[str, ...]] = ()
    cell: ClassVar[CellDescription]
    W_x: FloatArray
    reverse: bool
    provenance: Provenance

    def _freeze_fields(self) -> None:
        for name in self.array_fields:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value, name))
        names = self.cell.gate_names
        if self.provenance.shown_as != names:  # the blocks are shown by the cell's own names
            prov = self.provenance
            default = len(prov.perm) != len(names)  # left at the LSTM's default
            object.__setattr__(
                self,
                "provenance",
                replace(
                    prov,
                    shown_as=names,
                    gate_order=names if default else prov.gate_order,
                    perm=tuple(range(len(names))) if default else prov.perm,
                ),
            )

    @property
    def input_size(self) -> int:
        """D, the width of x_t."""
        return self.W_x.shape[1]

    @property
    def hidden_size(self) -> int:
        """H, the number of units."""
        return self.W_x.shape[0] // self.cell.n_gates

    @property
    def kind(self) -> str:
        """The cell's name: ``LSTM``, ``GRU``, ``RNN``."""
        return self.cell.name

    def gate(self, array: FloatArray, gate: str) -> FloatArray:
        """Rows of gate ``gate`` (one of ``cell.gate_names``) of a ``(n_gates·H, ...)`` array."""
        return array[self.cell.block(gate, self.hidden_size)]

    def activation_for(self, role: str) -> Activation:
        """The activation of a gate role (``gate``, ``candidate``) or of the LSTM's ``cell``."""
        return getattr(
            self, {"gate": "act_gate", "candidate": "act_cand", "cell": "act_cell"}[role]
        )

    def gate_activation(self, gate: str) -> Activation:
        """The activation gate ``gate`` goes through."""
        return self.activation_for(self.cell.gate(gate).role)

    @property
    def n_params(self) -> int:
        """Canonical parameter count (a summed bias counted once; initial states not)."""
        arrays = (getattr(self, n) for n in self.array_fields if n not in ("h0", "c0"))
        return int(sum(a.size for a in arrays if a is not None))

    @property
    def n_stored_params(self) -> int:
        """Parameters as the file stores them (e.g. PyTorch's two biases count twice)."""
        if not self.provenance.stored:
            return self.n_params
        return int(
            sum(
                int(np.prod(t.shape)) // t.shared_by
                for t in self.provenance.stored
                if t.offset == 0
            )
        )

    def replace(self, **changes: Any) -> Any:
        return replace(self, **changes)  # type: ignore[type-var]

    def derived(self, key: Hashable, make: Callable[[], FloatArray]) -> FloatArray:
        """``make()``, computed once per direction and kept read-only.

        The weights are immutable (``_immutable``), so an engine's reordered or transposed
        copy of them never goes stale; running the same model again (the GUI's case: a new
        sequence, new h0) skips preparing it, 12-17 ms at H = 1024. Each engine and dtype
        that ran keeps its copy (about the size of the float32 weights each: the GUI's NumPy
        engine and the compiled one both, 16 MiB apiece at H = 1024); copies are not pickled.
        Making a weight writable again bypasses the cache; editing it and making it
        read-only once more is not supported (build a new direction with ``replace``).
        """
        trusted = all(_immutable(a) for a in self._arrays())  # else a weight was made writable
        if not trusted:
            self.__dict__.pop("_derived", None)  # nothing derived from it is trusted, or kept
        cache = self.__dict__.setdefault("_derived", {}) if trusted else {}  # not a field
        arr = cache.get(key)
        if arr is None:
            arr = make()
            arr.setflags(write=False)  # also when not kept: one compiled signature
            cache[key] = arr
        return arr

    def _arrays(self) -> list[FloatArray]:
        return [a for a in (getattr(self, n) for n in self.array_fields) if a is not None]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_derived", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """pickle and ``copy.deepcopy`` rebuild the arrays writable: make them read-only
        again, as construction does (they are the copy's own)."""
        self.__dict__.update(state)
        for a in self._arrays():
            freeze(a)


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
    """One LSTM layer: one direction, or two (one reading forwards, one backwards) merged by
    ``merge_mode`` in the order given (concat puts ``directions[0]`` first).

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
    """A stack of LSTM layers, each feeding the next, plus what else the file held."""

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
