"""NumPy-only heart of lstmviz: the canonical model, the forward pass and its trace.

Nothing here imports Qt (tests/test_layering.py enforces it), so it works from scripts and
notebooks.
"""

from lstmviz.core.activations import Activation
from lstmviz.core.cells import (
    GRU_CELL,
    GRU_RESET_BEFORE_CELL,
    LSTM_CELL,
    RNN_CELL,
    CellDescription,
    cell_of,
)
from lstmviz.core.compute import run, run_batch
from lstmviz.core.dense import ActivationLayer, DenseLayer, NormLayer
from lstmviz.core.gru import GRUDirection
from lstmviz.core.model import (
    GATES,
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    MergeMode,
    OutputOrder,
    Provenance,
    RecurrentDirection,
    RecurrentLayer,
    RecurrentModel,
    Setting,
    StoredTensor,
)
from lstmviz.core.rnn import RNNDirection
from lstmviz.core.trace import CellTrace, DirectionTrace, LayerTrace, Trace
from lstmviz.core.trace_cells import GRUDirectionTrace, RNNDirectionTrace

__all__ = [
    "GATES",
    "GRU_CELL",
    "GRU_RESET_BEFORE_CELL",
    "LSTM_CELL",
    "RNN_CELL",
    "Activation",
    "ActivationLayer",
    "CellDescription",
    "CellTrace",
    "DenseLayer",
    "DirectionTrace",
    "GRUDirection",
    "GRUDirectionTrace",
    "LSTMDirection",
    "LSTMLayer",
    "LSTMModel",
    "LayerInfo",
    "LayerTrace",
    "MergeMode",
    "NormLayer",
    "OutputOrder",
    "Provenance",
    "RNNDirection",
    "RNNDirectionTrace",
    "RecurrentDirection",
    "RecurrentLayer",
    "RecurrentModel",
    "Setting",
    "StoredTensor",
    "Trace",
    "cell_of",
    "run",
    "run_batch",
]
