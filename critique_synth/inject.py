"""Deterministic wrong variants of a worked solution, so each response's correctness is known.

Real students rarely slip on arithmetic alone: they misread a number, pick the wrong operation,
skip a step, forget a unit or percent conversion, stop at an intermediate quantity, or count
one too many. Each kind below makes one such error in the reference solution and then redoes
the rest of the work consistently (critique_synth.carry follows the changed value only into
the claims that use it), so the arithmetic of the variant is right wherever the error is not.

Kinds an arithmetic check can see: `computation` (a wrong result), `final_answer` (a `####`
line that contradicts the work). Kinds only the gold answer reveals: `operand_misread`,
`wrong_operation`, `skipped_step`, `dropped_conversion`, `intermediate_answer`, `off_by_one`.

Every variant is the same for the same (solution, variant, salt, kinds), and records its kind and
its first wrong step, numbered as critique_synth.steps numbers the *injected* text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from .arithmetic import evaluate, format_number, number_value, tokenize
from .carry import (
    CONSTANTS,
    Change,
    PlacedClaim,
    lines,
    placed_claims,
    plausible,
    propagate,
    question_values,
    unit_after,
)
from .kinds import ERROR_KINDS, ErrorKind
from .steps import split_steps, step_at

_DELTAS = (1, 2, 3, 4, 5, 10, -1, -2, -10, 6)
_SWAPS = {
    "+": "-",
    "-": "+",
    "*": "/",
    "/": "*",
    "×": "÷",
    "÷": "×",
    "x": "÷",
    "plus": "minus",
    "minus": "plus",
}
_WORD_SWAPS = {"times": "divided by", "multiplied by": "divided by", "divided by": "times"}
_CONVERSIONS = frozenset(Fraction(n) for n in (7, 12, 16, 24, 52, 60, 100, 365, 1000, 3600))
_NUMBERED_RE = re.compile(r"^\s*(?:\d+[.)]|step\s*\d+|\*\*step)", re.IGNORECASE)


@dataclass(frozen=True)
class Injected:
    text: str
    kind: ErrorKind
    step: int | None


@dataclass(frozen=True)
class _Context:
    solution: str
    seed: int
    given: frozenset[Fraction]
    claims: tuple[PlacedClaim, ...]

    def rotated(self, items: list) -> list:
        """Candidates in an order fixed by the seed, so variants differ but repeat exactly."""
        if not items:
            return items
        k = self.seed % len(items)
        return items[k:] + items[:k]

    def checkable(self) -> list[PlacedClaim]:
        return [p for p in self.claims if p.claim.status == "exact" and not _is_answer_line(p.line)]

    def done(self, kind: ErrorKind, text: str, offset: int | None) -> Injected | None:
        if text == self.solution or offset is None:
            return None
        return Injected(text, kind, step_at(split_steps(text), offset))


def inject_error(
    solution: str,
    variant: int,
    salt: str,
    *,
    question: str = "",
    kinds: Mapping[str, float] | None = None,
) -> Injected | None:
    """Variant `variant` (>= 1) of `solution` with one error of a kind drawn by `kinds` weights
    (default: every kind alike); a kind that does not apply to this solution gives way to another."""
    seed = int(hashlib.sha256(f"{salt}:{variant}".encode()).hexdigest(), 16)
    given = question_values(question)
    context = _Context(solution, seed >> 64, given, tuple(placed_claims(solution)))
    for kind in _kind_order(kinds or dict.fromkeys(ERROR_KINDS, 1.0), seed):
        injected = _MAKERS[kind](context)
        if injected is not None:
            return injected
    return None


def _kind_order(kinds: Mapping[str, float], seed: int) -> list[ErrorKind]:
    """Kinds in a weighted random order: the first is drawn by weight, then the next among the rest."""
    pool = {k: w for k, w in kinds.items() if w > 0 and k in _MAKERS}
    order: list[ErrorKind] = []
    draw = seed
    while pool:
        total = sum(pool.values())
        point = (draw % 1_000_003) / 1_000_003 * total
        draw //= 1_000_003
        for kind in sorted(pool):
            point -= pool[kind]
            if point < 0 or kind == max(pool):
                order.append(kind)  # type: ignore[arg-type]
                del pool[kind]
                break
    return order


def _computation(c: _Context) -> Injected | None:
    """One wrong result, used by every later step that needs it."""
    for p in c.rotated(_unambiguous(c, c.checkable())):
        new = _shift(p.claim.stated, p.claim.result.text, c.seed)
        injected = _replace_result(c, p, new, "computation")
        if injected is not None:
            return injected
    return None


def _operand_misread(c: _Context) -> Injected | None:
    """A number of the question read as another plausible one, everywhere the solution uses it."""
    results = {p.claim.stated for p in c.claims}
    used = {number_value(op.text) for p in c.checkable() for op in p.claim.operands}
    for value in c.rotated(sorted(v for v in used & c.given if v not in results | CONSTANTS)):
        new = _misread(value, c.seed)
        offsets = [
            o + t.start
            for o, line in _lines(c.solution)
            for t in _numbers(line)
            if number_value(t.text) == value
        ]
        carried = propagate(c.solution, offsets[0], {value: Change(new, None)}, c.given - {value})
        if carried is not None:
            injected = c.done("operand_misread", carried[0], carried[1])
            if injected is not None:
                return injected
    return None


def _wrong_operation(c: _Context) -> Injected | None:
    """The right numbers combined with the wrong operation, carried out correctly."""
    for p in c.rotated(_unambiguous(c, c.checkable(), prefer=True)):
        if len(p.claim.operands) != 2 or len(p.claim.ops) != 1:
            continue
        op = p.claim.ops[0]
        written = p.line[op.start : op.end]
        swapped = _SWAPS.get(written) or _WORD_SWAPS.get(" ".join(written.lower().split()))
        if swapped is None:
            continue
        expression = [
            "/" if i == "*" else "*" if i == "/" else "-" if i == "+" else "+" if i == "-" else i
            for i in p.claim.expression
        ]
        new = evaluate(expression, relative_percent=True)
        if new is None or new == p.claim.stated or not plausible(p.claim, new):
            continue
        line = _edit(p.line, [(op.start, op.end, swapped)])
        shifted = len(swapped) - len(written)
        injected = _replace_result(
            c, p, new, "wrong_operation", line=line, shift=shifted, first=p.offset + op.start
        )
        if injected is not None:
            return injected
    return None


def _skipped_step(c: _Context) -> Injected | None:
    """A needed step left out: the steps after it go on with the value from before it."""
    for p in c.rotated(_unambiguous(c, c.checkable())):
        alone = sum(1 for q in c.claims if q.offset == p.offset) == 1
        if not alone or _NUMBERED_RE.match(p.line) or "\n" not in c.solution:
            continue
        stale = number_value(p.claim.operands[0].text)
        text = c.solution[: p.offset] + c.solution[p.offset + len(p.line) + 1 :]
        change = Change(stale, unit_after(p.line, p.claim.result.end))
        carried = propagate(text, p.offset, {p.claim.stated: change}, c.given)
        if carried is not None and carried[1] is not None and not _in_answer_line(*carried):
            return c.done("skipped_step", *carried)
    return None


def _dropped_conversion(c: _Context) -> Injected | None:
    """A percent used as a whole number, or a unit conversion worked out and then not used."""
    for p in c.rotated(c.checkable()):
        percent = [op for op in p.claim.operands if op.text.endswith("%")]
        if percent and p.claim.result.text.endswith("%"):
            continue
        if percent and {o.text for o in p.claim.ops} <= {"*", "x", "×"}:
            op = percent[0]
            expression = [op.text[:-1] if item == op.text else item for item in p.claim.expression]
            new = evaluate(expression, relative_percent=True)
            if new is None or not plausible(p.claim, new):
                continue
            line = _edit(p.line, [(op.end - 1, op.end, "")])
            injected = _replace_result(
                c, p, new, "dropped_conversion", line=line, shift=-1, first=p.offset + op.start
            )
        else:
            injected = _unconverted(c, p)
        if injected is not None:
            return injected
    return None


def _unconverted(c: _Context, p: PlacedClaim) -> Injected | None:
    values = [number_value(op.text) for op in p.claim.operands]
    if len(values) != 2 or p.claim.ops[0].text not in ("*", "/", "×", "÷", "x") or p.claim.stated in c.given:
        return None
    factor = [v for v in values if v in _CONVERSIONS and v not in c.given]
    if not factor:
        return None
    other = values[1] if values[0] == factor[0] else values[0]
    end = p.offset + len(p.line)
    change = Change(other, unit_after(p.line, p.claim.result.end))
    carried = propagate(c.solution, end, {p.claim.stated: change}, c.given)
    return c.done("dropped_conversion", *carried) if carried is not None else None


def _intermediate_answer(c: _Context) -> Injected | None:
    """The solution stops at an earlier quantity and gives it as the answer."""
    final = _answer_value(c.solution)
    last_line = max((p.offset for p in c.claims), default=None)
    earlier = [p for p in c.claims if p.offset != last_line and p.claim.status == "exact"]
    for p in c.rotated(earlier):
        if p.claim.stated == final or p.claim.stated <= 0:
            continue
        text = c.solution[: p.offset + len(p.line)].rstrip() + f"\n#### {format_number(p.claim.stated)}"
        return c.done("intermediate_answer", text, len(text) - 1)
    return None


def _off_by_one(c: _Context) -> Injected | None:
    """A count one too many or one too few (the fencepost slip), with the arithmetic written out."""
    for p in c.rotated(_unambiguous(c, c.checkable(), prefer=True)):
        stated = p.claim.stated
        if stated.denominator != 1 or stated <= 0 or not any(o.text in ("-", "/", "÷") for o in p.claim.ops):
            continue
        delta = -1 if stated > 2 and c.seed % 2 else 1
        eq = p.line.rfind("=", 0, p.claim.result.start)
        if eq < p.claim.operands[-1].end:
            continue
        insert = f"{'+' if delta > 0 else '-'} 1 "
        line = _edit(p.line, [(eq, eq, insert)])
        injected = _replace_result(
            c, p, stated + delta, "off_by_one", line=line, shift=len(insert), first=p.offset + eq
        )
        if injected is not None:
            return injected
    return None


def _final_answer(c: _Context) -> Injected | None:
    """A right derivation with a different final answer written under it."""
    for offset, line in reversed(list(_lines(c.solution))):
        numbers = _numbers(line)
        if numbers:
            tok = numbers[-1]
            new = _shift(number_value(tok.text), tok.text, c.seed)
            text = (
                c.solution[: offset + tok.start]
                + format_number(new, tok.text)
                + c.solution[offset + tok.end :]
            )
            return c.done("final_answer", text, offset + tok.start)
    return None


def _replace_result(
    c: _Context,
    p: PlacedClaim,
    new: Fraction,
    kind: ErrorKind,
    line: str | None = None,
    shift: int = 0,
    first: int | None = None,
) -> Injected | None:
    """Write `new` as the claim's result (in `line`, the claim's line already edited by `shift`
    characters before the result) and carry it into every later step that uses it."""
    if not plausible(p.claim, new):
        return None
    line = line if line is not None else p.line
    result = p.claim.result
    line = _edit(line, [(result.start + shift, result.end + shift, format_number(new, result.text))])
    text = c.solution[: p.offset] + line + c.solution[p.offset + len(p.line) :]
    start = p.offset + len(line)
    carried = propagate(text, start, {p.claim.stated: Change(new, unit_after(p.line, result.end))}, c.given)
    if carried is None:
        return None
    return c.done(kind, carried[0], first if first is not None else p.offset + result.start + shift)


def _unambiguous(c: _Context, claims: list[PlacedClaim], prefer: bool = False) -> list[PlacedClaim]:
    """Claims whose result no given number or constant equals, so carrying it is unambiguous;
    with `prefer`, the others follow instead of being left out."""
    clear = [p for p in claims if p.claim.stated not in c.given | CONSTANTS]
    return clear + [p for p in claims if p not in clear] if prefer else clear


def _shift(value: Fraction, like: str, seed: int) -> Fraction:
    """A plausible wrong value: off by a small amount, positive where the original is."""
    unit = Fraction(1, 100) if like.endswith("%") else Fraction(1)
    for i in range(len(_DELTAS)):
        new = value + _DELTAS[(seed + i) % len(_DELTAS)] * unit
        if new != value and (value <= 0 or new > 0):
            return new
    return value + unit


def _misread(value: Fraction, seed: int) -> Fraction:
    """Another number a reader could take this one for: digits swapped, or one off in a digit."""
    options = []
    if value.denominator == 1 and value >= 10:
        swapped = str(value.numerator)[::-1]
        if swapped[0] != "0" and int(swapped) != value:
            options.append(Fraction(int(swapped)))
    step = Fraction(1, 100) if value.denominator != 1 and value < 1 else Fraction(1)
    options += [v for v in (value + step, value - step, value + 2 * step) if v > 0]
    return options[seed % len(options)]


def _answer_value(solution: str) -> Fraction | None:
    for _, line in reversed(list(_lines(solution))):
        numbers = _numbers(line)
        if _is_answer_line(line) and numbers:
            return number_value(numbers[-1].text)
    return None


def _in_answer_line(text: str, offset: int | None) -> bool:
    return offset is not None and _is_answer_line(text[text.rfind("\n", 0, offset) + 1 :])


def _is_answer_line(line: str) -> bool:
    return line.lstrip().startswith("####")


def _numbers(line: str) -> list:
    return [t for t in tokenize(line) if t.kind == "num"]


def _lines(text: str) -> list[tuple[int, str]]:
    return list(lines(text))


def _edit(line: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        line = line[:start] + text + line[end:]
    return line


_MAKERS: dict[str, Callable[[_Context], Injected | None]] = {
    "computation": _computation,
    "operand_misread": _operand_misread,
    "wrong_operation": _wrong_operation,
    "skipped_step": _skipped_step,
    "dropped_conversion": _dropped_conversion,
    "intermediate_answer": _intermediate_answer,
    "off_by_one": _off_by_one,
    "final_answer": _final_answer,
}
