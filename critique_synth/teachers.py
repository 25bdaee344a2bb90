"""Where critiques come from: an LLM on an OpenAI-compatible endpoint, or the built-in critic.

The LLM teacher runs the loop instructor made familiar: ask for the critique schema, validate
the reply with pydantic, and on failure send the validation error back and ask again; after
the configured attempts the unit is rejected with the raw reply kept for inspection.

Endpoints differ in the structured output they take. In `auto` mode the teacher asks for the
best one and steps down on the first refusal that names `response_format`: `json_schema`
(OpenAI, vLLM, SGLang, llama.cpp's llama-server), then `json_object` with a `schema`
(llama-cpp-python), then plain `json_object`, then text ending in the CFT conclusion line.
Validation and repair are the same in every mode.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from .config import TeacherConfig, teacher_name
from .critic import builtin_critique
from .errors import UserError
from .fingerprint import fingerprint
from .llm import Completion, LLMClient, LLMError, clip
from .prompts import load_prompt
from .records import Critique, Problem, Response, Usage, critique_schema, parse_conclusion
from .steps import number_steps
from .verify import extract_boxed

log = logging.getLogger(__name__)

CRITIC_VERSION = "builtin-critic-2"
OUTPUT_MODES = ("json_schema", "json_object_schema", "json_object", "text")
_SCHEMA = critique_schema()
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
_STEP_RE = re.compile(r"\bstep\s+(\d+)", re.IGNORECASE)
_CONCLUSION_START_RE = re.compile(r"\**\s*conclusion\s*\**\s*:?", re.IGNORECASE)


@dataclass(frozen=True)
class TeacherResult:
    critique: Critique
    text: str
    attempts: int = 1
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    request_fingerprint: str | None = None
    reasoning: str | None = None


class TeacherRejected(Exception):
    """No valid critique after every attempt; carries what the rejects file needs."""

    def __init__(self, reason: str, detail: str, raw: str | None, attempts: int, usage: Usage):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.raw = reason, detail, raw
        self.attempts, self.usage = attempts, usage


class Teacher(Protocol):
    kind: str
    name: str
    fingerprint: str

    def messages(self, problem: Problem, response_text: str) -> list[dict[str, str]] | None:
        """The prompt this teacher would send (None: it sends none); pure, no client needed."""
        ...

    def output_info(self) -> dict[str, str] | None:
        """The structured-output mode in use and why (None: the teacher uses no endpoint)."""
        ...

    async def critique(self, problem: Problem, response: Response) -> TeacherResult: ...


class BuiltinTeacher:
    """The offline critic: exact arithmetic and a gold-answer check, no model involved."""

    kind = "builtin"

    def __init__(self, name: str = "builtin") -> None:
        self.name = name
        self.fingerprint = fingerprint("builtin", CRITIC_VERSION, name)

    def messages(self, problem: Problem, response_text: str) -> None:
        """The built-in critic sends no prompt."""
        return None

    def output_info(self) -> None:
        """No structured output to negotiate."""
        return None

    async def critique(self, problem: Problem, response: Response) -> TeacherResult:
        critique = builtin_critique(problem, response.text)
        return TeacherResult(critique, critique.render())


class LLMTeacher:
    kind = "llm"

    def __init__(self, config: TeacherConfig, client: LLMClient) -> None:
        if not config.model:
            raise ValueError("an LLM teacher needs teacher.model")
        self.config = config
        self.client = client
        self.model = config.model
        self.prompt = load_prompt(config.prompt)
        self.name = teacher_name(config)
        self._params = (config.mode, config.style, config.temperature, config.top_p, config.max_tokens)
        # the name is part of it: two teachers asking the same model (at two endpoints, say)
        # are two units of work, not one done twice
        self.fingerprint = fingerprint(self.model, self._params, self.prompt.version, self.name)
        self.output = "text" if config.mode == "text" else "json_schema"
        self.output_reason = "asked for by teacher.mode" if config.mode != "auto" else "the endpoint takes it"
        self._announced = False

    @property
    def prompt_mode(self) -> str:
        """Which output format the prompt describes: JSON for every structured mode."""
        return "text" if self.output == "text" else "json"

    def output_info(self) -> dict[str, str]:
        """The structured-output mode in use and why, for run.json and the dataset card."""
        return {"mode": self.output, "why": self.output_reason}

    def messages(self, problem: Problem, response_text: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.prompt.system(self.prompt_mode, self.config.style)},
            {
                "role": "user",
                "content": self.prompt.user(question=problem.question, response=number_steps(response_text)),
            },
        ]

    async def critique(self, problem: Problem, response: Response) -> TeacherResult:
        messages = self.messages(problem, response.text)
        usage = Usage()
        raw: str | None = None
        error = ""
        finish_reason = None
        for attempt in range(1, self.config.attempts + 1):
            try:
                output, messages, completion = await self._ask(messages)
            except LLMError as exc:
                raise TeacherRejected(exc.reason, exc.detail, raw, attempt, usage) from None
            usage = usage.add(completion.usage)
            finish_reason = completion.finish_reason
            try:
                critique, text = self.parse(completion.text, finish_reason, output)
            except ValueError as exc:
                error = _explain(exc)
                raw = clip(completion.text)
                messages = [
                    *messages,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": self.prompt.repair(error)},
                ]
                continue
            self._announce()
            request_fp = fingerprint(self.model, messages[:2], self._params, self.prompt.version)
            return TeacherResult(
                critique, text, attempt, usage, finish_reason, request_fp, completion.reasoning
            )
        reason = "truncated" if finish_reason == "length" else "invalid_output"
        raise TeacherRejected(reason, error, raw, self.config.attempts, usage)

    async def _ask(self, messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]], Completion]:
        """One request in the current output mode, stepping down the modes while the endpoint
        refuses them; returns the mode used and the messages (their format part may change)."""
        while True:
            output = self.output
            try:
                completion = await self.client.chat(
                    self.model,
                    messages,
                    temperature=self.config.temperature,
                    top_p=self.config.top_p,
                    max_tokens=self.config.max_tokens,
                    response_format=response_format(output),
                )
                return output, messages, completion
            except LLMError as exc:
                if exc.reason != "unsupported_format" or output == "text":
                    raise
                self._step_down(output, exc)
            system = self.prompt.system(self.prompt_mode, self.config.style)
            messages = [{"role": "system", "content": system}, *messages[1:]]

    def _step_down(self, refused: str, exc: LLMError) -> None:
        if self.config.mode != "auto":
            raise UserError(
                f"the teacher endpoint refuses response_format {refused} ({exc.detail[:160]}); set "
                "teacher.mode = 'auto' to use the best mode it takes, or 'text'"
            )
        if self.output != refused:
            return  # a request in flight already stepped down
        self.output = OUTPUT_MODES[OUTPUT_MODES.index(refused) + 1]
        self.output_reason = f"the endpoint refused {refused}: {exc.detail[:160]}"
        self._announced = False

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            log.info("teacher %s: structured output %s (%s)", self.name, self.output, self.output_reason)

    def parse(self, raw: str, finish_reason: str | None, output: str | None = None) -> tuple[Critique, str]:
        """A validated critique and its CFT text, or ValueError saying what is wrong."""
        if finish_reason == "length":
            raise ValueError(
                f"the reply was cut off at max_tokens={self.config.max_tokens} "
                "(finish_reason: length); answer more briefly"
            )
        if (output or self.output) != "text":
            critique = Critique.model_validate_json(_FENCE_RE.sub("", raw))
            return critique, critique.render()
        return parse_text_critique(raw)


def response_format(output: str) -> dict[str, Any] | None:
    """The `response_format` field that asks for a critique in this output mode."""
    if output == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "critique", "strict": True, "schema": _SCHEMA}}
    if output == "json_object_schema":
        return {"type": "json_object", "schema": _SCHEMA}
    if output == "json_object":
        return {"type": "json_object"}
    return None


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
