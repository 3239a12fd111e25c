"""lstmviz: a desktop debugger for LSTM internals.

``load_model(path)`` reads Keras, TensorFlow 1, PyTorch, ONNX or raw-array weights into one
canonical model; ``run(model, x)`` records every gate of every step. The GUI lives in
``lstmviz.gui`` and is imported only when asked for.
"""

from lstmviz.core.compute import run
from lstmviz.core.model import LSTMModel
from lstmviz.core.trace import Trace
from lstmviz.io import load_model
from lstmviz.io.errors import LoadError

__version__ = "0.1.0"

__all__ = ["LSTMModel", "LoadError", "Trace", "__version__", "load_model", "run"]
