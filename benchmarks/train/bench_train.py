"""Trainer benchmark: critique-synth's trainer next to TRL's SFTTrainer, same model, data, batch.

Both train one pass over the same CFT examples (the offline default's critiques of the
bundled problems) with completion-only loss, from the same random-init Qwen2-shaped model,
on the CPU, each in its own child process. Tokens/s counts non-padding tokens; padding is
the share of pad tokens in the batches each trainer actually built. Needs `pip install trl`.

    python benchmarks/train/bench_train.py --problems 150 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

OURS = """
import json, sys, time
from pathlib import Path
from critique_synth.trainer import TrainOptions, train
data, model, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
batch, steps = int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
train(TrainOptions(data=data, model=model, out=out, batch_size=batch, grad_accum=1, max_steps=steps,
                   lr=1e-4, cutoff=1024, bf16=False))
wall = time.perf_counter() - t0
rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
tokens = sum(r["tokens"] for r in rows)
train_time = rows[-1]["elapsed_s"]
padded = sum(r["tokens"] / (1 - r["padding_fraction"]) for r in rows)
print(json.dumps({"tokens": tokens, "train_s": train_time, "wall_s": wall, "padding": 1 - tokens / padded,
                  "loss": rows[-1]["loss"]}))
"""

TRL = """
import json, sys, time
import torch
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer
from critique_synth.trainer.models import load
data, model_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
batch, steps = int(sys.argv[4]), int(sys.argv[5])
dataset = load_dataset(data, "trl", split="train")
model, tokenizer = load(model_path, dtype=torch.float32)  # as critique-synth train loads it
seen = {"tokens": 0, "slots": 0}

class Counting(SFTTrainer):
    def training_step(self, model, inputs, *args, **kwargs):
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(inputs["input_ids"])
        seen["tokens"] += int(mask.sum())
        seen["slots"] += int(mask.numel())
        return super().training_step(model, inputs, *args, **kwargs)

config = SFTConfig(output_dir=out, per_device_train_batch_size=batch, gradient_accumulation_steps=1,
                   max_steps=steps, learning_rate=1e-4, lr_scheduler_type="cosine",
                   warmup_steps=int(0.1 * steps),
                   max_length=1024, completion_only_loss=True, use_cpu=True, bf16=False, report_to="none",
                   save_strategy="no", logging_steps=steps, seed=42, dataloader_num_workers=0)
trainer = Counting(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
t0 = time.perf_counter()
result = trainer.train()
train_time = time.perf_counter() - t0
print(json.dumps({"tokens": seen["tokens"], "train_s": train_time, "wall_s": train_time,
                  "padding": 1 - seen["tokens"] / seen["slots"], "loss": result.training_loss}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    import torch
    import transformers
    import trl

    import critique_synth
    from critique_synth.trainer.tiny import make_model

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        result = critique_synth.generate({"limit": args.problems}, out=tmp / "run")
        assert result.dataset is not None
        data = str(result.dataset.path)
        model = str(make_model(tmp / "model", hidden=args.hidden, layers=args.layers, heads=8, kv_heads=2))
        steps = result.dataset.rows // args.batch_size
        ours = run(OURS, data, model, str(tmp / "ours"), str(args.batch_size), str(steps))
        theirs = run(TRL, data, model, str(tmp / "trl"), str(args.batch_size), str(steps))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (CPU), torch {torch.__version__}, "
        f"transformers {transformers.__version__}, trl {trl.__version__}, critique-synth "
        f"{critique_synth.__version__}, {date.today()}"
    )
    print(
        f"model: Qwen2-shaped, hidden {args.hidden}, {args.layers} layers, random init; "
        f"{result.dataset.rows} CFT examples, batch {args.batch_size}, {steps} steps, completion-only loss\n"
    )
    print("| trainer | tokens/s (non-padding) | padding | train s | final loss |")
    print("|---|---|---|---|---|")
    for name, r in (("critique-synth train", ours), ("TRL SFTTrainer", theirs)):
        print(
            f"| {name} | {r['tokens'] / r['train_s']:,.0f} | {r['padding']:.1%} | {r['train_s']:.1f} "
            f"| {r['loss']:.3f} |"
        )


if __name__ == "__main__":
    main()
