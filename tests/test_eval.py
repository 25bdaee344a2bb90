"""`critique-synth eval`: held-out default problems, exported test splits, progress, one result line."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

import critique_synth
from critique_synth.cli import app
from critique_synth.sources import SAMPLE_PATH
from critique_synth.testserver import MockLLMServer
from critique_synth.trainer import EvalOptions, evaluate
from critique_synth.trainer.evaluate import EVAL_PATH, problem_source
from critique_synth.trainer.progress import CountProgress
from critique_synth.trainer.tiny import make_model

from .conftest import read_jsonl


def invoke(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["eval", *args], env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == code, f"{result.output}\n{result.exception!r}"
    return result


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_bundled_eval_set_is_held_out_from_the_training_sample() -> None:
    training = {row["question"] for row in read_jsonl(SAMPLE_PATH)}
    rows = read_jsonl(EVAL_PATH)
    assert len(rows) == 200
    assert all(set(row) == {"id", "question", "answer", "solution"} for row in rows)
    assert len({row["id"] for row in rows}) == len({row["question"] for row in rows}) == 200
    assert not training & {row["question"] for row in rows}
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", row["answer"]) for row in rows)
    assert problem_source(EvalOptions(model="m")).path == str(EVAL_PATH)  # and eval defaults to it


def test_eval_help_names_the_default() -> None:
    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())  # rich wraps help inside a box
    assert "default: the bundled held-out set (eval_problems.jsonl), which shares no question" in text


def test_eval_scores_answer_forms_and_prints_the_result_once(
    server: MockLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    problems = [
        ("q1", "How many pears, case one?", "42", "So the total is \\boxed{42}."),
        ("q2", "How many pears, case two?", "17", "Adding up:\n#### 17"),
        ("q3", "How many pears, case three?", "6", "The answer is 5."),
        ("q4", "What fraction, case four?", "0.5", "It is \\boxed{\\frac{1}{2}}."),
    ]
    path = write_jsonl(
        tmp_path / "problems.jsonl", [{"id": i, "question": q, "answer": a} for i, q, a, _ in problems]
    )
    server.config.answers = {q: reply for _, q, _, reply in problems}
    out = tmp_path / "eval.jsonl"
    result = invoke("--model", server.base_url, "--data", str(path), "--out", str(out))
    assert result.stdout.count("accuracy") == 1 and "accuracy 0.7500 (3/4)" in result.stdout
    assert "accuracy" not in result.stderr + caplog.text
    assert "answered: 4/4 (100%)" in caplog.text  # progress as log lines when not a terminal
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert [rows[i]["correct"] for i in ("q1", "q2", "q3", "q4")] == [True, True, False, True]
    assert rows["q2"]["final_answer"] == "17"


def test_eval_reads_the_test_split_of_an_export(server: MockLLMServer, tmp_path: Path) -> None:
    run = critique_synth.generate({"limit": 20, "export": {"test_size": 0.3}}, out=tmp_path / "run")
    assert run.dataset is not None
    test = pq.read_table(next((run.dataset.path / "data" / "cft").glob("test-*.parquet"))).to_pylist()
    gold = {row["problem_id"]: (row["question"], row["gold_answer"]) for row in test}
    assert len(test) > len(gold) > 2  # several responses per problem; each problem is scored once
    right = sorted(gold)[: len(gold) // 2]
    server.config.answers = {
        question: f"The answer is \\boxed{{{answer if pid in right else answer + '1'}}}."
        for pid, (question, answer) in gold.items()
    }
    out = tmp_path / "eval.jsonl"
    result = invoke(
        "--model", server.base_url, "--data", str(run.dataset.path), "--split", "test", "--out", str(out)
    )
    assert f"({len(right)}/{len(gold)})" in result.stdout
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == sorted(gold)
    assert all(r["gold"] == gold[r["id"]][1] and r["correct"] == (r["id"] in right) for r in rows)


def test_eval_maps_columns_with_field(server: MockLLMServer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "How many pears, alone?", "target": "9"}])
    server.config.answers = {"How many pears, alone?": "#### 9"}
    out = tmp_path / "eval.jsonl"
    fields = ("--field", "question=prompt", "--field", "answer=target")
    result = invoke("--model", server.base_url, "--data", str(path), *fields, "--out", str(out))
    assert "accuracy 1.0000 (1/1)" in result.stdout
    bad = invoke("--model", server.base_url, "--data", str(path), "--field", "gold=target", code=2)
    assert "unknown role" in bad.output and "Traceback" not in bad.output


def test_an_export_without_the_split_says_how_to_make_it(tmp_path: Path) -> None:
    run = critique_synth.generate({"limit": 4}, out=tmp_path / "run")
    assert run.dataset is not None
    result = invoke("--model", "unused", "--data", str(run.dataset.path), code=2)
    assert "has no 'test' split" in result.output and "--test-size" in result.output


def test_progress_is_a_bar_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with CountProgress("answered", 3, console) as progress:
        for _ in range(3):
            progress.advance()
    assert "answered" in screen.getvalue() and "3/3" in screen.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("tiny") / "model")


def test_local_eval_batches_like_single_requests(tiny: Path, tmp_path: Path) -> None:
    runs = {}
    for batch_size in (1, 3):
        out = tmp_path / f"eval-{batch_size}.jsonl"
        evaluate(EvalOptions(model=str(tiny), limit=3, batch_size=batch_size, max_new_tokens=6, out=out))
        runs[batch_size] = [r["response"] for r in read_jsonl(out)]
    assert len(runs[1]) == 3 and runs[1] == runs[3]
