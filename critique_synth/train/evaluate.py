"""`critique-synth eval`: greedy answers to math problems, checked against gold answers.

The same prompt and checker for every model, local or served, so base vs SFT vs CFT is three
commands whose numbers compare. Local models generate in left-padded batches; a served model
(vLLM, any OpenAI-compatible endpoint) goes through the project's LLM client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import EndpointConfig, ProblemsConfig
from ..errors import UserError
from ..llm import LLMClient, LLMError, resolve_api_key
from ..prompts import load_prompt
from ..records import Problem
from ..sources import iter_problems, select
from ..verify import check_response
from .options import EvalOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    correct: int
    total: int
    out: Path


def evaluate(options: EvalOptions) -> EvalResult:
    problems = list(
        select(iter_problems(ProblemsConfig(path=options.data), ("answer",)), None, options.limit)
    )
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
    if options.model.startswith(("http://", "https://")):
        answers = asyncio.run(_served(options, messages))
    else:
        answers = _local(options, messages)
    name = options.served_model or Path(options.model.rstrip("/")).name
    out = options.out or Path(f"eval-{name.replace('/', '_')}.jsonl")
    return score(problems, answers, out)


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
    result = EvalResult(correct / len(problems), correct, len(problems), out)
    log.info("accuracy %.1f%% (%d/%d); per problem: %s", 100 * result.accuracy, correct, len(problems), out)
    return result


async def _served(options: EvalOptions, messages: list[list[dict[str, str]]]) -> list[str | None]:
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
            return completion.text

        return list(await asyncio.gather(*(one(m) for m in messages)))


async def _first_model(client: LLMClient) -> str:
    models = await client.list_models()
    if not models:
        raise UserError("the endpoint lists no models; pass --served-model NAME")
    return models[0]


def _local(options: EvalOptions, messages: list[list[dict[str, str]]]) -> list[str | None]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise UserError("local eval needs the train extra: pip install 'critique-synth[train]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(options.model, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(options.model)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load model {options.model!r}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
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
    return answers


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return "\n\n".join(m["content"] for m in messages) + "\n"
