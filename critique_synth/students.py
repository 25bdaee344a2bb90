"""Where noisy responses come from: the data itself, injected errors, or student models.

A student plans the samples of a problem as keys first (cheap, no calls), so the pipeline can
skip finished units before anything is generated; only then does it produce responses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .config import StudentsConfig
from .fingerprint import fingerprint, problem_fingerprint
from .inject import ERROR_KINDS, inject_error
from .llm import Completion, LLMClient
from .prompts import load_prompt
from .records import Problem, Response, Usage
from .verify import check_response

log = logging.getLogger(__name__)

INJECTOR_VERSION = "inject-2"


@dataclass(frozen=True)
class Sample:
    """One planned response: its key and what is needed to produce it."""

    key: str
    index: int
    source: str


class Student(Protocol):
    requires: tuple[str, ...]
    # Whether responses cost a request: those go to responses.jsonl, so a resumed run
    # critiques the same response instead of sampling a new one.
    caches_responses: bool

    def plan(self, problem: Problem) -> list[Sample]: ...

    async def respond(self, problem: Problem, sample: Sample) -> Response: ...


def _response(
    problem: Problem, sample: Sample, text: str, source: str | None = None, **extra: object
) -> Response:
    final, correct = check_response(text, problem.answer)
    return Response(
        key=sample.key,
        problem_id=problem.id,
        text=text,
        source=source or sample.source,
        sample=sample.index,
        final_answer=final,
        final_correct=correct,
        **extra,
    )


class DatasetStudent:
    """The response given in the data (WebInstruct style): one per problem, with the labels the
    data gives it (a ProcessBench row, or `label`/`first_error_step` columns)."""

    requires = ("response",)
    caches_responses = False

    def plan(self, problem: Problem) -> list[Sample]:
        return [Sample(fingerprint("dataset", problem_fingerprint(problem)), 0, "dataset")]

    async def respond(self, problem: Problem, sample: Sample) -> Response:
        assert problem.response is not None
        response = _response(
            problem,
            sample,
            problem.response,
            process_correct=problem.response_label,
            first_error_step=problem.response_first_error_step,
            error_kind=problem.response_error_kind,
            label_source=problem.label_source,
        )
        if problem.response_final_correct is not None:
            response.final_correct = problem.response_final_correct
        return response


class InjectStudent:
    """Sample 0 is the reference solution; samples 1.. are deterministic wrong variants of it,
    with error kinds drawn by `error_kinds` weights (default: every kind alike)."""

    requires = ("solution",)
    caches_responses = False

    def __init__(self, samples: int, error_kinds: Mapping[str, float] | None = None) -> None:
        self.samples = samples
        self.error_kinds = dict(error_kinds) if error_kinds else dict.fromkeys(ERROR_KINDS, 1.0)

    def plan(self, problem: Problem) -> list[Sample]:
        base = problem_fingerprint(problem)
        kinds = sorted(self.error_kinds.items())
        return [
            Sample(
                fingerprint(INJECTOR_VERSION, base, i)
                if i == 0
                else fingerprint(INJECTOR_VERSION, base, kinds, i),
                i,
                "reference" if i == 0 else "inject",
            )
            for i in range(self.samples)
        ]

    async def respond(self, problem: Problem, sample: Sample) -> Response:
        assert problem.solution is not None
        injected = None
        if sample.index:
            injected = inject_error(
                problem.solution, sample.index, problem.id, question=problem.question, kinds=self.error_kinds
            )
        if injected is None:
            return _response(
                problem, sample, problem.solution, process_correct=True, label_source="reference"
            )
        return _response(
            problem,
            sample,
            injected.text,
            source=f"inject:{injected.kind}",
            process_correct=False,
            first_error_step=injected.step,
            error_kind=injected.kind,
            label_source="inject",
        )


class LLMStudent:
    """`samples` responses per problem from each student model on an OpenAI-compatible endpoint.

    The samples of one problem are asked for in one request with `n` (the prompt is paid
    once): the pipeline starts a problem's samples together, the first to arrive waits one
    loop turn for its siblings, then asks for all. A server that returns fewer choices than
    asked (llama-cpp-python ignores `n`) gets one request per sample from then on. Each sample
    keeps its own key, so resume still works sample by sample."""

    requires: tuple[str, ...] = ()
    caches_responses = True

    def __init__(self, config: StudentsConfig, client: LLMClient) -> None:
        self.config = config
        self.client = client
        self.prompt = load_prompt(config.prompt)
        self._use_n = config.use_n and config.samples > 1
        self._batches: dict[tuple[int, str], tuple[list[Sample], asyncio.Future[dict[str, Response]]]] = {}

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.prompt.system()},
            {"role": "user", "content": self.prompt.user(question=problem.question)},
        ]

    def plan(self, problem: Problem) -> list[Sample]:
        c = self.config
        params = (c.temperature, c.top_p, c.max_tokens, self.prompt.version)
        # the problem itself, not only its prompt: two problems with one question text (and
        # different ids or gold answers) are two units, not one done twice
        base = problem_fingerprint(problem)
        return [
            Sample(fingerprint(model, base, params, i), i, f"llm:{model}")
            for model in c.models
            for i in range(c.samples)
        ]

    async def respond(self, problem: Problem, sample: Sample) -> Response:
        model = sample.source.removeprefix("llm:")
        if not self._use_n:
            return (await self._ask(problem, model, [sample]))[sample.key]
        key = (id(problem), model)
        if key in self._batches:
            samples, future = self._batches[key]
            samples.append(sample)
            return (await asyncio.shield(future))[sample.key]
        samples = [sample]
        future = asyncio.get_running_loop().create_future()
        self._batches[key] = (samples, future)
        try:
            await asyncio.sleep(0)  # siblings started in this loop turn join the request
        finally:
            del self._batches[key]
        try:
            responses = await self._ask(problem, model, samples)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved; siblings, if any, get it too
            raise
        future.set_result(responses)
        return responses[sample.key]

    async def _ask(self, problem: Problem, model: str, samples: list[Sample]) -> dict[str, Response]:
        """Responses for `samples` of one model: one request with `n`, then one per sample for
        the choices the server did not return."""
        completion = await self._chat(problem, model, len(samples))
        choices = list(completion.choices)[: len(samples)]
        usages = [completion.usage] + [Usage()] * (len(choices) - 1)  # the prompt, paid once
        if len(choices) < len(samples):
            self._use_n = False
            log.info(
                "the students endpoint ignores n (asked %d, got %d): one request per sample",
                len(samples),
                len(choices),
            )
            more = await asyncio.gather(*(self._chat(problem, model, 1) for _ in samples[len(choices) :]))
            choices += [c.choices[0] for c in more]
            usages += [c.usage for c in more]
        return {
            sample.key: _response(
                problem,
                sample,
                choice.text,
                finish_reason=choice.finish_reason,
                reasoning=choice.reasoning,
                usage=usage,
            )
            for sample, choice, usage in zip(samples, choices, usages, strict=True)
        }

    async def _chat(self, problem: Problem, model: str, n: int) -> Completion:
        return await self.client.chat(
            model,
            self.messages(problem),
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            max_tokens=self.config.max_tokens,
            n=n,
        )
