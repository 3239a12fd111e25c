"""Recurrent cells as data: what every module reads instead of hard-coded LSTM facts.

A ``CellDescription`` names a cell's gate blocks (the row blocks of ``W_x``/``W_h`` in
canonical order) with the role of each gate's activation, the state vectors it carries, the
terms each gate's pre-activation is the sum of, the equations of one step (as templates with
named slots the unit inspector fills in), and the block order each framework stores. LSTM is
one instance, GRU (both reset modes) and the plain RNN cell two more. A new cell kind is its
description, direction class, trace class and runner (one module may hold them all), made
known by one call, ``compute.register(direction_class, runner)`` (which also ``register``s the
description here), plus its readers — the views, the trace, breakpoints, statistics and
exports read the description; nothing lists cells by name.

Names used in terms and slots are the trace's names: ``z_x`` = ``W_x·x_t``, ``z_h`` =
``W_h·h_(t-1)``, ``b`` the gate's bias as shown, ``peep`` an LSTM peephole term, ``cand_h``
the GRU candidate's recurrent term, gate names (``i``, ``r`` ...) their activations and state
names (``h``, ``c``) with ``_prev`` the states a step started from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: How a gate's pre-activation becomes its value: through the cell's gate activation
#: (sigmoid-like, ``act_gate``) or its candidate activation (tanh-like, ``act_cand``).
Role = Literal["gate", "candidate"]


@dataclass(frozen=True)
class Term:
    """One summand of a gate's pre-activation: ``key`` names the trace array, ``label`` is what
    the views print. ``optional`` terms exist only for some directions (LSTM peepholes)."""

    key: str
    label: str
    optional: bool = False


@dataclass(frozen=True)
class Gate:
    """One row block of the weights: ``W_x[k·H:(k+1)·H]`` for the ``k``-th gate."""

    name: str  # "i", "r", "n"
    long_name: str  # "input", "reset", "candidate"
    role: Role
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class State:
    """A vector the cell carries from step to step (``h``, and ``c`` for the LSTM)."""

    name: str
    long_name: str


@dataclass(frozen=True)
class Equation:
    """One line of a step, as data.

    ``symbolic`` is the equation as printed (``c = f·c_(t-1) + i·g``); ``template`` is its
    right-hand side with named slots (``{f}·{c_prev} + {i}·{g}``) the unit inspector fills with
    one unit's numbers (``Equation.fill``); slot names are trace names, ``{act_gate}``,
    ``{act_cand}``, ``{act_cell}`` the direction's activation names. ``gate`` is set for a
    gate's own equation, whose template is ``{act}(<its terms>)``. ``when`` names a direction
    attribute that must be set for the line to apply (``W_p``: the LSTM projection).
    """

    target: str
    symbolic: str
    template: str
    gate: str | None = None
    when: str | None = None

    @property
    def slots(self) -> tuple[str, ...]:
        """The slot names of ``template`` in order (activation names included)."""
        import string

        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)

    def fill(self, values: Mapping[str, Any], fmt: Callable[[float], str] = str) -> str:
        """The right-hand side with every numeric slot formatted by ``fmt`` and every string
        (an activation name) as is."""
        return self.template.format_map(
            {k: v if isinstance(v, str) else fmt(float(v)) for k, v in values.items()}
        )


@dataclass(frozen=True)
class StoredOrder:
    """How one framework orders the gate blocks: ``names`` as it calls them, and ``perm`` with
    canonical block ``k`` = stored block ``perm[k]``."""

    names: tuple[str, ...]
    perm: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class CellDescription:
    """Everything the code outside a cell's direction class and readers may know about it.

    Instances are singletons compared by identity (``LSTM_CELL``, ``GRU_CELL`` ...)."""

    name: str  # "LSTM", "GRU", "RNN"
    gates: tuple[Gate, ...]
    states: tuple[State, ...]
    equations: tuple[Equation, ...]
    orders: Mapping[str, StoredOrder] = field(default_factory=dict)
    variant: str = ""  # "reset after" / "reset before" for the GRU
    #: Per-step arrays the trace records besides the gates and states (LSTM: act_c, m).
    extras: tuple[str, ...] = ()
    #: The gate whose product over time says how much of the past a unit keeps (LSTM: f,
    #: GRU: z); None for a cell without one (the plain RNN).
    retention_gate: str | None = None
    #: True when the share kept is one minus that gate (a minimal GRU's
    #: ``h = (1 − f)·h + f·n``), False when it is the gate itself.
    retention_complement: bool = False
    #: Other names a breakpoint may use for a per-step array (LSTM: ``tanh(c)`` → ``act_c``).
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.gates)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def n_gates(self) -> int:
        """Row blocks of ``W_x``: 4 for the LSTM, 3 for the GRU, 1 for the plain RNN."""
        return len(self.gates)

    @property
    def long_names(self) -> dict[str, str]:
        """Gate and state names to their long names (``f`` → ``forget``)."""
        return {**{g.name: g.long_name for g in self.gates}, **self.states_long}

    @property
    def states_long(self) -> dict[str, str]:
        return {s.name: s.long_name for s in self.states}

    def gate(self, name: str) -> Gate:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(f"{self.name} has no gate {name!r}; its gates: {', '.join(self.gate_names)}")

    def index(self, gate: str) -> int:
        """Block number of ``gate`` in canonical order."""
        return self.gate_names.index(self.gate(gate).name)

    def block(self, gate: str, hidden: int) -> slice:
        """Rows (or columns) of ``gate`` in a canonical ``(n_gates·H, ...)`` array."""
        k = self.index(gate)
        return slice(k * hidden, (k + 1) * hidden)

    def perm(self, framework: str) -> tuple[int, ...]:
        """Canonical block k = stored block ``perm[k]`` for ``framework`` (see ``orders``)."""
        return self.stored_order(framework).perm

    def stored_order(self, framework: str) -> StoredOrder:
        try:
            return self.orders[framework]
        except KeyError:
            known = ", ".join(self.orders)
            raise KeyError(f"no {self.name} order for {framework!r}; known: {known}") from None

    @property
    def quantities(self) -> tuple[str, ...]:
        """Per-step (T, H) arrays a breakpoint or an export may name: gates, states, extras,
        previous states and each gate's pre-activation ``pre_<gate>``."""
        prev = tuple(f"{s}_prev" for s in self.state_names)
        pre = tuple(f"pre_{g}" for g in self.gate_names)
        return (*self.gate_names, *self.state_names, *self.extras, *prev, *pre)


