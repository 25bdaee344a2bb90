"""The budget cap: a run stops before it could pass `budget_usd`, resumably, with exit code 4."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.budget import Budget, BudgetExceeded
from critique_synth.cli import app
from critique_synth.errors import UserError
from critique_synth.pipeline import build_parts
from critique_synth.pricing import DEFAULT_PRICES
from critique_synth.progress import describe
from critique_synth.stats import Stats
from critique_synth.testserver import MockLLMServer

from .conftest import cli_env, read_jsonl

MAX_TOKENS = 400


def test_reserve_waits_for_settles_then_stops_when_nothing_is_in_flight() -> None:
    async def scenario() -> list[str]:
        budget = Budget(1.0)
        events: list[str] = []
        await budget.reserve(0.6)

        async def second() -> None:
            await budget.reserve(0.6)  # does not fit while the first is in flight
            events.append("second sent")

        task = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        events.append("waiting" if not task.done() else "sent early")
        await budget.settle(0.6, 0.1)  # the first cost less than its worst case: room again
        await task
        await budget.settle(0.6, 0.5)
        with pytest.raises(BudgetExceeded):
            await budget.reserve(0.6)  # spent 0.6, nothing in flight: 0.6 more cannot fit
        return events

    assert asyncio.run(scenario()) == ["waiting", "second sent"]


def _args(server: MockLLMServer, out: Path, problems_file: Path, budget: float) -> list[str]:
    return [
        "generate",
        "--out", str(out),
        "--problems", str(problems_file),
        "--teacher-model", "gpt-4o-mini",
        "--teacher-base-url", server.base_url,
        "--concurrency", "4",
        "--budget", str(budget),
        "--no-export",
        "--config", str(out.parent / "budget.toml"),
    ]  # fmt: skip


def test_capped_run_stops_within_one_request_and_resumes_with_a_higher_cap(
    server: MockLLMServer, tmp_path: Path, problems_file: Path
) -> None:
    (tmp_path / "budget.toml").write_text(f"[teacher]\nmax_tokens = {MAX_TOKENS}\n", encoding="utf-8")
    out = tmp_path / "run"
    cap = 0.0012
    result = CliRunner().invoke(app, _args(server, out, problems_file, cap), env=cli_env())
    assert result.exit_code == 4, result.output
    assert "budget reached" in result.output and "--budget" in result.output
    records = read_jsonl(out / "critiques.jsonl")
    spent = sum(r["usage"]["cost"] for r in records)
    price = DEFAULT_PRICES["gpt-4o-mini"]
    biggest = max(r["usage"]["prompt_tokens"] for r in records) * price.input / 1e6
    worst_request = biggest * 1.5 + MAX_TOKENS * price.output / 1e6
    assert 0 < len(records) < 12
    assert spent <= cap and cap - spent < worst_request

    result = CliRunner().invoke(app, _args(server, out, problems_file, 1.0), env=cli_env())
    assert result.exit_code == 0, result.output
    keys = Counter(r["key"] for r in read_jsonl(out / "critiques.jsonl") + read_jsonl(out / "rejected.jsonl"))
    assert len(keys) == 12 and set(keys.values()) == {1}


def test_budget_needs_known_prices(server: MockLLMServer, tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    from critique_synth.config import RunConfig

    config = RunConfig.model_validate(
        {"teacher": {"kind": "llm", "model": "mystery", "endpoint": {"base_urls": [server.base_url]}}}
    )

    async def build() -> None:
        async with AsyncExitStack() as stack:
            await build_parts(config, stack, out=tmp_path, budget=Budget(5.0))

    with pytest.raises(UserError, match="no price is known for teacher model 'mystery'"):
        asyncio.run(build())


def test_progress_shows_spent_against_budget() -> None:
    stats = Stats(requests=3, budget_usd=2.5)
    assert "of $2.50 budget" in describe(stats)
