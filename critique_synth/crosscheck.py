"""Cross-check an LLM critique against what exact checks can prove.

Two things are decidable without a model: a calculation whose stated result is false (read
exactly, as the built-in critic reads it), and a final answer that differs from the gold
answer. Where one of them shows an error and an LLM critique calls the solution right, or names
a first wrong step after the proven one, the LLM critique is wrong on a point that can be
proven; the record carries a flag instead of passing silently. Where these checks find nothing
they cannot decide (reasoning errors carry no false arithmetic), so no flag is raised.

This runs on every LLM critique, so it uses the critic's exact checks only, not the whole
critic with its written walk-through: it costs tens of microseconds a record, not a millisecond.
"""

from __future__ import annotations

from .arithmetic import find_claims
from .records import Critique, Response
from .steps import split_steps

MISSED = "missed_exact_error"
LATE_STEP = "step_after_exact_error"


def first_false_calculation(text: str) -> int | None:
    """The number of the first step holding a calculation whose stated result is false."""
    for step in split_steps(text):
        for line in text[step.start : step.end].splitlines():
            if any(claim.status == "wrong" for claim in find_claims(line)):
                return step.number
    return None


def crosscheck(response: Response, critique: Critique) -> str | None:
    """A flag where exact checks prove the critique wrong, else None (the cheap cases first:
    the final answer was checked against gold when the response was made)."""
    if critique.verdict == "right":
        proven_wrong = response.final_correct is False or first_false_calculation(response.text) is not None
        return MISSED if proven_wrong else None
    named = critique.first_wrong_step
    if named is None or named == 1:
        return None
    proven = first_false_calculation(response.text)
    return LATE_STEP if proven is not None and named > proven else None
