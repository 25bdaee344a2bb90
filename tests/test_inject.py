import asyncio
import json

import pytest

from critique_synth.arithmetic import find_claims
from critique_synth.calibration import calibration_rows
from critique_synth.config import StudentsConfig
from critique_synth.errors import UserError
from critique_synth.inject import ERROR_KINDS, inject_error
from critique_synth.records import Problem
from critique_synth.sources import SAMPLE_PATH
from critique_synth.steps import split_steps
from critique_synth.students import InjectStudent
from critique_synth.verify import extract_final_answer

QUESTION = (
    "A school has 12 volleyball teams of 2 students and 17 pairs of table tennis players. "
    "How many students play?"
)
SOLUTION = (
    "There are 12 x 2 = 24 students playing volleyball.\n"
    "There are 17 + 17 = 34 students playing table tennis.\n"
    "In total there are 24 + 34 = 58 students.\n"
    "#### 58"
)
# Kinds whose variant keeps every written calculation right: only the reasoning is wrong.
REASONING_KINDS = {"operand_misread", "wrong_operation", "skipped_step", "dropped_conversion", "off_by_one"}


def _sample() -> list[Problem]:
    return [Problem(**json.loads(line)) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]


def _only(kind: str, solution: str = SOLUTION, question: str = QUESTION, salt: str = "p"):
    return inject_error(solution, 1, salt, question=question, kinds={kind: 1.0})


def test_same_inputs_give_the_same_variant() -> None:
    for kind in ERROR_KINDS:
        assert _only(kind) == _only(kind)
    assert inject_error(SOLUTION, 1, "p", question=QUESTION) == inject_error(
        SOLUTION, 1, "p", question=QUESTION
    )


def test_a_changed_computation_is_carried_to_the_final_answer() -> None:
    for salt in ("a", "b", "c", "d", "e"):
        injected = _only("computation", salt=salt)
        assert injected is not None and injected.kind == "computation"
        assert extract_final_answer(injected.text) != "58"
        assert injected.text.splitlines()[-1] == f"#### {extract_final_answer(injected.text)}"
        wrong = [c for line in injected.text.splitlines() for c in find_claims(line) if not c.holds]
        assert len(wrong) == 1, injected.text


def test_carry_recomputes_dependent_steps() -> None:
    solution = "First 2 * 3 = 6.\nThen 6 * 10 = 60.\n#### 60"
    for salt in "abc":
        injected = inject_error(solution, 1, salt, kinds={"computation": 1.0})
        assert injected is not None and injected.step == 1
        first, second, final = injected.text.splitlines()
        wrong = int(first.split("= ")[1].rstrip("."))
        assert second == f"Then {wrong} * 10 = {wrong * 10}."
        assert final == f"#### {wrong * 10}"


def test_an_unrelated_equal_number_is_not_rewritten() -> None:
    question = "Ann reads a page every 16 minutes. She reads 2 chapters of 3 pages, then 10 more pages."
    solution = (
        "She reads 2 * 3 = 6 pages in the chapters.\n"
        "In all she reads 6 pages + 10 pages = 16 pages.\n"
        "At a page every 16 minutes that takes 16 pages * 16 minutes = 256 minutes.\n"
        "#### 256"
    )
    firsts = 0
    for salt in "abcdefgh":
        injected = inject_error(solution, 1, salt, question=question, kinds={"computation": 1.0})
        assert injected is not None
        lines = injected.text.splitlines()
        assert "every 16 minutes" in lines[2]
        if injected.step == 1:
            firsts += 1
            changed = int(lines[0].split("= ")[1].split()[0])
            total = changed + 10
            assert lines[1] == f"In all she reads {changed} pages + 10 pages = {total} pages."
            assert lines[2].endswith(f"takes {total} pages * 16 minutes = {total * 16} minutes.")
            assert lines[3] == f"#### {total * 16}"
    assert firsts


@pytest.mark.parametrize("kind", sorted(REASONING_KINDS))
def test_reasoning_errors_keep_the_arithmetic_right(kind: str) -> None:
    made = 0
    for problem in _sample():
        injected = inject_error(
            problem.solution or "", 1, problem.id, question=problem.question, kinds={kind: 1}
        )
        if injected is None:
            continue
        made += 1
        assert injected.kind == kind
        assert injected.text != problem.solution
        claims = [c for line in injected.text.splitlines() for c in find_claims(line)]
        assert all(c.holds for c in claims), (problem.id, injected.text)
    assert made >= 10


