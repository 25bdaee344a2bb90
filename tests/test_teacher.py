"""The LLM teacher's schema -> call -> validate -> repair loop against the test server."""

import asyncio
from collections import deque

import pytest

from critique_synth.config import EndpointConfig, TeacherConfig
from critique_synth.errors import UserError
from critique_synth.llm import LLMClient
from critique_synth.records import Problem, Response
from critique_synth.teachers import LLMTeacher, TeacherRejected, TeacherResult
from critique_synth.testserver import MockLLMServer

from .conftest import SECRET

PROBLEM = Problem(id="p", question="A baker makes 12 trays of 8 cookies. How many?", answer="96")
WRONG = Response(key="k", problem_id="p", text="12 * 8 = 86\n#### 86", source="test", correct=False)


def _critique(server: MockLLMServer, mode: str = "json", attempts: int = 3) -> TeacherResult:
    endpoint = EndpointConfig(base_urls=[server.base_url], max_retries=0)
    config = TeacherConfig(kind="llm", model="teacher-m", mode=mode, attempts=attempts, endpoint=endpoint)

    async def main() -> TeacherResult:
        async with LLMClient(endpoint, SECRET) as client:
            return await LLMTeacher(config, client).critique(PROBLEM, WRONG)

    return asyncio.run(main())


@pytest.mark.parametrize("mode", ["json", "text"])
def test_a_valid_critique_on_the_first_try(server: MockLLMServer, mode: str) -> None:
    result = _critique(server, mode)
    assert (result.critique.verdict, result.attempts) == ("wrong", 1)
    assert result.text.endswith("Conclusion: wrong [END]")
    assert result.usage.prompt_tokens > 0
    assert server.log[0]["kind"] == f"teacher_{mode}"


@pytest.mark.parametrize("fault", ["invalid_json", "bad_schema", "length"])
def test_invalid_output_is_repaired_with_the_error_fed_back(server: MockLLMServer, fault: str) -> None:
    server.config.script = deque([fault, "ok"])
    result = _critique(server)
    assert result.attempts == 2
    assert result.critique.verdict == "wrong"
    assert [e["turns"] for e in server.log] == [2, 4]  # + the bad reply and the error


@pytest.mark.parametrize(("fault", "reason"), [("bad_schema", "invalid_output"), ("length", "truncated")])
def test_output_still_invalid_after_all_attempts_is_rejected_with_raw_text(
    server: MockLLMServer, fault: str, reason: str
) -> None:
    server.config.script = deque([fault] * 3)
    with pytest.raises(TeacherRejected) as info:
        _critique(server)
    rejected = info.value
    assert (rejected.reason, rejected.attempts) == (reason, 3)
    assert rejected.raw
    assert rejected.detail
    assert rejected.usage.prompt_tokens > 0


def test_transport_failure_becomes_a_rejection(server: MockLLMServer) -> None:
    endpoint = EndpointConfig(base_urls=[server.base_url], max_retries=0)
    config = TeacherConfig(kind="llm", model="teacher-m", endpoint=endpoint)

    async def main() -> None:
        async with LLMClient(endpoint, SECRET) as client:
            teacher = LLMTeacher(config, client)
            await teacher.critique(PROBLEM, WRONG)  # a success first: later 401s are this unit's own
            server.config.script = deque(["401"])
            await teacher.critique(PROBLEM, WRONG)

    with pytest.raises(TeacherRejected) as info:
        asyncio.run(main())
    assert info.value.reason == "http_401"
    assert SECRET not in info.value.detail


@pytest.mark.parametrize(
    ("support", "refusal", "mode"),
    [
        ("json_schema", 500, "json_schema"),
        ("json_object_schema", 500, "json_object_schema"),
        ("json_object", 400, "json_object"),
        ("none", 500, "text"),
        ("none", 400, "text"),
    ],
)
def test_auto_mode_steps_down_to_what_the_endpoint_takes(
    server: MockLLMServer, support: str, refusal: int, mode: str
) -> None:
    server.config.schema_support, server.config.schema_refusal = support, refusal
    endpoint = EndpointConfig(base_urls=[server.base_url])
    config = TeacherConfig(kind="llm", model="teacher-m", endpoint=endpoint)

    async def main() -> tuple[LLMTeacher, TeacherResult]:
        async with LLMClient(endpoint, SECRET) as client:
            teacher = LLMTeacher(config, client)
            return teacher, await teacher.critique(PROBLEM, WRONG)

    teacher, result = asyncio.run(main())
    assert (teacher.output, result.critique.verdict, result.attempts) == (mode, "wrong", 1)
    refused = [e for e in server.log if e["fault"]]
    assert len(refused) == ("json_schema", "json_object_schema", "json_object", "text").index(mode)
    assert all(e["fault"] == str(refusal) for e in refused)
    assert mode == "json_schema" or "refused" in teacher.output_info()["why"]


def test_a_forced_json_mode_that_the_endpoint_refuses_is_one_user_error(server: MockLLMServer) -> None:
    server.config.schema_support = "json_object"
    with pytest.raises(UserError, match="refuses response_format json_schema"):
        _critique(server, "json")
