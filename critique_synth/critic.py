"""The built-in offline critic: exact arithmetic checks plus a gold-answer check.

It is the default teacher when no teacher model is configured, so a new user sees a whole run
with no key and no network. It never reads instructions from the response: its verdict is a
function of the numbers and the gold answer alone, which also makes it a reference point for
measuring how often an LLM teacher's verdict is wrong.
"""

from __future__ import annotations

import re

from .arithmetic import find_claims, format_number
from .records import Critique, Problem
from .verify import answers_match, extract_final_answer

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def split_steps(text: str) -> list[str]:
    """Solution lines are steps; a one-paragraph solution is split into sentences instead."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        return [s for s in _SENTENCE_SPLIT_RE.split(lines[0]) if s.strip()]
    return lines


def builtin_critique(problem: Problem, response: str) -> Critique:
    """Check every arithmetic claim exactly, then the final answer against the gold answer."""
    steps = split_steps(response)
    checked = 0
    first_wrong: tuple[int, str] | None = None
    for number, step in enumerate(steps, start=1):
        for claim in find_claims(step):
            value = claim.value
            if value is None:
                continue
            checked += 1
            if not claim.holds and first_wrong is None:
                right = format_number(value, claim.result.text)
                first_wrong = (
                    number,
                    f"Step {number} states {claim.left_text} = {claim.result.text}, "
                    f"but {claim.left_text} = {right}.",
                )
    final = extract_final_answer(response)
    notes = [f"I checked the {checked} calculation(s) in the solution exactly."]
    if first_wrong is not None:
        notes.append(first_wrong[1] + " Every later step that uses this value inherits the error.")
    elif checked:
        notes.append("Every calculation is correct.")
    final_ok = _note_final(notes, final, problem.answer)
    wrong = first_wrong is not None or final_ok is False
    return Critique(
        analysis=" ".join(notes),
        first_wrong_step=first_wrong[0] if first_wrong else None,
        corrected_answer=problem.answer if wrong else None,
        verdict="wrong" if wrong else "right",
    )


def _note_final(notes: list[str], final: str | None, gold: str | None) -> bool | None:
    if gold is None:
        notes.append("No reference answer is available, so only the calculations were checked.")
        return None
    if final is None:
        notes.append("The solution never states a final answer.")
        return False
    if answers_match(final, gold):
        notes.append(f"The final answer {final} is correct.")
        return True
    notes.append(f"The final answer {final} is incorrect; the correct answer is {gold}.")
    return False
