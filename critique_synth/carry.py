"""Follow a changed value through the claims that use it, and only through those.

When one quantity of a worked solution changes (an injected slip, a misread number, or the
critic redoing the work with the right value), every later claim that uses it is recomputed
and every later mention of it is rewritten. A number that merely *equals* the old value is
left alone when it plausibly means something else: a value the question gives, or a small
constant such as 60 or 12, is rewritten only where the same unit word follows it ("6 pages" is
the changed count; "every 6 minutes" is not). The injector and the critic share this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from .arithmetic import Claim, evaluate, find_claims, format_number, number_value, numbers, tokenize

# Numbers that are conversions or common factors ("half", "a dozen") more often than results.
CONSTANTS = frozenset(Fraction(n) for n in (1, 2, 7, 10, 12, 24, 52, 60, 100, 365, 1000))
_UNIT_RE = re.compile(r"[ \t]*([A-Za-z][A-Za-z'’]*(?:\(e?s\))?)(?:[ \t]+([A-Za-z][A-Za-z'’]*(?:\(e?s\))?))?")
_SKIP_WORDS = frozenset(
    {"of", "per", "a", "an", "the", "each", "more", "less", "fewer", "in", "on", "for", "to", "at"}
)


@dataclass(frozen=True)
class Change:
    """A quantity's new value, and the unit word that names it where the text gives one."""

    new: Fraction
    unit: str | None


@dataclass(frozen=True)
class PlacedClaim:
    """A claim with the offset of its line in the whole text."""

    offset: int
    line: str
    claim: Claim


@lru_cache(maxsize=1024)
def question_values(question: str) -> frozenset[Fraction]:
    """The numbers a question gives (cached: each question is read for every one of its responses)."""
    return frozenset(number_value(t.text) for t in numbers(question))


def lines(text: str) -> Iterator[tuple[int, str]]:
    """Each line of `text` with its offset (split on newline only, as steps.py counts them)."""
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def placed_claims(text: str) -> list[PlacedClaim]:
    return [PlacedClaim(offset, line, c) for offset, line in lines(text) for c in find_claims(line)]


def unit_after(line: str, end: int) -> str | None:
    """The unit word right after a number ending at `end`, singular and lower-case, if any
    (one filler word such as "of" or "per" is skipped: "12 trays of cookies" -> "tray")."""
    match = _UNIT_RE.match(line, end)
    if match is None:
        return None
    word = match.group(1).lower()
    if word in _SKIP_WORDS:
        word = (match.group(2) or "").lower()
        if not word or word in _SKIP_WORDS:
            return None
    word = word.removesuffix("(s)").removesuffix("(es)")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def plausible(old: Claim, new: Fraction) -> bool:
    """A recomputed value a student could write: positive where the original was, a whole number
    where it was one, and no more decimals than money needs unless the original was rounded."""
    stated = old.stated
    if stated > 0 and new <= 0:
        return False
    if stated.denominator == 1 and new.denominator != 1:
        return False
    if old.status == "rounded":
        return True
    scale = 100 if old.result.text.endswith("%") else 1
    return (new * scale * 100).denominator == 1


def propagate(
    text: str, start: int, mapping: dict[Fraction, Change], given: frozenset[Fraction]
) -> tuple[str, int | None] | None:
    """`text` with the changes in `mapping` carried from offset `start` on, and the offset of the
    first edit; None where a recomputed value would be implausible (the caller tries another)."""
    out, first = [], None
    for offset, line in lines(text):
        if offset + len(line) < start:
            out.append(line)
            continue
        edits = _carry_line(line, max(0, start - offset), mapping, given)
        if edits is None:
            return None
        if edits and first is None:
            first = offset + min(e[0] for e in edits)
        for begin, end, new_text in sorted(edits, reverse=True):
            line = line[:begin] + new_text + line[end:]
        out.append(line)
    return "\n".join(out), first


def _carry_line(
    line: str, after: int, mapping: dict[Fraction, Change], given: frozenset[Fraction]
) -> list[tuple[int, int, str]] | None:
    claims = [c for c in find_claims(line) if c.result.start >= after]
    by_result = {c.result.start: c for c in claims}
    operand_of = {op.start for c in claims for op in c.operands}
    substituted: dict[int, Fraction] = {}
    edits = []
    answer_line = line.lstrip().startswith("####")
    for tok in tokenize(line):
        if tok.kind != "num" or tok.start < after:
            continue
        claim = by_result.get(tok.start) or by_result.get(tok.start - 1)
        if claim is not None:
            new = recompute(claim, substituted)
            if new is None:
                continue
            if not plausible(claim, new):
                return None
            edits.append((claim.result.start, claim.result.end, format_number(new, claim.result.text)))
            mapping[claim.stated] = Change(new, unit_after(line, claim.result.end))
            continue
        change = mapping.get(number_value(tok.text))
        if change is None or not (answer_line or _same_quantity(line, tok.text, tok.end, change, given)):
            continue
        edits.append((tok.start, tok.end, format_number(change.new, tok.text)))
        if tok.start in operand_of:
            substituted[tok.start] = change.new
    return edits


def _same_quantity(line: str, tok_text: str, end: int, change: Change, given: frozenset[Fraction]) -> bool:
    """Whether a number equal to a changed value names the changed quantity (see module doc)."""
    value = number_value(tok_text)
    if value not in given and value not in CONSTANTS:
        return True
    return change.unit is not None and unit_after(line, end) == change.unit


def recompute(claim: Claim, substituted: dict[int, Fraction]) -> Fraction | None:
    """The claim's value with some operands replaced; None where none is, or it was already wrong."""
    if not any(op.start in substituted for op in claim.operands) or claim.status == "wrong":
        return None
    values = iter(
        as_item(substituted[op.start], op.text) if op.start in substituted else op.text
        for op in claim.operands
    )
    expression = [next(values) if _is_number(item) else item for item in claim.expression]
    new = evaluate(expression, relative_percent=True)
    return None if new is None or new == claim.stated else new


def as_item(value: Fraction, like: str) -> str:
    """An exact expression item for `value` (a percent stays a percent for the relative reading)."""
    if like.endswith("%") and (value * 100).denominator == 1:
        return f"{value * 100}%"
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _is_number(item: str) -> bool:
    return item[:1].isdigit() or item[:1] in "$€£"