def test_operand_misread_changes_a_number_of_the_question_everywhere_it_is_used() -> None:
    question = "A baker makes 14 trays of 8 cookies and sells 30. How many are left?"
    solution = "She makes 14 trays * 8 = 112 cookies.\nShe sells 30, so 112 - 30 = 82 are left.\n#### 82"
    seen = set()
    misread_30 = 0
    for salt in "abcdef":
        injected = inject_error(solution, 1, salt, question=question, kinds={"operand_misread": 1})
        assert injected is not None and injected.kind == "operand_misread"
        assert all(c.holds for line in injected.text.splitlines() for c in find_claims(line))
        assert extract_final_answer(injected.text) != "82"
        before, after = solution.splitlines(), injected.text.splitlines()
        assert injected.step == 1 + next(
            i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b
        )
        seen.add(after[0])
        if "sells 32" in after[1]:  # 30 read as 32: every use of it changes, not only the first
            misread_30 += 1
            assert "- 32 =" in after[1]
    assert len(seen) > 1 and misread_30  # the check above ran


def test_wrong_operation_swaps_the_operator_and_recomputes() -> None:
    injected = _only("wrong_operation")
    assert injected is not None
    before, after = SOLUTION.splitlines(), injected.text.splitlines()
    step = injected.step
    assert step is not None and before[: step - 1] == after[: step - 1]
    assert before[step - 1] != after[step - 1]
    assert any(op in after[step - 1] for op in ("÷", " - ", " + ", "/")), after


def test_skipped_step_drops_a_line_and_goes_on_with_the_stale_value() -> None:
    question = "She has 40 apples, eats 15, buys 12 more and shares them among 37 friends."
    solution = (
        "She has 40 - 15 = 25 apples left.\nShe buys more: 25 + 12 = 37 apples.\n"
        "Half go to Tom: 37 * 2 = 74 halves.\n#### 74"
    )
    injected = inject_error(solution, 1, "k", question=question, kinds={"skipped_step": 1})
    assert injected is not None and injected.kind == "skipped_step"
    lines = injected.text.splitlines()
    assert len(lines) == 3
    assert injected.step is not None and injected.step <= 2
    assert all(c.holds for line in lines for c in find_claims(line))


def test_intermediate_answer_stops_early() -> None:
    injected = _only("intermediate_answer")
    assert injected is not None
    steps = split_steps(injected.text)
    assert injected.step == len(steps) and steps[-1].text.startswith("####")
    assert extract_final_answer(injected.text) in ("24", "34")


def test_off_by_one_counts_one_too_many_or_few() -> None:
    solution = "The fence has 30 / 5 = 6 gaps between posts.\nEach gap needs 6 * 2 = 12 boards.\n#### 12"
    injected = inject_error(
        solution, 1, "f", question="A 30 m fence has a post every 5 m.", kinds={"off_by_one": 1}
    )
    assert injected is not None and injected.step == 1
    first = injected.text.splitlines()[0]
    assert "30 / 5 + 1 = 7" in first or "30 / 5 - 1 = 5" in first


def test_final_answer_kind_points_at_the_answer_line() -> None:
    injected = _only("final_answer")
    assert injected is not None
    assert injected.text.splitlines()[:3] == SOLUTION.splitlines()[:3]
    assert injected.text.splitlines()[3] != "#### 58"
    assert injected.step == 4


def test_every_kind_on_the_bundled_sample_labels_the_first_changed_step() -> None:
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for problem in _sample()[:80]:
        original = [s.text for s in split_steps(problem.solution or "")]
        for kind in ERROR_KINDS:
            injected = inject_error(
                problem.solution or "", 1, problem.id, question=problem.question, kinds={kind: 1}
            )
            if injected is None:
                continue
            counts[kind] += 1
            steps = [s.text for s in split_steps(injected.text)]
            step = injected.step
            assert step is not None and 1 <= step <= len(steps), (kind, problem.id)
            if kind == "intermediate_answer":  # the step it stops in may lose its later lines
                assert steps[: step - 2] == original[: step - 2], (kind, problem.id)
            elif kind != "skipped_step":
                assert steps[: step - 1] == original[: step - 1], (kind, problem.id)
                assert steps[step - 1] not in original[step - 1 : step], (kind, problem.id)
    assert all(counts[k] >= 5 for k in ERROR_KINDS), counts