def gate_equation(gate: Gate) -> Equation:
    """A gate's own equation from its terms: ``i = act_gate(W_x·x_t + W_h·h_(t-1) + b)``."""
    act = "act_gate" if gate.role == "gate" else "act_cand"
    labels = " + ".join(t.label for t in gate.terms)
    slots = " + ".join("{" + t.key + "}" for t in gate.terms)
    return Equation(gate.name, f"{gate.name} = {act}({labels})", f"{{{act}}}({slots})", gate.name)


_X, _H, _B = Term("z_x", "W_x·x_t"), Term("z_h", "W_h·h_(t-1)"), Term("b", "b")
_PEEP = Term("peep", "peephole", optional=True)


def _lstm() -> CellDescription:
    i, f, o = (Gate(n, long, "gate", (_X, _H, _B, _PEEP)) for n, long in
               (("i", "input"), ("f", "forget"), ("o", "output")))  # fmt: skip
    g = Gate("g", "candidate", "candidate", (_X, _H, _B))
    equations = (
        gate_equation(i),
        gate_equation(f),
        gate_equation(g),
        Equation("c", "c = f·c_(t-1) + i·g", "{f}·{c_prev} + {i}·{g}"),
        gate_equation(o),
        Equation("m", "h = o·act_cell(c)", "{o}·{act_cell}({c})"),
        Equation("h", "h = W_p·m", "W_p·m", when="W_p"),
    )
    orders = {
        "canonical": StoredOrder(("i", "f", "g", "o"), (0, 1, 2, 3)),
        "keras": StoredOrder(("i", "f", "c", "o"), (0, 1, 2, 3)),
        "torch": StoredOrder(("i", "f", "g", "o"), (0, 1, 2, 3)),
        "cudnn": StoredOrder(("i", "f", "c", "o"), (0, 1, 2, 3)),
        "tf1": StoredOrder(("i", "j", "f", "o"), (0, 2, 1, 3)),
        "onnx": StoredOrder(("i", "o", "f", "c"), (0, 2, 3, 1)),
        "caffe": StoredOrder(("i", "f", "o", "g"), (0, 1, 3, 2)),
    }
    states = (State("h", "hidden state"), State("c", "cell state"))
    return CellDescription("LSTM", (i, f, g, o), states, equations, orders,
                           extras=("act_c", "m"), retention_gate="f",
                           aliases={"tanh(c)": "act_c"})  # fmt: skip


