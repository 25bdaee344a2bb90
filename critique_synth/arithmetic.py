"""Find arithmetic claims like `€57/hour * 7 hours = €399` in free text and check them exactly.

Worked math solutions state their computations inline, with units and currency around the
numbers, and people write operators as words too ("32 minus 30 equals 2"). We read a claim
backwards from each `=` (or `equals`, `is`): numbers, operators, unit phrases after a number
("skeins per pair of socks", "yard(s)") and `/unit` suffixes. Values are `Fraction`s, so
0.1 + 0.2 = 0.3 holds and no float rounding hides a slip. The error injector and the built-in
critic share this one reader, so what one changes the other can see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Literal, NamedTuple

_NUMBER = r"[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"
_NUMBER_RE = re.compile(_NUMBER)
_TOKEN_RE = re.compile(
    rf"(?P<num>{_NUMBER})"
    r"|(?P<op>[-+*/×÷()−]|(?i:\b(?:plus|minus|times|divided\s+by|multiplied\s+by)\b))"
    r"|(?P<eq>=|(?i:\b(?:equals|is\s+equal\s+to|is|makes|gives)\b))"
    r"|(?P<word>[A-Za-z][A-Za-z'’]*(?:\((?:e?s)\))?)"
    r"|(?P<other>\S)"
)
_TIMES_WORDS = {"x", "X"}
_MAX_UNIT_WORDS = 5
# Words that end a unit phrase: past them the text is another clause, not the number's unit.
_CLAUSE_WORDS = frozenset(
    {
        "and", "so", "then", "but", "which", "that", "he", "she", "they", "it", "we", "i", "you",
        "was", "were", "are", "has", "have", "had", "will", "would", "if", "when", "after", "before",
        "total", "altogether", "therefore", "thus", "hence",
    }
)  # fmt: skip
_WORD_OPS = {"plus": "+", "minus": "-", "times": "*", "divided": "/", "multiplied": "*"}
_FLOAT_DIGITS = 9
_EXACT_DECIMALS = 12
# Bounds that keep hostile text cheap and crash-free: longer numbers are not numbers to us (Python
# refuses int strings over 4,300 digits, floats end near 1e308), longer expressions and bigger
# values are not checked (the parser recurses once per parenthesis or unary minus).
_MAX_DIGITS = 300
_MAX_ITEMS = 200
_MAX_BITS = 1000

Status = Literal["exact", "rounded", "wrong"]


class Token(NamedTuple):
    """One lexical item of a line: a number, an operator, `=`, a word, or other (a tuple: fast)."""

    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Claim:
    """One `expression = result` found in a line of text, with spans for rewriting it."""

    operands: tuple[Token, ...]
    ops: tuple[Token, ...]
    expression: tuple[str, ...]
    result: Token
    start: int

    @property
    def left_text(self) -> str:
        return " ".join(self.expression)

    @cached_property
    def value(self) -> Fraction | None:
        """The exact value of the left side as people mean it ($0.25 - 20% is 80% of $0.25),
        or None where it cannot be evaluated."""
        return evaluate(self.expression, relative_percent=True)

    @cached_property
    def stated(self) -> Fraction:
        return number_value(self.result.text)

    @cached_property
    def status(self) -> Status | None:
        """Exact, rounded within the text's precision, or wrong; None where nothing is checkable."""
        value = self.value
        if value is None:
            return None
        shown = max(decimals(op.text) for op in self.operands)
        status = result_status(value, self.result.text, shown)
        plain = evaluate(self.expression)
        if status == "wrong" and plain is not None and plain != value:
            return result_status(plain, self.result.text, shown)
        return status

    @property
    def holds(self) -> bool:
        return self.status != "wrong"


@lru_cache(maxsize=4096)
def tokenize(line: str) -> tuple[Token, ...]:
    """The tokens of one line (cached: the critic and the injector read each line many times)."""
    tokens = []
    for m in _TOKEN_RE.finditer(line):
        kind, text = m.lastgroup or "other", m.group()
        if kind == "num" and len(text) > _MAX_DIGITS:
            kind = "other"
        tokens.append(Token(kind, text, *m.span()))
    return tuple(tokens)


def numbers(text: str) -> list[Token]:
    """Just the number tokens of a text, as `tokenize` finds them, without reading the rest."""
    return [
        Token("num", m.group(), *m.span()) for m in _NUMBER_RE.finditer(text) if len(m.group()) <= _MAX_DIGITS
    ]


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


def exact_decimals(value: Fraction) -> int | None:
    """How many decimals write `value` exactly; None if it never terminates (1/3) or takes too many."""
    for places in range(_EXACT_DECIMALS + 1):
        if (value * 10**places).denominator == 1:
            return places
    return None


