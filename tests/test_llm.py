"""The LLM client against the project's OpenAI-compatible server on 127.0.0.1."""

import asyncio
from collections import deque

import pytest

from critique_synth.config import EndpointConfig, Price
from critique_synth.errors import UserError
from critique_synth.llm import LLMClient, LLMError, resolve_api_key
from critique_synth.testserver import MockLLMServer, ServerConfig

from .conftest import SECRET

MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]


def _endpoint(*servers: MockLLMServer, **kw: object) -> EndpointConfig:
    kw.setdefault("max_retries", 3)
    kw.setdefault("timeout", 5)
    return EndpointConfig(base_urls=[s.base_url for s in servers], **kw)


async def _chat(endpoint: EndpointConfig, key: str | None = SECRET, n: int = 1) -> tuple[list, LLMClient]:
    async with LLMClient(endpoint, key) as client:
        results = await asyncio.gather(
            *(client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=50) for _ in range(n)),
            return_exceptions=True,
        )
    return results, client


def test_transient_faults_are_retried_and_counted(server: MockLLMServer) -> None:
    server.config.script = deque(["429", "500", "garbage", "drop", "ok"])
    (result,), client = asyncio.run(_chat(_endpoint(server, max_retries=4)))
    assert "\\boxed{" in result.text
    assert client.stats.retries == 4
    assert [e["fault"] for e in server.log] == ["429", "500", "garbage", "drop", None]
    assert all(e["authorization"] for e in server.log)


def test_retry_after_is_honoured(server: MockLLMServer) -> None:
    server.config.retry_after = 0.4
    server.config.script = deque(["429", "ok"])
    asyncio.run(_chat(_endpoint(server)))
    gap = server.log[1]["t"] - server.log[0]["t"]
    assert gap >= 0.4


async def _in_turn(endpoint: EndpointConfig, n: int) -> tuple[list, LLMClient]:
    results = []
    async with LLMClient(endpoint, SECRET) as client:
        for _ in range(n):
            try:
                results.append(await client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=50))
            except LLMError as exc:
                results.append(exc)
    return results, client


@pytest.mark.parametrize("status", ["400", "401", "404"])
def test_client_errors_after_a_success_are_not_retried(server: MockLLMServer, status: str) -> None:
    server.config.script = deque(["ok", status, "ok"])
    (_, result), client = asyncio.run(_in_turn(_endpoint(server), 2))
    assert isinstance(result, LLMError)
    assert result.reason == f"http_{status}"
    assert len(server.log) == 2
    assert client.stats.failures == {f"http_{status}": 1}


def test_a_client_error_before_any_success_is_held_then_stops_everything(server: MockLLMServer) -> None:
    server.config.script = deque(["401", "ok"])
    (result,), _ = asyncio.run(_in_turn(_endpoint(server), 1))
    assert not isinstance(result, Exception)  # held and sent again: one 401 is not yet a verdict
    server.config.script = deque(["404"] * 3)
    (result,), _ = asyncio.run(_chat(_endpoint(server)))
    assert isinstance(result, UserError) and "has no model 'm'" in str(result)


def test_gives_up_after_max_retries(server: MockLLMServer) -> None:
    server.config.script = deque(["500"] * 10)
    (result,), _ = asyncio.run(_chat(_endpoint(server, max_retries=2)))
    assert isinstance(result, LLMError) and result.reason == "server_error"
    assert len(server.log) == 3


def test_a_hang_times_out_and_is_retried(server: MockLLMServer) -> None:
    server.config.hang = 1.0
    server.config.script = deque(["hang", "ok"])
    (result,), client = asyncio.run(_chat(_endpoint(server, timeout=0.5)))
    assert not isinstance(result, Exception)
    assert client.stats.retries == 1


def test_several_base_urls_share_the_load() -> None:
    servers = [MockLLMServer(ServerConfig(latency=0.05)).start() for _ in range(2)]
    try:
        results, _ = asyncio.run(_chat(_endpoint(*servers), n=40))
        assert not any(isinstance(r, Exception) for r in results)
        counts = [len(s.log) for s in servers]
        assert sum(counts) == 40 and min(counts) >= 15
    finally:
        for s in servers:
            s.stop()


def test_usage_and_cost_are_accounted(server: MockLLMServer) -> None:
    endpoint = _endpoint(server, prices={"m": Price(input=1.0, output=2.0)})
    (result,), client = asyncio.run(_chat(endpoint))
    usage = result.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost == pytest.approx((usage.prompt_tokens + 2 * usage.completion_tokens) / 1e6)
    assert client.stats.cost == usage.cost


def test_the_key_never_appears_in_errors(server: MockLLMServer) -> None:
    async def main() -> None:
        async with LLMClient(_endpoint(server), SECRET) as client:
            server.config.script = deque(["ok", "401"])
            await client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=5)
            with pytest.raises(LLMError) as info:
                await client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=5)
            assert SECRET not in str(info.value)
            assert client._redact(f"echo {SECRET} and sk-abcdef123456") == "echo *** and ***"

    asyncio.run(main())


def test_unreachable_endpoint_fails_fast_with_a_clear_message() -> None:
    endpoint = EndpointConfig(base_urls=["http://127.0.0.1:9/v1"])

    async def main() -> None:
        async with LLMClient(endpoint, None) as client:
            await client.check()

    with pytest.raises(UserError, match=r"cannot reach http://127.0.0.1:9/v1 .*is the server running"):
        asyncio.run(main())


def test_missing_key_for_a_remote_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UserError, match="needs an API key: set the OPENAI_API_KEY"):
        resolve_api_key(EndpointConfig(), "teacher")
    assert resolve_api_key(EndpointConfig(base_urls=["http://127.0.0.1:8000/v1"]), "teacher") is None
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert resolve_api_key(EndpointConfig(), "teacher") == SECRET
