"""A pickle interpreter with budgets: no C recursion, no huge allocation, no quadratic work.

Python's own unpicklers trust the stream's sizes and shapes: ``BYTEARRAY8`` allocates the
length it reads before reading (330 bytes ask for 3 GB), a dict key that is a tuple nested
300,000 deep is hashed recursively in C (a segfault), ``DUP``/``MEMOIZE`` cost a few bytes
of pickle per stack or memo slot, and 61 KB of deflated no-op opcodes run for 20 s. This VM
implements every opcode of protocols 0-5 itself and, before each piece of work, charges it
against ``Limits``:

- ``ops``: opcodes run plus items moved by container opcodes (APPENDS, SETITEMS, BUILD...);
- ``bytes``: an estimate of the memory the objects it built take (stack, memo, strings,
  containers), checked before a length-prefixed opcode allocates;
- ``depth`` / ``key_nodes``: the only keys it hashes (dict keys, set members) are scalars,
  objects with identity hashes, frozensets (hash cached) and tuples it built whose nesting
  and node count it recorded at construction, so hashing is bounded and never recursive.

It calls nothing itself: globals, persistent ids, REDUCE, NEWOBJ and BUILD go to hooks a
subclass supplies (``safe_pickle.RestrictedUnpickler``). Exceeding a budget raises
``PickleLimit`` whose message names the limit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pickle import UnpicklingError
from typing import Any, ClassVar

from lstmviz.io.wire.pickle_budget import (
    ITEM,
    OBJ,
    RECORD_NODES,
    SLOT,
    Limits,
    PickleLimit,
    Stop,
)
from lstmviz.io.wire.pickle_opcodes import DISPATCH

__all__ = ["Limits", "PickleLimit", "PickleVM"]

_STRUCTS = {fmt: struct.Struct(fmt) for fmt in ("<B", "<H", "<i", "<I", "<Q", ">d")}


def _invalid(vm: PickleVM) -> None:
    code = vm.data[vm.pos - 1]
    raise UnpicklingError(f"invalid pickle opcode {code:#04x}")


class PickleVM:
    """Runs one pickle from ``data[pos:]``; ``load()`` returns its object and leaves ``pos``
    just after its STOP (legacy torch files hold several pickles back to back)."""

    dispatch: ClassVar[dict[int, Callable[[PickleVM], None]]] = DISPATCH

    def __init__(self, data: Any, limits: Limits, pos: int = 0, encoding: str = "utf-8") -> None:
        self.data, self.pos, self.limits, self.encoding = data, pos, limits, encoding
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.ops = 0
        self.charged = 0
        # id(tuple) -> (tuple, depth, nodes); the tuple is kept so its id stays its own
        self._tuples: dict[int, tuple[tuple, int, int]] = {}

    # --- hooks (a subclass decides what names and calls mean) ---
    def find_class(self, module: str, name: str) -> Any:
        raise UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise UnpicklingError("persistent ids are not allowed here")

    def call(self, func: Any, args: tuple) -> Any:
        raise UnpicklingError("REDUCE is not allowed")

    def newobj(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        raise UnpicklingError("NEWOBJ is not allowed")

    def build(self, inst: Any, state: Any) -> None:
        raise UnpicklingError("BUILD is not allowed")

    # --- budgets ---
    def charge(self, nbytes: int, work: int = 0) -> None:
        """Count ``nbytes`` of objects about to be built and ``work`` steps about to be done."""
        self.charged += nbytes
        self.ops += work
        if self.charged > self.limits.bytes:
            raise PickleLimit(
                f"would build more than {self.limits.bytes >> 20} MB of objects (memory budget)"
            )
        if self.ops > self.limits.ops:
            raise PickleLimit(f"needs more than {self.limits.ops} pickle steps (work budget)")

    def check_key(self, key: object) -> None:
        """Refuse a dict key / set member whose hash could recurse or run long."""
        kind = type(key)
        if kind in (str, bytes, int, float, bool, complex, frozenset) or key is None:
            return
        if kind is tuple:
            depth, nodes = self.measure(key)  # type: ignore[arg-type]
            if depth > self.limits.depth or nodes > self.limits.key_nodes:
                raise PickleLimit(
                    f"has a dict key that is a tuple nested too deeply or too large (more "
                    f"than {self.limits.depth} levels or {self.limits.key_nodes} tuples)"
                )
            return
        if getattr(kind, "__hash__", None) is object.__hash__:
            return  # identity hash: O(1), never looks inside
        raise UnpicklingError(f"a {kind.__name__} cannot be a dict key or set member here")

    def measure(self, t: tuple) -> tuple[int, int]:
        """(depth, tuple count) of ``t``: recorded when the VM built it, else walked with a
        cap (each step charged)."""
        rec = self._tuples.get(id(t))
        if rec is not None and rec[0] is t:
            return rec[1], rec[2]
        cap = self.limits.key_nodes + 1
        depth, nodes, todo = 0, 0, [(t, 1)]
        while todo and nodes < cap and depth <= self.limits.depth:
            node, d = todo.pop()
            nodes, depth = nodes + 1, max(depth, d)
            todo.extend((c, d + 1) for c in node if type(c) is tuple)
            self.charge(0, len(node))
        return depth, nodes

    def push_tuple(self, items: tuple) -> None:
        self.stack.append(self.record_tuple(items))

    def record_tuple(self, items: tuple) -> tuple:
        """A tuple the VM built, its depth and size recorded for ``check_key``."""
        depth, nodes = 1, 1
        cap = self.limits.key_nodes + 1
        for item in items:
            if type(item) is tuple:
                d, n = self.measure(item)
                depth, nodes = max(depth, d + 1), min(cap, nodes + n)
        if depth > self.limits.nesting:
            raise PickleLimit(f"has tuples nested more than {self.limits.nesting} deep")
        self.charged += 40 + SLOT * len(items)
        self.ops += len(items)
        if nodes > RECORD_NODES:  # small ones are cheaper to walk again than to keep
            self.charge(OBJ * 3)
            self._tuples[id(items)] = (items, depth, nodes)
        return items

    # --- reading ---
    def take(self, n: int) -> bytes:
        """``n`` bytes of the stream, after checking they exist (nothing allocated first)."""
        pos = self.pos
        if n < 0 or n > len(self.data) - pos:
            raise UnpicklingError("pickle data was truncated")
        self.charged += n  # checked by the main loop before the next opcode
        self.pos = pos + n
        return bytes(self.data[pos : pos + n])

    def line(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise UnpicklingError("pickle data was truncated")
        return self.take(end + 1 - self.pos)[:-1]

    def size(self, fmt: str) -> int:
        """A fixed-size number from the stream (a length, an index, an int)."""
        packed = _STRUCTS[fmt]
        pos = self.pos
        if pos + packed.size > len(self.data):
            raise UnpicklingError("pickle data was truncated")
        self.pos = pos + packed.size
        return packed.unpack_from(self.data, pos)[0]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise UnpicklingError("MARK not found")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def top(self) -> Any:
        if not self.stack:
            raise UnpicklingError("the pickle stack is empty")
        return self.stack[-1]

    def pop(self) -> Any:
        if not self.stack:
            raise UnpicklingError("the pickle stack is empty")
        return self.stack.pop()

    def load(self) -> Any:
        data, size = self.data, len(self.data)
        table = [self.dispatch.get(code, _invalid) for code in range(256)]
        ops_limit, bytes_limit = self.limits.ops, self.limits.bytes
        try:
            while True:
                pos = self.pos
                if pos >= size:
                    raise UnpicklingError("pickle data was truncated (no STOP)")
                code = data[pos]
                self.pos = pos + 1
                self.ops += 1
                if self.ops > ops_limit or self.charged > bytes_limit:
                    self.charge(0)  # raises the budget's message
                table[code](self)
        except Stop as stop:
            return stop.value

    # --- helpers for handlers ---
    def decode_string(self, raw: bytes) -> Any:
        return raw if self.encoding == "bytes" else raw.decode(self.encoding, "strict")

    def set_items(self, target: Any, pairs: list[Any]) -> None:
        if len(pairs) % 2:
            raise UnpicklingError("SETITEMS with an odd number of items")
        self.charge(ITEM * (len(pairs) // 2), len(pairs))
        keys = pairs[0::2]
        for key in keys:
            self.check_key(key)
        if isinstance(target, dict):
            target.update(zip(keys, pairs[1::2], strict=True))
        elif not getattr(target, "accepts_items", False):
            raise UnpicklingError(f"SETITEM on {type(target).__name__} is not allowed")

    def append_items(self, target: Any, items: list[Any]) -> None:
        self.charge(SLOT * len(items), len(items))
        if type(target) is list:
            target.extend(items)
        elif not getattr(target, "accepts_items", False):
            raise UnpicklingError(f"APPEND on {type(target).__name__} is not allowed")
