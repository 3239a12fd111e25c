"""Two models side by side: pair their layers, run both on one sequence, find where they
diverge and name the porting mistake that explains the difference.

``compare(a, b, x=None)`` returns a ``Comparison``; ``.diagnoses`` holds ``Diagnosis``
findings whose ``.kind`` is one of ``KINDS``. Qt-free: the GUI's compare view and scripts
use the same code.
"""

from lstmviz.comparison.compare import Comparison, compare, default_sequence
from lstmviz.comparison.diagnose import KINDS, Diagnosis
from lstmviz.comparison.divergence import QUANTITIES, DirectionDelta, Divergence

__all__ = [
    "KINDS",
    "QUANTITIES",
    "Comparison",
    "Diagnosis",
    "DirectionDelta",
    "Divergence",
    "compare",
    "default_sequence",
]
