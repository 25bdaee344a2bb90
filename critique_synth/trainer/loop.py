"""The training loop: one readable function, accelerate underneath for devices and DDP/FSDP.

Both objectives are the same loop on different (prompt, target) pairs: CFT trains on the
critique given question + noisy solution, SFT on the solution given the question. The loss
is summed over target tokens and divided by the target tokens of the whole accumulation
window (across processes too), so every target token weighs the same however batches fall.
Logits are computed only at positions that have a label (see loss.py for when and why not).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .data import IGNORE, DataReport, Example, build_examples, check_data, collate, epoch_batches
from .loss import TargetLoss
from .models import load
from .options import TrainOptions

log = logging.getLogger(__name__)
STATE = "trainer_state.json"
METRICS = "metrics.jsonl"


@dataclass
class TrainResult:
    out: Path
    steps: int
    last_loss: float
    report: DataReport


def _load_model(options: TrainOptions) -> tuple[Any, Any]:
    model, tokenizer = load(options.model, dtype=torch.float32)
    model.config.use_cache = False
    if options.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if options.lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UserError("--lora needs peft: pip install peft") from None
        lora = LoraConfig(r=options.lora_r, lora_alpha=2 * options.lora_r, target_modules="all-linear")
        model = get_peft_model(model, lora)
    return model, tokenizer


def _optimizer(params: list[nn.Parameter], options: TrainOptions) -> torch.optim.Optimizer:
    """Fused AdamW where this torch and device support it."""
    try:
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)


def _micro_batches(
    examples: list[Example], options: TrainOptions, rank: int, world: int, start: int
) -> Iterator[list[Example]]:
    """This process's micro-batches forever, epoch after epoch, skipping the first `start`."""
    lengths = [len(e) for e in examples]
    position, epoch = 0, 0
    while True:
        for batch in epoch_batches(lengths, options.batch_size, options.seed, epoch)[rank::world]:
            if position >= start:
                yield [examples[i] for i in batch]
            position += 1
        epoch += 1


