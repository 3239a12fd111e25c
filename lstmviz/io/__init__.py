"""Readers: every supported file format turned into the canonical ``LSTMModel``.

A reader is chosen by sniffing content (HDF5 signature, zip member names, footer magic), never
by the file's extension. Adding a format is one module exporting ``READER`` plus one line in
``READERS``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lstmviz.core.model import LSTMModel
from lstmviz.io import choices
from lstmviz.io.arrays import numpy_file, safetensors
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.keras import archive as keras_archive
from lstmviz.io.keras import h5_file as keras_h5
from lstmviz.io.madmom import network as madmom_network
from lstmviz.io.onnx import model as onnx_model
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.tensorflow import checkpoint as tf_checkpoint
from lstmviz.io.torch import archive as torch_archive

logger = logging.getLogger(__name__)

#: Every registered reader, tried in order of priority (then listed order) by ``find_reader``.
READERS: tuple[Reader, ...] = tuple(
    sorted(
        (
            keras_archive.READER,
            keras_h5.READER,
            torch_archive.READER,
            safetensors.READER,
            tf_checkpoint.READER,
            onnx_model.READER,
            numpy_file.READER,
            madmom_network.READER,
        ),
        key=lambda r: -r.priority,
    )
)


def find_reader(probe: Probe) -> Reader | None:
    """The first registered reader whose sniffer accepts the file."""
    for reader in READERS:
        try:
            if reader.sniff(probe):
                return reader
        except Exception:
            logger.debug("sniffer %s raised on %s", reader.name, probe.name, exc_info=True)
    return None


def load_model(
    path: str | os.PathLike[str], *, ask_choices: bool = False, **options: Any
) -> LSTMModel:
    """Load any supported weights file into the canonical model.

    ``ask_choices``: where a file holds several LSTMs and has a natural default (a Keras
    model's first chain), raise ``ChoiceRequired`` instead of opening the default (the
    window's choice dialog asks); files with no default always raise it (``choices``).

    Raises ``LoadError`` (one line: file, problem, what would work) for every bad file; no
    other exception escapes for any file content. ``options`` go to the reader (e.g.
    ``prefix=`` for PyTorch, ``layout=`` for raw arrays, ``forget_bias=`` for TF1).
    """
    probe = Probe.open(path)
    reader = find_reader(probe)
    if reader is None:
        raise LoadError(
            f"{probe.name}: {probe.describe()}; expected a Keras (.h5/.keras), TF1 checkpoint, "
            "PyTorch (.pt/.safetensors), ONNX or .npz file"
        )
    unknown = sorted(set(options) - set(reader.options))
    if unknown:
        takes = ", ".join(f"{o}=" for o in reader.options) or "no options"
        raise LoadError(
            f"{probe.name}: the {reader.name} reader does not take "
            f"{', '.join(f'{o}=' for o in unknown)}; it takes {takes}"
        )
    try:
        with choices.asking(ask_choices):
            return reader.load(probe, **options)
    except LoadError:
        raise
    except MemoryError as exc:
        raise LoadError(f"{probe.name}: {reader.name} file is too large to load") from exc
    except Exception as exc:
        logger.debug("%s failed on %s", reader.name, probe.name, exc_info=True)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"{probe.name}: unreadable {reader.name} file ({detail})") from exc


__all__ = ["READERS", "ChoiceRequired", "LoadError", "Probe", "Reader", "find_reader", "load_model"]
