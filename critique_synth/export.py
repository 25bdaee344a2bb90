"""Run directories -> a Hub-ready dataset folder (parquet under data/ + README.md card).

The default columns are exactly WebInstruct-CFT's (`instruction`, `input`, `output`), so
LLaMA-Factory and other CFT recipes read the folder unchanged; metadata columns follow.
Records stream from the store in batches, and shards are merged by record key.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserError
from .records import CritiqueRecord
from .store import CRITIQUES, iter_lines

INSTRUCTION = "Please critique whether the following solution to the question is correct."
BATCH = 5000

SCHEMA = pa.schema(
    [
        ("instruction", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("problem_id", pa.string()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("gold_answer", pa.string()),
        ("response_source", pa.string()),
        ("response_correct", pa.bool_()),
        ("verdict", pa.string()),
        ("gold_agrees", pa.bool_()),
        ("first_wrong_step", pa.int64()),
        ("corrected_answer", pa.string()),
        ("teacher", pa.string()),
        ("key", pa.string()),
    ]
)


def cft_input(question: str, response: str) -> str:
    return f"Question:\n{question}\n\nSolution:\n{response}"


def cft_row(record: CritiqueRecord) -> dict[str, Any]:
    return {
        "instruction": INSTRUCTION,
        "input": cft_input(record.problem.question, record.response.text),
        "output": record.text,
        "problem_id": record.problem.id,
        "question": record.problem.question,
        "response": record.response.text,
        "gold_answer": record.problem.answer,
        "response_source": record.response.source,
        "response_correct": record.response.correct,
        "verdict": record.critique.verdict,
        "gold_agrees": record.gold_agrees,
        "first_wrong_step": record.critique.first_wrong_step,
        "corrected_answer": record.critique.corrected_answer,
        "teacher": record.teacher,
        "key": record.key,
    }


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int


def iter_records(run_dirs: list[Path]) -> Iterator[CritiqueRecord]:
    """Records of every run directory, each key once (shards of one job may overlap)."""
    seen: set[str] = set()
    for run_dir in run_dirs:
        path = run_dir / CRITIQUES
        if not path.exists():
            raise UserError(f"{run_dir}: no {CRITIQUES}; is this a critique-synth run directory?")
        for number, line in iter_lines(path):
            try:
                record = CritiqueRecord.model_validate_json(line)
            except ValueError:
                raise UserError(f"{path}:{number}: not a valid critique record") from None
            if record.key not in seen:
                seen.add(record.key)
                yield record


def export(run_dirs: list[Path] | Path, out: Path) -> ExportResult:
    """Write the dataset folder atomically: a failed export leaves the previous one in place."""
    dirs = [run_dirs] if isinstance(run_dirs, Path) else list(run_dirs)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    parquet_path = tmp / "data" / "train-00000-of-00001.parquet"
    rows = nbytes = 0
    writer = pq.ParquetWriter(parquet_path, SCHEMA)
    try:
        batch: list[dict[str, Any]] = []
        for record in iter_records(dirs):
            batch.append(cft_row(record))
            if len(batch) >= BATCH:
                nbytes += _write(writer, batch)
                rows += len(batch)
                batch = []
        if batch:
            nbytes += _write(writer, batch)
            rows += len(batch)
    finally:
        writer.close()
    sizes = {"rows": rows, "nbytes": nbytes, "file_bytes": parquet_path.stat().st_size}
    (tmp / "README.md").write_text(dataset_card(sizes, dirs), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return ExportResult(out, rows)


def _write(writer: pq.ParquetWriter, batch: list[dict[str, Any]]) -> int:
    table = pa.Table.from_pylist(batch, schema=SCHEMA)
    writer.write_table(table)
    return int(table.nbytes)


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


def dataset_card(sizes: dict[str, int], run_dirs: list[Path]) -> str:
    """The card's YAML carries split sizes: `datasets` keys its local cache on that YAML, so
    without them every re-export of a folder would load the first export's cached rows."""
    rows = sizes["rows"]
    runs = []
    for run_dir in run_dirs:
        try:
            summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
        runs.append(summary)
    teachers = sorted({s.get("teacher", "unknown") for s in runs})
    counts = [s.get("counts", {}) for s in runs]
    verdicts = {v: sum(c.get("verdicts", {}).get(v, 0) for c in counts) for v in ("right", "wrong")}
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
dataset_info:
  config_name: default
  splits:
  - name: train
    num_bytes: {sizes["nbytes"]}
    num_examples: {rows}
  download_size: {sizes["file_bytes"]}
  dataset_size: {sizes["nbytes"]}
language:
- en
license: other
size_categories:
- {_size_category(rows)}
task_categories:
- text-generation
tags:
- critique-fine-tuning
- cft
- math
---

# Critique fine-tuning data made with critique-synth

{rows} critiques of noisy solutions to math problems, in the WebInstruct-CFT layout
(`instruction`, `input`, `output`): the model is trained to write the critique (`output`)
given the question and a candidate solution (`input`). Each critique ends with
`Conclusion: right [END]` or `Conclusion: wrong [END]`.

- Teacher(s): {", ".join(teachers)}
- Verdicts: {verdicts["right"]} right, {verdicts["wrong"]} wrong
- `gold_agrees` says whether the verdict matches the gold-answer check of the response.

Made with critique-synth. Method: Wang, Yue and Chen, "Critique Fine-Tuning: Learning to
Critique is More Effective than Learning to Imitate" (2025).
"""
