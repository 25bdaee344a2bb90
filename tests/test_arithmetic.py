from fractions import Fraction

import pytest

from critique_synth.arithmetic import evaluate, find_claims, format_exact, format_number, result_status


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
        # operators in words, as people write them
        ("32 minus 30 equals 4", "32 - 30", "4", False),
        ("12 divided by 4 is 3", "12 / 4", "3", True),
        ("6 multiplied by 7 gives 42", "6 * 7", "42", True),
        ("Sam has 4 times 9 is 36 stickers", "4 * 9", "36", True),
        ("2 plus 5 makes 8", "2 + 5", "8", False),
        # unit phrases of several words, and word(s)
        ("8 pairs * 3 skeins per pair of socks = 21 skeins", "8 * 3", "21", False),
        ("She has 50 yard(s) - 24 yard(s) = 26 yard(s) left.", "50 - 24", "26", True),
        # a percent taken from an amount is a share of it
        ("Sale price: $0.25 - 20% = $0.2", "$0.25 - 20%", "$0.2", True),
        ("With tax: $40 + 10% = $44", "$40 + 10%", "$44", True),
        ("100% - 40% = 60% of the quiz", "100% - 40%", "60%", True),
        # a rounding coarser than the text's own precision hides the exact value
        ("John bought 719 crackers because 899.2 / 1.25 = 719", "899.2 / 1.25", "719", False),
    ],
)
def test_claims_are_read_and_checked(line: str, left: str, stated: str, holds: bool) -> None:
    (claim,) = find_claims(line)
    assert claim.left_text == left
    assert claim.result.text == stated
    assert claim.holds is holds


@pytest.mark.parametrize(
    ("line", "claims"),
    [
        ("x = 5 apples", []),
        ("125 total students - 8 play video games - 4 volleyball - 8 bake = 105", []),
        ("the answer = unknown", []),
        ("Then 12 + 3 = 15 and the answer is 15", ["12 + 3"]),
        ("He had 20 - 5 = 15 apples, which is 3 more than Kim", ["20 - 5"]),
    ],
)
def test_no_claim_where_the_left_side_is_not_arithmetic(line: str, claims: list[str]) -> None:
    assert [c.left_text for c in find_claims(line)] == claims


def test_exact_fractions_not_floats() -> None:
    assert evaluate(["0.1", "+", "0.2"]) == Fraction(3, 10)
    assert evaluate(["1", "/", "0"]) is None
    assert evaluate(["(", "1", "+"]) is None


def test_relative_percent_only_where_asked() -> None:
    assert evaluate(["0.25", "-", "20%"]) == Fraction(1, 20)
    assert evaluate(["0.25", "-", "20%"], relative_percent=True) == Fraction(1, 5)
    assert evaluate(["50%", "-", "20%"], relative_percent=True) == Fraction(3, 10)


def test_rounding_is_named_and_bounded_by_the_texts_precision() -> None:
    assert result_status(Fraction(10, 3), "3.33") == "rounded"
    assert result_status(Fraction(10, 3), "3.4") == "rounded"  # rounded up at the shown precision
    assert result_status(Fraction(10, 3), "3.5") == "wrong"
    assert result_status(Fraction(7), "8") == "wrong"
    assert result_status(Fraction(96), "96") == "exact"
    # 719.36 is written exactly with the 2 decimals the operands show: rounding it to 719 is wrong
    assert result_status(Fraction(71936, 100), "719", shown=2) == "wrong"
    # 1.875 needs 3 decimals where the text works with 2: $1.88 is a fair rounding
    assert result_status(Fraction(15, 8), "$1.88", shown=2) == "rounded"


def test_format_keeps_currency_and_percent() -> None:
    assert format_number(Fraction(399), "€57") == "€399"
    assert format_number(Fraction(1, 5), "20%") == "20%"
    assert format_number(Fraction(-7, 2), "$5") == "-$3.5"


def test_exact_format_does_not_round_away_what_it_points_out() -> None:
    assert format_exact(Fraction(71936, 100), "719") == "719.36"
    assert format_exact(Fraction(15, 8), "$1.88") == "$1.875"
    assert format_exact(Fraction(10, 3)) == "3.3333"
