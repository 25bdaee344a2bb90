"""What a run will cost, before any money is spent: units, requests, tokens, dollars.

Needs no API key and calls nothing. Prompt tokens are counted with the model's tokenizer
where one is at hand (tiktoken, or a Hugging Face tokenizer already on disk), otherwise
estimated as characters / 4, and the estimate says which. Completion tokens come from an
audit of this teacher when one has run (`DIR/audit/audit.json`, written by the `[audit]`
gate), otherwise from max_tokens as an upper bound beside a typical value. Prompts are built
for up to `SAMPLE` problems and scaled to the rest by unit count.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, TeacherConfig, teacher_name
from .pipeline import build_parts, plan_problems
from .pricing import BATCH_DISCOUNT, PriceBook
from .records import CritiqueRecord
from .store import CRITIQUES, iter_lines, scan
from .tokens import estimate_tokens

log = logging.getLogger(__name__)

SAMPLE = 200
TYPICAL_CRITIQUE = {"full": 700, "brief": 200}  # tokens; measured order of magnitude, not a promise
TYPICAL_RESPONSE = 350
DEFAULT_REPAIR_RATE = 0.05  # extra requests per unit for repairs, without an audit to say
_MESSAGE_OVERHEAD = 4  # tokens a chat template adds per message


@dataclass(frozen=True)
class PartEstimate:
    """One model's share of a run: a teacher, or the student models."""

    role: str
    model: str
    requests: float
    repair_rate: float
    prompt_tokens: float
    prompt_counted: str
    completion_typical: float
    completion_max: float
    completion_source: str
    price: tuple[float, float] | None  # USD per million tokens (input, output); None: unknown

    def cost(self, batch: bool = False) -> tuple[float, float] | None:
        """(typical, upper bound) in USD; None when the price is unknown."""
        if self.price is None:
            return None
        factor = (BATCH_DISCOUNT if batch else 1.0) / 1e6
        prompt = self.prompt_tokens * self.price[0]
        return (
            factor * (prompt + self.completion_typical * self.price[1]),
            factor * (prompt + self.completion_max * self.price[1]),
        )


@dataclass(frozen=True)
class Estimate:
    units: int
    done: int
    problems: int
    parts: list[PartEstimate]
    batch: bool

    def cost(self, batch: bool = False) -> tuple[float, float] | None:
        costs = [p.cost(batch) for p in self.parts]
        if any(c is None for c in costs):
            return None
        return (sum(c[0] for c in costs if c), sum(c[1] for c in costs if c))


def estimate(config: RunConfig, out: str | Path | None = None) -> Estimate:
    """The estimate for a run of `config` into `out` (its audit, if any, informs completions)."""
    return asyncio.run(_estimate(config, Path(out) if out is not None else None))


async def _estimate(config: RunConfig, out: Path | None) -> Estimate:
    async with AsyncExitStack() as stack:
        parts = await build_parts(config, stack, connect=False)
        n_teachers = len(parts.teachers)
        problems = units = 0
        student_prompts: list[str] = []
        teacher_prompts: dict[str, list[str]] = {t.name: [] for t in parts.teachers}
        llm_students = config.students.kind == "llm"
        for problem in plan_problems(config, parts.student):
            samples = parts.student.plan(problem)
            problems += 1
            units += len(samples) * n_teachers
            if problems > SAMPLE:
                continue
            if llm_students:
                student_prompts.append(_joined(parts.student.messages(problem)))  # type: ignore[attr-defined]
            for sample in samples:
                text = (
                    "x" * (4 * TYPICAL_RESPONSE)
                    if llm_students
                    else (await parts.student.respond(problem, sample)).text
                )
                for teacher in parts.teachers:
                    messages = teacher.messages(problem, text)
                    if messages is not None:
                        teacher_prompts[teacher.name].append(_joined(messages))
    sampled_units = sum(len(v) for v in teacher_prompts.values()) or 1
    scale = units / sampled_units  # each teacher's sampled prompts stand for its share of units
    estimates = []
    for tc in config.teacher_configs():
        prompts = teacher_prompts.get(teacher_name(tc), [])
        if tc.kind == "llm" and tc.model and prompts:
            estimates.append(_teacher(tc, prompts, scale, out))
    if llm_students and student_prompts:
        estimates.append(_students(config, student_prompts, problems / len(student_prompts)))
    done = sum(1 for _ in iter_lines(out / CRITIQUES)) if out is not None else 0
    batch = any(tc.endpoint.batch for tc in config.teacher_configs()) or config.students.endpoint.batch
    return Estimate(units, done, problems, estimates, batch)


