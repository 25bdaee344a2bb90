"""Trainer and evaluator options; defaults follow the CFT paper and are printed at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="exported dataset folder, a parquet/jsonl file, or a Hub dataset")
    model: str = Field(description="model name or path (transformers)")
    objective: Literal["cft", "sft"] = "cft"
    out: Path
    config_name: str | None = Field(default=None, description="dataset config; default: the objective")
    split: str = "train"
    lr: float = Field(default=5e-6, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=4, ge=1, description="examples per micro-batch per device")
    grad_accum: int = Field(default=16, ge=1)
    cutoff: int = Field(default=2048, ge=16, description="max tokens per example; the prompt is cut first")
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    bf16: bool | None = Field(default=None, description="default: where the device supports it")
    gradient_checkpointing: bool = False
    lora: bool = False
    lora_r: int = Field(default=16, ge=1)
    save_every: int | None = Field(default=None, ge=1, description="checkpoint every N optimizer steps")
    keep_checkpoints: int = Field(default=2, ge=1)
    resume: bool = False
    seed: int = 42
    limit: int | None = Field(default=None, ge=1, description="use at most N examples")


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a local model path/name, or an http(s) OpenAI-compatible base URL")
    data: str | None = Field(
        default=None,
        description="problems (file, folder, exported dataset or Hub id); default: the bundled held-out "
        "eval set (eval_problems.jsonl), disjoint from the sample generate trains on",
    )
    split: str = Field(default="test", description="split of a dataset folder, export or Hub dataset")
    config_name: str | None = Field(default=None, description="dataset config; an export: cft")
    fields: dict[str, str] = Field(
        default_factory=dict, description="role -> column (id, question, answer); an export maps itself"
    )
    served_model: str | None = Field(default=None, description="model name at the endpoint")
    limit: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=2048, ge=1)
    out: Path | None = Field(default=None, description="per-problem JSONL; default: eval-<name>.jsonl")
    concurrency: int = Field(default=32, ge=1)
