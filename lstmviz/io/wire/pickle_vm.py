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

import codecs
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pickle import UnpicklingError
from typing import Any, ClassVar

#: Rough CPython sizes (bytes) used to charge what an opcode builds.
_SLOT, _OBJ, _MEMO, _ITEM = 8, 64, 104, 56
#: Tuples holding more tuples than this are recorded (kept alive, id -> depth and size).
_RECORD_NODES = 16


class PickleLimit(UnpicklingError):
    """A pickle needs more than a budget allows; the message names the budget."""


@dataclass(frozen=True)
class Limits:
    """What one pickle may cost. ``for_size`` scales them with the bytes that hold it."""

    ops: int = 20_000_000
    bytes: int = 1 << 30
    depth: int = 32  # nesting of a tuple used as a dict key or set member
    key_nodes: int = 1_000  # tuples inside one such key
    long_bytes: int = 256  # LONG1/LONG4 payload (2**2048; no checkpoint stores more)
    nesting: int = 100  # any tuple (lists and dicts: the readers' iterative walks check them)

    @classmethod
    def for_size(cls, stored: int, factor: float = 1.0) -> Limits:
        """Budgets for a pickle held in ``stored`` bytes (compressed size if deflated): work
        200k steps + 1 per stored byte (``torch.save`` writes ~3.3 bytes per opcode, and a
        stored pickle cannot run more opcodes than it has bytes: the budget bites when a few
        KB inflate to megabytes of opcodes), memory 48 MB + 20 bytes per stored byte (a state
        dict of tensor records builds ~23-27 bytes of objects per byte of pickle, measured on
        20k- and 30k-tensor checkpoints; their files hold the tensors' bytes too, so this stays
        near the 2 x file size a load may cost)."""
        return cls(
            ops=int((200_000 + stored) * factor),
            bytes=int(((48 << 20) + 20 * stored) * factor),
        )


_STRUCTS = {fmt: struct.Struct(fmt) for fmt in ("<B", "<H", "<i", "<I", "<Q", ">d")}


def _invalid(vm: PickleVM) -> None:
    code = vm.data[vm.pos - 1]
    raise UnpicklingError(f"invalid pickle opcode {code:#04x}")


