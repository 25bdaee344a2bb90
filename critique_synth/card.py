"""The dataset card: how the data was made, what was filtered, how to train on it.

Built only from run.json facts and export counts. It never includes endpoint URLs or
environment values, so no key or credential can reach a published card.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .config import ExportOptions
from .teachers import critique_schema

CITATION = """@article{wang2025critique,
  title   = {Critique Fine-Tuning: Learning to Critique is More Effective than Learning to Imitate},
  author  = {Wang, Yubo and Yue, Xiang and Chen, Wenhu},
  journal = {arXiv preprint arXiv:2501.17703},
  year    = {2025}
}"""


def _size_category(rows: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return name
    return "1M<n<10M"


def read_runs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for run_dir in run_dirs:
        try:
            runs.append(json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            runs.append({})
    return runs


def merged_counts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run counts summed over shards."""
    total: dict[str, Any] = {"critiques": 0, "rejected": 0, "requests": 0, "retries": 0}
    nested: dict[str, Counter[str]] = {
        k: Counter() for k in ("rejected_by_reason", "verdicts", "responses", "gold_agreement", "usage")
    }
    for run in runs:
        counts = run.get("counts", {})
        for key in total:
            total[key] += counts.get(key, 0) or 0
        for key, counter in nested.items():
            counter.update({k: v for k, v in (counts.get(key) or {}).items() if isinstance(v, (int, float))})
    return {**total, **{k: dict(v) for k, v in nested.items()}}


def _yaml_header(sizes: dict[str, dict[str, dict[str, Any]]], options: ExportOptions) -> str:
    default = options.formats[0] if options.formats[0] in sizes else next(iter(sizes))
    configs, infos = [], []
    for fmt in [f for f in options.formats if f in sizes]:
        splits = sizes[fmt]
        config: dict[str, Any] = {"config_name": fmt}
        if fmt == default:
            config["default"] = True
        config["data_files"] = [
            {"split": s, "path": info["path"].replace("-00000-of-00001", "-*")} for s, info in splits.items()
        ]
        configs.append(config)
        infos.append(
            {
                "config_name": fmt,
                "splits": [
                    {"name": s, "num_bytes": i["nbytes"], "num_examples": i["rows"]}
                    for s, i in splits.items()
                ],
                "download_size": sum(i["file_bytes"] for i in splits.values()),
                "dataset_size": sum(i["nbytes"] for i in splits.values()),
            }
        )
    rows = sum(i["rows"] for i in sizes.get(default, {}).values())
    header = {
        "configs": configs,
        "dataset_info": infos,
        "language": ["en"],
        "license": options.license,
        "size_categories": [_size_category(rows)],
        "task_categories": ["text-generation"],
        "tags": ["critique-fine-tuning", "cft", "math", "synthetic", "critique-synth"],
    }
    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True)


def _table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def _prompt_section(runs: list[dict[str, Any]]) -> str:
    prompts: dict[str, dict[str, str]] = {}
    for run in runs:
        prompts.update(run.get("prompts") or {})
    if not prompts:
        return "The teacher was the built-in critic, which uses no prompt.\n"
    parts = []
    for name, prompt in prompts.items():
        parts.append(
            f"**{name}** (version `{prompt.get('version')}`):\n\n```text\n{prompt.get('text', '')}\n```\n"
        )
    return "\n".join(parts)


def render_card(
    sizes: dict[str, dict[str, dict[str, Any]]],
    run_dirs: list[Path],
    options: ExportOptions,
    counts: dict[str, Any],
    samples: list[dict[str, Any]],
) -> str:
    runs = read_runs(run_dirs)
    run = merged_counts(runs)
    teachers = sorted({str(r.get("teacher", "unknown")) for r in runs})
    students = sorted({str(r.get("students", "unknown")) for r in runs})
    verdicts = run["verdicts"]
    gold = run["gold_agreement"]
    judged = gold.get("agree", 0) + gold.get("disagree", 0)
    agreement = f"{gold.get('agree', 0) / judged:.1%} of {judged}" if judged else "n/a (no gold answers)"
    usage = run["usage"]
    rows_table = "\n".join(
        f"| {fmt} | {split} | {info['rows']:,} |"
        for fmt, splits in sizes.items()
        for split, info in splits.items()
    )
    sample_text = "\n".join(
        f"```text\n[input]\n{s['input'][:700]}\n\n[output]\n{s['output'][:700]}\n```" for s in samples
    )
    filters = options.model_dump(exclude={"enabled", "formats", "license"})
    dropped = counts.get("dropped", {})
    return f"""---
{_yaml_header(sizes, options)}---

# Critique fine-tuning data (critique-synth)

Critiques of noisy solutions to math problems, for critique fine-tuning (CFT): the model is
trained to critique a candidate solution (`output`) given the question and the solution
(`input`), instead of imitating a correct answer. Every critique ends with
`Conclusion: right [END]` or `Conclusion: wrong [END]`, and every verdict was checked against
the gold answer (`gold_agrees`), so the critiques that contradict it are counted, not hidden.

## How it was made

{
        _table(
            [
                ("teacher", ", ".join(teachers)),
                ("students (noisy responses)", ", ".join(students)),
                ("run directories merged", len(runs)),
                ("critiques in the run stores", f"{run['critiques']:,}"),
                ("rejected units", f"{run['rejected']:,} {json.dumps(run['rejected_by_reason'])}"),
                ("verdicts", f"{verdicts.get('right', 0):,} right / {verdicts.get('wrong', 0):,} wrong"),
                ("responses by gold check", json.dumps(run["responses"])),
                ("verdict agrees with gold", agreement),
                (
                    "tokens",
                    f"{usage.get('prompt_tokens', 0):,} prompt / "
                    f"{usage.get('completion_tokens', 0):,} completion",
                ),
                ("cost (USD)", f"{usage.get('cost', 0.0):.4f}"),
                ("requests / retries", f"{run['requests']:,} / {run['retries']:,}"),
            ]
        )
    }

### Prompts

{_prompt_section(runs)}
### Critique schema

Teachers return this JSON object (validated with pydantic, repaired or rejected when invalid);
it is rendered to the CFT text in `output`:

```json
{json.dumps(critique_schema(), indent=2)}
```

## Filters applied at export

{_table([(k, v) for k, v in filters.items()])}

Records read: {counts.get("records_read", 0):,}. Dropped: {json.dumps(dropped) if dropped else "none"}.

## Configs and splits

| config | split | rows |
|---|---|---|
{rows_table}

- `cft`: `instruction`, `input`, `output` exactly as TIGER-Lab/WebInstruct-CFT, plus metadata.
- `trl`: conversational `prompt` / `completion` for TRL's SFTTrainer (loss on the completion).
- `messages`: chat turns, assistant = `Critique:\\n...` (One-Shot CFT layout).
- `sft`: question -> a response whose final answer matches the gold answer: the imitation
  baseline on the same problems.
- `disagreements` split (if present): critiques whose verdict contradicts the gold check.

## Sample rows

{sample_text or "(no rows)"}

## How to train

- **LLaMA-Factory**: point `dataset_dir` at this folder and set `dataset: cft` (or `sft`,
  `messages`); `dataset_info.json` is included. Paper setup: lr 5e-6, 1 epoch, cosine,
  warmup 0.1, cutoff 2048.
- **TRL**: `load_dataset(PATH, "trl")` and `SFTTrainer` (prompt-completion, loss on the
  completion only).
- **critique-synth**: `critique-synth train --data PATH --model MODEL --objective cft`
  (or `--objective sft` on the `sft` config) to compare both objectives on one model.

## Citation

```bibtex
{CITATION}
```
"""
