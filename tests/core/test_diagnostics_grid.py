"""The forget-gate product on its drawing grid: the sampled steps' exact products, in
O(T·H + N²·H) instead of O(T²·H) (issue 13: 35 s at T = 2000, H = 1024)."""

from types import SimpleNamespace

import numpy as np
import pytest

from lstmviz.core.diagnostics import forget_product, product_steps


def _direct(f: np.ndarray, s: int, t: int, reverse: bool) -> float:
    steps = range(t, s) if reverse else range(s + 1, t + 1)
    return float(np.mean(np.prod(f[list(steps)], axis=0))) if len(steps) else 1.0


def test_product_steps_are_cell_centres():
    assert product_steps(10, 16).tolist() == list(range(10))
    got = product_steps(1000, 4)
    assert got.tolist() == [125, 375, 625, 875]


@pytest.mark.parametrize("reverse", [False, True])
def test_grid_values_are_the_products_of_the_sampled_steps(reverse):
    rng = np.random.default_rng(3)
    T, H = 301, 7
    f = 1 / (1 + np.exp(-rng.normal(2.5, 2, size=(T, H))))
    f[40, :3] = 0.0  # a closed gate erases memory exactly
    dt = SimpleNamespace(f=f, reverse=reverse)
    p = forget_product(dt, size=50)
    steps = product_steps(T, 50)
    if reverse:  # rows and columns are in time order, sampled on the reversed grid
        steps = (T - 1 - steps)[::-1]
    assert p.shape == (50, 50)
    for i in range(0, 50, 3):
        for j in range(0, 50, 4):
            s, t = steps[i], steps[j]
            later = t <= s if reverse else t >= s
            if not later:
                assert np.isnan(p[i, j])
                continue
            # a zero gate is a 1e7 penalty in log space: ~1e-9 relative error after it
            assert p[i, j] == pytest.approx(_direct(f, s, t, reverse), rel=1e-7, abs=1e-300)


def test_negative_values_fall_back_to_direct_products():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(40, 3))  # a linear "gate": products change sign
    p = forget_product(SimpleNamespace(f=f, reverse=False), size=None)
    assert p[3, 20] == pytest.approx(_direct(f, 3, 20, False))
    assert p[20, 20] == 1.0 and np.isnan(p[20, 3])
