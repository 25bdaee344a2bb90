"""Real endpoints as a new user meets them, each played by the test server: a wrong key or
model, refused structured output, a one-slot server, reasoning models, Azure, `n`, extra
headers, rejected units retried, SIGTERM, prices."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import deque
from pathlib import Path

import pytest

from critique_synth import generate
from critique_synth.config import EndpointConfig
from critique_synth.errors import UserError
from critique_synth.llm import LLMClient, LLMError
from critique_synth.pricing import PriceBook, describe_cost
from critique_synth.records import Rejection, Usage
from critique_synth.store import read_stats, retry_filter
from critique_synth.testserver import MockLLMServer, ServerConfig

from .conftest import SECRET, cli_env, invoke, read_jsonl
from .test_generate import llm_args, start_cli, wait_for_records

MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]


def _config(server: MockLLMServer, problems: Path, model: str = "teacher-m", **endpoint: object) -> dict:
    return {
        "problems": {"path": str(problems)},
        "teacher": {
            "kind": "llm",
            "model": model,
            "endpoint": {"base_urls": [server.base_url], "timeout": 5, "max_retries": 1, **endpoint},
        },
        "export": False,
    }


def test_a_wrong_model_stops_the_run_with_nothing_rejected_and_a_rerun_works(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.models = ("teacher-m",)
    out = tmp_path / "run"
    with pytest.raises(UserError, match=r"has no model 'teacher-x'.*check the model name"):
        generate(_config(server, problems_file, "teacher-x"), out=out)
    assert read_jsonl(out / "rejected.jsonl") == []
    assert len(server.log) <= 64  # the first round of requests at most: then it stopped
    result = generate(_config(server, problems_file), out=out, allow_config_change=True)
    assert result.stats.critiques == 12


def test_a_wrong_key_is_exit_2_before_any_request(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.require_auth = ("Bearer right-key",)
    out = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(json.dumps(_config(server, problems_file)))
    result = invoke("generate", "--out", out, "--config", config)
    assert result.exit_code == 2 and "refused the API key" in result.output, result.output
    assert server.log == []
    good = invoke("generate", "--out", out, "--config", config, env=cli_env(OPENAI_API_KEY="right-key"))
    assert good.exit_code == 0, good.output
    assert len(read_jsonl(out / "critiques.jsonl")) == 12


def test_no_critique_at_the_end_is_exit_3(server: MockLLMServer, problems_file: Path, tmp_path: Path) -> None:
    server.config.faults = {"bad_schema": 1.0}
    config = tmp_path / "c.json"
    config.write_text(json.dumps(_config(server, problems_file)))
    result = invoke("generate", "--out", tmp_path / "run", "--config", config)
    assert result.exit_code == 3, result.output
    assert "holds no critique (rejected: invalid_output 12)" in result.output


def test_a_reasoning_model_gets_max_completion_tokens_and_its_reasoning_is_kept_apart(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.reasoning_models = ("o3", "gpt-5")
    out = tmp_path / "run"
    with pytest.raises(UserError, match="token_param = 'max_completion_tokens'"):
        generate(_config(server, problems_file, "o3-mini", token_param="max_tokens"), out=out)
    assert read_jsonl(out / "rejected.jsonl") == []
    config = _config(server, problems_file, "gpt-5-mini", reasoning_effort="low", extra_body={"seed": 7})
    result = generate(config, out=tmp_path / "ok")
    assert result.stats.critiques == 12
    records = read_jsonl(tmp_path / "ok" / "critiques.jsonl")
    assert all(r["reasoning"] == "Let me check each step before I answer." for r in records)
    assert not any("Let me check" in r["text"] for r in records)
    assert result.stats.usage.unpriced == 0 and result.stats.usage.cost > 0  # gpt-5-mini is priced


def test_the_body_of_a_reasoning_model(server: MockLLMServer) -> None:
    endpoint = EndpointConfig(base_urls=[server.base_url], reasoning_effort="high", extra_body={"top_k": 5})
    body = json.loads(
        LLMClient(endpoint, None).body("o4-mini", MESSAGES, temperature=0.3, top_p=0.9, max_tokens=10)
    )
    assert body == {
        "model": "o4-mini",
        "messages": MESSAGES,
        "max_completion_tokens": 10,
        "reasoning_effort": "high",
        "top_k": 5,
    }
    plain = json.loads(
        LLMClient(endpoint, None).body("gpt-4o", MESSAGES, temperature=0.3, top_p=1, max_tokens=9)
    )
    assert (plain["max_tokens"], plain["temperature"]) == (9, 0.3)


@pytest.mark.parametrize(
    ("support", "mode"), [("json_object_schema", "json_object_schema"), ("none", "text")]
)
def test_llama_cpp_python_style_refusals_fall_back_and_the_mode_is_recorded(
    server: MockLLMServer, problems_file: Path, tmp_path: Path, support: str, mode: str
) -> None:
    server.config.schema_support, server.config.schema_refusal = support, 500
    out = tmp_path / "run"
    result = generate(_config(server, problems_file), out=out)
    assert result.stats.critiques == 12 and read_jsonl(out / "rejected.jsonl") == []
    output = json.loads((out / "run.json").read_text())["teacher_output"]["llm:teacher-m"]
    assert output["mode"] == mode and "HTTP 500" in output["why"]
    refused = sum(1 for e in server.log if e["fault"] == "500")
    assert 0 < refused <= 3 * 12  # at most once per unit and refused mode: never retried


async def _burst(endpoint: EndpointConfig, n: int) -> tuple[list, LLMClient]:
    async with LLMClient(endpoint, SECRET) as client:
        results = await asyncio.gather(
            *(client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=5) for _ in range(n)),
            return_exceptions=True,
        )
    return results, client


def test_a_one_slot_server_is_served_without_a_single_timeout() -> None:
    servers = [MockLLMServer(ServerConfig(slots=1, latency=0.04)).start() for _ in range(2)]
    try:
        endpoint = EndpointConfig(
            base_urls=[servers[0].base_url], timeout=1.0, max_retries=0
        )  # concurrency 64
        fixed, _ = asyncio.run(_burst(endpoint.model_copy(update={"adaptive": False}), 40))
        assert any(isinstance(r, LLMError) and r.reason == "timeout" for r in fixed)  # what it fixes
        endpoint = endpoint.model_copy(update={"base_urls": [servers[1].base_url]})
        results, client = asyncio.run(_burst(endpoint, 60))
        assert not any(isinstance(r, Exception) for r in results), [
            r for r in results if isinstance(r, Exception)
        ]
        assert client.limit.timeouts == 0 and client.limit.limit <= 4
    finally:
        for server in servers:
            server.stop()


def test_a_fast_server_reaches_the_ceiling() -> None:
    server = MockLLMServer(ServerConfig(latency=0.05)).start()
    try:
        endpoint = EndpointConfig(base_urls=[server.base_url], concurrency=32)
        results, client = asyncio.run(_burst(endpoint, 400))
        assert not any(isinstance(r, Exception) for r in results)
        assert client.limit.peak == 32 and client.limit.limit == 32
    finally:
        server.stop()


@pytest.mark.parametrize("honour_n", [True, False])
def test_students_ask_for_all_samples_with_n_and_fall_back_when_it_is_ignored(
    server: MockLLMServer, problems_file: Path, tmp_path: Path, honour_n: bool
) -> None:
    server.config.honour_n = honour_n
    config = _config(server, problems_file)
    config["students"] = {
        "kind": "llm",
        "models": ["s1"],
        "samples": 3,
        "endpoint": {"base_urls": [server.base_url]},
    }
    out = tmp_path / "run"
    result = generate(config, out=out)
    assert result.stats.critiques == 18
    student_requests = [e for e in server.log if e["kind"] == "student"]
    assert len(student_requests) == (6 if honour_n else 18)  # ignored: 1 + 2 more, then 3 each
    responses = read_jsonl(out / "responses.jsonl")
    assert len({r["key"] for r in responses}) == 18
    assert sum(r["usage"]["prompt_tokens"] for r in responses) > 0


def test_azure_deployment_with_api_key_header_and_api_version(
    problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MockLLMServer(ServerConfig(azure=("az-secret-key", "2024-10-21"))).start()
    try:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-secret-key")
        deployment = f"http://127.0.0.1:{server.port}/openai/deployments/critic"
        config = _config(server, problems_file, kind="azure", api_key_env="AZURE_OPENAI_API_KEY")
        config["teacher"]["endpoint"].update(base_urls=[deployment], api_version="2024-10-21")
        assert generate(config, out=tmp_path / "run").stats.critiques == 12
        assert "az-secret-key" not in (tmp_path / "run" / "run.json").read_text()
        config["teacher"]["endpoint"]["api_version"] = "2023-01-01"
        with pytest.raises(UserError, match="has no model"):
            generate(config, out=tmp_path / "wrong-version")
    finally:
        server.stop()


def test_extra_headers_come_from_the_environment_and_are_never_stored(
    server: MockLLMServer, problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.config.require_auth = ("Token gw-secret-1234",)
    monkeypatch.setenv("GATEWAY_AUTH", "Token gw-secret-1234")
    config = _config(server, problems_file, api_key_env="", headers_env={"Authorization": "GATEWAY_AUTH"})
    out = tmp_path / "run"
    assert generate(config, out=out).stats.critiques == 12
    assert "gw-secret" not in (out / "run.json").read_text()
    monkeypatch.delenv("GATEWAY_AUTH")
    with pytest.raises(UserError, match=r"headers_env.Authorization names \$GATEWAY_AUTH"):
        generate(config, out=tmp_path / "other")


def test_retry_rejected_redoes_transient_rejects_and_the_newest_outcome_wins(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.script = deque(["ok"] + ["500"] * 40)
    config = _config(server, problems_file, max_retries=0, concurrency=1)
    out = tmp_path / "run"
    first = generate(config, out=out)
    assert (first.stats.critiques, first.stats.rejected) == (1, 11)
    server.config.script.clear()
    again = generate(config, out=out)
    assert again.stats.critiques == 1  # not asked: rejects stay done
    config["retry_rejected"] = ["server_error"]
    final = generate(config, out=out)
    assert (final.stats.critiques, final.stats.rejected) == (12, 0)
    assert len(read_jsonl(out / "rejected.jsonl")) == 11  # kept for the record
    stats, _ = read_stats(out)
    assert (stats.critiques, stats.rejected) == (12, 0)


def test_the_default_retry_reasons_never_retry_input_rejects() -> None:
    from critique_synth.config import RETRY_REASONS

    retry = retry_filter(RETRY_REASONS)
    unit = {"key": "0" * 16, "problem_id": "p", "detail": "d"}
    assert retry(Rejection(stage="teacher", reason="http_401", **unit))
    assert retry(Rejection(stage="student", reason="timeout", **unit))
    assert not retry(Rejection(stage="teacher", reason="invalid_output", **unit))
    assert not retry(Rejection(stage="input", reason="server_error", **unit))


def test_sigterm_stops_cleanly_writes_run_json_and_resumes(server: MockLLMServer, tmp_path: Path) -> None:
    server.config.latency = 0.1
    out = tmp_path / "run"
    args = llm_args(server, out, None, "--limit", "40", "--concurrency", "4", "--no-export")
    child = start_cli(args, capture=True)
    wait_for_records(out, 8)
    os.kill(child.pid, signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "run.json").read_text())
    assert summary["finished"] is False and summary["requests_complete"] is True
    server.config.latency = 0.0
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    keys = [r["key"] for r in read_jsonl(out / "critiques.jsonl")]
    assert len(keys) == len(set(keys)) == 80


def test_prices_cover_current_models_and_an_unknown_price_is_not_zero() -> None:
    book = PriceBook({})
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert book.priced("gpt-4.1-2025-04-14", usage).cost == pytest.approx(10.0)
    assert book.priced("gpt-5", usage).cost == pytest.approx(11.25)
    unknown = book.priced("my-local-llama", usage)
    assert (unknown.cost, unknown.unpriced) == (0.0, 2_000_000)
    assert describe_cost(unknown) == "cost unknown"
    assert describe_cost(unknown.add(book.priced("o3", usage))).startswith(">= $10.0000")
    assert describe_cost(Usage()) == "$0.0000"
