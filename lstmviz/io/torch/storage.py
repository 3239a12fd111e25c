"""Storages and the strided tensors viewing them, with one memory budget per file.

A torch tensor is (storage, offset, size, stride): nothing stops a file from viewing one
4 MB storage with stride 0 as eight 4096-unit layers (> 2.5 GB once copied), or from viewing
it a thousand times. So every tensor is checked to lie inside its storage when the pickle
names it, and when read: each storage's bytes are read once, each distinct view is built once
(the same view asked for twice is the same array), and the bytes a read would create (an
inflated member, a copied view) are charged to a ``Budget`` set from the file's size before
they are allocated. A plain ``torch.save`` file reads its LSTM as zero-copy views of its
storages and spends a fraction of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lstmviz.io.convert import bfloat16_to_float32
from lstmviz.io.errors import LoadError
from lstmviz.io.torch.checkpoint import DTYPES
from lstmviz.io.torch.state_dict import LazyTensor
from lstmviz.io.wire.safe_pickle import Sealed

BUDGET_FLOOR = 64 << 20
MAX_NDIM = 32


class Budget:
    """Bytes one load may create from a file (its reads and copies): 64 MB + 2 × file size,
    times the user's ``budget=`` factor. Nested archives share their outer file's budget."""

    def __init__(self, file: str, file_size: int, factor: float = 1.0) -> None:
        self.file, self.factor = file, factor
        self.limit = int((BUDGET_FLOOR + 2 * file_size) * factor)
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        if self.used + nbytes > self.limit:
            raise LoadError(
                f"{self.file}: {what} would need {nbytes >> 20} MB more than the "
                f"{self.limit >> 20} MB this file's size allows (views of one storage as many "
                "large tensors, or a compression bomb); if you trust the file, raise the limit "
                "with --option budget=4"
            )
        self.used += nbytes


class Storage(Sealed):
    """One storage: ``numel`` elements of ``dtype`` at ``base`` elements into ``member``'s bytes
    (``base`` > 0 only for legacy views of a larger storage)."""

    __slots__ = ("base", "dtype", "key", "member", "numel")

    def __init__(self, member: str, key: str, dtype: str, numel: int, base: int = 0) -> None:
        for attr, value in (
            ("member", member),
            ("key", key),
            ("dtype", dtype),
            ("numel", numel),
            ("base", base),
        ):
            object.__setattr__(self, attr, value)


def is_count(x: object) -> bool:
    return type(x) is int and x >= 0


class StorageSource:
    """What ``torch._utils._rebuild_tensor*`` stand-ins need: checked lazy tensors.

    Subclasses say how a storage's bytes are read (``read_storage``) and set ``file``,
    ``endian`` and ``budget``."""

    file: str
    endian: str = "<"
    budget: Budget

    def __init__(self) -> None:
        self._storage_bytes: dict[str, bytes] = {}
        self._views: dict[tuple, np.ndarray] = {}
        self._viewed: set[str] = set()
        self._widened: set[str] = set()  # storages whose quantized bytes were dequantized

    def charge_widening(self, storage: Storage, nbytes: int, what: str) -> None:
        """Charge ``nbytes`` of float32 made from quantized ``storage``: the first tensor of a
        storage may widen its bytes 4x for free (a real quantized model's own cost), every
        further or larger one is charged (stride-0 or aliasing views of a few bytes)."""
        free = 0
        if storage.member not in self._widened:
            self._widened.add(storage.member)
            free = 4 * storage.numel * DTYPES[storage.dtype][1]
        if nbytes > free:
            self.budget.charge(nbytes - free, what)

    def read_storage(self, storage: Storage) -> bytes:
        raise NotImplementedError

    def storage_data(self, storage: Storage, nbytes: int) -> bytes:
        """The member's bytes, read (and charged) once however many tensors view it."""
        data = self._storage_bytes.get(storage.member)
        if data is None:
            data = self.read_storage(storage)
            self._storage_bytes[storage.member] = data
        if len(data) < nbytes:
            raise LoadError(f"{self.file}: storage {storage.key} is truncated")
        return data

    def tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None
    ) -> LazyTensor:
        """A lazy tensor after checking that every element lies inside its storage."""
        if not isinstance(storage, Storage):
            raise LoadError(f"{self.file}: a tensor in data.pkl has no storage")
        dtype = dtype or storage.dtype
        if dtype not in DTYPES:
            raise LoadError(f"{self.file}: a tensor has the unknown dtype {dtype!r}")
        ok = (
            is_count(offset)
            and type(size) is tuple
            and type(stride) is tuple
            and len(size) == len(stride) <= MAX_NDIM
            and all(is_count(n) for n in (*size, *stride))
        )
        if not ok:
            raise LoadError(f"{self.file}: a tensor in data.pkl has a malformed shape or stride")
        storage_bytes = storage.numel * DTYPES[storage.dtype][1]
        itemsize = DTYPES[dtype][1]
        count = math.prod(size)  # at most 32 bounded ints: cheap
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if count else -1
        if (last + 1) * itemsize > storage_bytes:
            raise LoadError(
                f"{self.file}: a tensor of shape {size} at offset {offset} reaches past the end "
                f"of storage {storage.key} ({storage_bytes} bytes)"
            )
        if count * itemsize > max(storage_bytes, self.budget.limit - self.budget.used):
            raise LoadError(
                f"{self.file}: a tensor of shape {size} views {count} elements of the "
                f"{storage_bytes}-byte storage {storage.key} (stride-0 or overlapping view), more "
                f"than the {self.budget.limit >> 20} MB this file's size allows; if you trust "
                "the file, raise the limit with --option budget=4"
            )
        key = (storage.member, storage.base, offset, size, stride, dtype)
        return LazyTensor(size, dtype, self._reader(storage, key, count * itemsize))

    def _reader(self, storage: Storage, key: tuple, nbytes: int) -> Callable[[], np.ndarray]:
        _, base, offset, size, stride, dtype = key

        def read() -> np.ndarray:
            done = self._views.get(key)
            if done is not None:
                return done  # an aliasing view asked for again: built once
            itemsize = DTYPES[dtype][1]
            raw = self.storage_data(storage, (base + storage.numel) * DTYPES[storage.dtype][1])
            np_dtype = np.dtype(DTYPES[dtype][0]).newbyteorder(self.endian)
            strides = tuple(s * itemsize for s in stride)
            start = base * DTYPES[storage.dtype][1] + offset * itemsize
            view = np.ndarray(size, np_dtype, buffer=raw, offset=start, strides=strides)
            if not (view.flags.c_contiguous and np_dtype.isnative):
                self.budget.charge(nbytes, f"a {size} view of storage {storage.key}")
                view = view.astype(np_dtype.newbyteorder("="), order="C")  # one copy
            elif storage.member in self._viewed:
                # a second zero-copy view of the same bytes: what the core derives from it
                # (float32, transposes) is a copy per view, so it counts
                self.budget.charge(nbytes, f"another view of storage {storage.key}")
            if dtype == "bfloat16":
                self.budget.charge(2 * nbytes, f"bfloat16 storage {storage.key} widened")
                view = bfloat16_to_float32(view)
            self._views[key] = view
            self._viewed.add(storage.member)
            return view

        return read
