"""The dataset card: how the data was made, what was filtered, how to train on it.

Built only from run.json facts and export counts. It never includes endpoint URLs or
environment values, so no key or credential can reach a published card.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .config import ExportOptions
from .errors import UserError
from .pricing import describe_cost
from .records import critique_schema
from .stats import Stats, format_rate
from .store import read_run

log = logging.getLogger(__name__)

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
    """Each run's run.json; a missing or broken one leaves its facts off the card (the records
    are what the dataset is made of), with a warning naming the file."""
    runs = []
    for run_dir in run_dirs:
        try:
            runs.append(read_run(run_dir) or {})
        except UserError as exc:
            log.warning("%s; the dataset card leaves its facts out", exc)
            runs.append({})
    return runs


def merged_counts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What only run.json knows (rejects, requests, their cost), summed over shards."""
    total: dict[str, Any] = {"rejected": 0, "requests": 0, "retries": 0}
    reasons: Counter[str] = Counter()
    for run in runs:
        counts = run.get("counts", {})
        for key in total:
            value = counts.get(key, 0)
            total[key] += value if isinstance(value, int) else 0
        given = counts.get("rejected_by_reason") or {}
        reasons.update({k: v for k, v in given.items() if isinstance(v, int)})
    return {**total, "rejected_by_reason": dict(reasons)}


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
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows)])


def _cell(value: Any) -> str:
    """A table cell a person reads: mappings as `key: value` pairs, never a raw dict."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value).replace("|", "\\|")


def _rate(rate: float | None, judged: int) -> str:
    return format_rate(rate, judged, missing="n/a (no such labels)")


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
    runs: list[dict[str, Any]],
    options: ExportOptions,
    counts: dict[str, Any],
    samples: list[dict[str, Any]],
    stats: Stats,
) -> str:
    """The card; `runs` are the run.json of each directory (read_runs), `stats` counts every
    record read (before filters), across all run directories."""
    run = merged_counts(runs)
    rows_table = "\n".join(
        f"| {fmt} | {split} | {info['rows']:,} |"
        for fmt, splits in sizes.items()
        for split, info in splits.items()
    )
    sample_text = "\n".join(
        f"```text\n[input]\n{s['input'][:700]}\n\n[output]\n{s['output'][:700]}\n```" for s in samples
    )
    filters = options.model_dump(exclude={"enabled", "formats", "license", "tokenizer"})
    return f"""---
{_yaml_header(sizes, options)}---

# Critique fine-tuning data (critique-synth)

Critiques of noisy solutions to math problems, for critique fine-tuning (CFT): the model is
trained to critique a candidate solution (`output`) given the question and the solution
(`input`, its steps numbered as the teacher saw them), instead of imitating a correct answer.
Every critique ends with `Conclusion: right [END]` or `Conclusion: wrong [END]`, and every
verdict was checked against the best label known for its response (`reference`: `process` where
the steps are labelled, else `final_answer`), so the critiques that contradict it are counted
and marked (`agrees`), not hidden.

## How it was made

{_provenance(runs)}

### Verdicts against the labels

{_agreement_table(stats, run)}
{_teacher_section(stats)}
### Prompts

{_prompt_section(runs)}
{_schema_section(runs)}
## Filters applied at export

{_table([(k, v) for k, v in filters.items()])}

Records read: {counts.get("records_read", 0):,}. Dropped: {_cell(counts.get("dropped") or {})}.
Critique length in the kept rows, in tokens: {_cell(counts.get("critique_tokens") or {})}.

## Configs and splits

| config | split | rows |
|---|---|---|
{rows_table}

- `cft`: `instruction`, `input`, `output` in the layout of TIGER-Lab/WebInstruct-CFT, plus
  metadata: the labels (`response_correct` by final answer, `process_correct`,
  `first_error_step`, `error_kind`), the check (`reference`, `agrees`, `step_agrees`,
  `crosscheck`) and which critique was kept (`selected_by`).
- `trl`: conversational `prompt` / `completion` for TRL's SFTTrainer (loss on the completion).
- `messages`: chat turns, assistant = `Critique:\\n...` (One-Shot CFT layout).
- `sft`: question -> a response known to be right (by its steps where labelled, else by its
  final answer): the imitation baseline on the same problems.
- `disagreements` split (if present): critiques whose verdict contradicts the label.

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

## Limitations

- A verdict that agrees with the label can still rest on a wrong explanation: agreement checks
  the verdict (and, where labelled, the first wrong step), not every sentence of a critique.
- Where only the final answer is labelled, a response whose steps are wrong but whose answer is
  right counts as right; a teacher that rightly calls it wrong is then scored as disagreeing.
- Injected errors are made by rule from reference solutions; real students' errors are more
  varied. Responses from a dataset or a student model carry the labels given or checked.
- The built-in critic (when it is the teacher) checks arithmetic and the final answer exactly;
  it cannot see reasoning errors that keep the arithmetic right, except through the gold answer.

