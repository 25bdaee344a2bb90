"""The bad-input corpus (tests/data/bad/, see its README): each case gets its documented error or
handling, and an earlier run in the same directory is never damaged. The CLI runs in-process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from critique_synth.arithmetic import evaluate, find_claims
from critique_synth.cli import app
from critique_synth.config import TeacherConfig
from critique_synth.critic import builtin_critique
from critique_synth.records import Problem
from critique_synth.teachers import LLMTeacher
from critique_synth.verify import answers_match, check_response

from .conftest import read_jsonl

BAD = Path(__file__).parent / "data" / "bad"

STOPS = {
    "empty.jsonl": "no problems in it (empty source)",
    "binary.jsonl": "binary.jsonl:1: not UTF-8 text; re-encode the file as UTF-8",
    "malformed.jsonl": "malformed.jsonl:3: malformed JSON",
    "wrong_fields.jsonl": "no field 'question' (has: gold, prompt); map it with problems.fields.question",
    "non_utf8.jsonl": "non_utf8.jsonl:2: not UTF-8 text",
    "deep_nesting.jsonl": "deep_nesting.jsonl:2: JSON nested too deeply to read; fix or remove that line",
    "non_text_question.jsonl": "non_text_question.jsonl:2: field 'question' (question) holds a list",
    "unknown_key.toml": "unknown key 'teacher.concurency'",
    "negative_concurrency.toml": "'teacher.endpoint.concurrency': Input should be greater than or equal to 1",
    "ipv6_unclosed.toml": "'teacher.endpoint.base_urls': Value error, 'http://[::1' has a malformed host",
    "port_out_of_range.toml": "'http://localhost:99999/v1': the port must be a number from 1 to 65535",
}


def cli(*args: str | Path) -> Result:
    """The real CLI in this process, offline, with no API key in the environment."""
    env = {"OPENAI_API_KEY": None, "HF_HUB_OFFLINE": "1"}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def earlier_run(tmp_path: Path) -> tuple[Path, bytes]:
    """A run directory that already holds work, which no later failure may touch."""
    out = tmp_path / "run"
    result = cli("generate", "--out", out, "--limit", "3", "--no-export")
    assert result.exit_code == 0, result.output
    return out, (out / "critiques.jsonl").read_bytes()


def _args(name: str, out: Path) -> list[str | Path]:
    source = ["--config", BAD / name] if name.endswith(".toml") else ["--problems", BAD / name]
    return ["generate", "--out", out, *source, "--allow-config-change", "--no-export"]


def _added(out: Path, before: bytes) -> list[dict]:
    return read_jsonl(out / "critiques.jsonl")[len(before.splitlines()) :]


@pytest.mark.parametrize("name", list(STOPS))
def test_bad_input_stops_with_a_clear_line(name: str, earlier_run: tuple[Path, bytes]) -> None:
    out, before = earlier_run
    result = cli(*_args(name, out))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and STOPS[name] in errors[0], result.stderr
    assert (out / "critiques.jsonl").read_bytes().startswith(before)


def test_rows_before_a_malformed_line_are_still_done(earlier_run: tuple[Path, bytes]) -> None:
    out, before = earlier_run
    cli(*_args("malformed.jsonl", out))
    assert sorted({r["problem"]["id"] for r in _added(out, before)}) == ["b1", "b2"]


@pytest.mark.parametrize(
    ("name", "reason", "rejected_id", "done_ids"),
    [
        ("huge_question.jsonl", "input_too_long", "b2", {"b1", "b3"}),
        ("duplicate_ids.jsonl", "duplicate_id", "b1", {"b1", "b2", "b3"}),
        ("lone_surrogate.jsonl", "bad_text", "b2", {"b1", "b3"}),
    ],
)
def test_bad_rows_are_rejected_and_the_rest_runs(
    name: str, reason: str, rejected_id: str, done_ids: set[str], earlier_run: tuple[Path, bytes]
) -> None:
    out, before = earlier_run
    result = cli(*_args(name, out))
    assert result.exit_code == 0, result.exception
    assert (out / "critiques.jsonl").read_bytes().startswith(before)
    rejected = [r for r in read_jsonl(out / "rejected.jsonl") if r["stage"] == "input"]
    assert [(r["reason"], r["problem_id"]) for r in rejected] == [(reason, rejected_id)]
    added = _added(out, before)
    assert {r["problem"]["id"] for r in added} == done_ids
    assert all(len(r["problem"]["question"]) < 1000 for r in added)
    again = cli(*_args(name, out))
    assert again.exit_code == 0
    assert len([r for r in read_jsonl(out / "rejected.jsonl") if r["stage"] == "input"]) == 1


@pytest.mark.parametrize(
    ("name", "done_ids"),
    [("huge_numbers.jsonl", {"b1", "b2", "b3"}), ("deep_parens.jsonl", {"b1", "b2"})],
)
def test_hostile_numbers_and_expressions_are_critiqued(
    name: str, done_ids: set[str], earlier_run: tuple[Path, bytes]
) -> None:
    """Past Python's int digit limit or its recursion limit: unchecked claims, not a crash."""
    out, before = earlier_run
    result = cli(*_args(name, out))
    assert result.exit_code == 0, result.exception
    added = _added(out, before)
    assert {r["problem"]["id"] for r in added} == done_ids
    assert not read_jsonl(out / "rejected.jsonl")