def test_values_stay_plausible_counts_stay_positive_integers() -> None:
    for problem in _sample()[:80]:
        for variant in (1, 2, 3):
            injected = inject_error(problem.solution or "", variant, problem.id, question=problem.question)
            if injected is None:
                continue
            for line_before, line_after in zip(
                problem.solution.splitlines(), injected.text.splitlines(), strict=False
            ):
                for before, after in zip(find_claims(line_before), find_claims(line_after), strict=False):
                    if before.stated.denominator == 1 and before.stated > 0 and after.holds:
                        assert after.stated > 0 and after.stated.denominator == 1, (problem.id, line_after)


def test_kind_weights_choose_the_kinds() -> None:
    seen = set()
    for variant in range(1, 30):
        injected = inject_error(
            SOLUTION, variant, "w", question=QUESTION, kinds={"computation": 1, "final_answer": 3}
        )
        assert injected is not None
        seen.add(injected.kind)
    assert seen == {"computation", "final_answer"}
    assert (
        inject_error(SOLUTION, 1, "w", question=QUESTION, kinds={"computation": 0, "final_answer": 1}).kind
        == "final_answer"
    )


def test_no_numbers_no_variant() -> None:
    assert inject_error("I do not know.", 1, "p") is None


def test_config_error_kinds_default_to_every_kind_and_are_checked() -> None:
    assert set(StudentsConfig().error_kinds) == set(ERROR_KINDS)
    assert StudentsConfig(error_kinds={"off_by_one": 2}).error_kinds == {"off_by_one": 2}
    for bad in ({"typo": 1}, {"off_by_one": -1}, {"off_by_one": 0}):
        with pytest.raises(ValueError):
            StudentsConfig(error_kinds=bad)


def test_config_error_kinds_typo_is_one_user_error_line(tmp_path) -> None:
    from critique_synth.config import load_config

    path = tmp_path / "run.toml"
    path.write_text("[students.error_kinds]\nof_by_one = 1\n")
    with pytest.raises(UserError, match="error_kinds"):
        load_config(path, {})


def test_inject_student_labels_the_variant_it_makes() -> None:
    problem = Problem(id="p", question=QUESTION, answer="58", solution=SOLUTION)
    student = InjectStudent(3, {"wrong_operation": 1})
    samples = student.plan(problem)
    assert [s.index for s in samples] == [0, 1, 2]
    assert samples[1].key != InjectStudent(3, {"computation": 1}).plan(problem)[1].key
    assert samples[0].key == InjectStudent(3, {"computation": 1}).plan(problem)[0].key
    reference = asyncio.run(student.respond(problem, samples[0]))
    assert (reference.process_correct, reference.first_error_step, reference.error_kind) == (True, None, None)
    variant = asyncio.run(student.respond(problem, samples[1]))
    assert variant.process_correct is False and variant.error_kind == "wrong_operation"
    assert variant.first_error_step is not None and variant.label_source == "inject"
    assert variant.source == "inject:wrong_operation"


def test_a_variant_whose_final_answer_is_still_right_is_labelled_wrong_by_process() -> None:
    rows = [r for r in calibration_rows(160) if r["error_kind"] and r["final_correct"]]
    assert rows, "the calibration set should hold errors that do not change the final answer"
    assert all(r["process_correct"] is False and r["first_error_step"] for r in rows)


def test_calibration_rows_are_deterministic_and_cover_every_kind() -> None:
    rows = calibration_rows(90, seed=3)
    assert rows == calibration_rows(90, seed=3)
    assert rows != calibration_rows(90, seed=4)
    assert len(rows) == 90 and len({r["id"] for r in rows}) == 90
    assert sum(r["process_correct"] for r in rows) == 45  # half clean, as in ProcessBench's sets
    kinds = {r["error_kind"] for r in rows}
    assert kinds == {None, *ERROR_KINDS}
    for row in rows:
        assert set(row) == {
            "id",
            "question",
            "answer",
            "response",
            "process_correct",
            "first_error_step",
            "error_kind",
            "final_correct",
        }
        assert row["process_correct"] == (row["error_kind"] is None)
        assert (row["first_error_step"] is None) == row["process_correct"]
