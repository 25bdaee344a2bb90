"""`critique-synth generate` end to end: the real CLI in a child process, a real server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest

from critique_synth.config import TeacherConfig
from critique_synth.records import CritiqueRecord, Problem, parse_conclusion
from critique_synth.teachers import LLMTeacher
from critique_synth.testserver import MockLLMServer, body_fingerprint

from .conftest import SECRET, cli_env, invoke, read_jsonl, run_cli


def llm_args(server: MockLLMServer, out: Path, problems: Path | None, *extra: str) -> list[str]:
    args = [
        "generate",
        "--out",
        str(out),
        "--teacher-model",
        "teacher-m",
        "--teacher-base-url",
        server.base_url,
    ]
    if problems is not None:
        args += ["--problems", str(problems)]
    return [*args, *extra]


def fast_config(tmp_path: Path, **endpoint: object) -> Path:
    """Short timeouts so fault tests finish quickly."""
    settings = {"timeout": 2, "max_retries": 6, **endpoint}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    path = tmp_path / "fast.toml"
    path.write_text(f"[teacher.endpoint]\n{lines}\n[students.endpoint]\n{lines}\n")
    return path


def start_cli(args: list[str], capture: bool = False) -> subprocess.Popen[str]:
    """The CLI in the background, to be interrupted."""
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "critique_synth", *args],
        env=cli_env(),
        stdout=stream,
        stderr=stream,
        text=True,
    )


def wait_for_records(out: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(read_jsonl(out / "critiques.jsonl")) < count:
        time.sleep(0.05)


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def check_contract(out: Path, units: int) -> list[dict]:
    """Every unit exactly once, each text ending with a conclusion that matches its verdict."""
    records = read_jsonl(out / "critiques.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    keys = [r["key"] for r in records] + [r["key"] for r in rejected]
    assert len(keys) == len(set(keys)) == units
    for record in records:
        CritiqueRecord.model_validate(record)
        verdict = record["critique"]["verdict"]
        assert record["text"].endswith(f"Conclusion: {verdict} [END]")
        assert parse_conclusion(record["text"]) == verdict
    return records


def test_offline_default_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("generate", "--out", str(out), "--limit", "25")
    assert result.returncode == 0, result.stderr
    assert "built-in offline critic" in result.stderr
    records = check_contract(out, 50)
    assert Counter(r["response"]["process_correct"] for r in records) == {True: 25, False: 25}
    assert all(r["reference"] == "process" for r in records)
    # the built-in critic sees every error that shows in the arithmetic or the final answer; an
    # injected error that leaves the final answer right may pass it, nothing else may
    visible = [
        r for r in records if r["response"]["process_correct"] or r["response"]["final_correct"] is False
    ]
    assert len(visible) >= 45 and all(r["agrees"] is True for r in visible)
    summary = json.loads((out / "run.json").read_text())
    assert summary["counts"]["critiques"] == 50 and summary["finished"] is True
    assert summary["teacher"] == "builtin"
    dataset = datasets.load_dataset(str(out / "dataset"))["train"]
    assert dataset.column_names[:3] == ["instruction", "input", "output"]
    assert dataset.num_rows == 50
    row = dataset[0]
    assert row["instruction"] == "Please critique whether the following solution to the question is correct."
    assert row["input"].startswith("Question:\n") and "\n\nSolution:\n" in row["input"]


def test_llm_teacher_with_faults(server: MockLLMServer, problems_file: Path, tmp_path: Path) -> None:
    server.config.faults = {"429": 0.15, "500": 0.1, "drop": 0.05, "invalid_json": 0.1, "bad_schema": 0.05}
    server.config.seed = 7
    out = tmp_path / "run"
    result = run_cli(*llm_args(server, out, problems_file, "--config", str(fast_config(tmp_path))))
    assert result.returncode == 0, result.stderr
    check_contract(out, 12)
    summary = json.loads((out / "run.json").read_text())["counts"]
    transport_faults = sum(1 for e in server.log if e["fault"] in ("429", "500", "drop"))
    assert transport_faults > 0
    assert summary["retries"] == transport_faults
    assert summary["requests"] == len(server.log)
    repaired = [r for r in read_jsonl(out / "critiques.jsonl") if r["attempts"] > 1]
    rejected = read_jsonl(out / "rejected.jsonl")
    assert repaired or rejected
    for rejection in rejected:
        assert rejection["reason"] and rejection["detail"] and rejection["raw"] is not None


def test_all_attempts_invalid_ends_in_rejects(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.faults = {"bad_schema": 1.0}
    out = tmp_path / "run"
    result = run_cli(*llm_args(server, out, problems_file))
    assert result.returncode == 3, result.stderr  # a run that ends with no critique says so
    rejected = read_jsonl(out / "rejected.jsonl")
    assert len(rejected) == 12 and not read_jsonl(out / "critiques.jsonl")
    assert {r["reason"] for r in rejected} == {"invalid_output"}
    assert all("verdict" in r["detail"] and r["attempts"] == 3 for r in rejected)


def test_rerun_sends_nothing_again(server: MockLLMServer, problems_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = llm_args(server, out, problems_file)
    assert run_cli(*args).returncode == 0
    sent = len(server.log)
    before = (out / "critiques.jsonl").read_bytes()
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert len(server.log) == sent
    assert (out / "critiques.jsonl").read_bytes() == before
    assert "12 already done" in second.stderr


def test_sigkill_half_way_then_resume(server: MockLLMServer, tmp_path: Path) -> None:
    server.config.latency = 0.1
    out = tmp_path / "run"
    args = llm_args(server, out, None, "--limit", "40", "--concurrency", "4")
    child = start_cli(args)
    wait_for_records(out, 20)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    text = (out / "critiques.jsonl").read_text()
    finished = [CritiqueRecord.model_validate_json(line) for line in text.split("\n")[:-1]]
    assert 20 <= len(finished) < 80
    sent_before = len(server.log)
    server.config.latency = 0.0
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    check_contract(out, 80)
    teacher = LLMTeacher(TeacherConfig(kind="llm", model="teacher-m"), client=None)  # type: ignore[arg-type]
    resent = set(server.fingerprints()[sent_before:])
    for record in finished:
        body = {
            "model": "teacher-m",
            "messages": teacher.messages(record.problem, record.response.text),
            "temperature": 0.3,
            "top_p": 0.95,
            "max_tokens": 3200,
        }
        assert body_fingerprint(body) not in resent, record.key
    assert len(server.log) - sent_before == 80 - len(finished)


def test_half_written_line_is_dropped_and_redone(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("generate", "--out", str(out), "--limit", "5", "--no-export").returncode == 0
    path = out / "critiques.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    result = run_cli("generate", "--out", str(out), "--limit", "5", "--no-export")
    assert result.returncode == 0, result.stderr
    assert "half-written" in result.stderr

    def without_time(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "created_at"} for r in records]

    original = [json.loads(line) for line in lines]
    assert without_time(check_contract(out, 10)) == without_time(original)


def test_changed_config_is_refused_unless_allowed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("generate", "--out", str(out), "--limit", "5").returncode == 0
    before = snapshot(out)
    refused = run_cli("generate", "--out", str(out), "--limit", "5", "--samples", "3")
    assert refused.returncode == 2
    assert "different config" in refused.stderr and "--allow-config-change" in refused.stderr
    assert snapshot(out) == before
    allowed = run_cli(
        "generate", "--out", str(out), "--limit", "5", "--samples", "3", "--allow-config-change"
    )
    assert allowed.returncode == 0, allowed.stderr
    check_contract(out, 15)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


BAD_INPUTS = {
    "missing file": (lambda d: ["--problems", str(d / "nope.jsonl")], "nope.jsonl: problem file not found"),
    "malformed line": (
        lambda d: [
            "--problems",
            str(
                _write(
                    d / "bad.jsonl", '{"question": "1+1?", "answer": "2", "solution": "1 + 1 = 2"}\n{oops\n'
                )
            ),
        ],
        "bad.jsonl:2: malformed JSON",
    ),
    "missing field": (
        lambda d: ["--problems", str(_write(d / "p.jsonl", '{"prompt": "1+1?"}\n'))],
        "no field 'question' (has: prompt); map it with problems.fields.question",
    ),
    "empty question": (
        lambda d: [
            "--problems",
            str(_write(d / "p.jsonl", '{"question": "  ", "answer": "1", "solution": "1"}\n')),
        ],
        "empty question",
    ),
    "unknown teacher kind": (lambda d: ["--teacher", "oracle"], "'teacher.kind'"),
    "unreachable endpoint": (
        lambda d: ["--teacher-model", "m", "--teacher-base-url", "http://127.0.0.1:9/v1"],
        "cannot reach http://127.0.0.1:9/v1",
    ),
    "missing API key": (lambda d: ["--teacher-model", "gpt-4o"], "needs an API key: set the OPENAI_API_KEY"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path, case: str) -> None:
    make_args, message = BAD_INPUTS[case]
    env = cli_env()
    if case == "missing API key":
        env.pop("OPENAI_API_KEY")
    out = tmp_path / "run"
    result = invoke("generate", "--out", str(out), *make_args(tmp_path), env=env)  # in-process
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_midway_keeps_what_was_done(tmp_path: Path) -> None:
    rows = [
        {
            "question": f"What is {i} + {i}?",
            "answer": str(2 * i),
            "solution": f"{i} + {i} = {2 * i}\n#### {2 * i}",
        }
        for i in range(1, 4)
    ]
    path = _write(tmp_path / "p.jsonl", "".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    out = tmp_path / "run"
    result = run_cli("generate", "--out", str(out), "--problems", str(path))
    assert result.returncode == 2
    assert "p.jsonl:4: malformed JSON" in result.stderr
    check_contract(out, 6)


def test_failed_start_leaves_an_existing_run_intact(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert run_cli(*llm_args(server, out, problems_file)).returncode == 0
    before = snapshot(out)
    args = llm_args(server, out, problems_file)
    args[args.index(server.base_url)] = "http://127.0.0.1:9/v1"
    result = run_cli(*args)
    assert result.returncode == 2 and "cannot reach" in result.stderr
    assert snapshot(out) == before


def test_dry_run_calls_nothing(server: MockLLMServer, problems_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(*llm_args(server, out, problems_file, "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert "first teacher prompt" in result.stdout
    assert "<solution>" in result.stdout and "--- system ---" in result.stdout
    assert server.log == []
    assert not out.exists()


def test_text_mode_teacher(server: MockLLMServer, problems_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(*llm_args(server, out, problems_file, "--teacher-mode", "text"))
    assert result.returncode == 0, result.stderr
    check_contract(out, 12)
    assert {e["kind"] for e in server.log} == {"teacher_text"}


def test_llm_students_are_sampled_cached_and_checked(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = llm_args(
        server,
        out,
        problems_file,
        "--student-model",
        "s1",
        "--student-model",
        "s2",
        "--student-base-url",
        server.base_url,
        "--samples",
        "2",
    )
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    records = check_contract(out, 24)
    assert Counter(e["kind"] for e in server.log) == {"student": 12, "teacher_json": 24}  # n=2 a request
    assert len(read_jsonl(out / "responses.jsonl")) == 24
    assert {r["response"]["source"] for r in records} == {"llm:s1", "llm:s2"}
    assert all(r["response"]["final_correct"] is not None for r in records)
    # sampled responses carry no step labels: verdicts are checked against the final answer
    assert all(r["reference"] == "final_answer" for r in records)
    assert all(
        r["agrees"] == ((r["critique"]["verdict"] == "right") == r["response"]["final_correct"])
        for r in records
    )
    assert {r["agrees"] for r in records} == {True, False}  # the test teacher misses some errors
    sent = len(server.log)
    assert run_cli(*args).returncode == 0
    assert len(server.log) == sent


def test_secrets_never_reach_files_or_output(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.faults = {"401": 0.3}
    out = tmp_path / "run"
    result = run_cli(*llm_args(server, out, problems_file, "--verbose"))
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out / "rejected.jsonl"), "some 401s should have been rejected"
    assert SECRET not in result.stdout + result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_ctrl_c_stops_cleanly_and_resumes(server: MockLLMServer, tmp_path: Path) -> None:
    server.config.latency = 0.1
    out = tmp_path / "run"
    args = llm_args(server, out, None, "--limit", "30", "--concurrency", "2")
    child = start_cli(args, capture=True)
    wait_for_records(out, 5)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr
    assert json.loads((out / "run.json").read_text())["finished"] is False
    server.config.latency = 0.0
    assert run_cli(*args).returncode == 0
    check_contract(out, 60)


def test_shards_split_the_job_and_merge_at_export(problems_file: Path, tmp_path: Path) -> None:
    for i in range(2):
        result = run_cli(
            "generate",
            "--out",
            str(tmp_path / f"s{i}"),
            "--problems",
            str(problems_file),
            "--shard",
            f"{i}/2",
        )
        assert result.returncode == 0, result.stderr
    counts = [len(read_jsonl(tmp_path / f"s{i}" / "critiques.jsonl")) for i in range(2)]
    assert sum(counts) == 12 and all(counts)
    merged = tmp_path / "merged"
    result = run_cli(
        "export", str(tmp_path / "s0"), str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(merged)
    )
    assert result.returncode == 0, result.stderr
    dataset = datasets.load_dataset(str(merged))["train"]
    assert dataset.num_rows == 12
    assert len(set(dataset["key"])) == 12


def test_library_api(
    server: MockLLMServer, problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import critique_synth

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    config = {
        "problems": {"path": str(problems_file)},
        "teacher": {"kind": "llm", "model": "teacher-m", "endpoint": {"base_urls": [server.base_url]}},
    }
    result = critique_synth.generate(config, out=tmp_path / "run")
    assert result.stats.critiques == 12
    assert result.dataset is not None and result.dataset.rows == 12

    async def collect() -> list:
        return [r async for r in critique_synth.agenerate(config, out=tmp_path / "run2")]

    records = asyncio.run(collect())
    assert len(records) == 12
    assert all(isinstance(r, critique_synth.CritiqueRecord) for r in records)
    assert isinstance(records[0].problem, Problem)
