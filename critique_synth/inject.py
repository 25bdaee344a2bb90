"""Deterministic wrong variants of a worked solution, so each response's correctness is known.

A realistic slip is one wrong computation whose value the rest of the solution then uses; a
careless one is a right derivation with a wrong final answer. Both are made from the
reference solution by rewriting number tokens, and every variant is the same for the same
(problem, variant) pair, so runs and their fingerprints are reproducible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .arithmetic import Claim, evaluate, find_claims, format_number, number_value, tokenize
from .verify import extract_final_answer

InjectionKind = Literal["computation", "final_answer"]
_DELTAS = (1, 2, 3, 4, 5, 10, -1, -2, -10, 6)


@dataclass(frozen=True)
class Injected:
    text: str
    kind: InjectionKind
    step: int | None


def inject_error(solution: str, variant: int, salt: str) -> Injected | None:
    """Variant `variant` (>= 1) of `solution` with one error; odd variants miscompute a step."""
    seed = int(hashlib.sha256(f"{salt}:{variant}".encode()).hexdigest(), 16)
    if variant % 2 == 1:
        changed = _miscompute(solution, seed)
        if changed is not None:
            return changed
    return _wrong_final(solution, seed)


def _miscompute(solution: str, seed: int) -> Injected | None:
    lines = solution.splitlines()
    candidates = [
        (li, claim)
        for li, line in enumerate(lines)
        for claim in find_claims(line)
        if claim.value is not None and claim.value == claim.stated
    ]
    final = extract_final_answer(solution)
    for i in range(len(candidates)):
        li, claim = candidates[(seed + i) % len(candidates)]
        injected = _miscompute_claim(lines, li, claim, seed)
        if extract_final_answer(injected.text) != final:
            return injected
    return None


def _miscompute_claim(lines: list[str], li: int, claim: Claim, seed: int) -> Injected:
    old = claim.stated
    new = _shift(old, claim.result.text, seed >> 16)
    mapping = {old: new}
    edits: dict[int, list[tuple[int, int, str]]] = {
        li: [(claim.result.start, claim.result.end, format_number(new, claim.result.text))]
    }
    for lj in range(li, len(lines)):
        after = claim.result.end if lj == li else 0
        edits.setdefault(lj, []).extend(_carry(lines[lj], after, mapping))
    step = sum(1 for line in lines[: li + 1] if line.strip())
    return Injected(_apply(lines, edits), "computation", step)


def _carry(line: str, after: int, mapping: dict[Fraction, Fraction]) -> list[tuple[int, int, str]]:
    """Rewrite one line to use the changed values, recomputing the claims that depend on them."""
    claims = [c for c in find_claims(line) if c.result.start >= after]
    by_result = {c.result.start: c for c in claims}
    operand_of = {op.start for c in claims for op in c.operands}
    substituted: dict[int, Fraction] = {}
    edits = []
    for tok in tokenize(line):
        if tok.kind != "num" or tok.start < after:
            continue
        claim = by_result.get(tok.start) or by_result.get(tok.start - 1)
        if claim is not None:
            edit = _recompute(claim, substituted, mapping)
            if edit is not None:
                edits.append(edit)
            continue
        value = number_value(tok.text)
        if value in mapping:
            new_text = format_number(mapping[value], tok.text)
            edits.append((tok.start, tok.end, new_text))
            if tok.start in operand_of:
                substituted[tok.start] = mapping[value]
    return edits


def _recompute(
    claim: Claim, substituted: dict[int, Fraction], mapping: dict[Fraction, Fraction]
) -> tuple[int, int, str] | None:
    if not any(op.start in substituted for op in claim.operands) or claim.value != claim.stated:
        return None
    values = iter(format_number(substituted.get(op.start, number_value(op.text))) for op in claim.operands)
    expression = [next(values) if _is_number(item) else item for item in claim.expression]
    new_value = evaluate(expression)
    if new_value is None:
        return None
    mapping[claim.stated] = new_value
    return claim.result.start, claim.result.end, format_number(new_value, claim.result.text)


def _is_number(item: str) -> bool:
    return item[:1].isdigit() or item[:1] in "$€£"


def _wrong_final(solution: str, seed: int) -> Injected | None:
    lines = solution.splitlines()
    for li in range(len(lines) - 1, -1, -1):
        numbers = [t for t in tokenize(lines[li]) if t.kind == "num"]
        if numbers:
            tok = numbers[-1]
            new = _shift(number_value(tok.text), tok.text, seed)
            edits = {li: [(tok.start, tok.end, format_number(new, tok.text))]}
            return Injected(_apply(lines, edits), "final_answer", None)
    return None


def _shift(value: Fraction, like: str, seed: int) -> Fraction:
    """A plausible wrong value: off by a small amount, never negative where the original is not."""
    unit = Fraction(1, 100) if like.endswith("%") else Fraction(1)
    for i in range(len(_DELTAS)):
        new = value + _DELTAS[(seed + i) % len(_DELTAS)] * unit
        if new != value and (value < 0 or new >= 0):
            return new
    return value + unit


def _apply(lines: list[str], edits: dict[int, list[tuple[int, int, str]]]) -> str:
    out = list(lines)
    for li, changes in edits.items():
        line = out[li]
        for start, end, text in sorted(set(changes), reverse=True):
            line = line[:start] + text + line[end:]
        out[li] = line
    return "\n".join(out)
