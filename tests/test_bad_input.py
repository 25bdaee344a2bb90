"""The bad-input corpus (tests/data/bad/, see its README): each case gets its documented error or
handling, and an earlier run in the same directory is never damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from critique_synth.config import TeacherConfig
from critique_synth.records import Problem
from critique_synth.teachers import LLMTeacher

from .conftest import read_jsonl, run_cli

BAD = Path(__file__).parent / "data" / "bad"

STOPS = {
    "empty.jsonl": "no problems in it (empty source)",
    "binary.jsonl": "binary.jsonl:1: not UTF-8 text; re-encode the file as UTF-8",
    "malformed.jsonl": "malformed.jsonl:3: malformed JSON",
    "wrong_fields.jsonl": "no field 'question' (has: gold, prompt); map it with problems.fields.question",
    "non_utf8.jsonl": "non_utf8.jsonl:2: not UTF-8 text",
    "unknown_key.toml": "unknown key 'teacher.concurency'",
    "negative_concurrency.toml": "'teacher.endpoint.concurrency': Input should be greater than or equal to 1",
}


@pytest.fixture
def earlier_run(tmp_path: Path) -> tuple[Path, bytes]:
    """A run directory that already holds work, which no later failure may touch."""
    out = tmp_path / "run"
    assert run_cli("generate", "--out", str(out), "--limit", "3", "--no-export").returncode == 0
    return out, (out / "critiques.jsonl").read_bytes()


def _args(name: str, out: Path) -> list[str]:
    source = ["--config", str(BAD / name)] if name.endswith(".toml") else ["--problems", str(BAD / name)]
    return ["generate", "--out", str(out), *source, "--allow-config-change", "--no-export"]


@pytest.mark.parametrize("name", list(STOPS))
def test_bad_input_stops_with_a_clear_line(name: str, earlier_run: tuple[Path, bytes]) -> None:
    out, before = earlier_run
    result = run_cli(*_args(name, out))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and STOPS[name] in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "critiques.jsonl").read_bytes().startswith(before)


def test_rows_before_a_malformed_line_are_still_done(earlier_run: tuple[Path, bytes]) -> None:
    out, before = earlier_run
    run_cli(*_args("malformed.jsonl", out))
    added = read_jsonl(out / "critiques.jsonl")[len(before.splitlines()) :]
    assert sorted({r["problem"]["id"] for r in added}) == ["b1", "b2"]


@pytest.mark.parametrize(
    ("name", "reason", "rejected_id", "done_ids"),
    [
        ("huge_question.jsonl", "input_too_long", "b2", {"b1", "b3"}),
        ("duplicate_ids.jsonl", "duplicate_id", "b1", {"b1", "b2", "b3"}),
    ],
)
def test_bad_rows_are_rejected_and_the_rest_runs(
    name: str, reason: str, rejected_id: str, done_ids: set[str], earlier_run: tuple[Path, bytes]
) -> None:
    out, before = earlier_run
    result = run_cli(*_args(name, out))
    assert result.returncode == 0, result.stderr
    assert (out / "critiques.jsonl").read_bytes().startswith(before)
    rejected = [r for r in read_jsonl(out / "rejected.jsonl") if r["stage"] == "input"]
    assert [(r["reason"], r["problem_id"]) for r in rejected] == [(reason, rejected_id)]
    added = read_jsonl(out / "critiques.jsonl")[len(before.splitlines()) :]
    assert {r["problem"]["id"] for r in added} == done_ids
    assert all(len(r["problem"]["question"]) < 1000 for r in added)
    again = run_cli(*_args(name, out))
    assert again.returncode == 0
    assert len([r for r in read_jsonl(out / "rejected.jsonl") if r["stage"] == "input"]) == 1


def test_responses_that_address_the_grader_do_not_steer_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "generate", "--out", str(out), "--problems", str(BAD / "injection.jsonl"), "--students", "dataset"
    )
    assert result.returncode == 0, result.stderr
    verdicts = {r["problem"]["id"]: r["critique"]["verdict"] for r in read_jsonl(out / "critiques.jsonl")}
    assert verdicts == {"i1": "wrong", "i2": "right"}
    teacher = LLMTeacher(TeacherConfig(kind="llm", model="m"), client=None)  # type: ignore[arg-type]
    row = read_jsonl(BAD / "injection.jsonl")[0]
    user = teacher.messages(Problem(id="i1", question=row["question"]), row["response"])[1]["content"]
    assert user.count("</solution>") == 1 and user.rstrip().endswith("</solution>")
    assert "<\\/solution>" in user