def result_status(value: Fraction, stated_text: str, shown: int = 0) -> Status:
    """Exact; rounded, where the exact value needs more decimals than the text works with
    (`shown`, the operands' precision) and the result is within one unit of its last digit; or
    wrong. So 10/3 = 3.33 is a rounding, while 899.2 / 1.25 = 719 hides 719.36 and is wrong."""
    stated = number_value(stated_text)
    if value == stated:
        return "exact"
    scale = 100 if stated_text.endswith("%") else 1
    if abs(value - stated) < abs(value) * Fraction(1, 10**_FLOAT_DIGITS):
        return "rounded"
    places = decimals(stated_text)
    if abs(value - stated) * scale >= Fraction(1, 10**places):
        return "wrong"
    needed = exact_decimals(value * scale)
    if needed is not None and needed <= max(shown, places):
        return "wrong"
    return "rounded"


def format_number(value: Fraction, like: str = "", places: int = 2) -> str:
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
        body = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return f"{sign}{prefix}{body}{'%' if percent else ''}"


def format_exact(value: Fraction, like: str = "") -> str:
    """The value a critique quotes as correct: exact where it terminates (719.36), else to 4
    decimals, so a rounding the critique points out is never hidden by its own rounding."""
    needed = exact_decimals(value * (100 if like.endswith("%") else 1))
    return format_number(value, like, places=4 if needed is None else max(2, needed))


@lru_cache(maxsize=4096)
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
        operands, ops, expression, start = left
        claims.append(Claim(tuple(operands), tuple(ops), tuple(expression), result, start))
    return tuple(claims)


def _read_result(tokens: tuple[Token, ...], i: int) -> Token | None:
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


def _is_unit_word(tok: Token, units: int) -> bool:
    return (
        tok.kind == "word"
        and units < _MAX_UNIT_WORDS
        and tok.text not in _TIMES_WORDS
        and tok.text.lower() not in _CLAUSE_WORDS
    )


def _read_left(
    tokens: tuple[Token, ...], eq_index: int
) -> tuple[list[Token], list[Token], list[str], int] | None:
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
            if _is_unit_word(tok, units):
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
    expression = [normalise_op(t.text) if t.kind == "op" else t.text for t in items]
    operands = [t for t in items if t.kind == "num"]
    ops = [t for t in items if t.kind == "op" and t.text not in "()"]
    if len(operands) < 2 or evaluate(expression) is None:
        return None
    return operands, ops, expression, items[0].start


def _is_percent_before(tokens: tuple[Token, ...], j: int) -> bool:
    return j >= 1 and tokens[j - 1].kind == "num" and tokens[j - 1].text.endswith("%")


def normalise_op(text: str) -> str:
    """The symbol for an operator as written: `×`, `x`, `times` -> `*`, `divided by` -> `/`."""
    word = text.split()[0].lower() if text[:1].isalpha() else text
    return _WORD_OPS.get(word) or {"×": "*", "÷": "/", "−": "-", "x": "*"}.get(word, text)


def evaluate(expression: tuple[str, ...] | list[str], relative_percent: bool = False) -> Fraction | None:
    """Evaluate + - * / and parentheses over number tokens exactly; None if malformed or too big.

    With `relative_percent`, a percent added to or taken from a plain amount is a share of it,
    as people write it: `$0.25 - 20%` is $0.20, `50 + 10%` is 55."""
    if len(expression) > _MAX_ITEMS:
        return None
    parser = _Parser(list(expression), relative_percent)
    try:
        value = parser.expr()[0]
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    if parser.pos != len(parser.items) or max(value.numerator, value.denominator).bit_length() > _MAX_BITS:
        return None
    return value


class _Parser:
    """A tiny recursive-descent parser, so no text from a response ever reaches `eval`.

    Each rule returns (value, whether it is a bare percent), for the relative-percent reading."""

    def __init__(self, items: list[str], relative_percent: bool) -> None:
        self.items = items
        self.pos = 0
        self.relative = relative_percent

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> str:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expr(self) -> tuple[Fraction, bool]:
        value, percent = self.term()
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            right, right_percent = self.term()
            if self.relative and right_percent and not percent:
                right *= value
            value, percent = value + sign * right, percent and right_percent
        return value, percent

    def term(self) -> tuple[Fraction, bool]:
        value, percent = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.factor()[0]
            value, percent = (value * right if op == "*" else value / right), False
        return value, percent

    def factor(self) -> tuple[Fraction, bool]:
        item = self.take()
        if item == "-":
            return -self.factor()[0], False
        if item == "(":
            value = self.expr()[0]
            if self.take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value, False
        return number_value(item), item.endswith("%")
