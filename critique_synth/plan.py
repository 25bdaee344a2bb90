"""What a run would do, and its first teacher prompt, without calling any endpoint (`--dry-run`).

A library function, so a notebook or a scheduler can check a config the way the CLI does.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from .pipeline import build_parts, plan_problems
from .sources import describe_source
from .store import CRITIQUES, iter_lines
from .urls import safe_url


@dataclass(frozen=True)
class Plan:
    problems: str
    limit: int | None
    shard: str | None
    students: str
    teacher: str
    out: Path
    done: int
    first_problem: str | None
    messages: list[dict[str, str]] | None


def plan(config: RunConfig, out: str | Path) -> Plan:
    """The plan of a run of `config` into `out`; nothing is called and nothing is written."""
    out = Path(out)
    first, messages, teacher_name = asyncio.run(_first_prompt(config))
    s, t = config.students, config.teacher
    students = f"{s.kind}, {s.samples} sample(s) per problem"
    if s.kind == "llm":
        students += f", models {', '.join(s.models)}"
    teacher = teacher_name
    if t.kind == "llm":
        urls = ", ".join(safe_url(url) for url in t.endpoint.base_urls)
        teacher += f", mode {t.mode}, {t.attempts} attempts, endpoint {urls}"
    return Plan(
        problems=describe_source(config.problems),
        limit=config.limit,
        shard=config.shard,
        students=students,
        teacher=teacher,
        out=out,
        done=sum(1 for _ in iter_lines(out / CRITIQUES)),
        first_problem=first,
        messages=messages,
    )


async def _first_prompt(config: RunConfig) -> tuple[str | None, list[dict[str, str]] | None, str]:
    async with AsyncExitStack() as stack:
        parts = await build_parts(config, stack, connect=False)
        teacher = parts.teachers[0]
        problem = next(iter(plan_problems(config, parts.student)), None)
        if problem is None:
            return None, None, teacher.name
        sample = parts.student.plan(problem)[-1]
        if parts.student.caches_responses:  # its responses come from an endpoint: none is asked for
            text = f"<response sampled from {sample.source}>"
        else:
            text = (await parts.student.respond(problem, sample)).text
        return problem.id, teacher.messages(problem, text), teacher.name
