"""The OpenAI files and batches endpoints for the test server, with the faults real batches have.

A batch moves validating -> in_progress -> completed (or failed, expired, cancelled) on a fast
clock. Each request line is answered by the server's own chat handler (an HTTP call to
itself, so chat faults and the request log apply), and lands in the output file (status 200)
or the error file (any other status, or `batch_expired` for the rows an expiry left undone),
in the published line shape `{"id", "custom_id", "response": {"status_code", "body"}, "error"}`.

Faults, one per batch from `BatchServerConfig.script`: `fail` (validation fails, no output),
`expire` (only `expire_keep` of the rows are done), `errors` (the first `error_rows` rows get
an HTTP 500 in the error file); and an upload above `max_upload_bytes` is refused with 413.
`log` records every batch created with its custom_ids, for "was anything sent twice?" tests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from .testserver import MockLLMServer

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchServerConfig:
    max_upload_bytes: int = 200_000_000
    validate_seconds: float = 0.02
    run_seconds: float = 0.05  # a batch stays in_progress at least this long
    script: deque[str] = field(default_factory=deque)  # per batch: ok | fail | expire | errors
    expire_keep: float = 0.5
    error_rows: int = 1
    concurrency: int = 16


class BatchAPI:
    """Files and batches held in memory; one instance per server, kept across `app()` calls."""

    def __init__(self, server: MockLLMServer) -> None:
        self.server = server
        self.config = BatchServerConfig()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.uploads_refused = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)
        app.on_cleanup.append(self._stop)

    async def _stop(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submitted(self) -> list[str]:
        """Every custom_id of every batch created, in order (duplicates mean a resubmission)."""
        return [cid for entry in self.log for cid in entry["custom_ids"]]

    def _file(self, data: bytes, purpose: str, name: str) -> dict[str, Any]:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or purpose != "batch":
            return _error(400, "expected a multipart 'file' with purpose 'batch'")
        data = upload.file.read()
        if len(data) > self.config.max_upload_bytes:
            self.uploads_refused += 1
            return _error(413, f"File is {len(data)} bytes; the maximum is {self.config.max_upload_bytes}")
        return web.json_response(self._file(data, "batch", upload.filename or "batch.jsonl"))

    async def _content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return _error(404, "No such file")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return _error(400, f"input_file_id {file_id!r} not found")
        batch_id = f"batch_{next(self._ids)}"
        now = int(time.time())
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body.get("endpoint"),
            "errors": None,
            "input_file_id": file_id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "expires_at": now + 86400,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = batch
        lines = self.files[file_id].splitlines()
        custom_ids = [_custom_id(line) for line in lines if line.strip()]
        self.log.append({"batch_id": batch_id, "input_file_id": file_id, "custom_ids": custom_ids})
        fault = self.config.script.popleft() if self.config.script else "ok"
        task = asyncio.create_task(self._run(batch, lines, fault))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(batch)

    async def _list(self, request: web.Request) -> web.Response:
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        return web.json_response(batch) if batch else _error(404, "No such batch")

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "No such batch")
        if batch["status"] not in TERMINAL:
            batch["status"] = "cancelling"
        return web.json_response(batch)

    async def _run(self, batch: dict[str, Any], lines: list[bytes], fault: str) -> None:
        await asyncio.sleep(self.config.validate_seconds)
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=int(time.time()))
            return
        rows, problem = _validate(lines)
        if fault == "fail" or problem:
            message = problem or "mock validation failure"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": message}]}
            batch.update(status="failed", failed_at=int(time.time()))
            return
        batch.update(status="in_progress", in_progress_at=int(time.time()))
        batch["request_counts"]["total"] = len(rows)
        started = time.monotonic()
        keep = int(len(rows) * self.config.expire_keep) if fault == "expire" else len(rows)
        failing = self.config.error_rows if fault == "errors" else 0
        results = await self._answer(batch, rows[:keep], failing)
        while time.monotonic() - started < self.config.run_seconds and batch["status"] != "cancelling":
            await asyncio.sleep(0.01)  # the clock is read each turn: a test may speed it up
        if fault == "expire":
            for row in rows[keep:]:
                error = {"code": "batch_expired", "message": "This request could not be executed in time."}
                results.append(_line(row["custom_id"], None, error))
        self._finish(batch, results, fault)

    async def _answer(self, batch: dict[str, Any], rows: list[dict[str, Any]], failing: int) -> list[dict]:
        """Each row through the chat handler, a few at a time; stops early on a cancel."""
        gate = asyncio.Semaphore(self.config.concurrency)
        url = f"{self.server.base_url}/chat/completions"

        async def one(session: aiohttp.ClientSession, index: int, row: dict[str, Any]) -> dict | None:
            async with gate:
                if batch["status"] == "cancelling":
                    return None
                if index < failing:
                    body: Any = {"error": {"message": "mock row error", "type": "server_error"}}
                    status = 500
                else:
                    async with session.post(url, json=row["body"]) as reply:
                        status, body = reply.status, await reply.json(content_type=None)
                counts = batch["request_counts"]
                counts["completed" if status == 200 else "failed"] += 1
                response = {"status_code": status, "request_id": f"req_{index}", "body": body}
                return _line(row["custom_id"], response, None)

        async with aiohttp.ClientSession() as session:
            done = await asyncio.gather(*(one(session, i, row) for i, row in enumerate(rows)))
        return [line for line in done if line is not None]

    def _finish(self, batch: dict[str, Any], results: list[dict[str, Any]], fault: str) -> None:
        good = [r for r in results if r["response"] and r["response"]["status_code"] == 200]
        bad = [r for r in results if r not in good]
        if good:
            batch["output_file_id"] = self._write(good, batch["id"], "output")
        if bad:
            batch["error_file_id"] = self._write(bad, batch["id"], "error")
        now = int(time.time())
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=now)
        elif fault == "expire":
            batch.update(status="expired", expired_at=now)
        else:
            batch.update(status="completed", completed_at=now)

    def _write(self, lines: list[dict[str, Any]], batch_id: str, kind: str) -> str:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return str(self._file(data, "batch_output", f"{batch_id}_{kind}.jsonl")["id"])


def _custom_id(line: bytes) -> str:
    try:
        return str(json.loads(line).get("custom_id"))
    except (ValueError, AttributeError):
        return "?"


def _validate(lines: list[bytes]) -> tuple[list[dict[str, Any]], str | None]:
    """The request lines, or what makes the file invalid (as the real service checks)."""
    rows, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            return [], f"line {number}: not JSON"
        if (
            not isinstance(row, dict)
            or row.get("method") != "POST"
            or row.get("url") != "/v1/chat/completions"
        ):
            return [], f"line {number}: needs method POST and url /v1/chat/completions"
        if not isinstance(row.get("body"), dict) or not row.get("custom_id"):
            return [], f"line {number}: needs custom_id and body"
        if row["custom_id"] in seen:
            return [], f"line {number}: duplicate custom_id {row['custom_id']!r}"
        seen.add(row["custom_id"])
        rows.append(row)
    return rows, None if rows else "the file holds no requests"


def _line(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"batch_req_{custom_id[:12]}", "custom_id": custom_id, "response": response, "error": error}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status)


def attach(server: MockLLMServer, app: web.Application) -> None:
    """Mount the batch endpoints on `app`; the server keeps one BatchAPI as `batch_api`."""
    api = getattr(server, "batch_api", None)
    if api is None:
        api = server.batch_api = BatchAPI(server)
    api.routes(app)
