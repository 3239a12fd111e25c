"""Every pickle opcode at hostile sizes, run under ``bounded_load`` (issue 18).

For each opcode of protocols 0-5, a ``data.pkl`` repeats it (with the largest argument it
takes, or in the pattern that makes it most expensive: lengths that claim gigabytes, memo
growth, DAG tuples whose hash doubles per level, self-sharing lists whose ``str`` doubles)
until the pickle is ~61 KB stored, and again until it is ~8 MB deflated into a few KB. Every
file must answer with one printable line within the time and memory promise: no crash, no
hang, no allocation the file's size does not pay for.
"""

from __future__ import annotations

import pickletools
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from bounded import bounded_load

Q = struct.Struct("<Q")
I4 = struct.Struct("<I")


def dag_list(levels: int) -> bytes:
    """memo[0] = L_levels with L_(k+1) = [L_k, L_k]: its str() doubles per level."""
    return b"]q\x00" + b"(h\x00h\x00lq\x00" * levels + b"0"


def dag_tuple(levels: int) -> bytes:
    """On the stack: t_(k+1) = (t_k, t_k): hashing it visits 2**levels tuples."""
    return b"N" + b"2\x86" * levels


def big_list(n: int) -> bytes:
    """memo[0] = a list of n Nones."""
    return b"](" + b"N" * n + b"eq\x000"


def big_dict(n: int) -> bytes:
    """memo[2] = a dict of n int keys."""
    pairs = b"".join(b"J" + i.to_bytes(4, "little") + b"N" for i in range(n))
    return b"}q\x02(" + pairs + b"u0"


#: opcode name -> (setup, unit (repeated; a callable gets the repetition index), tail)
CASES: dict[str, tuple[bytes, bytes | Callable[[int], bytes], bytes]] = {
    "INT": (b"", b"I" + b"9" * 4000 + b"\n", b""),
    "BININT": (b"", b"J\xff\xff\xff\x7f", b""),
    "BININT1": (b"", b"K\xff", b""),
    "BININT2": (b"", b"M\xff\xff", b""),
    "LONG": (b"", b"L" + b"9" * 4299 + b"L\n", b""),
    "LONG1": (b"", b"\x8a\xff" + b"\x7f" * 255, b""),
    "LONG4": (b"\x8b" + struct.pack("<i", 2**31 - 1), b"\xff", b""),
    "STRING": (b"", b"S'" + b"\\x41" * 1000 + b"'\n", b""),
    "BINSTRING": (b"T" + struct.pack("<i", 2**31 - 1), b"a", b""),
    "SHORT_BINSTRING": (b"", b"U\xff" + b"a" * 255, b""),
    "BINBYTES": (b"B" + I4.pack(2**32 - 1), b"a", b""),
    "SHORT_BINBYTES": (b"", b"C\xff" + b"a" * 255, b""),
    "BINBYTES8": (b"\x8e" + Q.pack(2**63 - 1), b"a", b""),
    "BYTEARRAY8": (b"\x96" + Q.pack(3 * 10**9), b"a", b""),
    "NEXT_BUFFER": (b"", b"\x97", b""),
    "READONLY_BUFFER": (b"N", b"\x98", b""),
    "NONE": (b"", b"N", b""),
    "NEWTRUE": (b"", b"\x88", b""),
    "NEWFALSE": (b"", b"\x89", b""),
    "UNICODE": (b"", b"V" + b"\\u0041" * 1000 + b"\n", b""),
    "SHORT_BINUNICODE": (b"", b"\x8c\xff" + b"a" * 255, b""),
    "BINUNICODE": (b"X" + I4.pack(2**32 - 1), b"a", b""),
    "BINUNICODE8": (b"\x8d" + Q.pack(2**63 - 1), b"a", b""),
    "FLOAT": (b"", b"F" + b"1" * 300 + b"\n", b""),
    "BINFLOAT": (b"", b"G\x7f\xef\xff\xff\xff\xff\xff\xff", b""),
    "EMPTY_LIST": (b"", b"]", b""),
    "APPEND": (b"]", b"2a", b""),  # a list holding itself many times
    "APPENDS": (b"]", b"(" + b"N" * 64 + b"e", b""),
    "LIST": (b"", b"(" + b"N" * 64 + b"l", b""),
    "EMPTY_TUPLE": (b"", b")", b""),
    "TUPLE": (b"", b"(" + b"N" * 64 + b"t", b""),
    "TUPLE1": (b"}N", b"\x85", b"Ns"),  # the 640-byte segfault: a key nested 300,000 deep
    "TUPLE2": (b"}" + dag_tuple(0), b"2\x86", b"Ns"),  # a DAG key whose hash doubles per level
    "TUPLE3": (b"}N", b"22\x87", b"Ns"),
    "EMPTY_DICT": (b"", b"}", b""),
    "DICT": (b"", b"(" + b"K\x01N" * 32 + b"d", b""),
    "SETITEM": (b"}", lambda i: b"J" + struct.pack("<i", i) + b"Ns", b""),
    "SETITEMS": (b"}", lambda i: b"(" + b"J" + struct.pack("<i", i) + b"Nu", b""),
    "EMPTY_SET": (b"", b"\x8f", b""),
    "ADDITEMS": (b"\x8f", lambda i: b"(J" + struct.pack("<i", i) + b"\x90", b""),
    "FROZENSET": (b"", b"(" + b"N" * 64 + b"\x91", b""),
    "POP": (b"N", b"N0", b""),
    "DUP": (b"N", b"2", b""),
    "MARK": (b"", b"(", b""),
    "POP_MARK": (b"", b"(N1", b""),
    "GET": (b"Np0\n", b"g0\n", b""),
    "BINGET": (b"Nq\x00", b"h\x00", b""),
    "LONG_BINGET": (b"Nr\x00\x00\x00\x00", b"j\x00\x00\x00\x00", b""),
    "PUT": (b"N", lambda i: b"p%d\n" % i, b""),
    "BINPUT": (b"N", lambda i: b"q" + bytes([i % 256]), b""),
    "LONG_BINPUT": (b"N", lambda i: b"r" + I4.pack(i), b""),
    "MEMOIZE": (b"N", b"\x94", b""),
    "EXT1": (b"", b"\x82\x01", b""),
    "EXT2": (b"", b"\x83\x01\x00", b""),
    "EXT4": (b"", b"\x84\x01\x00\x00\x00", b""),
    "GLOBAL": (b"", b"cbuiltins\nset\n", b""),
    "STACK_GLOBAL": (b"", b"\x8c\x08builtins\x8c\x03set\x93", b""),
    # str() of a list sharing itself 60 levels deep would take 2**60 steps
    "REDUCE": (dag_list(60), b"cbuiltins\nstr\nh\x00\x85R", b""),
    "BUILD": (big_dict(5000) + b"ccollections\nOrderedDict\n)R", b"h\x02b", b""),
    "INST": (b"", b"(ios\nsystem\n", b""),
    "OBJ": (big_list(5000), b"(cbuiltins\nlist\nh\x00o", b""),
    "NEWOBJ": (big_list(5000), b"cbuiltins\ntuple\nh\x00\x85\x81", b""),
    "NEWOBJ_EX": (big_list(5000), b"cbuiltins\nfrozenset\nh\x00\x85}\x92", b""),
    "PROTO": (b"", b"\x80\x05", b""),
    "STOP": (b"", b"N", b"."),
    "FRAME": (b"\x95" + Q.pack(2**63), b"N", b""),
    "PERSID": (b"", b"P" + b"x" * 1000 + b"\n", b""),
    "BINPERSID": (b"", b"NQ", b""),
}
#: Patterns that amplify one opcode into work or memory, beyond one opcode each.
AMPLIFIERS: dict[str, tuple[bytes, bytes | Callable[[int], bytes], bytes]] = {
    "list() copies kept on the stack": (big_list(10_000), b"cbuiltins\nlist\nh\x00\x85R", b""),
    "set() of a DAG tuple": (
        dag_tuple(80) + b"q\x01(h\x01l",
        b"cbuiltins\nset\n(h\x01l\x85R",
        b"",
    ),
    "dict from pairs with DAG keys": (
        dag_tuple(80) + b"q\x01",
        b"cbuiltins\ndict\n(h\x01N\x86l\x85R",
        b"",
    ),
    "TorchScript record called with DAG keys": (
        dag_tuple(60) + b"q\x01",
        b"c__torch__\nM\n(h\x01N\x86l\x85R0",
        b"",
    ),
    "a key holding one 1 MB string a thousand times": (
        b"X"
        + (1 << 20).to_bytes(4, "little")
        + b"a" * (1 << 20)
        + b"q\x01("
        + b"h\x01" * 1000
        + b"tq\x02}",
        b"h\x02Ns",
        b"",
    ),
    "one 1 MB key under many parents": (
        b"X" + (1 << 20).to_bytes(4, "little") + b"a" * (1 << 20) + b"q\x01]",
        b"}h\x01Nsa",
        b"",
    ),
    "frozenset of a 300k-deep tuple": (b"N" + b"\x85" * 300_000 + b"q\x01", b"(h\x01\x91", b""),
    "BUILD of a large state, repeated": (big_dict(20_000), b"cevil\nThing\n)\x81h\x02b0", b"N"),
    "BUILD of a large (dict, slots) state, repeated": (
        big_dict(20_000),
        b"cevil\nThing\n)\x81h\x02N\x86b0",
        b"N",
    ),
}


