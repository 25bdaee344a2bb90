"""The built-in offline critic: walks the steps, checks every calculation exactly, keeps a table
of the values the question gives and the steps compute, and checks the final answer.

It is the default teacher when no teacher model is configured, so a new user sees a whole run
with no key and no network. It never reads instructions from the response: its verdict is a
function of the numbers and the gold answer alone, which also makes it a reference point for
measuring how often an LLM teacher's verdict is wrong.

What it can see: a wrong result, a rounding coarser than the text's precision, a value restated
differently from where it came from (the question, or an earlier step), and a `####` line that
differs from the last computed value. What it cannot see from arithmetic: right numbers combined
the wrong way (a wrong operation carried out correctly, a skipped step, a misread number with no
unit to compare, an intermediate quantity given as the answer); those are caught only where a
gold answer is known, and then without a step number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from .arithmetic import Token, format_exact, format_number, number_value, numbers, tokenize
from .carry import (
    CONSTANTS,
    Change,
    PlacedClaim,
    lines,
    placed_claims,
    propagate,
    question_values,
    unit_after,
)
from .records import Critique, Problem
from .steps import Step, split_steps
from .verify import answers_match, extract_final_answer

# Unit conversions a solution states as facts ("60 minutes in an hour"), not quantities to compare.
_CONVERSIONS = frozenset(Fraction(n) for n in (7, 12, 24, 52, 60, 100, 365, 1000, 3600))
# Factors a solution applies without writing them out ("half", "a third", "a dozen").
_FACTORS = CONSTANTS | frozenset(Fraction(n) for n in (3, 4, 5, 6, 8))
_OP_NAMES = {"+": "adding", "-": "subtracting", "*": "multiplying", "/": "dividing"}


@dataclass
class _Error:
    step: int
    text: str
    offset: int
    fix: tuple[int, int, Fraction, Fraction, str | None] | None = None  # span, stated, right, unit


@dataclass
class _Review:
    """What the walk through the steps found: one line per step and the first error."""

    question_values: frozenset[Fraction]
    known: dict[Fraction, int] = field(default_factory=dict)
    units: dict[str, list[tuple[Fraction, int]]] = field(default_factory=dict)
    wrong: dict[Fraction, tuple[int, Fraction]] = field(default_factory=dict)
    inherited: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    error: _Error | None = None
    last: tuple[Fraction, int, str] | None = None
    previous: Fraction | None = None
    justified: set[Fraction] = field(default_factory=set)

    def fail(self, error: _Error) -> None:
        if self.error is None:
            self.error = error


def builtin_critique(problem: Problem, response: str) -> Critique:
    """Check every step in order, then the final answer against the work and the gold answer."""
    review = _walk(problem.question, response)
    final = extract_final_answer(response)
    gold = problem.answer
    final_ok = answers_match(final, gold) if final is not None and gold is not None else None
    notes = [_key_idea(response), "\n".join(review.lines)]
    corrected = _corrected(review, response)
    notes.append(_summary(review, final, gold, final_ok, corrected))
    wrong = review.error is not None or final is None or final_ok is False
    answer = None
    if wrong and final_ok is not True:
        answer = gold if gold is not None else corrected
    return Critique(
        analysis="\n\n".join(n for n in notes if n),
        first_wrong_step=review.error.step if review.error else None,
        corrected_answer=answer,
        verdict="wrong" if wrong else "right",
    )


def _walk(question: str, response: str) -> _Review:
    given, units = _question_table(question)
    review = _Review(given, known=dict.fromkeys(given, 0), units={u: list(v) for u, v in units.items()})
    claims = placed_claims(response)
    text_lines = list(lines(response))
    for step in split_steps(response):
        inside = [(o, line) for o, line in text_lines if o < step.end and o + len(line) > step.start]
        _check_step(
            review, inside, step, [p for p in claims if step.start <= p.offset + p.claim.start < step.end]
        )
    return review


@lru_cache(maxsize=1024)
def _question_table(question: str) -> tuple[frozenset[Fraction], dict[str, tuple[tuple[Fraction, int], ...]]]:
    """The question's values, and its values by unit word (cached: every response to a question
    starts from the same table)."""
    review = _Review(question_values(question))
    for _, line in lines(question):
        for tok in numbers(line):
            _remember(review, number_value(tok.text), unit_after(line, tok.end), 0)
    return review.question_values, {u: tuple(v) for u, v in review.units.items()}


def _check_step(
    review: _Review, step_lines: list[tuple[int, str]], step: Step, claims: list[PlacedClaim]
) -> None:
    n = step.number
    if step.text.startswith("####"):
        review.lines.append(f"Step {n}: " + _check_answer(review, step))
        return
    results = {p.offset + p.claim.result.start: p for p in claims}
    review.justified = {p.claim.stated for p in claims}
    sentences: list[str] = []
    values: list[Fraction] = []
    for offset, line in step_lines:
        for tok in _numbers(line):
            at = offset + tok.start
            if not step.start <= at < step.end:
                continue
            values.append(number_value(tok.text))
            placed = results.get(at) or results.get(at - 1)
            sentence = (
                _check_claim(review, n, placed, line) if placed else _check_value(review, n, line, tok, at)
            )
            if sentence:
                sentences.append(sentence)
    review.previous = values[-1] if values else None
    review.lines.append(f"Step {n}: " + (" ".join(sentences) or _plain_step(review, values)))


def _plain_step(review: _Review, values: list[Fraction]) -> str:
    if not values:
        return "sets up the approach; there is nothing to compute here."
    carried = sorted(v for v in values if v in review.wrong)
    if carried:
        source = review.wrong[carried[0]][0]
        return f"restates {format_number(carried[0])}, the wrong value from step {source}."
    return "no calculation here; the values it states agree with the question and the work so far."


def _check_claim(review: _Review, n: int, placed: PlacedClaim, line: str) -> str:
    claim = placed.claim
    stated, status, value = claim.stated, claim.status, claim.value
    shown = f"{claim.left_text} = {claim.result.text}"
    used = [number_value(op.text) for op in claim.operands if number_value(op.text) in review.wrong]
    unit = unit_after(line, claim.result.end)
    if status is None or value is None:
        sentence = f"{shown} cannot be evaluated exactly, so I leave it."
    elif status == "wrong":
        right = format_exact(value, claim.result.text)
        sentence = f"{shown} is wrong: {claim.left_text} = {right}."
        span = (placed.offset + claim.result.start, placed.offset + claim.result.end)
        review.fail(
            _Error(
                n, f"{shown} is wrong; {claim.left_text} is {right}.", span[0], (*span, stated, value, unit)
            )
        )
        review.wrong.setdefault(stated, (n, value))
    elif status == "rounded":
        sentence = (
            f"{claim.left_text} = {format_exact(value, claim.result.text)} exactly; "
            f"the solution rounds it to {claim.result.text}, which is fine at this precision."
        )
    elif used and review.wrong[used[0]][0] < n:
        source = review.wrong[used[0]]
        sentence = (
            f"{shown} is computed correctly, but it uses {format_number(used[0])} from step {source[0]}, "
            f"which should be {format_exact(source[1])}."
        )
        review.inherited.append(n)
    else:
        sentence = f"{shown} is correct."
    _remember(review, stated, unit, n)
    review.last = (stated, n, claim.result.text)
    return sentence


def _check_value(review: _Review, n: int, line: str, tok: Token, at: int) -> str | None:
    """A number stated outside a calculation: flag it where it contradicts a value of the same
    unit from the question or an earlier step and cannot be derived from the known values."""
    value = number_value(tok.text)
    if value in review.known:
        return None
    unit = unit_after(line, tok.end)
    if (
        value in review.justified
        or value in _CONVERSIONS
        or unit is None
        or unit not in review.units
        or _derivable(value, review.known)
    ):
        _remember(review, value, unit, n)
        return None
    other, source = min(review.units[unit], key=lambda vs: abs(vs[0] - value))
    where = "the question gives" if source == 0 else f"step {source} found"
    text = f"it states {tok.text} {unit}(s), but {where} {format_number(other)} {unit}(s)."
    review.fail(_Error(n, text, at))
    review.wrong.setdefault(value, (n, other))
    _remember(review, value, unit, n)
    return text[0].upper() + text[1:]


def _check_answer(review: _Review, step: Step) -> str:
    """The `####` line against the last computed value (or the number the line above ends on,
    as in "so she has 66 cookies left")."""
    numbers = _numbers(step.text)
    if not numbers:
        return "the answer line states no number."
    written = numbers[-1].text
    final = number_value(written)
    if review.last is None:
        return f"states the final answer {written}."
    last, where, text = review.last
    if final in (last, last * 100 if text.endswith("%") else last):
        return f"the final answer {written} is the value step {where} computed."
    if final == review.previous:
        return f"states the final answer {written}, as the step before it does."
    arrives = f"{format_number(last)}, step {where}"
    text = f"the final answer {written} is not the value the work arrives at ({arrives})."
    review.fail(_Error(step.number, text, step.start))
    return text


def _remember(review: _Review, value: Fraction, unit: str | None, n: int) -> None:
    review.known.setdefault(value, n)
    if unit is not None:
        review.units.setdefault(unit, []).append((value, n))


def _derivable(value: Fraction, known: dict[Fraction, int]) -> bool:
    """Whether one operation on known values (or a known value and a common factor) gives it:
    "half of them, 48 cookies" is derived from 96, not a contradiction of it."""
    counted = {v for v in known if v not in _FACTORS}
    for a in known:
        if a and (value / a in known or (value and a / value in known)):
            return True
        if a not in _FACTORS and (value - a in counted or a - value in counted):
            return True
    return any(value / f in known or value * f in known for f in _FACTORS)


def _corrected(review: _Review, response: str) -> str | None:
    """The final answer the solution reaches when its first wrong result is put right."""
    error = review.error
    if error is None:
        return None
    if error.fix is None:
        return format_number(review.last[0], review.last[2].lstrip("$€£")) if review.last else None
    start, end, stated, right, unit = error.fix
    given = review.question_values
    fixed = response[:start] + format_exact(right, response[start:end]) + response[end:]
    redone = propagate(
        fixed, start + len(fixed) - len(response) + (end - start), {stated: Change(right, unit)}, given
    )
    return extract_final_answer(redone[0]) if redone else None


def _summary(
    review: _Review, final: str | None, gold: str | None, final_ok: bool | None, corrected: str | None
) -> str:
    parts = []
    error = review.error
    if error is not None:
        parts.append(f"Step {error.step} is where the solution goes wrong: {error.text}")
        if review.inherited:
            later = ", ".join(str(s) for s in review.inherited)
            parts.append(f"The later step(s) that use the wrong value ({later}) inherit the error.")
        if corrected and error.fix is not None and corrected != final:
            parts.append(f"Redoing the work from step {error.step} with the right value gives {corrected}.")
    if final is None:
        parts.append("The solution never states a final answer.")
    elif gold is None:
        parts.append("No reference answer is available, so the steps were checked against each other only.")
    elif final_ok and error is not None:
        parts.append(f"The final answer {final} happens to be correct, but the work that reaches it is not.")
    elif final_ok:
        parts.append(f"The final answer {final} is correct.")
    elif error is None:
        parts.append(
            f"Every calculation is right, but the final answer {final} is not the correct answer {gold}: "
            "the solution combines the quantities the wrong way (an operation, a step or a quantity "
            "of the question is wrong), which arithmetic alone cannot show."
        )
    else:
        parts.append(f"The final answer {final} is therefore incorrect; the correct answer is {gold}.")
    return " ".join(parts)


def _key_idea(response: str) -> str:
    ops: list[str] = []
    for p in placed_claims(response):
        for item in p.claim.expression:
            name = _OP_NAMES.get(item)
            if name and name not in ops:
                ops.append(name)
    if not ops:
        return (
            "Key idea: the solution states its values without a calculation to check, "
            "so I check them against the question."
        )
    return (
        f"Key idea: the answer is built from the question's quantities by {_join(ops)}; "
        "I check each step's calculation exactly and each value it reuses against where it came from."
    )


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _numbers(line: str) -> list[Token]:
    return [t for t in tokenize(line) if t.kind == "num"]
