"""Problems from JSONL, JSON, Parquet, local HF dataset folders or the Hub, or the bundled sample.

Rows may label their given response (`label`, `first_error_step`, `error_kind` columns), and
ProcessBench rows as published are read as such; see critique_synth.processbench.

Rows stream one at a time (Parquet in record batches, Hub datasets in streaming mode), so a
10-million-row source costs no more memory than a small one. Every error names the file and
the line or row, and says what to change.

Two kinds of bad row: one whose shape is wrong (unreadable JSON, a missing, empty or non-text
field) stops the run, because the mapping or the file is usually wrong for every row; one whose
text is bad in an otherwise sound row (an unpaired surrogate) comes out as a `RejectedRow`, which
the pipeline stores as an input rejection while the other rows run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .config import FieldMap, ProblemsConfig, parse_shard
from .errors import UserError
from .processbench import convert, is_processbench, row_labels
from .records import Problem
from .steps import split_steps

T = TypeVar("T")

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample_problems.jsonl"
_HUB_ID_RE = re.compile(r"^[\w.-]+/[\w.-]+$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_ROLES = ("id", "question", "answer", "solution", "response")
_KINDS = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}


class RejectedRow(Problem):
    """A row read but not to be sent: its text is shown with U+FFFD for what could not be kept."""

    reason: str
    detail: str


def describe_source(config: ProblemsConfig) -> str:
    return config.path or f"bundled sample ({SAMPLE_PATH.name}, GSM8K-style, gsm_symbolic)"


def iter_problems(config: ProblemsConfig, require: Iterable[str] = ()) -> Iterator[Problem]:
    """Every problem of the source in order; `require` names fields each problem must have."""
    path = config.path
    if path is None and config.fields != FieldMap():
        raise UserError(
            "problems.fields (--field) maps the columns of your own problems; the bundled sample has "
            "fixed ones: give problems.path (--problems FILE) or drop the mapping"
        )
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
                row = json.loads(raw, parse_int=_parse_int)
            except UnicodeDecodeError:
                raise UserError(f"{path}:{number}: not UTF-8 text; re-encode the file as UTF-8") from None
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno}); "
                    "fix or remove that line"
                ) from None
            except RecursionError:
                raise UserError(
                    f"{path}:{number}: JSON nested too deeply to read; fix or remove that line"
                ) from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield str(number), row


def _json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_bytes(), parse_int=_parse_int)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; re-encode the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to read; flatten or remove the deep item") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise UserError(f'{path}: expected a JSON array of objects (or {{"data": [...]}})')
    for number, row in enumerate(data):
        if not isinstance(row, dict):
            raise UserError(f"{path}: item {number} is not a JSON object")
        yield f"item {number}", row


def _parse_int(digits: str) -> int | str:
    """An integer too long for Python's int() (over 4,300 digits) stays text rather than failing."""
    try:
        return int(digits)
    except ValueError:
        return digits


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

    if not Path(name).exists():
        check_hub_reachable(name)
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


def check_hub_reachable(name: str, timeout: float = 3.0) -> None:
    """Fail in seconds, in one line, where the Hub cannot be reached: the Hub client would retry
    for half a minute, logging each try. Offline mode (HF_HUB_OFFLINE=1) reads the cache only."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    url = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as exc:
        raise UserError(
            f"{name}: cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({exc.strerror or exc}); "
            "check the network, or set HF_HUB_OFFLINE=1 to read a dataset cached earlier"
        ) from None


def _to_problem(
    row: dict[str, Any], index: int, fields: FieldMap, where: str, require: tuple[str, ...]
) -> Problem:
    if is_processbench(row):
        row, labels = convert(row, fields, where)
    else:
        labels = row_labels(row, fields, where)
    values = {role: _field(row, role, getattr(fields, role), where, require) for role in _ROLES}
    question = values["question"]
    if not question or not question.strip():
        raise UserError(f"{where}: empty question in field {fields.question!r}")
    for role in ("answer", "solution", "response"):
        values[role] = _blank_to_none(values[role])
    values["id"] = values["id"] or str(index)
    for role in require:
        if values[role] is None:
            raise UserError(f"{where}: field {getattr(fields, role)!r} ({role}) is empty or missing")
    step = labels.get("response_first_error_step")
    steps = len(split_steps(values["response"])) if step is not None and values["response"] else None
    if steps is not None and step > steps:
        raise UserError(
            f"{where}: field {fields.first_error_step!r} names step {step} but the response has {steps} "
            "step(s) as critique-synth numbers them (see README 'Auditing a teacher'); fix the label"
        )
    bad = [role for role, value in values.items() if value is not None and _SURROGATE_RE.search(value)]
    if not bad:
        return Problem(**values, **labels)
    clean = {role: None if v is None else _SURROGATE_RE.sub("\ufffd", v) for role, v in values.items()}
    return RejectedRow(
        **clean,
        **labels,
        reason="bad_text",
        detail=f"{where}: field {getattr(fields, bad[0])!r} holds an unpaired surrogate (a lone \\ud800-"
        "\\udfff escape), which is not Unicode text; fix that escape in the source",
    )


def _field(
    row: dict[str, Any], role: str, column: str | None, where: str, require: tuple[str, ...]
) -> str | None:
    """One field as text: numbers are written out, other non-text values are refused."""
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
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and role != "question":
        return str(value)
    allowed = "text" if role == "question" else "text or a number"
    raise UserError(
        f"{where}: field {column!r} ({role}) holds {_KINDS.get(type(value), type(value).__name__)}, "
        f"expected {allowed}; fix that row or map another column with problems.fields.{role}"
    )


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _take(iterator: Iterator[T], n: int) -> tuple[list[T], BaseException | None]:
    """Up to `n` items, and the error that stopped the reading early, if one did."""
    chunk: list[T] = []
    try:
        for item in iterator:
            chunk.append(item)
            if len(chunk) == n:
                break
    except Exception as exc:
        return chunk, exc
    return chunk, None


async def read_off_loop(items: Iterable[T], batch: int = 64) -> AsyncIterator[T]:
    """Iterate `items` in a worker thread, `batch` at a time, so a Hub download or a slow disk
    never blocks the event loop. A batch is read only when the last is used up, so reading
    stays as far ahead as the consumer's queue allows. Items read before an error come first,
    then the error."""
    iterator = iter(items)
    while True:
        chunk, error = await asyncio.to_thread(_take, iterator, batch)
        for item in chunk:
            yield item
        if error is not None:
            raise error
        if len(chunk) < batch:
            return
