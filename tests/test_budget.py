"""The budget cap: a run stops before it could pass `budget_usd`, resumably, with exit code 4."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.api import generate
from critique_synth.budget import Budget, BudgetExceeded
from critique_synth.cli import app
from critique_synth.errors import UserError
from critique_synth.pipeline import build_parts
from critique_synth.pricing import DEFAULT_PRICES
from critique_synth.progress import describe
from critique_synth.stats import Stats
from critique_synth.store import read_stats
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


def test_a_stop_is_not_lost_to_float_leftovers_of_settled_reservations() -> None:
    """0.1 + 0.2 - 0.1 - 0.2 is not 0.0: with nothing in flight a request that does not fit
    must stop the run, not wait forever for a settle that will never come."""

    async def scenario() -> None:
        budget = Budget(0.35)
        await budget.reserve(0.1)
        await budget.reserve(0.2)
        await budget.settle(0.1, 0.0)
        await budget.settle(0.2, 0.0)
        with pytest.raises(BudgetExceeded):
            await asyncio.wait_for(budget.reserve(0.5), timeout=5)

    asyncio.run(scenario())


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


def test_budget_stop_counts_only_requests_that_went_out(problems_file: Path, tmp_path: Path) -> None:
    """Three teachers, one cheap and one dear at two servers: requests the budget refused
    were never sent and are not in run.json; pairwise agreement is there as `stats` shows it."""
    a, b = MockLLMServer().start(), MockLLMServer().start()
    teachers = [
        {"kind": "llm", "model": model, "endpoint": {"base_urls": [srv.base_url]}}
        for model, srv in (("gpt-4o-mini", a), ("gpt-4o", b))
    ]
    config = {
        "problems": {"path": str(problems_file)},
        "teachers": [*teachers, {"kind": "builtin"}],
        "budget_usd": 0.01,
        "export": False,
    }
    out = tmp_path / "run"
    try:
        with pytest.raises(BudgetExceeded):
            generate(config, out=out)
    finally:
        a.stop()
        b.stop()
    summary = json.loads((out / "run.json").read_text())
    assert summary["counts"]["requests"] == len(a.log) + len(b.log), (len(a.log), len(b.log))
    pairs = summary["counts"]["pairwise"]
    assert pairs and all(p["responses"] > 0 for p in pairs.values())
    assert read_stats(out)[0].pairwise == pairs
