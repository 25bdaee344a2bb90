"""`critique-synth eval`: greedy answers to math problems, checked against gold answers.

The same prompt and checker for every model, local or served, so base vs SFT vs CFT is three
commands whose numbers compare. Local models generate in left-padded batches; a served model
(vLLM, any OpenAI-compatible endpoint) goes through the project's LLM client.

The default problems are a held-out set that shares no question with the sample `generate`
trains on, so a model is not scored on problems it was fine-tuned on. An exported dataset
folder is read through its `cft` config (one problem per question, gold from `gold_answer`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from ..config import EndpointConfig, FieldMap, ProblemsConfig
from ..errors import UserError
from ..llm import LLMClient, LLMError, resolve_api_key
from ..prompts import load_prompt
from ..records import Problem
from ..sources import iter_problems, select
from ..verify import check_response
from .models import load
from .options import EvalOptions
from .progress import CountProgress

log = logging.getLogger(__name__)
EVAL_PATH = Path(__file__).resolve().parent.parent / "data" / "eval_problems.jsonl"
# Export column -> the problem role it fills, where the source has no column of the role's name.
_EXPORT_COLUMNS = {"answer": "gold_answer", "id": "problem_id"}


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    correct: int
    total: int
    out: Path


def evaluate(options: EvalOptions, console: Console | None = None) -> EvalResult:
    """Score `options.model`; progress goes to `console` (default: stderr)."""
    source = problem_source(options)
    problems = list(select(unique(iter_problems(source, ("answer",))), None, options.limit))
    if not problems:
        raise UserError("no problems to evaluate")
    prompt = load_prompt("eval")
    messages = [
        [
            {"role": "system", "content": prompt.system()},
            {"role": "user", "content": prompt.user(question=p.question)},
        ]
        for p in problems
    ]
    log.info("evaluating %s on %d problems from %s", options.model, len(problems), source.path)
    with CountProgress("answered", len(messages), console) as progress:
        if options.model.startswith(("http://", "https://")):
            answers = asyncio.run(_served(options, messages, progress))
        else:
            answers = _local(options, messages, progress)
    name = options.served_model or Path(options.model.rstrip("/")).name
    out = options.out or Path(f"eval-{name.replace('/', '_')}.jsonl")
    return score(problems, answers, out)


def problem_source(options: EvalOptions) -> ProblemsConfig:
    """Where the problems come from and which columns hold what; an export maps itself."""
    path = options.data or str(EVAL_PATH)
    config_name = options.config_name
    if config_name is None and (Path(path) / "data" / "cft").is_dir():
        config_name = "cft"
    columns = _columns(Path(path), config_name, options.split)
    fields: dict[str, str | None] = {
        role: column
        for role, column in _EXPORT_COLUMNS.items()
        if columns and role not in columns and column in columns
    }
    fields.update(options.fields)
    try:
        field_map = FieldMap(**fields)
    except ValidationError:
        roles = ", ".join(FieldMap.model_fields)
        raise UserError(f"--field {sorted(options.fields)}: unknown role; roles are {roles}") from None
    return ProblemsConfig(path=path, config_name=config_name, split=options.split, fields=field_map)


def _columns(path: Path, config_name: str | None, split: str) -> set[str] | None:
    """The source's column names where they are cheap to read (exported folder, local file)."""
    import pyarrow.parquet as pq

    if config_name is not None and (path / "data" / config_name).is_dir():
        files = sorted((path / "data" / config_name).glob(f"{split}-*.parquet"))
        if not files:
            raise UserError(
                f"{path}: config {config_name!r} has no {split!r} split; "
                "export with --test-size to make a test split, or pass --split train"
            )
        return set(pq.read_schema(files[0]).names)
    if path.suffix == ".parquet" and path.is_file():
        return set(pq.read_schema(path).names)
    if path.suffix == ".jsonl" and path.is_file():
        with path.open("rb") as f:
            first = next((line for line in f if line.strip()), b"{}")
        try:
            row = json.loads(first)
        except ValueError:
            return None  # the reader names the bad line
        return set(row) if isinstance(row, dict) else None
    return None


def unique(problems: Iterable[Problem]) -> Iterator[Problem]:
    """Each question once: an export has one row per response, several per problem."""
    seen: set[str] = set()
    for problem in problems:
        if problem.question not in seen:
            seen.add(problem.question)
            yield problem


def score(problems: list[Problem], answers: list[str | None], out: Path) -> EvalResult:
    """Check each answer against its gold answer; write one JSON line a problem."""
    correct = 0
    with out.open("w", encoding="utf-8") as f:
        for problem, answer in zip(problems, answers, strict=True):
            final, ok = check_response(answer or "", problem.answer)
            correct += bool(ok)
            row = {
                "id": problem.id,
                "question": problem.question,
                "gold": problem.answer,
                "response": answer,
                "final_answer": final,
                "correct": bool(ok),
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return EvalResult(correct / len(problems), correct, len(problems), out)


async def _served(
    options: EvalOptions, messages: list[list[dict[str, str]]], progress: CountProgress
) -> list[str | None]:
    endpoint = EndpointConfig(base_urls=[options.model], concurrency=options.concurrency)
    async with LLMClient(endpoint, resolve_api_key(endpoint, "eval")) as client:
        await client.check()
        model = options.served_model or await _first_model(client)

        async def one(turns: list[dict[str, str]]) -> str | None:
            try:
                completion = await client.chat(
                    model, turns, temperature=0.0, top_p=1.0, max_tokens=options.max_new_tokens
                )
            except LLMError as exc:
                log.warning("no answer (%s): counted as wrong", exc.reason)
                return None
            finally:
                progress.advance()
            return completion.text

        return list(await asyncio.gather(*(one(m) for m in messages)))


async def _first_model(client: LLMClient) -> str:
    models = await client.list_models()
    if not models:
        raise UserError("the endpoint lists no models; pass --served-model NAME")
    return models[0]


def _local(
    options: EvalOptions, messages: list[list[dict[str, str]]], progress: CountProgress
) -> list[str | None]:
    try:
        import torch
        import transformers  # noqa: F401  (load() imports it; fail here with the extra's name)
    except ImportError:
        raise UserError("local eval needs the train extra: pip install 'critique-synth[train]'") from None
    model, tokenizer = load(options.model, padding_side="left")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    texts = [_render(tokenizer, m) for m in messages]
    answers: list[str | None] = []
    for start in range(0, len(texts), options.batch_size):
        batch = tokenizer(
            texts[start : start + options.batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(device)
        with torch.no_grad():
            generated = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=options.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = generated[:, batch["input_ids"].shape[1] :]
        answers += tokenizer.batch_decode(new, skip_special_tokens=True)
        progress.advance(len(new))
    return answers


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return "\n\n".join(m["content"] for m in messages) + "\n"
