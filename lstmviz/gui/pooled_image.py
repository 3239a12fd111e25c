"""An ImageItem for big weight matrices: shrunk by keeping the largest |w| of each block.

pyqtgraph's ``autoDownsample`` averages the cells that share a screen pixel. For weights that
is the wrong summary: averaging ~40 independent values of a 4096 × 1024 kernel shown in
600 × 200 pixels cancels them to near zero, and the whole matrix looks an even pale grey (a
single huge weight vanishes too). Keeping the signed value of largest magnitude per block
keeps the contrast and the outliers; zooming in lowers the factor until each cell is a pixel.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg


def pool_max_abs(a: npt.NDArray[np.floating], rows: int, cols: int) -> npt.NDArray[np.floating]:
    """``a`` shrunk by ``rows`` × ``cols`` blocks, each the entry of largest magnitude (with
    its sign); a block holding a NaN is NaN, so bad values stay visible. Edges are padded."""
    if rows <= 1 and cols <= 1:
        return a
    R, C = a.shape
    pad_r, pad_c = -R % rows, -C % cols
    if pad_r or pad_c:  # the padding is 0, which never wins a largest-|w| contest
        a = np.pad(a, ((0, pad_r), (0, pad_c)))
    blocks = a.reshape(a.shape[0] // rows, rows, a.shape[1] // cols, cols)
    hi = blocks.max(axis=(1, 3))  # max/min propagate NaN, as wanted
    lo = blocks.min(axis=(1, 3))
    return np.where(hi >= -lo, hi, lo)


class PooledImage(pg.ImageItem):
    """``setImage`` as usual (``self.image`` stays the full matrix, so geometry, hover and
    tests see every cell); ``render`` draws a max-|w| pooled copy when cells are smaller than
    a screen pixel, and a zoom that changes the factors re-renders once."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.factors = (1, 1)  # (rows, cols) of data per drawn pixel in the last render

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

    def render(self) -> None:
        full = self.image
        self.factors = self._wanted_factors() if full is not None and full.ndim == 2 else (1, 1)
        if self.factors == (1, 1):
            super().render()
            return
        self.image = pool_max_abs(full, *self.factors)
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
