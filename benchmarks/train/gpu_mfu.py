"""GPU throughput and MFU of the bundled trainer on a ~0.5B Qwen2-shaped model (random init).

For a lent GPU machine (one short run): builds the model from a Qwen2.5-0.5B-shaped config,
makes synthetic CFT data offline, trains 30 steps in bf16 and prints tokens/s and MFU.
MFU = 6 * N * tokens/s / peak, N = non-embedding parameters + the LM head (the standard
per-token training FLOPs, attention's quadratic term left out), peak = dense bf16 of the card.

    python benchmarks/train/gpu_mfu.py --steps 30 --batch-size 16
    python benchmarks/train/gpu_mfu.py --tiny --steps 3      # check the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--problems", type=int, default=299)
    parser.add_argument("--cutoff", type=int, default=1024)
    parser.add_argument("--tiny", action="store_true", help="a small model, to check the script on a CPU")
    args = parser.parse_args()

    import torch

    import critique_synth
    from critique_synth.trainer import TrainOptions, train
    from critique_synth.trainer.models import load_model
    from critique_synth.trainer.tiny import make_model

    shape = (
        {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab_size": 512}
        if args.tiny
        else {
            "hidden": 896,
            "layers": 24,
            "heads": 14,
            "kv_heads": 2,
            "intermediate": 4864,
            "vocab_size": 151936,
        }
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = critique_synth.generate({"limit": args.problems, "students": {"samples": 4}}, out=tmp / "run")
        assert run.dataset is not None
        model_path = make_model(tmp / "model", **shape)
        model = load_model(str(model_path))
        embedding = model.get_input_embeddings().weight.numel()
        params = sum(p.numel() for p in model.parameters())
        flops_params = params - embedding + model.config.vocab_size * model.config.hidden_size
        del model
        train(
            TrainOptions(
                data=str(run.dataset.path),
                model=str(model_path),
                out=tmp / "out",
                batch_size=args.batch_size,
                grad_accum=1,
                max_steps=args.steps,
                lr=1e-5,
                cutoff=args.cutoff,
                bf16=torch.cuda.is_available(),
            )
        )
        rows = [json.loads(line) for line in (tmp / "out" / "metrics.jsonl").read_text().splitlines()]
    warm = rows[3:] if len(rows) > 5 else rows  # skip the first steps (allocator, kernels warming up)
    seconds = warm[-1]["elapsed_s"] - (rows[2]["elapsed_s"] if len(rows) > 5 else 0.0)
    tokens = sum(r["tokens"] for r in warm)
    rate = tokens / seconds
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    peak = peak_tflops(device)
    mfu = 6 * flops_params * rate / (peak * 1e12) if peak else None
    print("| device | params | batch | steps timed | tokens/s | padding | MFU |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {device} | {params / 1e6:,.0f}M | {args.batch_size} | {len(warm)} | {rate:,.0f} "
        f"| {sum(r['padding_fraction'] for r in warm) / len(warm):.1%} | {f'{mfu:.1%}' if mfu else 'n/a'} |"
    )


if __name__ == "__main__":
    main()
