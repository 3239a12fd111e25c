"""The global-heap signature scan finds exactly what ``bytes.find`` finds, across blocks."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.io.keras import datasets


@pytest.mark.parametrize("block", [16, 17, 4 << 20])
def test_signature_offsets_match_bytes_find(monkeypatch, block):
    monkeypatch.setattr(datasets, "_SCAN_BLOCK", block)
    sig = datasets._GCOL
    rng = np.random.default_rng(7)
    data = bytearray(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    for at in (0, 15, 16, 17, 40, 41, 150, 300 - len(sig)):  # block edges, overlaps, the end
        data[at : at + len(sig)] = sig
    data[60:64] = b"GCOL"  # a near miss: the version byte and padding differ
    data = bytes(data)
    want, i = [], data.find(sig)
    while i != -1:
        want.append(i)
        i = data.find(sig, i + 1)
    assert datasets._signature_offsets(data, 0, len(data)) == want
    inner = [o for o in want if o >= 20 and o + len(sig) <= 200]
    assert datasets._signature_offsets(data, 20, 200) == inner
