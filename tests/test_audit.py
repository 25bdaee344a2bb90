"""`critique-synth audit`, labels from data, ProcessBench rows and the `generate` gate, in process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.audit import AUDIT_JSON, AUDIT_ROWS
from critique_synth.cli import app
from critique_synth.config import FieldMap, ProblemsConfig
from critique_synth.errors import UserError
from critique_synth.processbench import join_steps
from critique_synth.records import Problem
from critique_synth.sources import iter_problems
from critique_synth.steps import split_steps
from critique_synth.students import DatasetStudent
from critique_synth.testserver import MockLLMServer

from .conftest import SECRET, read_jsonl

PROCESSBENCH = Path(__file__).parent / "data" / "processbench_sample.jsonl"
ENV = {"OPENAI_API_KEY": SECRET, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def critique(verdict: str, step: int | None = None) -> str:
    return json.dumps(
        {
            "analysis": "Checked each step.",
            "first_wrong_step": step,
            "corrected_answer": None,
            "verdict": verdict,
        }
    )


# One canned critique per ProcessBench sample row, keyed by the marker in its question.
# Correct rows: ALPHA, BRAVO right (hits), CHARLIE called wrong (miss) -> 2/3.
# Erroneous rows: DELTA, ECHO exact (hits), FOXTROT wrong step, GOLF called right, HOTEL unparseable
# (a reject) -> 2/5 exact, 3/5 by verdict; F1 = 2 * 0.4 * (2/3) / (0.4 + 2/3) = 0.5.
REPLIES = {
    "Marker ALPHA": critique("right"),
    "Marker BRAVO": critique("right"),
    "Marker CHARLIE": critique("wrong", 1),
    "Marker DELTA": critique("wrong", 1),
    "Marker ECHO": critique("wrong", 2),
    "Marker FOXTROT": critique("wrong", 1),
    "Marker GOLF": critique("right"),
    "Marker HOTEL": "I think it is fine, probably.",
}


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def one_attempt(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "teacher.toml"
    path.write_text(f'[teacher]\nattempts = 1\nmode = "json"\n{extra}', encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_audit_without_arguments_scores_the_builtin_critic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("audit")
    assert result.exit_code == 0, result.output
    assert "ProcessBench F1" in result.output and "builtin" in result.output
    summary = json.loads((tmp_path / "runs/audit/builtin-calibration" / AUDIT_JSON).read_text())
    scores = summary["teachers"]["builtin"]
    assert scores["n"] > 50 and scores["erroneous"] > 0 and scores["correct"] > 0
    assert set(scores["by_error_kind"]) >= {"clean", "computation", "final_answer"}
    assert scores["f1"] == pytest.approx(
        2
        * scores["error_accuracy"]
        * scores["correct_accuracy"]
        / (scores["error_accuracy"] + scores["correct_accuracy"])
    )
    rows = read_jsonl(tmp_path / "runs/audit/builtin-calibration" / AUDIT_ROWS)
    assert len(rows) == scores["n"]
    erroneous = [r for r in rows if r["label"] is False]
    exact = sum(r["verdict"] == "wrong" and r["first_wrong_step"] == r["first_error_step"] for r in erroneous)
    assert scores["error_accuracy"] == pytest.approx(exact / len(erroneous))


def test_audit_reads_processbench_as_published(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    result = invoke("audit", "--data", PROCESSBENCH, "--out", out, "--project", "1000")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in read_jsonl(out / AUDIT_ROWS)}
    assert len(rows) == 8
    assert rows["gsm8k-0"]["label"] is True and rows["gsm8k-0"]["first_error_step"] is None
    assert rows["olympiadbench-0"]["first_error_step"] == 3  # published label 2 is 0-based
    assert rows["omnimath-0"]["final_correct"] is True and rows["omnimath-0"]["label"] is False
    assert {r["label_source"] for r in rows.values()} == {"processbench"}
    scores = json.loads((out / AUDIT_JSON).read_text())["teachers"]["builtin"]
    assert (scores["erroneous"], scores["correct"]) == (5, 3)
    assert scores["projection"]["units"] == 1000


def test_processbench_steps_number_as_published() -> None:
    published = [json.loads(line) for line in PROCESSBENCH.read_text().splitlines()]
    problems = {p.id: p for p in iter_problems(ProblemsConfig(path=str(PROCESSBENCH)))}
    for row in published:
        steps = split_steps(problems[row["id"]].response)
        assert len(steps) == len(row["steps"]), row["id"]
        for step, text in zip(steps, row["steps"], strict=True):
            assert step.text.endswith(" ".join(part.strip() for part in text.splitlines() if part.strip()))


def test_join_steps_keeps_bullets_and_indented_steps_apart() -> None:
    steps = ["1. Add the two:\n3 + 4 = 7.", "- then double it: 14.", "    indented: 14 / 2 = 7.", "Answer 7."]
    numbered = split_steps(join_steps(steps))
    assert [s.number for s in numbered] == [1, 2, 3, 4]
    assert numbered[1].text.endswith("- then double it: 14.")
    plain = ["First 3 + 4 = 7.", "- a bullet that is a step", "  an indented step", "Answer 7."]
    assert [s.text for s in split_steps(join_steps(plain))] == [
        "First 3 + 4 = 7.",
        "- a bullet that is a step",
        "an indented step",
        "Answer 7.",
    ]


def test_labels_from_data_reach_the_response(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "1+1?", "answer": "2", "response": "1 + 1 = 2\n#### 2", "ok": "correct"},
        {"id": "b", "question": "2+2?", "answer": "4", "response": "2 + 2 = 5\n#### 5", "ok": 0, "step": 1},
        {
            "id": "c",
            "question": "3+3?",
            "answer": "6",
            "response": "3 + 3 = 6\n#### 6",
            "ok": "wrong",
            "step": "2",
        },
        {"id": "d", "question": "4+4?", "answer": "8", "response": "4 + 4 = 8\n#### 8"},
    ]
    fields = FieldMap(label="ok", first_error_step="step")
    path = write_jsonl(tmp_path / "labelled.jsonl", rows)
    problems = list(iter_problems(ProblemsConfig(path=str(path), fields=fields)))
    student = DatasetStudent()

    def respond(problem: Problem) -> object:
        return asyncio.run(student.respond(problem, student.plan(problem)[0]))

    a, b, c, d = (respond(p) for p in problems)
    assert (a.process_correct, a.first_error_step, a.label_source) == (True, None, "data")
    assert (b.process_correct, b.first_error_step, b.final_correct) == (False, 1, False)
    assert (c.process_correct, c.first_error_step, c.final_correct) == (False, 2, True)
    assert (d.process_correct, d.label_source) == (None, None)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"ok": "maybe"}, "'ok' (label)"),
        ({"step": 0}, "'step' (first_error_step)"),
        ({"ok": 1, "step": 2}, "'ok'"),
    ],
)
def test_bad_labels_name_the_line_and_field(tmp_path: Path, row: dict, field: str) -> None:
    good = {"id": "a", "question": "1+1?", "response": "2"}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, {**good, "id": "b", **row}])
    with pytest.raises(UserError) as caught:
        list(
            iter_problems(
                ProblemsConfig(path=str(path), fields=FieldMap(label="ok", first_error_step="step"))
            )
        )
    assert f"{path}:2: field {field}" in str(caught.value)


def test_audit_reports_the_share_a_teacher_gets_wrong(server: MockLLMServer, tmp_path: Path) -> None:
    server.config.answers = dict(REPLIES)
    out = tmp_path / "audit"
    args = ["audit", "--data", PROCESSBENCH, "--out", out, "--config", one_attempt(tmp_path)]
    result = invoke(*args, "--teacher-model", "judge", "--teacher-base-url", server.base_url)
    assert result.exit_code == 0, result.output
    scores = json.loads((out / AUDIT_JSON).read_text())["teachers"]["llm:judge"]
    assert scores["correct_accuracy"] == pytest.approx(2 / 3)
    assert scores["error_accuracy"] == pytest.approx(2 / 5)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["verdict_error_accuracy"] == pytest.approx(3 / 5)
    assert scores["verdict_f1"] == pytest.approx(2 * 0.6 * (2 / 3) / (0.6 + 2 / 3))
    assert scores["first_step_accuracy"] == pytest.approx(2 / 3)
    assert scores["rejected"] == {"invalid_output": 1}
    assert scores["per_critique"]["prompt_tokens"] > 0
    sent = len(server.log)
    assert invoke(*args, "--teacher-model", "judge", "--teacher-base-url", server.base_url).exit_code == 0
    assert len(server.log) == sent  # a rerun resumes: nothing is asked again


def test_generate_gate_refuses_a_weak_teacher_and_passes_a_good_one(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.answers = dict(REPLIES)
    config = one_attempt(tmp_path, f"[audit]\ndata = {json.dumps(str(PROCESSBENCH))}\n")
    base = ["generate", "--problems", problems_file, "--config", config, "--limit", "2", "--no-export"]
    llm = ["--teacher-model", "judge", "--teacher-base-url", server.base_url]
    refused = tmp_path / "refused"
    result = invoke(*base, *llm, "--out", refused, "--min-audit-f1", "0.6")
    assert result.exit_code == 2
    assert "teacher llm:judge: audit F1 0.500 is below the minimum 0.6" in result.output
    assert str(refused / "audit" / AUDIT_JSON) in result.output
    assert not (refused / "critiques.jsonl").exists()
    sent = len(server.log)
    passed = tmp_path / "passed"
    result = invoke(*base, *llm, "--out", passed, "--min-audit-f1", "0.45")
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(passed / "critiques.jsonl")) > 0
    assert len(server.log) - sent > 8  # the audit (8 rows) and then the run itself
