"""Compose problems -> responses -> critiques -> run store as async stages joined by queues.

Queues are bounded, so a slow teacher holds back the reader (backpressure) and memory does
not grow with the number of problems. One writer owns the store: workers hand it finished
records, it appends them, flushes whenever it has caught up, and yields them to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batch import CURRENT_UNIT, make_transport
from .budget import Budget
from .config import RunConfig, teacher_name
from .consensus import group, pairwise
from .crosscheck import crosscheck
from .errors import UserError
from .fingerprint import fingerprint, problem_fingerprint, unit_hash, unit_key
from .labels import judge
from .llm import LLMClient, LLMError, resolve_api_key
from .records import CritiqueRecord, Problem, Rejection, Response, Usage
from .sources import RejectedRow, describe_source, iter_problems, read_off_loop, select
from .stats import Stats
from .store import RunStore, retry_filter, scan
from .students import DatasetStudent, InjectStudent, LLMStudent, Sample, Student
from .teachers import BuiltinTeacher, LLMTeacher, Teacher, TeacherRejected

log = logging.getLogger(__name__)

_DONE = object()
_RUN_JSON_EVERY = 0.5  # seconds; at most this much of the request count is lost to a SIGKILL


@dataclass
class Parts:
    """The wired stages of one run, plus the clients they share."""

    student: Student
    teachers: list[Teacher]
    clients: list[LLMClient]


def builtin_notice(config: RunConfig) -> str | None:
    if all(t.kind == "builtin" for t in config.teacher_configs()):
        return (
            "teacher: built-in offline critic (exact arithmetic + gold-answer check), no model "
            "called; set teacher.kind = 'llm' and teacher.model for an LLM teacher"
        )
    return None


async def build_parts(
    config: RunConfig,
    stack: AsyncExitStack,
    *,
    connect: bool = True,
    out: Path | None = None,
    budget: Budget | None = None,
) -> Parts:
    """Make the student and teacher from the config; open and check clients if `connect`
    (batch endpoints keep their batches in `out`; `budget` guards every request)."""
    clients: list[LLMClient] = []

    async def client_for(endpoint: Any, role: str, models: list[str]) -> LLMClient:
        key = resolve_api_key(endpoint, role) if connect else None  # a plan needs no key
        transport = None
        if connect:
            wiring = {"out": out, "options": config.batch, "budget": budget, "models": models}
            endpoint, transport = make_transport(endpoint, key, role, **wiring)
        client = LLMClient(endpoint, key, role=role, transport=transport)
        if connect:
            await stack.enter_async_context(client)
            await client.check()
        clients.append(client)
        return client

    s = config.students
    student: Student
    if s.kind == "llm":
        if not s.models:
            raise UserError("students.kind = 'llm' needs students.models (one or more model names)")
        student = LLMStudent(s, await client_for(s.endpoint, "students", s.models))
    elif s.kind == "dataset":
        student = DatasetStudent()
    else:
        student = InjectStudent(s.samples, s.error_kinds)
    teachers: list[Teacher] = []
    for t in config.teacher_configs():
        if t.kind == "builtin":
            teachers.append(BuiltinTeacher(teacher_name(t)))
            continue
        if not t.model:
            raise UserError("teacher.kind = 'llm' needs teacher.model (e.g. gpt-4o-2024-11-20)")
        teachers.append(LLMTeacher(t, await client_for(t.endpoint, "teacher", [t.model])))
    return Parts(student, teachers, clients)


def plan_problems(config: RunConfig, student: Student) -> Iterator[Problem]:
    return select(iter_problems(config.problems, student.requires), config.shard, config.limit)


async def iter_run(
    config: RunConfig,
    out: Path,
    *,
    allow_config_change: bool = False,
    on_stats: Callable[[Stats], None] | None = None,
) -> AsyncIterator[CritiqueRecord | Rejection]:
    """Run (or resume) a synthesis into `out`, yielding each record as it is stored."""
    store = RunStore(out)
    stats = store.open(
        config.public_dump(),
        config.fingerprint(),
        allow_change=allow_config_change,
        retry=retry_filter(config.retry_rejected),
    )
    base_requests, base_retries = stats.requests, stats.retries
    if on_stats is not None:
        on_stats(stats)
    notice = builtin_notice(config)
    if notice:
        log.info(notice)
    finished = False
    async with AsyncExitStack() as stack:
        stack.callback(store.close)
        budget = Budget(config.budget_usd, stats.usage.cost) if config.budget_usd else None
        stats.budget_usd = config.budget_usd
        parts = await build_parts(config, stack, out=out, budget=budget)
        store.forget_done_responses(
            lambda key: all(store.is_done(unit_key(key, t.fingerprint)) for t in parts.teachers)
        )
        runner = _Runner(config, parts, store, stats)
        extra = {
            "teacher": ", ".join(t.name for t in parts.teachers),
            "teachers": [t.name for t in parts.teachers],
            "teacher_notice": notice,
            "students": _describe_students(config),
            "source": describe_source(config.problems),
            "prompts": _prompts(parts),
        }
        last_save = float("-inf")  # the first record saves run.json at once

        def count_requests() -> None:
            stats.requests = base_requests + sum(c.stats.requests for c in parts.clients)
            stats.retries = base_retries + sum(c.stats.retries for c in parts.clients)

        try:
            async for item in runner.results():
                count_requests()
                if on_stats is not None:
                    on_stats(stats)
                if time.monotonic() - last_save > _RUN_JSON_EVERY:
                    store.flush()
                    store.write_run(stats, {**extra, **_outputs(parts), "finished": False})
                    last_save = time.monotonic()
                yield item
            finished = True
        finally:
            count_requests()
            store.flush()
            if len(parts.teachers) > 1:  # as `stats` counts them: over every critique stored
                stats.pairwise = pairwise(group(r for r in scan(out) if isinstance(r, CritiqueRecord)))
            store.write_run(stats, {**extra, **_outputs(parts), "finished": finished}, final=True)


def _outputs(parts: Parts) -> dict[str, dict[str, dict[str, str]]]:
    """The structured-output mode each LLM teacher uses and why; it can change mid-run."""
    return {"teacher_output": {t.name: info for t in parts.teachers if (info := t.output_info()) is not None}}


def _describe_students(config: RunConfig) -> str:
    s = config.students
    if s.kind == "llm":
        return f"llm: {', '.join(s.models)} ({s.samples} samples each, temperature {s.temperature})"
    if s.kind == "inject":
        return f"inject: reference solution + {s.samples - 1} injected-error variant(s)"
    return "dataset: responses given in the data"


def _prompts(parts: Parts) -> dict[str, dict[str, str]]:
    """The prompt texts and versions actually used, for run.json and the dataset card."""
    used = {}
    roles = [(f"teacher {t.name}" if len(parts.teachers) > 1 else "teacher", t) for t in parts.teachers]
    for role, part in [*roles, ("student", parts.student)]:
        prompt = getattr(part, "prompt", None)
        if prompt is not None:
            config = getattr(part, "config", None) if role != "student" else None
            mode, style = getattr(part, "prompt_mode", None), getattr(config, "style", None)
            used[role] = {
                "version": prompt.version,
                "text": f"{prompt.system(mode, style)}\n\n{prompt.parts['user']}",
            }
    return used


class _Runner:
    """The worker pool and the writer loop of one run."""

    def __init__(self, config: RunConfig, parts: Parts, store: RunStore, stats: Stats) -> None:
        self.config = config
        self.student = parts.student
        self.teachers = parts.teachers
        self.store = store
        self.stats = stats
        # Twice the requests allowed in flight: a unit waiting out a Retry-After holds a worker
        # but no request slot, and the endpoint must stay busy meanwhile. The client's limiter,
        # not the worker count, caps what is in flight.
        slots = max((c.endpoint.concurrency for c in parts.clients), default=0)
        self.workers = 2 * slots if slots else 1
        self.work: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.workers * 2)
        self.out: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
        self.source_error: UserError | None = None
        self._ids: set[int] = set()

    async def results(self) -> AsyncIterator[CritiqueRecord | Rejection]:
        tasks = [asyncio.create_task(self._produce())]
        tasks += [asyncio.create_task(self._work()) for _ in range(self.workers)]
        watcher = asyncio.create_task(self._close_when_done(tasks))
        try:
            while True:
                item = await self.out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if self._store(item):
                    yield item
                if self.out.empty():
                    self.store.flush()
        finally:
            for task in [*tasks, watcher]:
                task.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)

    async def _close_when_done(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for every task, or the first to fail (a bug, or an endpoint that refuses all):
        its error is surfaced after what is stored; a failed worker must not leave the reader
        waiting on a full queue."""
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = next((t.exception() for t in done if not t.cancelled() and t.exception()), None)
        await self.out.put(failed or self.source_error or _DONE)

    def _store(self, item: CritiqueRecord | Rejection | Response) -> bool:
        if isinstance(item, Response):
            self.store.write_response(item)
            return False
        if isinstance(item, CritiqueRecord):
            self.store.write_record(item)
            self.stats.add_record(item)
        else:
            self.store.write_rejection(item)
            self.stats.add_rejection(item)
        return True

    async def _produce(self) -> None:
        """Feed the workers; bad input stops the reading, but what was read is still finished."""
        try:
            async for problem in read_off_loop(plan_problems(self.config, self.student)):
                rejection = self._screen(problem)
                if rejection is None:
                    await self.work.put(problem)
                elif not self.store.is_done(rejection.key):
                    await self.out.put(rejection)
        except UserError as exc:
            self.source_error = exc
        for _ in range(self.workers):
            await self.work.put(_DONE)

    def _screen(self, problem: Problem) -> Rejection | None:
        """Rows that are well-formed but must not be sent: kept as rejects, never dropped silently."""
        id_hash = unit_hash(problem.id)
        limit = self.config.problems.max_chars
        longest = max(len(problem.question), len(problem.response or ""))
        if id_hash in self._ids:
            reason, detail = "duplicate_id", f"id {problem.id!r} appeared earlier in the source; row skipped"
        elif isinstance(problem, RejectedRow):
            self._ids.add(id_hash)
            reason, detail = problem.reason, problem.detail
        elif longest > limit:
            self._ids.add(id_hash)
            reason, detail = "input_too_long", f"{longest:,} characters > problems.max_chars {limit:,}"
        else:
            self._ids.add(id_hash)
            return None
        return Rejection(
            key=fingerprint("input", problem_fingerprint(problem)),
            problem_id=problem.id,
            stage="input",
            reason=reason,
            detail=detail,
        )

    async def _work(self) -> None:
        while (problem := await self.work.get()) is not _DONE:
            self.stats.problems += 1
            pending = []
            for sample in self.student.plan(problem):
                units = [(t, unit_key(sample.key, t.fingerprint)) for t in self.teachers]
                todo = [(t, key) for t, key in units if not self.store.is_done(key)]
                self.stats.resumed += len(units) - len(todo)
                if todo:
                    pending.append(self._sample(problem, sample, todo))
            if len(pending) == 1:
                await pending[0]
            elif pending:
                await asyncio.gather(*pending)

    async def _sample(self, problem: Problem, sample: Sample, todo: list[tuple[Teacher, str]]) -> None:
        """One response, critiqued by every teacher that has not done so yet."""
        response = self.store.cached_responses.pop(sample.key, None)
        paid = Usage()  # a cached response was paid for, and counted, by the run that made it
        if response is None:
            CURRENT_UNIT.set(sample.key)  # names its batch request
            try:
                response = await self.student.respond(problem, sample)
            except LLMError as exc:
                for teacher, key in todo:
                    await self.out.put(
                        Rejection(
                            key=key,
                            problem_id=problem.id,
                            stage="student",
                            reason=exc.reason,
                            detail=exc.detail,
                            attempts=1,
                            teacher=teacher.name,
                        )
                    )
                return
            if self.student.caches_responses:
                await self.out.put(response)
            paid = response.usage
        units = []
        for teacher, key in todo:
            units.append(self._unit(problem, response, teacher, key, paid))
            paid = Usage()  # the response's own cost goes on its first unit only
        await asyncio.gather(*units)  # each unit in a task of its own: CURRENT_UNIT is per unit

    async def _unit(
        self, problem: Problem, response: Response, teacher: Teacher, key: str, paid: Usage
    ) -> None:
        """One critique; a bug while making it becomes that unit's reject, not the run's end."""
        CURRENT_UNIT.set(key)  # names its batch requests (this coroutine runs as its own task)
        try:
            await self._critique(problem, response, teacher, key, paid)
        except UserError:
            raise  # the endpoint refuses every request (fail fast): the run stops, nothing rejected
        except Exception as exc:
            log.warning(
                "internal error on problem %s (%s); recorded with its traceback in rejected.jsonl",
                problem.id,
                type(exc).__name__,
            )
            await self.out.put(
                Rejection(
                    key=key,
                    problem_id=problem.id,
                    stage="teacher",
                    reason="internal_error",
                    detail=traceback.format_exc(limit=8)[-4000:],
                    teacher=teacher.name,
                )
            )

    async def _critique(
        self, problem: Problem, response: Response, teacher: Teacher, key: str, paid: Usage
    ) -> None:
        try:
            result = await teacher.critique(problem, response)
        except TeacherRejected as exc:
            await self.out.put(
                Rejection(
                    key=key,
                    problem_id=problem.id,
                    stage="teacher",
                    reason=exc.reason,
                    detail=exc.detail,
                    raw=exc.raw,
                    response=response.text,
                    attempts=exc.attempts,
                    usage=paid.add(exc.usage),
                    teacher=teacher.name,
                )
            )
            return
        judgement = judge(result.critique, response)
        await self.out.put(
            CritiqueRecord(
                key=key,
                problem=problem,
                response=response,
                critique=result.critique,
                text=result.text,
                teacher=teacher.name,
                reference=judgement.reference,
                agrees=judgement.agrees,
                step_agrees=judgement.step_agrees,
                gold_agrees=judgement.gold_agrees,
                crosscheck=crosscheck(response, result.critique) if teacher.kind == "llm" else None,
                request_fingerprint=result.request_fingerprint,
                attempts=result.attempts,
                finish_reason=result.finish_reason,
                reasoning=result.reasoning,
                usage=paid.add(result.usage),
            )
        )
