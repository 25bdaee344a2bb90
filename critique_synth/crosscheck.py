"""Cross-check an LLM critique against the built-in critic where the critic can decide.

The built-in critic is exact about two things: a calculation whose stated result is false, and
a final answer that differs from the gold answer. Where it finds such an error and an LLM
critique calls the solution right, or names a first wrong step after it, the LLM critique is
wrong on a point that can be proven; the record carries a flag instead of passing silently.
Where the critic finds nothing, it cannot decide (reasoning errors carry no false arithmetic),
so no flag is raised.
"""

from __future__ import annotations

from .critic import builtin_critique
from .records import Critique, Problem, Response

MISSED = "missed_exact_error"
LATE_STEP = "step_after_exact_error"


def crosscheck(problem: Problem, response: Response, critique: Critique) -> str | None:
    """A flag where the built-in critic proves the critique wrong, else None."""
    exact = builtin_critique(problem, response.text)
    if exact.verdict == "right":
        return None
    if critique.verdict == "right":
        return MISSED
    proven, named = exact.first_wrong_step, critique.first_wrong_step
    if proven is not None and named is not None and named > proven:
        return LATE_STEP
    return None
