"""``generate_sequence`` in float32 (long sequences) or with progress fills a block of rows at
a time: the values are the float64 generator's, rounded, whatever the block size (the random
stream is drawn in the same order), and the progress hook can stop it."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.core import sequence
from lstmviz.core.sequence import SequenceKind, generate_sequence


@pytest.mark.parametrize("kind", list(SequenceKind))
@pytest.mark.parametrize(("T", "width"), [(1, 1), (100, 7), (53, 4), (9, 50)])
def test_blocks_give_the_float64_values_rounded(monkeypatch, kind, T, width) -> None:
    monkeypatch.setattr(sequence, "_BLOCK_VALUES", 37)  # many blocks, some of one row
    want = generate_sequence(kind, T, width, seed=5, period=7.5)
    got = generate_sequence(kind, T, width, seed=5, period=7.5, dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == (T, width)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    same = generate_sequence(kind, T, width, seed=5, period=7.5, progress=lambda f: None)
    assert same.dtype == np.float64
    np.testing.assert_array_equal(same, want)


def test_progress_is_reported_and_what_it_raises_stops_the_generation(monkeypatch) -> None:
    monkeypatch.setattr(sequence, "_BLOCK_VALUES", 30)
    seen: list[float] = []
    generate_sequence("random normal", 100, 3, progress=seen.append)
    assert seen == [min(1.0, 10 * k / 100) for k in range(1, 11)]

    class Stop(Exception):
        pass

    def stop(fraction: float) -> None:
        if fraction >= 0.3:
            raise Stop

    with pytest.raises(Stop):
        generate_sequence("sine", 100, 3, dtype=np.float32, progress=stop)


def test_out_is_filled_in_its_own_dtype_and_a_wrong_one_is_refused() -> None:
    out = np.full((20, 3), np.nan, dtype=np.float32)
    got = generate_sequence("one-hot tokens", 20, 3, seed=2, out=out)
    assert got is out
    np.testing.assert_array_equal(out, generate_sequence("one-hot tokens", 20, 3, seed=2))
    with pytest.raises(ValueError, match=r"out must be a \(20, 3\) float array"):
        generate_sequence("zeros", 20, 3, out=np.zeros((20, 4)))
