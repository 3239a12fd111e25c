"""How long a sequence the editor's Generate tab makes, and how (on which thread, which dtype).

The numbers behind the cap (measured on the 2-core test machine, December 2026):

- The run is not what limits the length: past ~1 GiB of trace ``lstmviz.run`` keeps a bounded
  trace whose checkpoints stay under 448 MiB (``checkpointed_trace.CHECKPOINT_BYTES``) by
  widening the chunk K. At 10⁷ steps and H = 1024, K = 175: a jump recomputes at most 175
  steps (~90 ms; 10⁶ steps have K = 18, ~9 ms). A run of 10⁶ steps took 10–15 s in the
  window (H = 64, D = 16), ~35 s in the export trial of 820adab, so 10⁷ take 2–6 min, with
  progress and Cancel. Past 10⁷ the jumps slow past a tenth of a second and a run takes up
  to an hour: ``MAX_GENERATED_STEPS``.
- The generated array: past ``MAX_VALUES`` (4 M) values it is what a long text file becomes,
  a read-only float32 memory map of an unlinked temporary file (its free space checked
  first), T × D × 4 bytes, kept under 1 GiB (``MAX_GENERATED_BYTES``; the window at 10⁶
  steps peaked at 1.75 GiB besides it, and the map's pages are page cache the kernel can
  drop). So D = 16 reaches 10⁷ steps, D = 64 4,194,304, D = 256 1,048,576. The map is also
  what keeps the GUI thread free when the workspace takes it: ``validate`` copied a
  16,000,000-value float64 array to a new one there (1.1 s on this machine, the window
  frozen), a map it checks in place (~0.1 s for 160 M values).
- Generating costs ~10–20 ns a value (N(0, 1) 11 ns, a sine 12 ns; 1,000,000 × 16 random
  values 0.18 s): the job's cost in the runner's units (~0.25 ns, ``workers.INLINE_COST`` ≈
  5 ms) is 60 a value, so anything over ~330,000 values (≈ 5 ms) goes to the worker, with
  progress and Cancel in the window's job bar like a file read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmviz.core.sequence import SequenceKind, generate_sequence
from lstmviz.core.sequence_files import MAX_VALUES, spill_file

#: The longest sequence Generate makes, whatever the width (see the module docstring).
MAX_GENERATED_STEPS = 10_000_000
#: Bytes the generated array may take (a float32 map past ``MAX_VALUES`` values).
MAX_GENERATED_BYTES = 1 << 30
#: The job's cost per generated value, in the runner's units (~15 ns of NumPy a value).
COST_PER_VALUE = 60.0


@dataclass(frozen=True)
class Generation:
    """One press of Generate: what to make, and how it is named, costed and refused."""

    kind: SequenceKind
    steps: int
    width: int
    seed: int
    period: float

    @property
    def source(self) -> str:
        """The sequence's name in the status lines."""
        random = self.kind is SequenceKind.RANDOM
        return f"{self.kind.value} (seed {self.seed})" if random else self.kind.value

    @property
    def label(self) -> str:
        """The job's name in the window's job bar."""
        return f"generating {self.steps:,} steps"

    @property
    def cost(self) -> float:
        return COST_PER_VALUE * self.steps * self.width

    def refusal(self) -> str | None:
        """Why this length is refused (never clamped silently), or None."""
        return too_long_text(self.steps, self.width) if self.steps > self.limit else None

    @property
    def limit(self) -> int:
        return max_generated_steps(self.width)

    def make(self, progress: Callable[[float], None] | None = None) -> np.ndarray:
        """The core generator's sequence; past ``MAX_VALUES`` values its float32 rounding in
        a read-only memory map of a temporary file (ValueError when the space is missing)."""
        args = (self.kind, self.steps, self.width, self.seed, self.period)
        if generated_dtype(self.steps, self.width) == np.float64:
            return generate_sequence(*args, progress=progress)
        shape = (self.steps, self.width)
        nbytes = self.steps * self.width * 4
        with spill_file(nbytes, f"{self.steps:,} generated steps") as fh:
            fh.truncate(nbytes)
            out = np.memmap(fh, dtype=np.float32, mode="r+", shape=shape)
            generate_sequence(*args, dtype=np.float32, progress=progress, out=out)
            out.flush()
            del out
            return np.memmap(fh, dtype=np.float32, mode="r", shape=shape)

    def result(self, x: np.ndarray | None, error: BaseException | None) -> np.ndarray:
        """The job's result, or its failure as the ValueError the editor shows."""
        if isinstance(error, MemoryError):
            size = f"{self.steps:,} × {self.width}"
            raise ValueError(f"not enough memory to generate {size} values ({error})")
        if error is not None or x is None:
            raise ValueError(str(error) or type(error).__name__)
        return x


def max_generated_steps(width: int) -> int:
    """The most steps Generate makes for ``width`` inputs a step."""
    return max(1, min(MAX_GENERATED_STEPS, MAX_GENERATED_BYTES // (4 * max(width, 1))))


def generated_dtype(steps: int, width: int) -> type[np.floating]:
    """float32 (a map) past ``MAX_VALUES``, as a long text file; float64 below, which
    ``validate`` would make of it anyway, so short sequences are the generator's exact values."""
    return np.float32 if steps * width > MAX_VALUES else np.float64


def limit_text(width: int) -> str:
    """The hint under the length field: the maximum, and why it depends on the width."""
    steps = max_generated_steps(width)
    why = (
        "the longest sequence lstmviz generates"
        if steps == MAX_GENERATED_STEPS
        else f"{steps:,} × {width} float32 values fill 1 GiB"
    )
    return f"at most {steps:,} steps for D = {width} ({why})"


def too_long_text(steps: int, width: int) -> str:
    """Why a typed length is refused (never clamped silently)."""
    limit = max_generated_steps(width)
    return (
        f"length {steps:,} is more than Generate makes for D = {width}: at most {limit:,} "
        "steps; for a longer run save the sequence with np.save and load the .npy (mapped)"
    )
