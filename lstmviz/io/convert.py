"""Small shared steps every reader needs: gate permutation, dtype widening, shape checks,
the ``budget=`` option.

Block permutation (CONVENTIONS.md §1): canonical block k = source block ``perm[k]``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lstmviz.io.errors import LoadError

#: Stored gate order → perm into canonical i, f, g, o.
PERMS: dict[tuple[str, ...], tuple[int, int, int, int]] = {
    ("i", "f", "c", "o"): (0, 1, 2, 3),  # Keras, cuDNN, MXNet
    ("i", "f", "g", "o"): (0, 1, 2, 3),  # PyTorch
    ("i", "j", "f", "o"): (0, 2, 1, 3),  # TF1 cells
    ("i", "g", "f", "o"): (0, 2, 1, 3),  # Haiku
    ("i", "o", "f", "c"): (0, 2, 3, 1),  # ONNX
    ("i", "f", "o", "g"): (0, 1, 3, 2),  # Caffe
}


def reorder_gates(a: npt.NDArray, perm: tuple[int, ...], axis: int = 0) -> npt.NDArray:
    """Reorder the ``len(perm)`` gate blocks of ``a`` along ``axis`` into canonical order
    (block k = stored block ``perm[k]``: an LSTM's four to i, f, g, o, a GRU's three to
    r, z, n, as ``CellDescription.perm`` gives them). The result is a new C-ordered array."""
    n, k = a.shape[axis], len(perm)
    if n % k:
        raise ValueError(f"axis of length {n} is not {k} gate blocks")
    blocks = np.split(a, k, axis=axis)
    return np.concatenate([blocks[p] for p in perm], axis=axis)


def reorder_gates_in_place(a: npt.NDArray, perm: tuple[int, ...]) -> npt.NDArray:
    """``reorder_gates(a, perm)`` along axis 0, done inside ``a`` with one block of scratch.

    For arrays the reader made itself (a dequantized int8 weight is 4× its file's bytes):
    a reordered copy beside it would double that. Each cycle of the permutation moves its
    blocks down the cycle, saving the first one.
    """
    n = a.shape[0]
    if n % 4:
        raise ValueError(f"axis of length {n} is not 4 gate blocks")
    size = n // 4
    done = [False] * 4
    for start in range(4):
        if done[start] or perm[start] == start:
            done[start] = True
            continue
        saved = a[start * size : (start + 1) * size].copy()
        k = start
        while True:
            done[k] = True
            src = perm[k]
            if src == start:
                a[k * size : (k + 1) * size] = saved
                break
            a[k * size : (k + 1) * size] = a[src * size : (src + 1) * size]
            k = src
    return a


def widen(a: npt.NDArray, name: str = "array") -> npt.NDArray[np.floating]:
    """float16/bfloat16 → float32 (CONVENTIONS pitfall 8); float32/64 kept; others refused."""
    if a.dtype.kind == "f":
        return a.astype(np.float32) if a.dtype.itemsize < 4 else a
    if a.dtype.kind == "V" and a.dtype.itemsize == 2:  # raw bfloat16 bits
        return bfloat16_to_float32(a.view(np.uint16))
    raise LoadError(f"{name} has dtype {a.dtype}; recurrent weights must be floating point")


def bfloat16_to_float32(bits: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    """bfloat16 is the top half of a float32: shift the 16 bits up."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def expect_shape(a: npt.NDArray, shape: tuple[int, ...], what: str, file: str) -> None:
    """Raise LoadError when a stored array does not have the shape its role requires."""
    if tuple(a.shape) != tuple(shape):
        raise LoadError(f"{file}: {what} has shape {tuple(a.shape)}, expected {tuple(shape)}")


def budget_factor(budget: object, file: str) -> float:
    """``budget=`` as a positive factor on a reader's limits (1 by default: the limits issue 18
    promises), as the PyTorch and Keras readers take it; anything else is a LoadError."""
    try:
        factor = float(budget)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        factor = float("nan")
    if not 0 < factor < float("inf"):
        raise LoadError(f"{file}: budget={str(budget)[:20]} is not a positive number; try budget=4")
    return factor