def test_the_checkers_take_hostile_text_from_any_student() -> None:
    """LLM students write text no source screened: the checkers themselves must not crash."""
    big = "9" * 5000
    assert evaluate(["("] * 3000 + ["2"] + [")"] * 3000) is None
    assert evaluate(["-"] * 3000 + ["2"]) is None
    assert evaluate(["10" * 150, "*"] * 20 + ["2"]) is None, "a value past float range is not checked"
    assert evaluate(["(", "2", "+", "3", ")", "*", "4"]) == 20
    assert find_claims(f"2 * {big} = 1{big}") == ()
    assert [c.holds for c in find_claims("2 * 4 = 9")] == [False]
    assert answers_match(big, big) and not answers_match(big, "9")
    assert check_response(f"So 2 * 3 = 6.\n#### {big}", big) == (big, True)
    critique = builtin_critique(
        Problem(id="x", question="q", answer="8"), "(" * 3000 + "2 * 4" + ")" * 3000 + " = 8"
    )
    assert critique.verdict == "right"


def test_a_config_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    result = cli(
        "generate", "--out", tmp_path / "run", "--config", BAD / "bom.toml", "--limit", "2", "--no-export"
    )
    assert result.exit_code == 0, result.stderr
    assert len(read_jsonl(tmp_path / "run" / "critiques.jsonl")) == 4


def test_responses_that_address_the_grader_do_not_steer_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = cli("generate", "--out", out, "--problems", BAD / "injection.jsonl", "--students", "dataset")
    assert result.exit_code == 0, result.stderr
    verdicts = {r["problem"]["id"]: r["critique"]["verdict"] for r in read_jsonl(out / "critiques.jsonl")}
    assert verdicts == {"i1": "wrong", "i2": "right"}
    row = read_jsonl(BAD / "injection.jsonl")[0]
    user = _teacher_user_message(row)
    assert user.count("</solution>") == 1 and user.rstrip().endswith("</solution>")
    assert "<\\/solution>" in user


_ANY_DELIMITER = re.compile(r"<\s*/?\s*(?:question|solution)\b[^<>]*>", re.IGNORECASE)


@pytest.mark.parametrize("row", read_jsonl(BAD / "tag_variants.jsonl"), ids=lambda row: row["id"])
def test_delimiters_in_any_case_or_spacing_are_escaped(row: dict) -> None:
    user = _teacher_user_message(row)
    assert _ANY_DELIMITER.findall(user) == ["<question>", "</question>", "<solution>", "</solution>"]
    closing = re.search(r"<\s*/\s*solution[^>]*>", row["response"], re.IGNORECASE)
    assert closing is not None and closing.group().replace("<", "<\\", 1) in user


def _teacher_user_message(row: dict) -> str:
    teacher = LLMTeacher(TeacherConfig(kind="llm", model="m"), client=None)  # type: ignore[arg-type]
    problem = Problem(id=row["id"], question=row["question"], answer=row["answer"])
    return teacher.messages(problem, row["response"])[1]["content"]
