"""``explore_session.infer_ids``: token ids read off a sequence's rows (embedding rows or
one-hot rows), None for other numbers, whether the rows that say so come first or last."""

import numpy as np

from lstmviz.workspace.explore_session import PROBE_ROWS, infer_ids


def test_one_hot_and_embedding_rows_are_ids_other_numbers_are_not() -> None:
    rng = np.random.default_rng(0)
    for n in (5, PROBE_ROWS, 3 * PROBE_ROWS + 7):  # shorter than the probe, equal, longer
        ids = rng.integers(0, 6, n)
        one_hot = np.eye(6)[ids]
        np.testing.assert_array_equal(infer_ids(one_hot, None), ids)
        table = rng.normal(size=(6, 4))
        np.testing.assert_array_equal(infer_ids(table[ids], table), ids)
        np.testing.assert_array_equal(
            infer_ids(table[ids].astype(np.float32), table.astype(np.float32)), ids
        )
        assert infer_ids(rng.normal(size=(n, 6)), None) is None
        assert infer_ids(rng.normal(size=(n, 4)), table) is None
    assert infer_ids(np.zeros((0, 3)), None) is None
    assert infer_ids(np.ones((10, 1)), None) is None  # one column: a number, not a one-hot


def test_a_row_past_the_first_ones_that_is_not_a_token_means_no_ids() -> None:
    """The first rows decide "not tokens" quickly; when they are tokens every row is still
    checked."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, 4 * PROBE_ROWS)
    one_hot = np.eye(6)[ids]
    one_hot[-1] = 0.5
    assert infer_ids(one_hot, None) is None
    table = rng.normal(size=(6, 4))
    rows = table[ids]
    rows[-1] += 1e-3
    assert infer_ids(rows, table) is None
    noise = rng.normal(size=(4 * PROBE_ROWS, 6))
    noise[PROBE_ROWS:] = np.eye(6)[ids[PROBE_ROWS:]]  # tokens only after the first rows
    assert infer_ids(noise, None) is None
