"""The dry run's estimate: units, requests, tokens and cost, with no key and no request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.config import RunConfig
from critique_synth.estimate import TYPICAL_CRITIQUE, estimate, render

TEACHER = {"kind": "llm", "model": "gpt-4o", "endpoint": {"base_urls": ["https://api.openai.com/v1"]}}


def test_dry_run_prints_the_estimate_without_a_key(
    problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["generate", "--dry-run", "--out", str(tmp_path / "run"), "--problems", str(problems_file)]
    result = CliRunner().invoke(app, [*args, "--teacher-model", "gpt-4o", "--batch"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "units: 12 (6 problems" in out
    assert "requests: 13 (including 5% expected repair retries)" in out
    assert "prompt tokens:" in out and ("characters / 4" in out or "tiktoken" in out)
    assert "at most 40,320" in out  # 12.6 requests x max_tokens 3,200
    assert "cost online: $" in out and "cost batch: $" in out and "<- this run" in out
    assert not (tmp_path / "run").exists()  # nothing written


def test_batch_costs_half_and_unknown_price_is_never_zero(problems_file: Path) -> None:
    config = RunConfig.model_validate({"problems": {"path": str(problems_file)}, "teacher": TEACHER})
    est = estimate(config)
    online, batch = est.cost(False), est.cost(True)
    assert online and batch and online[0] > 0
    assert batch == pytest.approx((online[0] / 2, online[1] / 2))
    assert online[0] < online[1]
    teacher = est.parts[0]
    assert teacher.completion_typical == pytest.approx(TYPICAL_CRITIQUE["full"] * teacher.requests)

    unknown = config.model_copy(update={"teacher": config.teacher.model_copy(update={"model": "mystery"})})
    lines = render(estimate(unknown))
    assert est.cost() is not None and estimate(unknown).cost() is None
    assert any("cost online: cost unknown" in line for line in lines)
    assert not any("$0.00" in line for line in lines)


def test_completion_tokens_come_from_an_audit(problems_file: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    scores = {"n": 9, "per_critique": {"prompt_tokens": 500, "completion_tokens": 123, "cost": 0.001}}
    (audit / "audit.json").write_text(json.dumps({"teachers": {"llm:gpt-4o": scores}}), encoding="utf-8")
    config = RunConfig.model_validate({"problems": {"path": str(problems_file)}, "teacher": TEACHER})
    teacher = estimate(config, tmp_path).parts[0]
    assert teacher.completion_typical == pytest.approx(123 * teacher.requests)
    assert "audit" in teacher.completion_source and "123" in teacher.completion_source


def test_builtin_teacher_costs_nothing(problems_file: Path) -> None:
    config = RunConfig.model_validate({"problems": {"path": str(problems_file)}})
    est = estimate(config)
    assert est.units == 12 and est.parts == [] and est.cost() == (0, 0)
    assert "costs nothing" in render(est)[-1]