def make_pickle(
    setup: bytes, unit: bytes | Callable[[int], bytes], tail: bytes, size: int
) -> bytes:
    if callable(unit):  # one period of 4,096 distinct units (memo indices, keys), repeated
        unit = b"".join(unit(i) for i in range(min(4096, size // len(unit(0)) + 1)))
    return b"\x80\x04" + setup + unit * (max(0, size - len(setup)) // len(unit) + 1) + tail + b"."


def write(path: Path, pkl: bytes, deflate: bool) -> Path:
    """A torch zip, made a TorchScript archive (constants.pkl) so that ``__torch__`` names
    resolve to TorchScript records as they do in real ones."""
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/constants.pkl", b"\x80\x02).")
        zf.writestr("archive/version", "3\n")
    return path


def test_every_opcode_is_covered() -> None:
    assert set(CASES) == {op.name for op in pickletools.opcodes}


@pytest.mark.parametrize("deflate", [False, True], ids=["61KB stored", "8MB deflated"])
@pytest.mark.parametrize("name", list(CASES) + list(AMPLIFIERS))
def test_opcode_at_hostile_size(tmp_path: Path, name: str, deflate: bool) -> None:
    setup, unit, tail = CASES.get(name) or AMPLIFIERS[name]
    pkl = make_pickle(setup, unit, tail, 8_000_000 if deflate else 61_000)
    out = bounded_load(write(tmp_path / "op.pt", pkl, deflate))
    out.assert_refused("op.pt")
    print(f"{name}: {out.seconds:.2f} s, {out.peak_mb:.0f} MB: {out.message}")
