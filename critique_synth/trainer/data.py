"""Training examples: (prompt, target) pairs tokenized with the model's chat template.

The user turn is instruction + "\\n" + input, as LLaMA-Factory builds it, so a model trained
here sees exactly what a LLaMA-Factory run would. Labels are -100 on the prompt and padding
and equal the input ids on the target, end-of-turn token included. A prompt that does not
fit is cut in the middle, keeping its start and the tail that leads into the answer; the
target is never cut, and an example whose target alone does not fit is dropped and counted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..store import CRITIQUES, RUN
from .models import check_source, hub_offline

IGNORE = -100
MIN_PROMPT = 16
_HEAD = 32


@dataclass
class Example:
    input_ids: np.ndarray
    prompt_len: int

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class DataReport:
    examples: int = 0
    dropped_too_long: int = 0
    prompts_cut: int = 0
    tokens: int = 0
    target_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def check_data(data: str, objective: str, config_name: str | None, split: str) -> None:
    """What can be told of `data` without loading it, told before the model loads: a path that
    is not there, a run directory instead of its export, an export config with no rows."""
    path = Path(data)
    if path.is_dir() and ((path / CRITIQUES).exists() or (path / RUN).exists()):
        hint = (
            f"--data {path / 'dataset'}" if (path / "dataset").is_dir() else f"critique-synth export {data}"
        )
        raise UserError(f"{data} is a run directory, not a dataset: train on its export ({hint})")
    if path.is_dir() and (path / "data").is_dir():
        config = config_name or objective
        folder = path / "data" / config
        if not folder.is_dir():
            found = sorted(p.name for p in (path / "data").iterdir() if p.is_dir())
            raise UserError(
                f"{data}: no config {config!r} (has: {', '.join(found)}); choose one with --config-name"
            )
        if all(_empty(f) for f in folder.glob(f"{split}-*")):
            raise UserError(
                f"{data}: config {config!r} has no {split!r} rows (the export kept none of them); "
                "see its README counts, or train another --objective"
            )
    elif not path.exists() and check_source(data, "data", "dataset") and not _cached(data):
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hub cannot be reached"
        raise UserError(f"{data}: no such file or folder, nor a cached Hub dataset ({why}); check the path")


def _empty(file: Path) -> bool:
    """A parquet file with no rows (read off its footer); other files are taken to have some."""
    import pyarrow.parquet as pq

    return file.suffix == ".parquet" and pq.ParquetFile(file).metadata.num_rows == 0


def _cached(hub_id: str) -> bool:
    """Whether a Hub dataset has files in the local caches (huggingface_hub's or datasets')."""
    import datasets
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE) / f"datasets--{hub_id.replace('/', '--')}"
    return hub.is_dir() or (Path(datasets.config.HF_DATASETS_CACHE) / hub_id.replace("/", "___")).is_dir()


def _load_rows(data: str, config_name: str | None, split: str) -> Any:
    import datasets

    path = Path(data)
    try:
        if path.is_file():
            kind = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
            if kind is None:
                raise UserError(f"{path}: use a .parquet, .jsonl or .json file, or an exported folder")
            return datasets.load_dataset(kind, data_files=str(path), split="train")
        return datasets.load_dataset(data, config_name, split=split)
    except UserError:
        raise
    except Exception as exc:  # datasets raises many types
        raise UserError(f"{data}: cannot load training data ({exc})") from None


def load_pairs(data: str, objective: str, config_name: str | None, split: str) -> Iterator[tuple[str, str]]:
    """(prompt, target) pairs; an exported folder gives its `cft` or `sft` config by objective."""
    if config_name is None and (Path(data) / "data" / objective).is_dir():
        config_name = objective
    rows = _load_rows(data, config_name, split)
    if len(rows) == 0:
        raise UserError(f"{data}: the {config_name or 'default'!r} config's {split!r} split has no rows")
    columns = set(rows.column_names)
    if {"instruction", "output"} <= columns:
        for row in rows:
            extra = row.get("input") or ""
            yield (f"{row['instruction']}\n{extra}" if extra else row["instruction"]), row["output"]
    elif {"question", "response"} <= columns:
        for row in rows:
            yield row["question"], row["response"]
    else:
        raise UserError(
            f"{data}: need instruction/input/output or question/response columns, found {sorted(columns)}"
        )


class Encoder:
    """Prompt and target token ids for one pair, with the chat template or a plain fallback."""

    def __init__(self, tokenizer: Any, cutoff: int) -> None:
        self.tokenizer = tokenizer
        self.cutoff = cutoff
        self.templated = bool(getattr(tokenizer, "chat_template", None))

    def texts(self, prompt: str, target: str) -> tuple[str, str]:
        if self.templated:
            user = [{"role": "user", "content": prompt}]
            head = self.tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
            full = self.tokenizer.apply_chat_template(
                [*user, {"role": "assistant", "content": target}], tokenize=False
            )
            if full.startswith(head):
                return head, full[len(head) :]
        bos = self.tokenizer.bos_token or ""
        return f"{bos}{prompt}\n", f"{target}{self.tokenizer.eos_token or ''}"

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, prompt: str, target: str, report: DataReport) -> Example | None:
        head_text, target_text = self.texts(prompt, target)
        prompt_ids, target_ids = self._ids(head_text), self._ids(target_text)
        budget = self.cutoff - len(target_ids)
        if budget < MIN_PROMPT:
            report.dropped_too_long += 1
            return None
        if len(prompt_ids) > budget:
            keep_head = min(_HEAD, budget // 4)
            prompt_ids = prompt_ids[:keep_head] + prompt_ids[len(prompt_ids) - (budget - keep_head) :]
            report.prompts_cut += 1
        ids = np.asarray(prompt_ids + target_ids, dtype=np.int32)
        report.examples += 1
        report.tokens += len(ids)
        report.target_tokens += len(target_ids)
        return Example(ids, len(prompt_ids))


def build_examples(
    data: str,
    objective: str,
    config_name: str | None,
    split: str,
    tokenizer: Any,
    cutoff: int,
    limit: int | None,
) -> tuple[list[Example], DataReport]:
    encoder = Encoder(tokenizer, cutoff)
    report = DataReport()
    examples = []
    for i, (prompt, target) in enumerate(load_pairs(data, objective, config_name, split)):
        if limit is not None and i >= limit:
            break
        example = encoder.encode(prompt, target, report)
        if example is not None:
            examples.append(example)
    if not examples:
        raise UserError(
            f"{data}: no training examples fit cutoff {cutoff} (dropped {report.dropped_too_long})"
        )
    return examples, report


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches: shuffle, sort within large chunks, shuffle the batches.

    Examples of similar length share a batch, so padding stays small, while the order still
    changes every epoch and stays the same for the same seed (which resume relies on).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 64
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors; labels -100 on prompt and padding."""
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        ids = torch.from_numpy(example.input_ids.astype(np.int64))
        input_ids[row, : len(ids)] = ids
        labels[row, example.prompt_len : len(ids)] = ids[example.prompt_len :]
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
