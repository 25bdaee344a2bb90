from fractions import Fraction

import pytest

from critique_synth.arithmetic import agrees, evaluate, find_claims, format_number


@pytest.mark.parametrize(
    ("line", "left", "stated", "holds"),
    [
        ("There are 12 x 2 = 24 students.", "12 * 2", "24", True),
        ("so that's 0.8*100 = 80 students", "0.8 * 100", "80", True),
        ("First: €57/hour * 7 hours = €399", "€57 * 7", "€399", True),
        ("65% of 20 = 13", "65% * 20", "13", True),
        ("so 80+13 = 94 students", "80 + 13", "94", False),
        ("He pays <<12*2=24>>24 dollars", "12 * 2", "24", True),
        ("rate 12/60 = 1/5 km per minute", "12 / 60", "1/5", True),
        ("perimeter 2(77+72) = 298", "2 * ( 77 + 72 )", "298", True),
        ("she has 1,000 - 250 = 750", "1,000 - 250", "750", True),
        ("a 3 - 5 = -3", "3 - 5", "-3", False),
        ("10/3 = 3.33 hours", "10 / 3", "3.33", True),
        ("   - 69 plants × $4 per plant = $276", "69 * $4", "$276", True),
        ("after 20.5 - 2 - 1/12 = 18.416666666666668 hours", "20.5 - 2 - 1 / 12", "18.416666666666668", True),
    ],
)
def test_claims_are_read_and_checked(line: str, left: str, stated: str, holds: bool) -> None:
    (claim,) = find_claims(line)
    assert claim.left_text == left
    assert claim.result.text == stated
    assert claim.holds is holds


@pytest.mark.parametrize(
    "line",
    [
        "x = 5 apples",
        "125 total students - 8 play video games - 4 volleyball - 8 bake = 105",
        "the answer = unknown",
    ],
)
def test_no_claim_where_the_left_side_is_not_arithmetic(line: str) -> None:
    assert find_claims(line) == ()


def test_exact_fractions_not_floats() -> None:
    assert evaluate(["0.1", "+", "0.2"]) == Fraction(3, 10)
    assert evaluate(["1", "/", "0"]) is None
    assert evaluate(["(", "1", "+"]) is None


def test_rounded_results_agree_only_to_their_precision() -> None:
    assert agrees(Fraction(10, 3), "3.33")
    assert agrees(Fraction(10, 3), "3.4")  # rounded up at the shown precision
    assert not agrees(Fraction(10, 3), "3.5")
    assert not agrees(Fraction(7), "8")


def test_format_keeps_currency_and_percent() -> None:
    assert format_number(Fraction(399), "€57") == "€399"
    assert format_number(Fraction(1, 5), "20%") == "20%"
    assert format_number(Fraction(-7, 2), "$5") == "-$3.5"
