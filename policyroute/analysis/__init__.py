"""Analysis of compiled policies: unreachable rules, witnesses, diff and counterfactuals.

See docs/analysis.md for where each analysis is exact and where it is conservative.
"""

from __future__ import annotations

from .counterfactual import counterfactual
from .diff import Difference, diff
from .reach import lint, why_no_witness, witness
from .variables import AnalysisTooLarge

__all__ = [
    "AnalysisTooLarge",
    "Difference",
    "counterfactual",
    "diff",
    "lint",
    "why_no_witness",
    "witness",
]
