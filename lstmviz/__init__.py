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

__all__ = [
    "LSTMModel",
    "LoadError",
    "Trace",
    "__version__",
    "compare",
    "explore",
    "export",
    "load_model",
    "run",
]

#: Public names imported on first use, so ``import lstmviz`` stays light: the writers of
#: ``export``, the comparison of ``compare`` and the corpus tools of ``explore``.
_LAZY = {
    "compare": ("lstmviz.comparison", "compare"),
    "export": ("lstmviz.port", "export"),
    "explore": ("lstmviz.explore", None),
}


def __getattr__(name: str):  # PEP 562
    if name not in _LAZY:
        raise AttributeError(f"module 'lstmviz' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
