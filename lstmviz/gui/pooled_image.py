"""An ImageItem for big weight matrices: shrunk by keeping the largest |w| of each block.

pyqtgraph's ``autoDownsample`` averages the cells that share a screen pixel. For weights that
is the wrong summary: averaging ~40 independent values of a 4096 × 1024 kernel shown in
600 × 200 pixels cancels them to near zero, and the whole matrix looks an even pale grey (a
single huge weight vanishes too). Keeping the signed value of largest magnitude per block
keeps the contrast and the outliers; zooming in lowers the factor until each cell is a pixel.

Pooling a 4096 × 1024 matrix takes 0.05-0.1 s, too long for a paint on the GUI thread (three of
them froze the window 0.25 s when a large model opened). Big matrices are pooled on a worker
thread (NumPy's reductions release the GIL); until the result arrives the paint shows every
n-th cell, and each pooled copy is kept per zoom factor, so panning or returning to a zoom
costs nothing.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Signal

#: Cells above which a matrix is pooled off the GUI thread (1 M cells pool in ~10-25 ms).
ASYNC_CELLS = 1 << 20
#: Pooled copies kept per matrix (one per zoom factor seen).
CACHE_SIZE = 4


def pool_max_abs(a: npt.NDArray[np.floating], rows: int, cols: int) -> npt.NDArray[np.floating]:
    """``a`` shrunk by ``rows`` × ``cols`` blocks, each the entry of largest magnitude (with
    its sign); a block holding a NaN is NaN, so bad values stay visible. Edges are padded."""
    if rows <= 1 and cols <= 1:
        return a
    R, C = a.shape
    pad_r, pad_c = -R % rows, -C % cols
    if pad_r or pad_c:  # the padding is 0, which never wins a largest-|w| contest
        a = np.pad(a, ((0, pad_r), (0, pad_c)))
    # Across rows first: the max of ``rows`` whole rows is an element-wise max of contiguous
    # rows (vectorised, memory speed) and leaves a matrix ``rows`` times smaller for the
    # reduction within each row; one 4-d (1, 3) reduction was 3-5x slower (0.2 s on 4096²/4).
    r_blocks, c_blocks = a.shape[0] // rows, a.shape[1] // cols
    by_row = a.reshape(r_blocks, rows, a.shape[1])
    hi = by_row.max(axis=1).reshape(r_blocks, c_blocks, cols).max(axis=2)  # NaN propagates
    lo = by_row.min(axis=1).reshape(r_blocks, c_blocks, cols).min(axis=2)
    return np.where(hi >= -lo, hi, lo)


class PooledImage(pg.ImageItem):
    """``setImage`` as usual (``self.image`` stays the full matrix, so geometry, hover and
    tests see every cell); ``render`` draws a max-|w| pooled copy when cells are smaller than
    a screen pixel, and a zoom that changes the factors re-renders once."""

    #: (source matrix, factors, pooled copy), emitted by the worker thread (queued to ours).
    pooled_ready = Signal(object, object, object)

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.factors = (1, 1)  # (rows, cols) of data per drawn pixel in the last render
        #: True while the last render showed every n-th cell (the pooled copy is on its way).
        self.preview = False
        self._source: np.ndarray | None = None  # the matrix the cache below belongs to
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self._pending: set[tuple[int, int]] = set()
        self.pooled_ready.connect(self._on_pooled_ready)

    def _wanted_factors(self) -> tuple[int, int]:
        vb = self.getViewBox()
        try:
            size = vb.viewPixelSize() if vb is not None else None
        except (TypeError, ZeroDivisionError):  # not laid out on screen yet
            size = None
        if not size or not all(np.isfinite(size)) or min(size) <= 0:
            return (1, 1)
        dx, dy = size  # data units per screen pixel (the item spans one unit per cell)
        return (max(1, int(dy)), max(1, int(dx)))

    def pooled(self, factors: tuple[int, int]) -> np.ndarray | None:
        """The pooled copy of the current matrix for ``factors``: from the cache, computed
        here for small matrices, else None after asking a worker thread for it."""
        full = self.image
        if full is not self._source:  # a new matrix (setImage): older copies are stale
            self._source, self._cache, self._pending = full, {}, set()
        if factors in self._cache:
            return self._cache[factors]
        if full.size < ASYNC_CELLS:
            return self._keep(factors, pool_max_abs(full, *factors))
        if factors not in self._pending:
            self._pending.add(factors)
            threading.Thread(
                target=self._pool_in_worker, args=(full, factors), daemon=True, name="pool"
            ).start()
        return None

    def _keep(self, factors: tuple[int, int], pooled: np.ndarray) -> np.ndarray:
        while len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[factors] = pooled
        return pooled

    def _pool_in_worker(self, full: np.ndarray, factors: tuple[int, int]) -> None:
        pooled = pool_max_abs(full, *factors)
        with contextlib.suppress(RuntimeError):  # the item was deleted meanwhile (closed)
            self.pooled_ready.emit(full, factors, pooled)

    def _on_pooled_ready(self, full: np.ndarray, factors: tuple[int, int], pooled) -> None:
        if full is not self._source or full is not self.image:
            return  # the matrix changed meanwhile: a stale copy is never drawn
        self._pending.discard(factors)
        self._keep(factors, pooled)
        if self.preview and factors == self.factors:
            self._renderRequired = True
            self.update()

    def render(self) -> None:
        full = self.image
        self.factors = self._wanted_factors() if full is not None and full.ndim == 2 else (1, 1)
        self.preview = False
        if self.factors == (1, 1):
            super().render()
            return
        pooled = self.pooled(self.factors)
        if pooled is None:  # meanwhile every n-th cell: cheap, and the right shape
            self.preview = True
            pooled = full[:: self.factors[0], :: self.factors[1]]
        self.image = pooled
        self._imageNanLocations = None  # pyqtgraph caches them per image shape
        try:
            super().render()
        finally:
            self.image = full
            self._imageNanLocations = None

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        if self.image is not None and self._wanted_factors() != self.factors:
            self._renderRequired = True
            self.update()
