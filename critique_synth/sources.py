"""Problems from JSONL, JSON, Parquet, local HF dataset folders or the Hub, or the bundled sample.

Rows stream one at a time (Parquet in record batches, Hub datasets in streaming mode), so a
10-million-row source costs no more memory than a small one. Every error names the file and
the line or row, and says what to change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from .config import FieldMap, ProblemsConfig, parse_shard
from .errors import UserError
from .records import Problem

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample_problems.jsonl"
_HUB_ID_RE = re.compile(r"^[\w.-]+/[\w.-]+$")


def describe_source(config: ProblemsConfig) -> str:
    return config.path or f"bundled sample ({SAMPLE_PATH.name}, GSM8K-style, gsm_symbolic)"


def iter_problems(config: ProblemsConfig, require: Iterable[str] = ()) -> Iterator[Problem]:
    """Every problem of the source in order; `require` names fields each problem must have."""
    path = config.path
    if path is None:
        rows = _jsonl_rows(SAMPLE_PATH)
        where = str(SAMPLE_PATH)
    else:
        rows, where = _open_rows(config)
    fields = config.fields if path is not None else FieldMap(id="id")
    index = -1
    for index, (position, row) in enumerate(rows):
        yield _to_problem(row, index, fields, f"{where}:{position}", tuple(require))
    if index < 0:
        raise UserError(f"{where}: no problems in it (empty source); check the path and split")


def select(problems: Iterable[Problem], shard: str | None, limit: int | None) -> Iterator[Problem]:
    """This machine's deterministic slice of the problems, then at most `limit` of them."""
    if shard is not None:
        index, count = parse_shard(shard)
        problems = (p for p in problems if shard_of(p.id, count) == index)
    return islice(problems, limit) if limit is not None else iter(problems)


def shard_of(problem_id: str, count: int) -> int:
    """Hash-based, so a shard's problems do not depend on file order or on other shards."""
    return int(hashlib.sha1(problem_id.encode()).hexdigest()[:8], 16) % count


def _open_rows(config: ProblemsConfig) -> tuple[Iterator[tuple[str, dict[str, Any]]], str]:
    assert config.path is not None
    path = Path(config.path)
    if path.is_dir():
        return _hf_rows(str(path), config), str(path)
    suffix = path.suffix.lower()
    if path.exists():
        if suffix == ".jsonl":
            return _jsonl_rows(path), str(path)
        if suffix == ".json":
            return _json_rows(path), str(path)
        if suffix == ".parquet":
            return _parquet_rows(path), str(path)
        raise UserError(f"{path}: unknown problem file type; use .jsonl, .json, .parquet or a folder")
    if suffix in (".jsonl", ".json", ".parquet") or not _HUB_ID_RE.match(config.path):
        raise UserError(f"{path}: problem file not found")
    return _hf_rows(config.path, config), f"hub:{config.path}"


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except UnicodeDecodeError:
                raise UserError(f"{path}:{number}: not UTF-8 text; re-encode the file as UTF-8") from None
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno}); "
                    "fix or remove that line"
                ) from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield f"line {number}", row


def _json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; re-encode the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise UserError(f'{path}: expected a JSON array of objects (or {{"data": [...]}})')
    for number, row in enumerate(data):
        if not isinstance(row, dict):
            raise UserError(f"{path}: item {number} is not a JSON object")
        yield f"item {number}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield f"row {number}", row
            number += 1


def _hf_rows(name: str, config: ProblemsConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    import datasets

    try:
        if Path(name, "dataset_info.json").exists() and Path(name, "state.json").exists():
            loaded = datasets.load_from_disk(name)
            dataset = loaded[config.split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            dataset = datasets.load_dataset(name, config.config_name, split=config.split, streaming=True)
    except Exception as exc:  # datasets raises many types; the user needs the message
        raise UserError(f"{name}: cannot load dataset (split {config.split!r}): {exc}") from None
    for number, row in enumerate(dataset):
        yield f"row {number}", row


def _to_problem(
    row: dict[str, Any], index: int, fields: FieldMap, where: str, require: tuple[str, ...]
) -> Problem:
    def get(column: str | None, role: str) -> str | None:
        if column is None:
            return None
        if column not in row:
            if role in require or role == "question":
                needed = f" ({role} is needed by the chosen students kind)" if role in require else ""
                raise UserError(
                    f"{where}: no field {column!r} (has: {', '.join(sorted(row)) or 'nothing'}); "
                    f"map it with problems.fields.{role}{needed}"
                )
            return None
        value = row[column]
        return None if value is None else str(value)

    question = get(fields.question, "question")
    if not question or not question.strip():
        raise UserError(f"{where}: empty question in field {fields.question!r}")
    problem = Problem(
        id=get(fields.id, "id") or str(index),
        question=question,
        answer=_blank_to_none(get(fields.answer, "answer")),
        solution=_blank_to_none(get(fields.solution, "solution")),
        response=_blank_to_none(get(fields.response, "response")),
    )
    for role in require:
        if getattr(problem, role) is None:
            raise UserError(f"{where}: field {getattr(fields, role)!r} ({role}) is empty or missing")
    return problem


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None
