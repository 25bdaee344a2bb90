"""How a critique's verdict is checked against what is known about the response.

A response can be known right or wrong by its final answer (against gold) and, better, by its
steps (every step right, or the first wrong one). A verdict is checked against the best label
known: the process label where there is one, else the final answer. A response whose final
answer is right but whose steps are not is *wrong*: a teacher that says so agrees, and a
teacher that calls it right does not. For a wrong response with a known first error step, a
'wrong' verdict is also checked for naming that step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Critique, Reference, Response, Verdict


@dataclass(frozen=True)
class Judgement:
    """A verdict checked against the labels: the reference used, and whether it agrees."""

    reference: Reference | None
    agrees: bool | None
    step_agrees: bool | None
    gold_agrees: bool | None


def agrees_with(verdict: Verdict, correct: bool | None) -> bool | None:
    """Whether a verdict matches a correctness label (None where the label is unknown)."""
    if correct is None:
        return None
    return (verdict == "right") == correct


def judge(critique: Critique, response: Response) -> Judgement:
    """Check a critique against the response's best label, and its error step where known."""
    best = response.best_label
    reference, correct = best if best is not None else (None, None)
    agrees = agrees_with(critique.verdict, correct)
    step_agrees = None
    if response.first_error_step is not None and critique.verdict == "wrong":
        step_agrees = critique.first_wrong_step == response.first_error_step
    return Judgement(reference, agrees, step_agrees, agrees_with(critique.verdict, response.final_correct))
