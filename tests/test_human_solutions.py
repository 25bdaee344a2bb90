"""The built-in critic on solutions written the way people write them, not the way the injector
does: word operators, unit phrases, percents, bullets, numbered steps, one paragraph, GSM8K
calculator notes. Half are clean, half carry a hand-made error of a known kind and step
(tests/data/human_solutions.jsonl).

Errors that arithmetic can show (a wrong result, a value restated differently, an answer line
that contradicts the work) must be caught without a gold answer, at the labelled step. Errors
that arithmetic cannot show (right numbers combined the wrong way: a wrong operation carried out
correctly, a skipped step, a dropped conversion, an intermediate quantity given as the answer,
an off-by-one count, a misread number with nothing to compare it with) are caught only through
the gold answer, so those rows are checked with gold only.
"""

import json
from pathlib import Path

import pytest

from critique_synth.calibration import critic_report
from critique_synth.critic import builtin_critique
from critique_synth.records import Problem
from critique_synth.steps import split_steps

ROWS = [json.loads(line) for line in (Path(__file__).parent / "data" / "human_solutions.jsonl").open()]
CLEAN = [r for r in ROWS if r["process_correct"]]
WRONG = [r for r in ROWS if not r["process_correct"]]
VISIBLE = {"computation", "restated_value", "final_answer"}


def _critique(row: dict, gold: bool):
    problem = Problem(id=row["id"], question=row["question"], answer=row["answer"] if gold else None)
    return builtin_critique(problem, row["response"])


def test_the_set_is_balanced_and_labelled_with_steps_py_numbering() -> None:
    assert 30 <= len(ROWS) <= 40 and abs(len(CLEAN) - len(WRONG)) <= 2
    kinds = {r["error_kind"] for r in WRONG}
    assert kinds >= {
        "computation",
        "operand_misread",
        "wrong_operation",
        "skipped_step",
        "dropped_conversion",
        "intermediate_answer",
        "off_by_one",
        "final_answer",
    }
    for row in WRONG:
        assert 1 <= row["first_error_step"] <= len(split_steps(row["response"])), row["id"]


@pytest.mark.parametrize("row", CLEAN, ids=[r["id"] for r in CLEAN])
@pytest.mark.parametrize("gold", [True, False])
def test_no_false_alarm_on_a_clean_human_solution(row: dict, gold: bool) -> None:
    critique = _critique(row, gold)
    assert critique.verdict == "right", critique.analysis
    assert critique.first_wrong_step is None


@pytest.mark.parametrize("row", WRONG, ids=[r["id"] for r in WRONG])
def test_every_hand_made_error_is_caught_with_gold(row: dict) -> None:
    critique = _critique(row, gold=True)
    assert critique.verdict == "wrong", critique.analysis
    assert critique.corrected_answer == row["answer"]


@pytest.mark.parametrize("row", [r for r in WRONG if r["error_kind"] in VISIBLE], ids=lambda r: r["id"])
def test_errors_arithmetic_shows_are_caught_without_gold_at_their_step(row: dict) -> None:
    critique = _critique(row, gold=False)
    assert (critique.verdict, critique.first_wrong_step) == ("wrong", row["first_error_step"]), (
        critique.analysis
    )


def test_critic_report_scores_each_kind() -> None:
    report = critic_report(ROWS)
    assert report["clean"] == {"n": len(CLEAN), "verdict": 1.0, "step": None}  # no step to name
    assert all(scores["verdict"] == 1.0 for scores in report.values())
    blind = critic_report(ROWS, with_gold=False)
    assert blind["computation"]["step"] == 1.0 and blind["wrong_operation"]["verdict"] == 0.0
