"""The test server itself: it must be a faithful enough endpoint for the other tests to mean something."""

import asyncio
import json

import aiohttp

from critique_synth.testserver import MockLLMServer


async def _post(server: MockLLMServer, body: dict) -> dict:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200
        return await resp.json()


def test_n_choices_and_usage(server: MockLLMServer) -> None:
    body = {"model": "m", "n": 3, "messages": [{"role": "user", "content": "What is 2 + 5?"}]}
    data = asyncio.run(_post(server, body))
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert server.log[0]["kind"] == "student"


def test_answers_follow_an_arbitrary_json_schema(server: MockLLMServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1},
            "label": {"enum": ["good", "bad"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "rate this"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    }
    content = json.loads(asyncio.run(_post(server, body))["choices"][0]["message"]["content"])
    assert content == {"score": 1, "label": "good", "tags": ["x", "x"], "note": "x"}