class _Stop(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


def _op(code: bytes) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a handler for one opcode in ``PickleVM.dispatch``."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        PickleVM.dispatch[code[0]] = func
        return func

    return register


class PickleVM:
    """Runs one pickle from ``data[pos:]``; ``load()`` returns its object and leaves ``pos``
    just after its STOP (legacy torch files hold several pickles back to back)."""

    dispatch: ClassVar[dict[int, Callable[[PickleVM], None]]] = {}

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
        self.charged += 40 + _SLOT * len(items)
        self.ops += len(items)
        if nodes > _RECORD_NODES:  # small ones are cheaper to walk again than to keep
            self.charge(_OBJ * 3)
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
        except _Stop as stop:
            return stop.value

    # --- helpers for handlers ---
    def decode_string(self, raw: bytes) -> Any:
        return raw if self.encoding == "bytes" else raw.decode(self.encoding, "strict")

    def set_items(self, target: Any, pairs: list[Any]) -> None:
        if len(pairs) % 2:
            raise UnpicklingError("SETITEMS with an odd number of items")
        self.charge(_ITEM * (len(pairs) // 2), len(pairs))
        keys = pairs[0::2]
        for key in keys:
            self.check_key(key)
        if isinstance(target, dict):
            target.update(zip(keys, pairs[1::2], strict=True))
        elif not getattr(target, "accepts_items", False):
            raise UnpicklingError(f"SETITEM on {type(target).__name__} is not allowed")

    def append_items(self, target: Any, items: list[Any]) -> None:
        self.charge(_SLOT * len(items), len(items))
        if type(target) is list:
            target.extend(items)
        elif not getattr(target, "accepts_items", False):
            raise UnpicklingError(f"APPEND on {type(target).__name__} is not allowed")


def _push(value: Any) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        vm.charged += _SLOT
        vm.stack.append(value)

    return handler


for _code, _value in ((b"N", None), (b"\x88", True), (b"\x89", False)):
    PickleVM.dispatch[_code[0]] = _push(_value)


@_op(b"\x80")
def _proto(vm: PickleVM) -> None:
    if vm.take(1)[0] > 5:
        raise UnpicklingError("unsupported pickle protocol")


@_op(b"\x95")
def _frame(vm: PickleVM) -> None:
    if vm.size("<Q") > len(vm.data) - vm.pos:
        raise UnpicklingError("a pickle frame is longer than the data")


@_op(b"P")
def _persid(vm: PickleVM) -> None:
    vm.stack.append(vm.persistent_load(vm.line().decode("ascii")))


@_op(b"Q")
def _binpersid(vm: PickleVM) -> None:
    vm.stack.append(vm.persistent_load(vm.pop()))


def _int_text(vm: PickleVM, text: bytes) -> int:
    if len(text) > 2.5 * vm.limits.long_bytes:
        raise PickleLimit(f"an integer longer than {vm.limits.long_bytes} bytes")
    return int(text, 0) if text[:2].lower() in (b"0x", b"0o", b"0b") else int(text)


@_op(b"I")
def _int(vm: PickleVM) -> None:
    text = vm.line()
    vm.charged += _OBJ
    vm.stack.append(text == b"01" if text in (b"00", b"01") else _int_text(vm, text))


@_op(b"L")
def _long(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.stack.append(_int_text(vm, vm.line().rstrip(b"L")))


def _long_n(fmt: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        n = vm.size(fmt)
        if n > vm.limits.long_bytes:
            raise PickleLimit(f"an integer longer than {vm.limits.long_bytes} bytes")
        vm.stack.append(int.from_bytes(vm.take(n), "little", signed=True))

    return handler


PickleVM.dispatch[0x8A] = _long_n("<B")
PickleVM.dispatch[0x8B] = _long_n("<i")


def _fixed_int(fmt: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        vm.charged += _OBJ
        vm.stack.append(vm.size(fmt))

    return handler


PickleVM.dispatch[b"J"[0]] = _fixed_int("<i")
PickleVM.dispatch[b"K"[0]] = _fixed_int("<B")
PickleVM.dispatch[b"M"[0]] = _fixed_int("<H")


@_op(b"F")
def _float(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.stack.append(float(vm.line()))


@_op(b"G")
def _binfloat(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.stack.append(vm.size(">d"))


@_op(b"S")
def _string(vm: PickleVM) -> None:
    raw = vm.line()
    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b'"', b"'"):
        raise UnpicklingError("the STRING opcode argument must be quoted")
    vm.stack.append(vm.decode_string(codecs.escape_decode(raw[1:-1])[0]))


def _sized(fmt: str, make: Callable[[PickleVM, bytes], Any]) -> Callable[[PickleVM], None]:
    """Length-prefixed data: the length is checked against what is left before reading."""

    def handler(vm: PickleVM) -> None:
        vm.charged += _OBJ
        vm.stack.append(make(vm, vm.take(vm.size(fmt))))

    return handler


def _utf8(vm: PickleVM, raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


for _code, _fmt, _make in (
    (b"T", "<i", PickleVM.decode_string),
    (b"U", "<B", PickleVM.decode_string),
    (b"B", "<I", lambda vm, raw: raw),
    (b"C", "<B", lambda vm, raw: raw),
    (b"\x8e", "<Q", lambda vm, raw: raw),
    (b"\x96", "<Q", lambda vm, raw: bytearray(raw)),
    (b"X", "<I", _utf8),
    (b"\x8c", "<B", _utf8),
    (b"\x8d", "<Q", _utf8),
):
    PickleVM.dispatch[_code[0]] = _sized(_fmt, _make)


@_op(b"V")
def _unicode(vm: PickleVM) -> None:
    vm.stack.append(str(vm.line(), "raw-unicode-escape"))


def _refused(what: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        raise UnpicklingError(f"{what} are not allowed")

    return handler


PickleVM.dispatch[0x97] = PickleVM.dispatch[0x98] = _refused("out-of-band buffers")
for _code in (b"\x82", b"\x83", b"\x84"):
    PickleVM.dispatch[_code[0]] = _refused("extension codes (copyreg registry)")


@_op(b")")
def _empty_tuple(vm: PickleVM) -> None:
    vm.stack.append(())


@_op(b"t")
def _tuple(vm: PickleVM) -> None:
    vm.push_tuple(tuple(vm.pop_mark()))


def _tuple_n(n: int) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        if len(vm.stack) < n:
            raise UnpicklingError("the pickle stack is empty")
        items = tuple(vm.stack[-n:])
        del vm.stack[-n:]
        vm.push_tuple(items)

    return handler


for _n in (1, 2, 3):
    PickleVM.dispatch[0x84 + _n] = _tuple_n(_n)


@_op(b"]")
def _empty_list(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.stack.append([])


@_op(b"}")
def _empty_dict(vm: PickleVM) -> None:
    vm.charged += _OBJ + 200
    vm.stack.append({})


@_op(b"\x8f")
def _empty_set(vm: PickleVM) -> None:
    vm.charged += _OBJ + 160
    vm.stack.append(set())


@_op(b"l")
def _list(vm: PickleVM) -> None:
    items = vm.pop_mark()
    vm.charge(_OBJ, len(items))
    vm.stack.append(items)


@_op(b"d")
def _dict(vm: PickleVM) -> None:
    items = vm.pop_mark()
    target: dict = {}
    vm.charged += _OBJ + 200
    vm.set_items(target, items)
    vm.stack.append(target)


def _check_members(vm: PickleVM, items: list[Any]) -> None:
    vm.charge(_ITEM * len(items), len(items))
    for item in items:
        vm.check_key(item)


@_op(b"\x91")
def _frozenset(vm: PickleVM) -> None:
    items = vm.pop_mark()
    _check_members(vm, items)
    vm.stack.append(frozenset(items))


@_op(b"\x90")
def _additems(vm: PickleVM) -> None:
    items = vm.pop_mark()
    target = vm.top()
    _check_members(vm, items)
    if type(target) is set:
        target.update(items)
    elif not getattr(target, "accepts_items", False):
        raise UnpicklingError(f"ADDITEMS on {type(target).__name__} is not allowed")


@_op(b"a")
def _append(vm: PickleVM) -> None:
    value = vm.pop()
    vm.append_items(vm.top(), [value])


@_op(b"e")
def _appends(vm: PickleVM) -> None:
    items = vm.pop_mark()
    vm.append_items(vm.top(), items)


@_op(b"s")
def _setitem(vm: PickleVM) -> None:
    value = vm.pop()
    key = vm.pop()
    vm.set_items(vm.top(), [key, value])


@_op(b"u")
def _setitems(vm: PickleVM) -> None:
    items = vm.pop_mark()
    vm.set_items(vm.top(), items)


@_op(b"b")
def _build(vm: PickleVM) -> None:
    state = vm.pop()
    vm.charge(0, len(state) if isinstance(state, (dict, tuple, list)) else 1)
    vm.build(vm.top(), state)


@_op(b"(")
def _mark(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.metastack.append(vm.stack)
    vm.stack = []


@_op(b".")
def _stop(vm: PickleVM) -> None:
    raise _Stop(vm.pop())


@_op(b"0")
def _pop(vm: PickleVM) -> None:
    if vm.stack:
        vm.stack.pop()
    else:
        vm.pop_mark()


@_op(b"1")
def _pop_mark(vm: PickleVM) -> None:
    vm.pop_mark()


@_op(b"2")
def _dup(vm: PickleVM) -> None:
    vm.charged += _SLOT
    vm.stack.append(vm.top())


def _get(vm: PickleVM, index: int) -> None:
    if index not in vm.memo:
        raise UnpicklingError(f"memo value {index} not found")
    vm.charged += _SLOT
    vm.stack.append(vm.memo[index])


def _put(vm: PickleVM, index: int) -> None:
    if index < 0:
        raise UnpicklingError("negative memo index")
    vm.charged += _MEMO
    vm.memo[index] = vm.top()


PickleVM.dispatch[b"g"[0]] = lambda vm: _get(vm, _int_text(vm, vm.line()))
PickleVM.dispatch[b"h"[0]] = lambda vm: _get(vm, vm.size("<B"))
PickleVM.dispatch[b"j"[0]] = lambda vm: _get(vm, vm.size("<I"))
PickleVM.dispatch[b"p"[0]] = lambda vm: _put(vm, _int_text(vm, vm.line()))
PickleVM.dispatch[b"q"[0]] = lambda vm: _put(vm, vm.size("<B"))
PickleVM.dispatch[b"r"[0]] = lambda vm: _put(vm, vm.size("<I"))
PickleVM.dispatch[0x94] = lambda vm: _put(vm, len(vm.memo))


def _names(vm: PickleVM) -> tuple[str, str]:
    module = vm.line().decode("utf-8")
    return module, vm.line().decode("utf-8")


@_op(b"c")
def _global(vm: PickleVM) -> None:
    vm.charged += _OBJ
    vm.stack.append(vm.find_class(*_names(vm)))


@_op(b"\x93")
def _stack_global(vm: PickleVM) -> None:
    name, module = vm.pop(), vm.pop()
    if type(name) is not str or type(module) is not str:
        raise UnpicklingError("STACK_GLOBAL requires str")
    vm.charged += _OBJ
    vm.stack.append(vm.find_class(module, name))


@_op(b"R")
def _reduce(vm: PickleVM) -> None:
    args = vm.pop()
    func = vm.pop()
    if type(args) is not tuple:
        raise UnpicklingError("REDUCE arguments are not a tuple")
    vm.charge(_OBJ * 4, len(args))
    vm.stack.append(vm.call(func, args))


@_op(b"\x81")
def _newobj(vm: PickleVM) -> None:
    args = vm.pop()
    cls = vm.pop()
    if type(args) is not tuple:
        raise UnpicklingError("NEWOBJ arguments are not a tuple")
    vm.charge(_OBJ * 4, len(args))
    vm.stack.append(vm.newobj(cls, args, {}))


@_op(b"\x92")
def _newobj_ex(vm: PickleVM) -> None:
    kwargs, args = vm.pop(), vm.pop()
    cls = vm.pop()
    if type(args) is not tuple or type(kwargs) is not dict:
        raise UnpicklingError("NEWOBJ_EX arguments are not a tuple and a dict")
    vm.charge(_OBJ * 4, len(args) + len(kwargs))
    vm.stack.append(vm.newobj(cls, args, kwargs))


@_op(b"i")
def _inst(vm: PickleVM) -> None:
    module, name = _names(vm)
    args = tuple(vm.pop_mark())
    vm.charge(_OBJ * 4, len(args))
    vm.stack.append(vm.call(vm.find_class(module, name), args))


@_op(b"o")
def _obj(vm: PickleVM) -> None:
    args = vm.pop_mark()
    if not args:
        raise UnpicklingError("OBJ without a class")
    vm.charge(_OBJ * 4, len(args))
    vm.stack.append(vm.call(args[0], tuple(args[1:])))
