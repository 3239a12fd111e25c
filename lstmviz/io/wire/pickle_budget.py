"""What one pickle may cost: the budgets ``PickleVM`` charges before each piece of work.

Shared by the interpreter (``pickle_vm``) and its opcode handlers (``pickle_opcodes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pickle import UnpicklingError

#: Rough CPython sizes (bytes) used to charge what an opcode builds.
SLOT, OBJ, MEMO, ITEM = 8, 64, 104, 56
#: Opcodes one pickle may run unless ``budget=`` raises it: the interpreter runs about 0.75 µs
#: an opcode, so this answers within ~1.1 s (a file of 200,000 tensor records, 16 MB, took
#: 2.8 s to reach its memory budget). ~50,000 tensors' worth: no LSTM checkpoint comes near.
MAX_OPS = 1_500_000
#: Tuples holding more tuples than this are recorded (kept alive, id -> depth and size).
RECORD_NODES = 16


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
    def for_size(cls, stored: int, factor: float = 1.0, file_size: int | None = None) -> Limits:
        """Budgets for a pickle held in ``stored`` bytes (compressed size if deflated): work
        200k steps + 1 per stored byte (``torch.save`` writes ~3.3 bytes per opcode, and a
        stored pickle cannot run more opcodes than it has bytes: the budget bites when a few
        KB inflate to megabytes of opcodes), memory 48 MB + 20 bytes per stored byte (a state
        dict of tensor records builds ~23-27 bytes of objects per byte of pickle, measured on
        20k- and 30k-tensor checkpoints; their files hold the tensors' bytes too, so this stays
        near the 2 x file size a load may cost)."""
        objects = (48 << 20) + 20 * stored
        if file_size is not None:
            # a file of nothing but tensor records (200,000 views of one storage, 15 MB) built
            # 347 MB of objects: past the promise of 200 MB + 2 x the file's size, so the
            # objects stay below 150 MB + 2 x the file's size less the pickle's own bytes
            objects = min(objects, max(48 << 20, (150 << 20) + 2 * file_size - stored))
        ops = min(200_000 + stored, MAX_OPS)
        return cls(ops=int(ops * factor), bytes=int(objects * factor))


class Stop(Exception):
    """STOP: the pickle's value, carried out of the opcode loop."""

    def __init__(self, value: object) -> None:
        self.value = value
