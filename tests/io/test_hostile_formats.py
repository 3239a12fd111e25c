"""Issue 18 item 7: every registered reader against each attack class, in a bounded child.

For each format lstmviz reads (Keras ``.keras`` and ``.h5``, PyTorch zip, safetensors, TF
checkpoint, ONNX, NumPy ``.npz``/``.npy``) a generator crafts a small file of each class the
red team used — **depth** (nesting that recurses in C), **size** (headers declaring gigabytes),
**aliasing** (one storage seen as many tensors), **compression ratio** (kilobytes that inflate
to gigabytes), **duplicates** (one name twice: match the framework or refuse) and **many
entries** (quadratic work) — and loads it with ``load_model`` through ``bounded_load``: no
crash, no hang (≤ 2 s), peak memory ≤ 200 MB + 2 × the file size, one printable line.
Special files and symlinks are in ``test_hostile_paths.py``, sequences in
``tests/core/test_sequence.py``, message text in ``test_hostile_messages.py``.

The suite grows with the registry: ``test_every_registered_reader_and_attack_class_is_covered``
fails for a newly registered reader until it has cases here (at least size and duplicates).
A case of a reader another engineer owns that still failed when this suite was written is
marked ``xfail(strict=True)`` in ``XFAIL`` with the reason, so that its fix shows as XPASS.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from bounded import bounded_load
from test_hostile_cases_arrays import NUMPY_CASES, SAFETENSORS_CASES
from test_hostile_cases_graphs import ONNX_CASES, TF_CASES
from test_hostile_cases_keras import KERAS_CASES
from test_hostile_cases_pickles import MADMOM_CASES, PICKLE_PROTO, TORCH_CASES, torch_zip

import lstmviz

ALL = {
    **TORCH_CASES,
    **KERAS_CASES,
    **SAFETENSORS_CASES,
    **TF_CASES,
    **ONNX_CASES,
    **NUMPY_CASES,
    **MADMOM_CASES,
}

#: Cases of readers other engineers own that still failed at this suite's deadline.
XFAIL: dict[str, str] = {}


def test_every_registered_reader_and_attack_class_is_covered() -> None:
    readers = {r.name for r in lstmviz.io.READERS}
    assert {c.reader for c in ALL.values()} == readers
    for reader in readers:
        attacks = {c.attack for c in ALL.values() if c.reader == reader}
        assert {"size", "duplicates"} <= attacks, (reader, attacks)
    attacks = {c.attack for c in ALL.values()}
    assert attacks >= {"depth", "size", "aliasing", "compression", "duplicates", "many"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=XFAIL[n])) if n in XFAIL else n
        for n in ALL
    ],
)
def test_hostile_file_is_bounded(tmp_path: Path, name: str) -> None:
    case = ALL[name]
    path = case.make(tmp_path)
    out = bounded_load(path)
    if case.expect == "refused":
        out.assert_refused()
    else:
        out.assert_bounded()
        assert out.kind in ("model", "load_error"), out
    from lstmviz.io import Probe, find_reader

    reader = find_reader(Probe.open(path))  # the file reaches the reader it was made for
    assert reader is not None and reader.name == case.reader, (reader, case.reader)
    if case.check is not None:
        case.check(path)


def test_a_crafted_zip_renamed_npz_is_quick_as_a_model_and_as_a_sequence(tmp_path: Path) -> None:
    """The red team's 61 KB zip of deflated no-op pickle opcodes, renamed ``.npz`` and dropped
    on the window: the window tries it as weights, then as a sequence (22 s before)."""
    path = torch_zip(lambda: PICKLE_PROTO + b"N0" * 30_000_000 + b"}.", None, zipfile.ZIP_DEFLATED)(
        tmp_path
    )
    npz = path.rename(tmp_path / "dropped.npz")
    assert npz.stat().st_size < 400_000  # 61 KB at level 9; made at level 1 here (faster)
    bounded_load(npz).assert_refused("dropped.npz")
    bounded_load(npz, kind="sequence", width=3).assert_refused("dropped.npz", "not a .npy array")
