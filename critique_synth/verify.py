"""Final-answer extraction and math equivalence against gold answers.

Plain numbers (the bulk of GSM8K-style data) are compared exactly with `Fraction`, which is
~100x cheaper than a symbolic check; everything else (fractions in LaTeX, expressions, sets)
goes to math-verify, the maintained equivalence checker the field already trusts.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction

_MAX_SYMBOLIC_CHARS = 200
_MAX_SYMBOLIC_DEPTH = 12
_POWER_TOWER_RE = re.compile(r"\^\s*\{[^{}^]*\^|\^\s*\d+\s*\^")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
_HASHES_RE = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*\$?([^\n$]+?)\$?\s*(?:\.\s|\.?$|\n)",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"-?[$€£]?\d[\d,]*(?:\.\d+)?%?")
_PLAIN_NUMBER_RE = re.compile(r"^-?[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?$")


def extract_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced."""
    matches = list(_BOXED_RE.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip()
    return None


def extract_final_answer(text: str) -> str | None:
    """The final answer a solution commits to: boxed, `#### N`, 'the answer is N', last number."""
    boxed = extract_boxed(text)
    if boxed:
        return boxed
    hashes = _HASHES_RE.findall(text)
    if hashes:
        return hashes[-1].strip()
    stated = _ANSWER_IS_RE.findall(text)
    if stated:
        return stated[-1].strip().rstrip(".")
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


def _as_number(text: str) -> Fraction | None:
    clean = text.strip().rstrip(".").replace(" ", "")
    if not _PLAIN_NUMBER_RE.match(clean):
        return None
    sign = -1 if clean.startswith("-") else 1
    clean = clean.lstrip("-").lstrip("$€£").replace(",", "")
    try:
        return sign * Fraction(clean[:-1] if clean.endswith("%") else clean)
    except ValueError:  # past Python's int digit limit: not a number we compare exactly
        return None


def answers_match(answer: str, gold: str) -> bool:
    """Whether two final answers are mathematically equal."""
    a, g = _as_number(answer), _as_number(gold)
    if a is not None and g is not None:
        return a == g
    if answer.strip() == gold.strip():
        return True
    if _too_complex(answer) or _too_complex(gold):
        return False  # a symbolic check could take seconds and block every request in flight
    from math_verify import parse, verify  # sympy: 1 s to import, needed only past the cheap checks

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    parsed_gold = parse(_as_latex(gold), parsing_timeout=timeout)
    parsed_answer = parse(_as_latex(answer), parsing_timeout=timeout)
    if not parsed_gold or not parsed_answer:
        return False
    return bool(verify(parsed_gold, parsed_answer, timeout_seconds=timeout))


def _too_complex(text: str) -> bool:
    """Longer or deeper than any final answer a grader needs to parse symbolically."""
    depth = deepest = 0
    for char in text:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth -= 1
    too_big = len(text) > _MAX_SYMBOLIC_CHARS or deepest > _MAX_SYMBOLIC_DEPTH
    return too_big or bool(_POWER_TOWER_RE.search(text))  # 9^{9^{9}}: sympy evaluates it


def _as_latex(text: str) -> str:
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def check_response(text: str, gold: str | None) -> tuple[str | None, bool | None]:
    """A response's final answer and whether it matches gold (None where there is no gold)."""
    final = extract_final_answer(text)
    if gold is None:
        return final, None
    return final, final is not None and answers_match(final, gold)