def train(options: TrainOptions) -> TrainResult:
    """Fine-tune `options.model` on `options.data` with the CFT or SFT objective."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    bf16 = (
        options.bf16
        if options.bf16 is not None
        else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    # cpu=True on a machine without CUDA lets torchrun/accelerate run DDP over gloo on CPUs.
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not torch.cuda.is_available())
    set_seed(options.seed)
    check_data(options.data, options.objective, options.config_name, options.split)  # before minutes of model
    model, tokenizer = _load_model(options)
    examples, report = build_examples(
        options.data,
        options.objective,
        options.config_name,
        options.split,
        tokenizer,
        options.cutoff,
        options.limit,
    )
    world, rank = accelerator.num_processes, accelerator.process_index
    per_epoch = math.ceil(len(examples) / options.batch_size) // world
    total_steps = options.max_steps or max(1, math.ceil(per_epoch * options.epochs / options.grad_accum))
    _announce(accelerator, options, bf16, report, total_steps, world)

    loss_fn = TargetLoss(model)
    optimizer = _optimizer([p for p in model.parameters() if p.requires_grad], options)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(options.warmup_ratio * total_steps), total_steps
    )
    # The scheduler stays unwrapped: accelerate's wrapper steps it once per process per step,
    # and our step count is already per process. Registered, it is still checkpointed.
    loss_fn, optimizer = accelerator.prepare(loss_fn, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    options.out.mkdir(parents=True, exist_ok=True)
    step = _resume(accelerator, options) if options.resume else 0
    batches = _micro_batches(examples, options, rank, world, step * options.grad_accum)
    metrics = _open_metrics(options.out / METRICS, step) if accelerator.is_main_process else None
    pad_id = tokenizer.pad_token_id
    started, loss_value, first_step, session_tokens = time.perf_counter(), float("nan"), step, 0
    loss_fn.train()
    while step < total_steps:
        window = [collate(next(batches), pad_id) for _ in range(options.grad_accum)]
        window_targets = accelerator.reduce(
            torch.tensor(
                sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in window), device=accelerator.device
            ),
            "sum",
        )
        loss_sum = torch.zeros((), device=accelerator.device)
        for i, batch in enumerate(window):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            sync = i == len(window) - 1
            with accelerator.no_sync(loss_fn) if not sync else nullcontext():
                with accelerator.autocast():
                    total = loss_fn(**batch)
                # DDP averages gradients over processes; scale so the result is sum / all targets.
                accelerator.backward(total * world / window_targets)
            loss_sum += total.detach()
        accelerator.clip_grad_norm_(loss_fn.parameters(), options.max_grad_norm)
        lr = scheduler.get_last_lr()[0]  # the rate this step uses; scheduler.step() sets the next one
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_value = float(accelerator.reduce(loss_sum, "sum") / window_targets)
        counts = torch.tensor(
            [
                sum(int(b["attention_mask"].sum()) for b in window),
                sum(b["attention_mask"].numel() for b in window),
            ],
            device=accelerator.device,
        )
        tokens, padded = (int(n) for n in accelerator.reduce(counts, "sum"))
        elapsed = time.perf_counter() - started
        session_tokens += tokens
        row = {
            "step": step,
            "loss": loss_value,
            "lr": lr,
            "tokens": tokens,
            "target_tokens": int(window_targets),
            "padding_fraction": 1 - tokens / padded,
            "tokens_per_s": session_tokens / elapsed,
            "elapsed_s": elapsed,
        }
        if metrics is not None:
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            _progress(row, total_steps, elapsed / (step - first_step) * (total_steps - step))
        if options.save_every and step % options.save_every == 0 and step < total_steps:
            _checkpoint(accelerator, options, step, tokenizer)
    _save_final(accelerator, loss_fn, tokenizer, options.out)
    if metrics is not None:
        metrics.close()
    return TrainResult(options.out, step, loss_value, report)


def _announce(
    accelerator: Any, options: TrainOptions, bf16: bool, report: DataReport, steps: int, world: int
) -> None:
    if not accelerator.is_main_process:
        return
    log.info(
        "objective %s | lr %g | epochs %g | cosine schedule, warmup ratio %g | cutoff %d | bf16 %s | "
        "batch %d x accumulation %d x %d process(es) | %d optimizer steps",
        options.objective,
        options.lr,
        options.epochs,
        options.warmup_ratio,
        options.cutoff,
        bf16,
        options.batch_size,
        options.grad_accum,
        world,
        steps,
    )
    log.info(
        "data: %d examples, %d dropped (target longer than cutoff), %d prompts cut, %d tokens (%d target)",
        report.examples,
        report.dropped_too_long,
        report.prompts_cut,
        report.tokens,
        report.target_tokens,
    )


def _progress(row: dict[str, Any], total: int, eta: float) -> None:
    log.info(
        "step %d/%d | loss %.4f | lr %.3g | %.0f tokens/s | padding %.1f%% | ETA %.0fs",
        row["step"],
        total,
        row["loss"],
        row["lr"],
        row["tokens_per_s"],
        100 * row["padding_fraction"],
        eta,
    )


def _checkpoint(accelerator: Any, options: TrainOptions, step: int, tokenizer: Any) -> None:
    """Model, optimizer, scheduler and RNG (accelerate), the tokenizer, and the step (which
    fixes the data position: same seed, same batch order)."""
    folder = options.out / "checkpoints" / f"step-{step:07d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        tokenizer.save_pretrained(str(folder))
        (folder / STATE).write_text(json.dumps({"step": step}), encoding="utf-8")
        old = sorted((options.out / "checkpoints").glob("step-*"))[: -options.keep_checkpoints]
        for stale in old:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()


def _resume(accelerator: Any, options: TrainOptions) -> int:
    """Load the newest checkpoint; the data position follows from the step (same seed, same order)."""
    folders = sorted((options.out / "checkpoints").glob("step-*"))
    folders = [f for f in folders if (f / STATE).exists()]
    if not folders:
        raise UserError(f"--resume: no checkpoint under {options.out / 'checkpoints'}")
    accelerator.load_state(str(folders[-1]))
    state = json.loads((folders[-1] / STATE).read_text(encoding="utf-8"))
    log.info("resumed from %s (step %d)", folders[-1], state["step"])
    return int(state["step"])


def _open_metrics(path: Path, start: int) -> Any:
    """The metrics file for appending, holding only the rows of steps up to `start`.

    A resumed run repeats the steps after its checkpoint, and a fresh run (start 0) begins
    again, so rows those steps wrote before would otherwise appear twice. A torn last line
    (a kill mid-write) is dropped too.
    """
    kept = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= start:
                kept.append(line + "\n")
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(kept), encoding="utf-8")
    partial.replace(path)
    return path.open("a", encoding="utf-8")


def _save_final(accelerator: Any, loss_fn: Any, tokenizer: Any, out: Path) -> None:
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(loss_fn)
    state = {k.removeprefix("model."): v for k, v in state.items()}
    model = accelerator.unwrap_model(loss_fn).model
    model.save_pretrained(
        str(out),
        state_dict=state,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
    )
    if accelerator.is_main_process:
        tokenizer.save_pretrained(str(out))
