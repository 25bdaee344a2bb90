"""Find arithmetic claims like `€57/hour * 7 hours = €399` in free text and check them exactly.

Worked math solutions state their computations inline, with units and currency around the
numbers. We read a claim backwards from each `=`: numbers, operators, unit words right after a
number and `/unit` suffixes. Values are `Fraction`s, so 0.1 + 0.2 = 0.3 holds and no float
rounding hides a slip. The error injector and the built-in critic share this one reader, so
what one changes the other can see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

_TOKEN_RE = re.compile(
    r"(?P<num>[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?)"
    r"|(?P<op>[-+*/×÷()−])"
    r"|(?P<eq>=)"
    r"|(?P<word>[A-Za-z][A-Za-z'’]*)"
    r"|(?P<other>\S)"
)
_TIMES_WORDS = {"x", "X", "times"}
_MAX_UNIT_WORDS = 2
_FLOAT_DIGITS = 9
# Bounds that keep hostile text cheap and crash-free: longer numbers are not numbers to us (Python
# refuses int strings over 4,300 digits, floats end near 1e308), longer expressions and bigger
# values are not checked (the parser recurses once per parenthesis or unary minus).
_MAX_DIGITS = 300
_MAX_ITEMS = 200
_MAX_BITS = 1000


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Claim:
    """One `expression = result` found in a line of text, with spans for rewriting it."""

    operands: tuple[Token, ...]
    expression: tuple[str, ...]
    result: Token
    start: int

    @property
    def left_text(self) -> str:
        return " ".join(self.expression)

    @property
    def value(self) -> Fraction | None:
        """The exact value of the left side, or None where it cannot be evaluated."""
        return evaluate(self.expression)

    @property
    def stated(self) -> Fraction:
        return number_value(self.result.text)

    @property
    def holds(self) -> bool:
        value = self.value
        return value is None or agrees(value, self.result.text)


def tokenize(line: str) -> list[Token]:
    tokens = []
    for m in _TOKEN_RE.finditer(line):
        kind = m.lastgroup or "other"
        if kind == "num" and len(m.group()) > _MAX_DIGITS:
            kind = "other"
        tokens.append(Token(kind, m.group(), m.start(), m.end()))
    return tokens


@lru_cache(maxsize=4096)
def number_value(text: str) -> Fraction:
    """Exact value of a number token: currency and thousands commas dropped, % divides by 100."""
    if "/" in text:
        numerator, denominator = text.split("/", 1)
        return number_value(numerator) / number_value(denominator)
    sign = -1 if text.startswith("-") else 1
    clean = text.lstrip("-").lstrip("$€£").replace(",", "")
    if clean.endswith("%"):
        return sign * Fraction(clean[:-1]) / 100
    return sign * Fraction(clean)


def decimals(text: str) -> int:
    clean = text.rstrip("%").split("/")[0]
    return len(clean.split(".", 1)[1]) if "." in clean else 0


def agrees(value: Fraction, stated_text: str) -> bool:
    """Exact, or the value rounded (down, up or to nearest) at the precision the text shows."""
    stated = number_value(stated_text)
    if value == stated:
        return True
    if value.denominator == 1 and decimals(stated_text) < _FLOAT_DIGITS:
        return False
    step = Fraction(1, 10 ** decimals(stated_text))
    if stated_text.endswith("%"):
        step /= 100
    float_noise = abs(value) * Fraction(1, 10**9)
    return abs(value - stated) < max(step, float_noise)


def format_number(value: Fraction, like: str = "") -> str:
    """Write a value the way the text it replaces was written (currency prefix, percent)."""
    prefix = like.lstrip("-")[:1] if like.lstrip("-")[:1] in ("$", "€", "£") else ""
    sign = "-" if value < 0 else ""
    value = abs(value)
    percent = like.endswith("%")
    if percent:
        value *= 100
    if "/" in like and value.denominator != 1:
        body = f"{value.numerator}/{value.denominator}"
    elif value.denominator == 1:
        body = str(value.numerator)
    else:
        body = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return f"{sign}{prefix}{body}{'%' if percent else ''}"


@lru_cache(maxsize=2048)
def find_claims(line: str) -> tuple[Claim, ...]:
    """Every checkable `expression = number` in one line of text (cached: the injector and the
    critic read the same lines many times)."""
    tokens = tokenize(line)
    claims = []
    for i, tok in enumerate(tokens):
        result = _read_result(tokens, i + 1) if tok.kind == "eq" else None
        left = _read_left(tokens, i) if result else None
        if result is None or left is None:
            continue
        operands, expression, start = left
        claims.append(Claim(tuple(operands), tuple(expression), result, start))
    return tuple(claims)


def _read_result(tokens: list[Token], i: int) -> Token | None:
    """The number right after `=`, with its minus sign folded in."""
    sign = ""
    if i + 1 < len(tokens) and tokens[i].text in ("-", "−") and tokens[i + 1].kind == "num":
        sign, i = "-", i + 1
    if i >= len(tokens) or tokens[i].kind != "num":
        return None
    num = tokens[i]
    start = num.start - len(sign)
    if i + 2 < len(tokens) and tokens[i + 1].text == "/" and tokens[i + 2].kind == "num":
        denominator = tokens[i + 2]
        if num.end == tokens[i + 1].start and tokens[i + 1].end == denominator.start:
            return Token("num", f"{sign}{num.text}/{denominator.text}", start, denominator.end)
    return Token("num", sign + num.text, start, num.end)


def _read_left(tokens: list[Token], eq_index: int) -> tuple[list[Token], list[str], int] | None:
    """Walk back from `=` over an arithmetic expression; None if there is no operator in it."""
    items: list[Token] = []
    j = eq_index - 1
    expect_operand = True
    units = 0
    stopped_on_word = False
    while j >= 0:
        tok = tokens[j]
        if expect_operand:
            if tok.kind == "word" and j >= 1 and tokens[j - 1].text == "/":
                j -= 2
                continue
            if tok.kind == "word" and units < _MAX_UNIT_WORDS and tok.text not in _TIMES_WORDS:
                units += 1
                j -= 1
                continue
            if tok.kind == "num" or tok.text == ")":
                items.append(tok)
                expect_operand = tok.text == ")"
                units = 0
            else:
                stopped_on_word = tok.kind == "word"
                break
        elif tok.kind == "op" and tok.text != ")":
            items.append(tok)
            expect_operand = tok.text != "("
        elif tok.text in _TIMES_WORDS or (tok.text == "of" and _is_percent_before(tokens, j)):
            items.append(Token("op", "*", tok.start, tok.end))
            expect_operand = True
        elif tok.kind == "num" and items and items[-1].text == "(":
            items.append(Token("op", "*", tok.end, tok.end))
            items.append(tok)
        else:
            break
        j -= 1
    if expect_operand and items and items[-1].kind == "op" and items[-1].text != "(":
        if stopped_on_word:
            return None
        dangling = items.pop()
        if dangling.text in "-−" and items and dangling.end == items[-1].start:
            items.append(dangling)
    items.reverse()
    expression = [_normalise_op(t.text) if t.kind == "op" else t.text for t in items]
    operands = [t for t in items if t.kind == "num"]
    if len(operands) < 2 or evaluate(expression) is None:
        return None
    return operands, expression, items[0].start


def _is_percent_before(tokens: list[Token], j: int) -> bool:
    return j >= 1 and tokens[j - 1].kind == "num" and tokens[j - 1].text.endswith("%")


def _normalise_op(text: str) -> str:
    return {"×": "*", "÷": "/", "−": "-"}.get(text, text)


def evaluate(expression: tuple[str, ...] | list[str]) -> Fraction | None:
    """Evaluate + - * / and parentheses over number tokens exactly; None if malformed or too big."""
    if len(expression) > _MAX_ITEMS:
        return None
    parser = _Parser(list(expression))
    try:
        value = parser.expr()
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    if parser.pos != len(parser.items) or max(value.numerator, value.denominator).bit_length() > _MAX_BITS:
        return None
    return value


class _Parser:
    """A tiny recursive-descent parser, so no text from a response ever reaches `eval`."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.pos = 0

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> str:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            value = value * self.factor() if self.take() == "*" else value / self.factor()
        return value

    def factor(self) -> Fraction:
        item = self.take()
        if item == "-":
            return -self.factor()
        if item == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value
        return number_value(item)
