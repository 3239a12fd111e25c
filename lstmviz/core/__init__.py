"""NumPy-only heart of lstmviz: the canonical model, the forward pass and its trace.

Nothing here imports Qt (tests/test_layering.py enforces it), so it works from scripts and
notebooks.
"""

from lstmviz.core.activations import Activation
from lstmviz.core.compute import run, run_batch
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer
from lstmviz.core.model import (
    GATES,
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.core.trace import DirectionTrace, LayerTrace, Trace

__all__ = [
    "GATES",
    "Activation",
    "ActivationLayer",
    "DenseLayer",
    "DirectionTrace",
    "LSTMDirection",
    "LSTMLayer",
    "LSTMModel",
    "LayerInfo",
    "LayerTrace",
    "MergeMode",
    "NormLayer",
    "OutputOrder",
    "Provenance",
    "Setting",
    "StoredTensor",
    "Trace",
    "run",
    "run_batch",
]