def _teacher(tc: TeacherConfig, prompts: list[str], scale: float, out: Path | None) -> PartEstimate:
    assert tc.model is not None
    count, counted = token_counter(tc.model)
    requests = len(prompts) * scale
    audited = _audit(out, teacher_name(tc))
    if audited is not None:
        per_critique, repair_rate, source = audited
        typical, ceiling = per_critique, float(tc.max_tokens)
    else:
        typical = float(min(tc.max_tokens, TYPICAL_CRITIQUE[tc.style]))
        ceiling, repair_rate = float(tc.max_tokens), DEFAULT_REPAIR_RATE
        source = f"no audit: typical {typical:,.0f} a critique, max_tokens {tc.max_tokens:,} as upper bound"
    sent = requests * (1 + repair_rate)
    prompt = sum(count(p) + 3 * _MESSAGE_OVERHEAD for p in prompts) * scale * (1 + repair_rate)
    return PartEstimate(
        f"teacher {teacher_name(tc)}",
        tc.model,
        sent,
        repair_rate,
        prompt,
        counted,
        typical * sent,
        ceiling * sent,
        source,
        _price(tc.model, tc.endpoint.prices),
    )


def _students(config: RunConfig, prompts: list[str], scale: float) -> PartEstimate:
    s = config.students
    models = ", ".join(s.models)
    count, counted = token_counter(s.models[0])
    per_problem = len(s.models) * (1 if s.use_n and s.samples > 1 else s.samples)
    requests = len(prompts) * scale * per_problem
    prompt = sum(count(p) + 2 * _MESSAGE_OVERHEAD for p in prompts) * scale * per_problem
    answers = len(prompts) * scale * len(s.models) * s.samples
    typical = float(min(s.max_tokens, TYPICAL_RESPONSE))
    prices = [_price(m, s.endpoint.prices) for m in s.models]
    price = None if any(p is None for p in prices) else max(prices)  # type: ignore[type-var]
    return PartEstimate(
        "students",
        models,
        requests,
        0.0,
        prompt,
        counted,
        typical * answers,
        float(s.max_tokens) * answers,
        f"typical {typical:,.0f} a response, max_tokens {s.max_tokens:,} as upper bound",
        price,
    )


def _price(model: str, overrides: dict) -> tuple[float, float] | None:
    price = PriceBook(overrides).price(model)
    return None if price is None else (price.input, price.output)


def _joined(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def _audit(out: Path | None, teacher: str) -> tuple[float, float, str] | None:
    """(completion tokens a critique, repairs a unit, where from) from this run's audit."""
    if out is None:
        return None
    path = out / "audit" / "audit.json"
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))["teachers"][teacher]
        per_critique = float(scores["per_critique"]["completion_tokens"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    attempts = [
        r.attempts for r in scan(path.parent) if isinstance(r, CritiqueRecord) and r.teacher == teacher
    ]
    repairs = sum(a - 1 for a in attempts) / len(attempts) if attempts else DEFAULT_REPAIR_RATE
    return (
        per_critique,
        repairs,
        f"audit {path} ({scores.get('n', '?')} rows): {per_critique:,.0f} a critique",
    )


def token_counter(model: str) -> tuple[Callable[[str], int], str]:
    """The model's tokenizer where one is available offline, else characters / 4 (said so)."""
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model(model)
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), f"tiktoken {encoding.name}"
    except Exception:  # not installed, unknown model, or its encoding not downloadable here
        pass
    if "/" in model:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
            return (lambda text: len(tokenizer.encode(text, add_special_tokens=False))), f"tokenizer {model}"
        except Exception:  # not installed, or not in the local cache
            pass
    return (
        lambda text: max(1, estimate_tokens(len(text)))
    ), "an estimate (characters / 4; no tokenizer for this model)"


def render(est: Estimate) -> list[str]:
    """The estimate as the lines `--dry-run` prints."""
    lines = [
        "estimate (before any request; no key needed)",
        f"  units: {est.units:,} ({est.problems:,} problems; {est.done:,} critiques already done)",
    ]
    for p in est.parts:
        lines += [
            f"  {p.role} ({p.model}):",
            f"    requests: {p.requests:,.0f} (including {p.repair_rate:.0%} expected repair retries)",
            f"    prompt tokens: {p.prompt_tokens:,.0f}, counted with {p.prompt_counted}",
            f"    completion tokens: typical {p.completion_typical:,.0f}, at most {p.completion_max:,.0f} "
            f"({p.completion_source})",
        ]
    if not est.parts:
        lines.append("  no model is called: the run costs nothing")
        return lines
    for label, batch in (("online", False), ("batch", True)):
        cost = est.cost(batch)
        mark = "  <- this run" if batch == est.batch else ""
        shown = (
            "cost unknown (no price for a model; set endpoint.prices)"
            if cost is None
            else (f"${cost[0]:,.2f} typical, up to ${cost[1]:,.2f}")
        )
        lines.append(f"  cost {label}: {shown}{mark}")
    return lines