#: GRU orders: canonical r, z, n (PyTorch, cuDNN); Keras and ONNX store z, r, h; TF1 keeps
#: r, u in one kernel and the candidate in another (read as r, u, c).
_GRU_ORDERS = {
    "canonical": StoredOrder(("r", "z", "n"), (0, 1, 2)),
    "torch": StoredOrder(("r", "z", "n"), (0, 1, 2)),
    "cudnn": StoredOrder(("r", "z", "n"), (0, 1, 2)),
    "keras": StoredOrder(("z", "r", "h"), (1, 0, 2)),
    "onnx": StoredOrder(("z", "r", "h"), (1, 0, 2)),
    "tf1": StoredOrder(("r", "u", "c"), (0, 1, 2)),
}


def _gru(reset_after: bool) -> CellDescription:
    r = Gate("r", "reset", "gate", (_X, _H, _B))
    z = Gate("z", "update", "gate", (_X, _H, _B))
    if reset_after:  # v3: n = act_cand(W_n x + b_xn + r ⊙ (U_n h + b_hn))
        terms = (_X, Term("b", "b_x"), Term("cand_h", "r⊙(W_h·h_(t-1) + b_h)"))
    else:  # v1: n = act_cand(W_n x + U_n (r ⊙ h) + b_n)
        terms = (_X, Term("cand_h", "W_h·(r⊙h_(t-1))"), _B)
    n = Gate("n", "candidate", "candidate", terms)
    equations = (
        gate_equation(r),
        gate_equation(z),
        gate_equation(n),
        Equation("h", "h = (1 − z)·n + z·h_(t-1)", "(1 − {z})·{n} + {z}·{h_prev}"),
    )
    return CellDescription(
        "GRU",
        (r, z, n),
        (State("h", "hidden state"),),
        equations,
        _GRU_ORDERS,
        variant="reset after" if reset_after else "reset before",
        retention_gate="z",
    )


def _rnn() -> CellDescription:
    n = Gate("n", "new state", "candidate", (_X, _H, _B))
    equations = (gate_equation(n), Equation("h", "h = n", "{n}"))
    orders = {k: StoredOrder(("h",), (0,)) for k in ("canonical", "keras", "torch", "onnx")}
    return CellDescription("RNN", (n,), (State("h", "hidden state"),), equations, orders)


LSTM_CELL = _lstm()
#: GRU as PyTorch, cuDNN, Keras ``reset_after=True`` and ONNX ``linear_before_reset=1`` run it.
GRU_CELL = _gru(reset_after=True)
#: GRU as TF1, Keras ``reset_after=False`` and ONNX ``linear_before_reset=0`` run it.
GRU_RESET_BEFORE_CELL = _gru(reset_after=False)
RNN_CELL = _rnn()
#: The cell views show (labels, rows, examples) before a model is open.
DEFAULT_CELL = LSTM_CELL
#: The cells lstmviz ships; ``registered()`` adds those registered since (``register``).
CELLS: tuple[CellDescription, ...] = (LSTM_CELL, GRU_CELL, GRU_RESET_BEFORE_CELL, RNN_CELL)

#: Every cell description known to the code that reads names typed by a user (breakpoints,
#: the selection's gates, stored-layout labels), in registration order. Module state on
#: purpose, like the readers' registry: a new cell kind registers once (``compute.register``
#: with its direction class and runner), and nothing else lists cells.
_REGISTERED: dict[int, CellDescription] = {id(c): c for c in CELLS}


def register(*descriptions: CellDescription) -> None:
    """Make ``descriptions`` known: their gate, state and extra names become breakpoint
    quantities, gate names selectable. Registering one twice is harmless."""
    for cell in descriptions:
        if not isinstance(cell, CellDescription):
            raise TypeError(f"{cell!r} is not a CellDescription")
        _REGISTERED.setdefault(id(cell), cell)


def unregister(*descriptions: CellDescription) -> None:
    """Forget cells registered with ``register`` (the built-in ``CELLS`` stay)."""
    for cell in descriptions:
        if not any(cell is c for c in CELLS):
            _REGISTERED.pop(id(cell), None)


def registered() -> tuple[CellDescription, ...]:
    """The built-in cells and every cell registered since, in registration order."""
    return tuple(_REGISTERED.values())


def long_name(name: str) -> str:
    """The long name of a gate or state of any registered cell (``z`` → ``update``), the
    first cell's when several share it; empty when none has it."""
    for cell in registered():
        if name in cell.long_names:
            return cell.long_names[name]
    return ""


def cell_of(direction: Any) -> CellDescription:
    """The description of the cell ``direction`` (an ``LSTMDirection``, ``GRUDirection``,
    ``RNNDirection``, or a layer or trace of one) computes."""
    for attr in ("cell", "weights"):
        value = getattr(direction, attr, None)
        if isinstance(value, CellDescription):
            return value
        if value is not None and attr == "weights":
            return cell_of(value)
    raise TypeError(f"{type(direction).__name__} is not a recurrent direction")
