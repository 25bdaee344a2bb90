"""A hostile or broken server costs rejects, never the run: oversized and endless bodies, gzip
bombs, well-formed JSON of the wrong types, exhausted quotas and absurd Retry-After values.
Every case talks to the real test server on loopback."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter, deque
from pathlib import Path

import pytest

from critique_synth import generate
from critique_synth.config import EndpointConfig
from critique_synth.errors import UserError
from critique_synth.llm import RAW_KEEP, LLMClient, LLMError
from critique_synth.testserver import ODD_REPLIES, MockLLMServer

from .conftest import SECRET, read_jsonl

MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]
CAP = 1_000_000


async def _one(server: MockLLMServer, **endpoint: object) -> object:
    config = EndpointConfig(base_urls=[server.base_url], **{"timeout": 10, "max_retries": 1, **endpoint})
    async with LLMClient(config, SECRET) as client:
        try:
            return await client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=50)
        except LLMError as exc:
            return exc


@pytest.mark.parametrize("fault", ["huge", "endless", "gzip_bomb"])
def test_oversized_bodies_are_refused_while_they_stream(server: MockLLMServer, fault: str) -> None:
    server.config.huge_bytes = 64 * CAP
    server.config.script = deque([fault])
    started = time.monotonic()
    result = asyncio.run(_one(server, max_reply_bytes=CAP))
    assert isinstance(result, LLMError) and result.reason == "too_large", result
    assert time.monotonic() - started < 10
    assert len(server.log) == 1  # a too-large reply is not asked for again


@pytest.mark.parametrize("odd", range(len(ODD_REPLIES)))
def test_wrong_types_in_a_200_reply_never_raise_past_the_client(server: MockLLMServer, odd: int) -> None:
    server._odd = odd
    server.config.script = deque(["odd_types"])
    result = asyncio.run(_one(server, max_retries=0))
    if "usage" in ODD_REPLIES[odd] or "finish_reason" in ODD_REPLIES[odd]:
        assert not isinstance(result, Exception)
        assert result.finish_reason in ("stop", None)
        if "usage" in ODD_REPLIES[odd]:
            assert result.usage.prompt_tokens == 0 and result.usage.completion_tokens == 0
    else:
        assert isinstance(result, LLMError) and result.reason == "bad_response", result


def test_an_exhausted_quota_is_not_retried(server: MockLLMServer) -> None:
    server.config.script = deque(["quota"] * 5)
    result = asyncio.run(_one(server, max_retries=5))
    assert isinstance(result, LLMError) and result.reason == "quota_exhausted"
    assert len(server.log) == 1


def test_retry_after_is_capped(server: MockLLMServer) -> None:
    server.config.retry_after = 86400
    server.config.script = deque(["429now", "ok"])
    started = time.monotonic()
    result = asyncio.run(_one(server, max_retry_after=0.2))
    assert not isinstance(result, Exception)
    assert time.monotonic() - started < 5


def _teacher_run(server: MockLLMServer, out: Path, problems: Path, **endpoint: object) -> dict:
    return {
        "problems": {"path": str(problems)},
        "teacher": {
            "kind": "llm",
            "model": "m",
            "attempts": 2,
            "endpoint": {"base_urls": [server.base_url], "timeout": 5, "max_retries": 1, **endpoint},
        },
        "export": False,
    }


def test_a_run_against_a_hostile_server_finishes_with_every_unit_rejected(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    server.config.huge_bytes = 4 * CAP
    server.config.faults = {"odd_types": 0.5, "huge": 0.25, "gzip_bomb": 0.25}
    out = tmp_path / "run"
    result = generate(_teacher_run(server, out, problems_file, max_reply_bytes=CAP), out=out)
    rejects = read_jsonl(out / "rejected.jsonl")
    kept = read_jsonl(out / "critiques.jsonl")
    assert len(rejects) + len(kept) == 12  # 6 problems x 2 samples: nothing dropped
    reasons = Counter(r["reason"] for r in rejects)
    assert set(reasons) <= {"too_large", "bad_response", "invalid_output"}, reasons
    assert all(len(r["raw"] or "") <= RAW_KEEP + 100 for r in rejects)
    assert result.internal_errors == 0


def test_a_long_invalid_reply_is_cut_in_the_rejects_and_the_repair(
    server: MockLLMServer, problems_file: Path, tmp_path: Path
) -> None:
    junk = "no conclusion here " * 20_000
    server.config.answers = {"<solution>": junk, "could not be used": junk}
    out = tmp_path / "run"
    config = _teacher_run(server, out, problems_file)
    config["teacher"]["mode"] = "text"
    generate(config, out=out)
    rejects = read_jsonl(out / "rejected.jsonl")
    assert rejects and all(r["reason"] == "invalid_output" for r in rejects)
    assert all("[... cut:" in r["raw"] and len(r["raw"]) < RAW_KEEP + 100 for r in rejects)
    repairs = [e for e in server.log if e["turns"] > 2]
    assert repairs and all(e["bytes"] < 3 * RAW_KEEP + 4000 for e in repairs)


def test_a_bug_in_one_unit_is_that_units_reject_and_the_run_goes_on(
    problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug cannot be produced without one: this plants it (the only stand-in in this file)."""
    from critique_synth import pipeline

    real_judge = pipeline.judge

    def judge_with_a_bug(critique, response):  # type: ignore[no-untyped-def]
        if response.problem_id == "p2":
            raise KeyError("planted bug")
        return real_judge(critique, response)

    monkeypatch.setattr(pipeline, "judge", judge_with_a_bug)
    out = tmp_path / "run"
    result = generate({"problems": {"path": str(problems_file)}, "export": False}, out=out)
    rejects = read_jsonl(out / "rejected.jsonl")
    assert [r["problem_id"] for r in rejects] == ["p2", "p2"]
    assert all(r["reason"] == "internal_error" and "planted bug" in r["detail"] for r in rejects)
    assert len(read_jsonl(out / "critiques.jsonl")) == 10
    assert result.internal_errors == 2


def test_credentials_in_a_base_url_are_sent_as_basic_auth_and_never_stored(
    server: MockLLMServer, problems_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.config.require_auth = ("Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode(),)
    host = server.base_url.removeprefix("http://")
    out = tmp_path / "run"
    config = _teacher_run(server, out, problems_file)
    config["teacher"]["endpoint"]["base_urls"] = [f"http://alice:s3cr3t-pw@{host}?api_key=QUERYSECRET"]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    generate(config, out=out)
    assert len(read_jsonl(out / "critiques.jsonl")) == 12
    for name in ("run.json", "critiques.jsonl"):
        text = (out / name).read_text()
        assert "s3cr3t-pw" not in text and "QUERYSECRET" not in text
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(UserError, match="has credentials in its URL and an API key is set"):
        generate(config, out=tmp_path / "other")
