"""The Batch API's files, and the run directory's record of its batches (`batches.jsonl`).

`batches.jsonl` is append-only, one event a line, so a process killed at any point leaves a
record the next run can act on: `uploaded` (the request file is on the server, with every
custom_id in it), `submitted` (a batch was created from it), `state` (a status it was last
seen in). The request files stay in `DIR/batches/` for inspection. A half-written last line
is dropped on load, as in the run store.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonlines

from .errors import UserError
from .store import iter_lines, repair_tail

MANIFEST = "batches.jsonl"
FILES = "batches"
TERMINAL = ("completed", "failed", "expired", "cancelled")
ENDPOINT = "/v1/chat/completions"

log = logging.getLogger(__name__)


@dataclass
class BatchEntry:
    """One uploaded request file and the batch made from it (if any), as last recorded."""

    input_file_id: str
    file: str
    custom_ids: list[str]
    tokens: int = 0
    role: str = ""
    base_url: str = ""  # where it was sent (no credentials) and the variable naming its key,
    api_key_env: str = ""  # so `critique-synth batches DIR` can ask about it
    batch_id: str | None = None
    status: str = "uploaded"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    updated: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Row:
    """One result line: an HTTP status and body, or an error with no response (e.g. expired)."""

    status: int | None
    body: bytes
    error: str | None = None


def write_requests(path: Path, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Write Batch API request lines (custom_id, body); the file's size in bytes."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with jsonlines.open(path, mode="w", compact=True) as writer:
            for custom_id, body in items:
                writer.write({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body})
    except OSError as exc:
        raise UserError(f"{path}: cannot write the batch file ({exc.strerror or exc})") from None
    return path.stat().st_size


def parse_results(data: bytes) -> dict[str, Row]:
    """Rows of an output or error file by custom_id; lines that are not results are skipped."""
    rows: dict[str, Row] = {}
    reader = jsonlines.Reader(data.decode("utf-8", "replace").splitlines())
    for line in reader.iter(skip_invalid=True, skip_empty=True):
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            continue
        response, error = line.get("response"), line.get("error")
        if isinstance(response, dict) and isinstance(response.get("status_code"), int):
            body = json.dumps(response.get("body"), ensure_ascii=False).encode()
            rows[line["custom_id"]] = Row(response["status_code"], body)
        else:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            rows[line["custom_id"]] = Row(None, b"", f"{code or 'error'}: {message or 'no detail'}")
    return rows


class Manifest:
    """`DIR/batches.jsonl`: the batches of a run, loaded on open and appended to as they move."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / MANIFEST
        self.entries: dict[str, BatchEntry] = {}  # by input_file_id
        self._by_batch: dict[str, str] = {}

    def load(self) -> Manifest:
        """Read the events; a last line that is not JSON is a write cut short and is dropped
        (there is nothing in it to act on), a bad line before the last is the user's to fix."""
        repair_tail(self.path)
        torn: int | None = None
        for number, line in iter_lines(self.path):
            if torn is not None:
                raise self._unreadable(torn)
            try:
                event = json.loads(line)
            except ValueError:
                torn = number
                continue
            try:
                self._apply(event)
            except (ValueError, KeyError, TypeError):
                raise self._unreadable(number) from None
        if torn is not None:
            self._drop_last_line(torn)
        return self

    def _unreadable(self, number: int) -> UserError:
        return UserError(
            f"{self.path}:{number}: unreadable batch record; fix or delete that line (moving the file "
            "away while a batch of this run still runs would submit it again)"
        )

    def _drop_last_line(self, number: int) -> None:
        """Unterminate the last line so that `repair_tail` cuts it as it cuts a torn write."""
        os.truncate(self.path, len(self.path.read_bytes().rstrip()))
        repair_tail(self.path)
        log.warning("%s:%d: dropped an unreadable last line (a write cut short)", self.path, number)

    def by_batch(self, batch_id: str) -> BatchEntry:
        return self.entries[self._by_batch[batch_id]]

    def uploaded(self, entry: BatchEntry) -> BatchEntry:
        """Record an uploaded file; the entry to follow from now on is the one returned."""
        event = {"event": "uploaded", "input_file_id": entry.input_file_id, "file": entry.file}
        where = {"role": entry.role, "base_url": entry.base_url, "api_key_env": entry.api_key_env}
        self._append({**event, "custom_ids": entry.custom_ids, "tokens": entry.tokens, **where})
        return self.entries[entry.input_file_id]

    def submitted(self, input_file_id: str, batch_id: str) -> None:
        self._append({"event": "submitted", "input_file_id": input_file_id, "batch_id": batch_id})

    def state(self, batch: Any) -> bool:
        """Record a batch's status when it changed; True if it did."""
        entry = self.by_batch(batch.id)
        if entry.status == batch.status:
            return False
        counts = batch.request_counts.model_dump() if batch.request_counts is not None else {}
        self._append(
            {
                "event": "state",
                "batch_id": batch.id,
                "status": batch.status,
                "output_file_id": batch.output_file_id,
                "error_file_id": batch.error_file_id,
                "counts": counts,
            }
        )
        return True

    def _append(self, event: dict[str, Any]) -> None:
        event["t"] = time.time()
        self._apply(event)
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(event, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "uploaded":
            entry = BatchEntry(
                event["input_file_id"], event["file"], list(event["custom_ids"]), event.get("tokens", 0)
            )
            entry.role, entry.updated = event.get("role", ""), event.get("t", 0.0)
            entry.base_url, entry.api_key_env = event.get("base_url", ""), event.get("api_key_env", "")
            self.entries[entry.input_file_id] = entry
        elif kind == "submitted":
            entry = self.entries[event["input_file_id"]]
            entry.batch_id, entry.status, entry.updated = event["batch_id"], "submitted", event.get("t", 0.0)
            self._by_batch[event["batch_id"]] = entry.input_file_id
        elif kind == "state":
            entry = self.by_batch(event["batch_id"])
            entry.status, entry.counts = event["status"], event.get("counts") or {}
            entry.output_file_id, entry.error_file_id = (
                event.get("output_file_id"),
                event.get("error_file_id"),
            )
            entry.updated = event.get("t", 0.0)
