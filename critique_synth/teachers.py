"""Where critiques come from: an LLM on an OpenAI-compatible endpoint, or the built-in critic.

The LLM teacher runs the loop instructor made familiar: ask for the critique schema, validate
the reply with pydantic, and on failure send the validation error back and ask again; after
the configured attempts the unit is rejected with the raw reply kept for inspection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from .config import TeacherConfig
from .critic import builtin_critique
from .fingerprint import fingerprint
from .llm import LLMClient, LLMError, clip
from .prompts import load_prompt
from .records import Critique, Problem, Response, Usage, parse_conclusion
from .verify import extract_boxed

CRITIC_VERSION = "builtin-critic-1"
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
_STEP_RE = re.compile(r"\bstep\s+(\d+)", re.IGNORECASE)
_CONCLUSION_START_RE = re.compile(r"\**\s*conclusion\s*\**\s*:?", re.IGNORECASE)


def critique_schema() -> dict[str, Any]:
    """The JSON Schema endpoints are asked to follow; schemas/critique.schema.json mirrors it."""
    return Critique.model_json_schema()


@dataclass(frozen=True)
class TeacherResult:
    critique: Critique
    text: str
    attempts: int = 1
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    request_fingerprint: str | None = None


class TeacherRejected(Exception):
    """No valid critique after every attempt; carries what the rejects file needs."""

    def __init__(self, reason: str, detail: str, raw: str | None, attempts: int, usage: Usage):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.raw = reason, detail, raw
        self.attempts, self.usage = attempts, usage


class Teacher(Protocol):
    name: str
    fingerprint: str

    async def critique(self, problem: Problem, response: Response) -> TeacherResult: ...


class BuiltinTeacher:
    """The offline critic: exact arithmetic and a gold-answer check, no model involved."""

    name = "builtin"
    fingerprint = fingerprint("builtin", CRITIC_VERSION)

    async def critique(self, problem: Problem, response: Response) -> TeacherResult:
        critique = builtin_critique(problem, response.text)
        return TeacherResult(critique, critique.render())


class LLMTeacher:
    def __init__(self, config: TeacherConfig, client: LLMClient) -> None:
        if not config.model:
            raise ValueError("an LLM teacher needs teacher.model")
        self.config = config
        self.client = client
        self.model = config.model
        self.prompt = load_prompt(config.prompt)
        self.name = f"llm:{config.model}"
        self._params = (config.mode, config.temperature, config.top_p, config.max_tokens)
        self.fingerprint = fingerprint(self.model, self._params, self.prompt.version)
        self._format = (
            {
                "type": "json_schema",
                "json_schema": {"name": "critique", "strict": True, "schema": critique_schema()},
            }
            if config.mode == "json"
            else None
        )

    def messages(self, problem: Problem, response_text: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.prompt.system(self.config.mode)},
            {
                "role": "user",
                "content": self.prompt.user(question=problem.question, response=response_text),
            },
        ]

    async def critique(self, problem: Problem, response: Response) -> TeacherResult:
        messages = self.messages(problem, response.text)
        request_fp = fingerprint(self.model, messages, self._params, self.prompt.version)
        usage = Usage()
        raw: str | None = None
        error = ""
        finish_reason = None
        for attempt in range(1, self.config.attempts + 1):
            try:
                completion = await self.client.chat(
                    self.model,
                    messages,
                    temperature=self.config.temperature,
                    top_p=self.config.top_p,
                    max_tokens=self.config.max_tokens,
                    response_format=self._format,
                )
            except LLMError as exc:
                raise TeacherRejected(exc.reason, exc.detail, raw, attempt, usage) from None
            usage = usage.add(completion.usage)
            finish_reason = completion.finish_reason
            try:
                critique, text = self.parse(completion.text, finish_reason)
            except ValueError as exc:
                error = _explain(exc)
                raw = clip(completion.text)
                messages = [
                    *messages,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": self.prompt.repair(error)},
                ]
                continue
            return TeacherResult(critique, text, attempt, usage, finish_reason, request_fp)
        reason = "truncated" if finish_reason == "length" else "invalid_output"
        raise TeacherRejected(reason, error, raw, self.config.attempts, usage)

    def parse(self, raw: str, finish_reason: str | None) -> tuple[Critique, str]:
        """A validated critique and its CFT text, or ValueError saying what is wrong."""
        if finish_reason == "length":
            raise ValueError(
                f"the reply was cut off at max_tokens={self.config.max_tokens} "
                "(finish_reason: length); answer more briefly"
            )
        if self.config.mode == "json":
            critique = Critique.model_validate_json(_FENCE_RE.sub("", raw))
            return critique, critique.render()
        return parse_text_critique(raw)


def parse_text_critique(raw: str) -> tuple[Critique, str]:
    """Read a free-text critique that ends with the CFT conclusion line."""
    verdict = parse_conclusion(raw)
    if verdict is None:
        raise ValueError("no final 'Conclusion: right [END]' or 'Conclusion: wrong [END]' line was found")
    starts = list(_CONCLUSION_START_RE.finditer(raw))
    analysis = raw[: starts[-1].start()].replace("[END]", "").strip()
    if not analysis:
        raise ValueError("the critique has a conclusion but no explanation before it")
    wrong = verdict == "wrong"
    step = _STEP_RE.search(analysis) if wrong else None
    critique = Critique(
        analysis=analysis,
        first_wrong_step=int(step.group(1)) if step and int(step.group(1)) >= 1 else None,
        corrected_answer=extract_boxed(analysis) if wrong else None,
        verdict=verdict,
    )
    return critique, f"{analysis}\n\nConclusion: {verdict} [END]"


def _explain(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "the reply"
            parts.append(f"{where}: {err['msg']}")
        return "; ".join(parts)[:1000]
    return str(exc)[:1000]
