"""Where the bundled example models and sequences live (shipped inside the package)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# In a wheel, hatchling force-includes resources/examples as lstmviz/_examples (pyproject.toml);
# in a source checkout the top-level resources/examples is used directly.
EXAMPLES = next(
    (p for p in (_HERE / "_examples", _HERE.parent / "resources" / "examples") if p.is_dir()),
    _HERE / "_examples",
)


@dataclass(frozen=True)
class Example:
    """A bundled example: its model and the sequence the debugger opens with it; a text
    example also has the vocabulary, corpus and annotations of ``lstmviz.explore``."""

    name: str
    model: Path
    sequence: Path
    vocabulary: Path | None = None
    corpus: Path | None = None
    annotations: Path | None = None


def examples() -> dict[str, Example]:
    """The bundled examples by name (``lstmviz --example NAME``)."""
    b = EXAMPLES / "brackets"
    return {
        "sine": Example("sine", EXAMPLES / "sine_lstm.keras", EXAMPLES / "sine_sequence.csv"),
        # a char-level LSTM on nested brackets whose unit 11 counts the depth
        # (resources/examples/brackets/train_brackets.py)
        "brackets": Example(
            "brackets",
            b / "brackets_lstm.pt",
            b / "brackets_sequence.csv",
            vocabulary=b / "brackets_vocab.txt",
            corpus=b / "brackets_corpus.txt",
            annotations=b / "brackets_depth.txt",
        ),
    }


def example(name: str) -> Example:
    """The example called ``name``; ValueError (one line) naming the others."""
    found = examples().get(name)
    if found is None:
        raise ValueError(f"no bundled example {name!r}; examples: {', '.join(examples())}")
    return found


def apply_example(args: argparse.Namespace) -> None:
    """``--example NAME``: open that example's model (and its sequence unless ``--sequence``
    names one). ValueError for an unknown name or a PATH given as well."""
    name = getattr(args, "example", None)
    if not name:
        return
    ex = example(name)
    if args.path and Path(args.path).resolve() != ex.model.resolve():
        raise ValueError(f"--example {name} opens its own model; give PATH or --example, not both")
    args.path = str(ex.model)
    if not getattr(args, "sequence", None):
        args.sequence = str(ex.sequence)


def default_model_path() -> Path:
    """The bundled example model that ``lstmviz`` opens with no argument.

    ``sine_lstm.keras`` (Keras 3); ``sine_lstm.pt`` holds the same trained weights as a PyTorch
    state_dict (see ``train_sine.py``), so the two readers can be compared on one network.
    """
    return EXAMPLES / "sine_lstm.keras"


def default_sequence_path(model_path: str | Path | None = None) -> Path | None:
    """The example sequence of a bundled model (either copy of the sine model), if
    ``model_path`` is one."""
    if model_path is None:
        model_path = default_model_path()
    bundled = {EXAMPLES / "sine_lstm.pt": EXAMPLES / "sine_sequence.csv"}
    bundled.update({ex.model: ex.sequence for ex in examples().values()})
    seq = bundled.get(Path(model_path).resolve())
    return seq if seq is not None and seq.exists() else None
