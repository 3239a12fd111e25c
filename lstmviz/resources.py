"""Where the bundled example model and sequences live (shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
# In a wheel, hatchling force-includes resources/examples as lstmviz/_examples (pyproject.toml);
# in a source checkout the top-level resources/examples is used directly.
EXAMPLES = next(
    (p for p in (_HERE / "_examples", _HERE.parent / "resources" / "examples") if p.is_dir()),
    _HERE / "_examples",
)


def default_model_path() -> Path:
    """The bundled example model that ``lstmviz`` opens with no argument.

    ``sine_lstm.pt`` (PyTorch state_dict); ``sine_lstm.keras`` holds the same trained weights
    for the Keras reader (see ``train_sine.py``).
    """
    return EXAMPLES / "sine_lstm.pt"


def default_sequence_path(model_path: str | Path | None = None) -> Path | None:
    """The example sequence shipped with the bundled model, if ``model_path`` is it."""
    if model_path is None or Path(model_path).resolve() == default_model_path():
        seq = EXAMPLES / "sine_sequence.csv"
        return seq if seq.exists() else None
    return None