## Citation

```bibtex
{CITATION}
```
"""


def _provenance(runs: list[dict[str, Any]]) -> str:
    """Where the problems came from, who wrote responses and critiques, and how."""
    first = next((r for r in runs if r), {})
    config = first.get("config") or {}
    teachers = config.get("teachers") or [config.get("teacher") or {}]
    sampling = "; ".join(
        f"{t.get('name') or t.get('model') or t.get('kind', '?')}: temperature {t.get('temperature')}, "
        f"top_p {t.get('top_p')}, max_tokens {t.get('max_tokens')}, mode {t.get('mode')}"
        for t in teachers
        if t.get("kind") == "llm"
    )
    versions = first.get("versions") or {}
    return _table(
        [
            ("problems", ", ".join(sorted({str(r.get("source", "unknown")) for r in runs}))),
            ("problem license", _source_license(runs)),
            ("students (noisy responses)", ", ".join(sorted({str(r.get("students", "?")) for r in runs}))),
            ("teachers", ", ".join(sorted({str(r.get("teacher", "unknown")) for r in runs}))),
            ("teacher sampling", sampling or "built-in critic (deterministic)"),
            ("structured output", _outputs(runs)),
            ("made with", f"critique-synth {versions.get('critique_synth', '?')}"),
            ("run directories merged", len(runs)),
        ]
    )


def _outputs(runs: list[dict[str, Any]]) -> str:
    """The structured-output mode each LLM teacher ended up with, and why."""
    modes = {name: info for run in runs for name, info in (run.get("teacher_output") or {}).items()}
    if not modes:
        return "none (no LLM teacher)"
    return "; ".join(f"{name}: {info.get('mode')} ({info.get('why')})" for name, info in modes.items())


def _source_license(runs: list[dict[str, Any]]) -> str:
    if all(str(r.get("source", "")).startswith("bundled sample") for r in runs if r):
        return "Apache-2.0 (problems made with reasoning-gym's gsm_symbolic generator)"
    return "not recorded: check the source dataset's terms before publishing"


def _agreement_table(stats: Stats, run: dict[str, Any]) -> str:
    a = stats.agreement
    return _table(
        [
            ("critiques read", f"{stats.critiques:,}"),
            ("verdicts", f"{stats.verdicts['right']:,} right / {stats.verdicts['wrong']:,} wrong"),
            ("critiques by their response's label", dict(sorted(stats.labels.items()))),
            ("agreement, process label", _rate(a.rate("process"), a.judged("process"))),
            ("agreement, final answer only", _rate(a.rate("final_answer"), a.judged("final_answer"))),
            ("first wrong step exact", _rate(a.step_rate, sum(a.steps.values()))),
            ("cross-check flags", dict(stats.crosscheck) or "none"),
            ("rejected units", f"{run['rejected']:,} ({_cell(run['rejected_by_reason']) or 'none'})"),
            (
                "tokens",
                f"{stats.usage.prompt_tokens:,} prompt / {stats.usage.completion_tokens:,} completion",
            ),
            ("cost of the records read", describe_cost(stats.usage)),
            ("requests / retries", f"{run['requests']:,} / {run['retries']:,}"),
        ]
    )


def _teacher_section(stats: Stats) -> str:
    if len(stats.teachers) < 2:
        return ""
    lines = [
        "\n### Teachers\n",
        "| teacher | critiques | agreement, process | agreement, final answer | first step exact | cost |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in sorted(stats.teachers.items()):
        a = t.agreement
        lines.append(
            f"| {name} | {t.critiques:,} | {_rate(a.rate('process'), a.judged('process'))} "
            f"| {_rate(a.rate('final_answer'), a.judged('final_answer'))} "
            f"| {_rate(a.step_rate, sum(a.steps.values()))} | {describe_cost(t.usage)} |"
        )
    lines += ["", "Pairwise agreement:", "", "| teachers | responses | verdict | first wrong step |"]
    lines.append("|---|---|---|---|")
    for pair, p in stats.pairwise.items():
        step = "n/a" if p["step_agreement"] is None else f"{p['step_agreement']:.1%}"
        lines.append(f"| {pair} | {p['responses']:,} | {p['verdict_agreement']:.1%} | {step} |")
    return "\n".join(lines) + "\n"


def _schema_section(runs: list[dict[str, Any]]) -> str:
    """The critique schema, only where an LLM teacher was asked for it (json mode)."""
    config = next((r for r in runs if r), {}).get("config") or {}
    teachers = config.get("teachers") or [config.get("teacher") or {}]
    if not any(t.get("kind") == "llm" and t.get("mode") in ("json", "auto") for t in teachers):
        return ""
    return f"""### Critique schema

LLM teachers in JSON mode return this object (validated with pydantic, repaired or rejected
when invalid); it is rendered to the CFT text in `output`:

```json
{json.dumps(critique_schema(), indent=2)}
```
"""
