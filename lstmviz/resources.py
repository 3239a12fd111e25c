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

    ``sine_lstm.keras`` (Keras 3); ``sine_lstm.pt`` holds the same trained weights as a PyTorch
    state_dict (see ``train_sine.py``), so the two readers can be compared on one network.
    """
    return EXAMPLES / "sine_lstm.keras"


def default_sequence_path(model_path: str | Path | None = None) -> Path | None:
    """The example sequence of the bundled model (either copy), if ``model_path`` is it."""
    bundled = {default_model_path(), EXAMPLES / "sine_lstm.pt"}
    if model_path is None or Path(model_path).resolve() in bundled:
        seq = EXAMPLES / "sine_sequence.csv"
        return seq if seq.exists() else None
    return None
