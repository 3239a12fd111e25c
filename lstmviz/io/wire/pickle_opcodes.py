"""The opcode handlers of ``PickleVM``: every opcode of pickle protocols 0-5.

Each handler takes the VM, reads its argument through ``take``/``size``/``line`` (lengths
checked against what is left before anything is allocated), charges what it builds, and
leaves calls, globals, persistent ids and BUILD to the VM's hooks.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pickle import UnpicklingError
from typing import TYPE_CHECKING, Any

from lstmviz.io.wire.pickle_budget import ITEM, MEMO, OBJ, SLOT, PickleLimit, Stop

if TYPE_CHECKING:
    from lstmviz.io.wire.pickle_vm import PickleVM

#: opcode byte -> handler
DISPATCH: dict[int, Callable[[PickleVM], None]] = {}


def _op(code: bytes) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a handler for one opcode in ``PickleVM.dispatch``."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        DISPATCH[code[0]] = func
        return func

    return register


def _push(value: Any) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        vm.charged += SLOT
        vm.stack.append(value)

    return handler


for _code, _value in ((b"N", None), (b"\x88", True), (b"\x89", False)):
    DISPATCH[_code[0]] = _push(_value)


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
        raise PickleLimit(f"has an integer longer than {vm.limits.long_bytes} bytes")
    return int(text, 0) if text[:2].lower() in (b"0x", b"0o", b"0b") else int(text)


@_op(b"I")
def _int(vm: PickleVM) -> None:
    text = vm.line()
    vm.charged += OBJ
    vm.stack.append(text == b"01" if text in (b"00", b"01") else _int_text(vm, text))


@_op(b"L")
def _long(vm: PickleVM) -> None:
    vm.charged += OBJ
    vm.stack.append(_int_text(vm, vm.line().rstrip(b"L")))


def _long_n(fmt: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        n = vm.size(fmt)
        if n > vm.limits.long_bytes:
            raise PickleLimit(f"has an integer longer than {vm.limits.long_bytes} bytes")
        vm.stack.append(int.from_bytes(vm.take(n), "little", signed=True))

    return handler


DISPATCH[0x8A] = _long_n("<B")
DISPATCH[0x8B] = _long_n("<i")


def _fixed_int(fmt: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        vm.charged += OBJ
        vm.stack.append(vm.size(fmt))

    return handler


DISPATCH[b"J"[0]] = _fixed_int("<i")
DISPATCH[b"K"[0]] = _fixed_int("<B")
DISPATCH[b"M"[0]] = _fixed_int("<H")


@_op(b"F")
def _float(vm: PickleVM) -> None:
    vm.charged += OBJ
    vm.stack.append(float(vm.line()))


@_op(b"G")
def _binfloat(vm: PickleVM) -> None:
    vm.charged += OBJ
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
        vm.charged += OBJ
        vm.stack.append(make(vm, vm.take(vm.size(fmt))))

    return handler


def _utf8(vm: PickleVM, raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


for _code, _fmt, _make in (
    (b"T", "<i", lambda vm, raw: vm.decode_string(raw)),
    (b"U", "<B", lambda vm, raw: vm.decode_string(raw)),
    (b"B", "<I", lambda vm, raw: raw),
    (b"C", "<B", lambda vm, raw: raw),
    (b"\x8e", "<Q", lambda vm, raw: raw),
    (b"\x96", "<Q", lambda vm, raw: bytearray(raw)),
    (b"X", "<I", _utf8),
    (b"\x8c", "<B", _utf8),
    (b"\x8d", "<Q", _utf8),
):
    DISPATCH[_code[0]] = _sized(_fmt, _make)


@_op(b"V")
def _unicode(vm: PickleVM) -> None:
    vm.stack.append(str(vm.line(), "raw-unicode-escape"))


def _refused(what: str) -> Callable[[PickleVM], None]:
    def handler(vm: PickleVM) -> None:
        raise UnpicklingError(f"{what} are not allowed")

    return handler


DISPATCH[0x97] = DISPATCH[0x98] = _refused("out-of-band buffers")
for _code in (b"\x82", b"\x83", b"\x84"):
    DISPATCH[_code[0]] = _refused("extension codes (copyreg registry)")


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
    DISPATCH[0x84 + _n] = _tuple_n(_n)


@_op(b"]")
def _empty_list(vm: PickleVM) -> None:
    vm.charged += OBJ
    vm.stack.append([])


@_op(b"}")
def _empty_dict(vm: PickleVM) -> None:
    vm.charged += OBJ + 200
    vm.stack.append({})


@_op(b"\x8f")
def _empty_set(vm: PickleVM) -> None:
    vm.charged += OBJ + 160
    vm.stack.append(set())


@_op(b"l")
def _list(vm: PickleVM) -> None:
    items = vm.pop_mark()
    vm.charge(OBJ, len(items))
    vm.stack.append(items)


@_op(b"d")
def _dict(vm: PickleVM) -> None:
    items = vm.pop_mark()
    target: dict = {}
    vm.charged += OBJ + 200
    vm.set_items(target, items)
    vm.stack.append(target)


def _check_members(vm: PickleVM, items: list[Any]) -> None:
    vm.charge(ITEM * len(items), len(items))
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
    parts = state if type(state) is tuple else (state,)  # (__dict__, __slots__) pairs too
    vm.charge(0, 1 + sum(len(p) for p in parts if isinstance(p, (dict, tuple, list))))
    vm.build(vm.top(), state)


@_op(b"(")
def _mark(vm: PickleVM) -> None:
    vm.charged += OBJ
    vm.metastack.append(vm.stack)
    vm.stack = []


@_op(b".")
def _stop(vm: PickleVM) -> None:
    raise Stop(vm.pop())


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
    vm.charged += SLOT
    vm.stack.append(vm.top())


def _get(vm: PickleVM, index: int) -> None:
    if index not in vm.memo:
        raise UnpicklingError(f"memo value {index} not found")
    vm.charged += SLOT
    vm.stack.append(vm.memo[index])


def _put(vm: PickleVM, index: int) -> None:
    if index < 0:
        raise UnpicklingError("negative memo index")
    vm.charged += MEMO
    vm.memo[index] = vm.top()


DISPATCH[b"g"[0]] = lambda vm: _get(vm, _int_text(vm, vm.line()))
DISPATCH[b"h"[0]] = lambda vm: _get(vm, vm.size("<B"))
DISPATCH[b"j"[0]] = lambda vm: _get(vm, vm.size("<I"))
DISPATCH[b"p"[0]] = lambda vm: _put(vm, _int_text(vm, vm.line()))
DISPATCH[b"q"[0]] = lambda vm: _put(vm, vm.size("<B"))
DISPATCH[b"r"[0]] = lambda vm: _put(vm, vm.size("<I"))
DISPATCH[0x94] = lambda vm: _put(vm, len(vm.memo))


def _names(vm: PickleVM) -> tuple[str, str]:
    module = vm.line().decode("utf-8")
    return module, vm.line().decode("utf-8")


@_op(b"c")
def _global(vm: PickleVM) -> None:
    vm.charged += OBJ
    vm.stack.append(vm.find_class(*_names(vm)))


@_op(b"\x93")
def _stack_global(vm: PickleVM) -> None:
    name, module = vm.pop(), vm.pop()
    if type(name) is not str or type(module) is not str:
        raise UnpicklingError("STACK_GLOBAL requires str")
    vm.charged += OBJ
    vm.stack.append(vm.find_class(module, name))


@_op(b"R")
def _reduce(vm: PickleVM) -> None:
    args = vm.pop()
    func = vm.pop()
    if type(args) is not tuple:
        raise UnpicklingError("REDUCE arguments are not a tuple")
    vm.charge(OBJ * 4, len(args))
    vm.stack.append(vm.call(func, args))


@_op(b"\x81")
def _newobj(vm: PickleVM) -> None:
    args = vm.pop()
    cls = vm.pop()
    if type(args) is not tuple:
        raise UnpicklingError("NEWOBJ arguments are not a tuple")
    vm.charge(OBJ * 4, len(args))
    vm.stack.append(vm.newobj(cls, args, {}))


@_op(b"\x92")
def _newobj_ex(vm: PickleVM) -> None:
    kwargs, args = vm.pop(), vm.pop()
    cls = vm.pop()
    if type(args) is not tuple or type(kwargs) is not dict:
        raise UnpicklingError("NEWOBJ_EX arguments are not a tuple and a dict")
    vm.charge(OBJ * 4, len(args) + len(kwargs))
    vm.stack.append(vm.newobj(cls, args, kwargs))


@_op(b"i")
def _inst(vm: PickleVM) -> None:
    module, name = _names(vm)
    args = tuple(vm.pop_mark())
    vm.charge(OBJ * 4, len(args))
    vm.stack.append(vm.call(vm.find_class(module, name), args))


@_op(b"o")
def _obj(vm: PickleVM) -> None:
    args = vm.pop_mark()
    if not args:
        raise UnpicklingError("OBJ without a class")
    vm.charge(OBJ * 4, len(args))
    vm.stack.append(vm.call(args[0], tuple(args[1:])))
