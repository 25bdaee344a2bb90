"""Batch API mode: the same requests, sent as batch files at half price.

`BatchTransport` takes the place of the online transport under `LLMClient`, so the teacher's
parse/validate/repair loop, usage accounting and retries are unchanged: a request waits in a
queue until the queue has been idle for `batch.gather_seconds` (or a batch is full), then a
batch file is written with jsonlines (`custom_id` = the unit key + a hash of the request),
uploaded and submitted with the openai SDK, polled with backoff, and each result row answers
its waiting request. A repair is a new request, so it goes into the next batch round with the
error fed back; an error row is a failed reply, retried like any other.

Limits: a batch holds at most `max_requests` (50,000) requests, `max_bytes` (200 MB) and
`max_queued_tokens` estimated tokens; a 413 on upload halves the file and lowers the limit.

Resume: every file and batch is recorded in `DIR/batches.jsonl` before anything waits on it.
A rerun reads it back and a request whose custom_id is in a recorded batch re-attaches to
that batch (polled, or downloaded again when finished), so no unit is submitted twice.
Rows an expired, failed or cancelled batch left undone are resubmitted in the next round, or
sent online with `batch.fallback = "online"`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batchfiles import FILES, MANIFEST, BatchEntry, Manifest, Row, parse_results, write_requests
from .budget import Budget, BudgetTransport, check_prices
from .config import BatchOptions, EndpointConfig
from .errors import UserError
from .pricing import PriceBook
from .tokens import estimate_tokens
from .transport import AiohttpTransport, Reply, Transport, endpoint_headers
from .urls import safe_url, split_credentials

log = logging.getLogger(__name__)

# The unit (or student sample) a request is for; the pipeline sets it, batch custom_ids use it.
CURRENT_UNIT: contextvars.ContextVar[str | None] = contextvars.ContextVar("critique_unit", default=None)
_BACKOFF = 1.5
_ONLINE_CONCURRENCY = 32


@dataclass
class _Request:
    custom_id: str
    body: dict[str, Any]
    size: int
    tokens: int
    waiters: list[asyncio.Future[Reply]] = field(default_factory=list)


@dataclass
class _Watch:
    entry: BatchEntry
    next_poll: float
    interval: float


def batch_endpoint(endpoint: EndpointConfig, options: BatchOptions) -> EndpointConfig:
    """The endpoint as the client sees it in batch mode: room for a batch's worth of requests
    in flight, and no online pacing (the Batch API has its own queue)."""
    if endpoint.kind == "azure":
        raise UserError("endpoint.batch works with OpenAI-style endpoints (files and batches); not azure")
    update = {"concurrency": options.in_flight, "adaptive": False, "rpm": None, "tpm": None}
    return endpoint.model_copy(update=update)


def make_transport(
    endpoint: EndpointConfig,
    api_key: str | None,
    role: str,
    *,
    out: Path | None,
    options: BatchOptions,
    budget: Budget | None,
    models: list[str],
) -> tuple[EndpointConfig, Transport | None]:
    """The endpoint and transport a client of this run uses: batch or online (None: the
    client's default), under the budget guard when the run has a cap."""
    transport: Transport | None = None
    if endpoint.batch:
        if out is None:
            raise UserError("batch mode needs a run directory (--out)")
        transport = BatchTransport(endpoint, api_key, role, out, options)
        endpoint = batch_endpoint(endpoint, options)
    if budget is not None:
        prices = PriceBook(endpoint.prices, batch=endpoint.batch)
        check_prices(models, prices, role)
        inner = transport or AiohttpTransport(endpoint, endpoint_headers(endpoint, api_key, role))
        transport = BudgetTransport(inner, budget, prices)
    return endpoint, transport


def custom_id(payload: bytes) -> str:
    """The unit key and the request's own hash: a repair of the same unit is another request."""
    digest = hashlib.sha256(payload).hexdigest()[:12]
    unit = CURRENT_UNIT.get()
    return f"{unit}.{digest}" if unit else digest


class BatchTransport:
    """Sends chat completions through the Batch API; `get` (model checks) and the online
    fallback go through an ordinary transport."""

    def __init__(
        self, endpoint: EndpointConfig, api_key: str | None, role: str, out: Path, options: BatchOptions
    ) -> None:
        self.endpoint = endpoint
        self.options = options
        self.role = role
        self.out = out
        self.where = safe_url(endpoint.base_urls[0])
        self.online = AiohttpTransport(endpoint, endpoint_headers(endpoint, api_key, role))
        self._key = api_key
        self._max_bytes = options.max_bytes
        self._pending: dict[str, _Request] = {}
        self._waiting: dict[str, list[asyncio.Future[Reply]]] = {}
        self._watch: dict[str, _Watch] = {}
        self._results: dict[str, asyncio.Future[dict[str, Row]]] = {}  # finished before we looked
        self._index: dict[str, str] = {}  # custom_id -> input_file_id of a recorded batch
        self._arrived = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self.manifest = Manifest(out)

    async def __aenter__(self) -> BatchTransport:
        import openai  # only batch mode pays for importing the SDK

        self.manifest.load()  # first: a bad record then leaves no session open
        for entry in self.manifest.entries.values():
            if entry.role in ("", self.role):
                self._index.update(dict.fromkeys(entry.custom_ids, entry.input_file_id))
        await self.online.__aenter__()
        bare = split_credentials(self.endpoint.base_urls[0])[0]
        self._client = openai.AsyncOpenAI(base_url=bare, api_key=self._key or "none", timeout=600)
        try:
            await self._recover_unsubmitted()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        for entry in self.manifest.entries.values():
            if entry.batch_id and not entry.terminal and entry.role in ("", self.role):
                self._watch[entry.batch_id] = _Watch(entry, 0.0, self.options.poll_seconds)
        self._tasks = [
            asyncio.create_task(self._guarded(self._gather())),
            asyncio.create_task(self._guarded(self._poll())),
        ]
        return self

    async def _guarded(self, work: Any) -> None:
        """A failure while submitting or collecting (a full disk, say) reaches every waiting
        request, so the run stops with it instead of waiting forever."""
        try:
            await work
        except Exception as exc:
            log.debug("batch %s task failed", self.role, exc_info=True)
            waiters = [f for r in self._pending.values() for f in r.waiters]
            waiters += [f for fs in self._waiting.values() for f in fs]
            for future in waiters:
                if not future.done():
                    future.set_exception(exc)
            raise

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        await self.online.__aexit__(*exc)

    async def get(self, path: str, timeout: float) -> list[tuple[str, Reply]]:
        return await self.online.get(path, timeout)

    def redact(self, text: str) -> str:
        return self.online.redact(text)

    async def post(self, path: str, payload: bytes) -> Reply:
        cid = custom_id(payload)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        recorded = self._index.get(cid)
        if recorded is not None:
            entry = self.manifest.entries[recorded]
            if entry.terminal:
                row = await self._finished_row(entry, cid)
                if row is not None:
                    return self._reply(row)
            elif entry.batch_id:
                self._waiting.setdefault(cid, []).append(future)
                return await future
        pending = self._pending.get(cid)
        if pending is None:
            body = json.loads(payload)
            completion = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
            pending = self._pending[cid] = _Request(
                cid, body, len(payload), estimate_tokens(len(payload)) + completion
            )
        pending.waiters.append(future)
        self._arrived.set()
        return await future

    async def _finished_row(self, entry: BatchEntry, cid: str) -> Row | None:
        """The row of a batch that finished before this process looked (downloaded once)."""
        download = self._results.get(entry.input_file_id)
        if download is None:
            download = self._results[entry.input_file_id] = asyncio.ensure_future(self._download(entry))
        row = (await download).pop(cid, None)
        return row if row is not None and row.status is not None else None

    # --- submitting -------------------------------------------------------------------------

    async def _gather(self) -> None:
        """Send a batch once requests stop arriving for `gather_seconds`, or one is full."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if not self._full():
                try:
                    await asyncio.wait_for(self._arrived.wait(), self.options.gather_seconds)
                    continue  # more arrived: keep gathering
                except asyncio.TimeoutError:
                    pass
            while self._pending:
                chunk = self._take()
                try:
                    await self._submit(chunk)
                except Exception as exc:  # taken out of _pending: _guarded cannot see these
                    for future in (f for request in chunk for f in request.waiters):
                        if not future.done():
                            future.set_exception(exc)
                    raise
            self._arrived.clear()

    def _full(self) -> bool:
        o = self.options
        return (
            len(self._pending) >= o.max_requests
            or sum(r.size for r in self._pending.values()) >= self._max_bytes
            or (
                o.max_queued_tokens is not None
                and sum(r.tokens for r in self._pending.values()) >= o.max_queued_tokens
            )
        )

    def _take(self) -> list[_Request]:
        """The next batch from the queue, within every split limit (at least one request)."""
        o = self.options
        chunk: list[_Request] = []
        size = tokens = 0
        for request in self._pending.values():
            over_tokens = o.max_queued_tokens is not None and tokens + request.tokens > o.max_queued_tokens
            if chunk and (
                len(chunk) >= o.max_requests or size + request.size > self._max_bytes or over_tokens
            ):
                break
            chunk.append(request)
            size, tokens = size + request.size, tokens + request.tokens
        for request in chunk:
            del self._pending[request.custom_id]
        return chunk

    async def _submit(self, chunk: list[_Request]) -> None:
        """Write, upload and create one batch; a 413 halves it. A submission that fails for
        another reason fails its requests (the client retries them in a later round)."""
        import openai

        await self._queue_room(sum(r.tokens for r in chunk))
        number = len(self.manifest.entries) + 1
        name = f"{FILES}/{self.role}-{number:05d}-{int(time.time())}.jsonl"
        path = self.out / name
        size = write_requests(path, ((r.custom_id, r.body) for r in chunk))
        try:
            with path.open("rb") as f:
                uploaded = await self._client.files.create(file=(path.name, f), purpose="batch")
        except openai.APIStatusError as exc:
            path.unlink(missing_ok=True)
            if exc.status_code == 413 and len(chunk) > 1:
                self._max_bytes = max(1024, size // 2)
                log.warning(
                    "batch file of %d bytes refused (413); splitting to <= %d bytes", size, self._max_bytes
                )
                half = len(chunk) // 2
                await self._submit(chunk[:half])
                await self._submit(chunk[half:])
                return
            self._fail(chunk, exc.status_code, f"batch upload refused: {self.redact(str(exc))[:300]}")
            return
        except openai.APIConnectionError as exc:
            path.unlink(missing_ok=True)
            self._fail(chunk, 503, f"batch upload failed: {self.redact(str(exc))[:300]}")
            return
        tokens = sum(r.tokens for r in chunk)
        entry = BatchEntry(uploaded.id, name, [r.custom_id for r in chunk], tokens, self.role)
        entry.base_url, entry.api_key_env = self.where, self.endpoint.api_key_env
        entry = self.manifest.uploaded(entry)
        for request in chunk:
            self._index[request.custom_id] = entry.input_file_id
            self._waiting.setdefault(request.custom_id, []).extend(request.waiters)
        await self._create(entry)

    async def _create(self, entry: BatchEntry) -> None:
        import openai

        try:
            batch = await self._client.batches.create(
                input_file_id=entry.input_file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"critique_synth": entry.file},
            )
        except openai.APIError as exc:
            status = getattr(exc, "status_code", 503)
            self._release(entry, None, f"batch creation refused: {self.redact(str(exc))[:300]}", status)
            return
        self.manifest.submitted(entry.input_file_id, batch.id)
        log.info("%s batch %s submitted: %d requests", self.role, batch.id, len(entry.custom_ids))
        self._watch[batch.id] = _Watch(
            entry, time.monotonic() + self.options.poll_seconds, self.options.poll_seconds
        )
        self._wake.set()

    async def _recover_unsubmitted(self) -> None:
        """A file uploaded by a process killed before it recorded the batch: find the batch on
        the server (by input file) so its requests are not submitted again."""
        mine = [e for e in self.manifest.entries.values() if e.role in ("", self.role)]
        orphans = {e.input_file_id: e for e in mine if e.batch_id is None}
        if not orphans:
            return
        async for batch in self._client.batches.list(limit=100):
            entry = orphans.pop(batch.input_file_id, None)
            if entry is not None:
                self.manifest.submitted(entry.input_file_id, batch.id)
            if not orphans:
                return
        for entry in orphans.values():
            await self._create(entry)

    async def _queue_room(self, tokens: int) -> None:
        """Wait while the batches in flight hold the queued-token budget (one always may go)."""
        cap = self.options.max_queued_tokens
        while (
            cap is not None
            and self._watch
            and sum(w.entry.tokens for w in self._watch.values()) + tokens > cap
        ):
            await asyncio.sleep(self.options.poll_seconds)

    # --- collecting -------------------------------------------------------------------------

    async def _poll(self) -> None:
        """Check each batch in flight when its (backed-off) interval is up."""
        while True:
            now = time.monotonic()
            due = [w for w in self._watch.values() if w.next_poll <= now]
            for watch in due:
                await self._check(watch)
            soonest = min((w.next_poll for w in self._watch.values()), default=now + 3600)
            self._wake.clear()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, soonest - time.monotonic()))

    async def _check(self, watch: _Watch) -> None:
        import openai

        entry = watch.entry
        assert entry.batch_id is not None
        try:
            batch = await self._client.batches.retrieve(entry.batch_id)
        except openai.APIError as exc:
            log.warning(
                "batch %s: cannot poll (%s); trying again later", entry.batch_id, self.redact(str(exc))
            )
            batch = None
        watch.interval = min(watch.interval * _BACKOFF, self.options.poll_max_seconds)
        watch.next_poll = time.monotonic() + watch.interval
        if batch is None:
            return
        if self.manifest.state(batch):
            log.info("%s batch %s: %s", self.role, batch.id, batch.status)
        if entry.terminal:
            errors = getattr(batch, "errors", None)
            why = "; ".join(e.message or e.code or "" for e in errors.data or []) if errors else ""
            try:
                rows = await self._download(entry)
            except openai.APIError as exc:
                log.warning(
                    "batch %s: cannot download (%s); trying again later", batch.id, self.redact(str(exc))
                )
                return
            del self._watch[entry.batch_id]
            self._release(entry, rows, f"batch {entry.batch_id} {entry.status}" + (f": {why}" if why else ""))

    async def _download(self, entry: BatchEntry) -> dict[str, Row]:
        rows: dict[str, Row] = {}
        for file_id in (entry.error_file_id, entry.output_file_id):
            if file_id:
                content = await self._client.files.content(file_id)
                rows.update(parse_results(content.content))
        return rows

    def _release(self, entry: BatchEntry, rows: dict[str, Row] | None, why: str, status: int = 503) -> None:
        """Answer every request waiting on this batch: its row, or (row missing or expired)
        a retryable failure, or the online fallback."""
        undone: dict[str, list[asyncio.Future[Reply]]] = {}
        for cid in entry.custom_ids:
            self._index.pop(cid, None)
            waiters = self._waiting.pop(cid, [])
            row = (rows or {}).get(cid)
            if row is not None and row.status is not None:
                _answer(waiters, self._reply(row))
                continue
            undone[cid] = waiters
            if self.options.fallback != "online":
                detail = row.error if row is not None and row.error else why
                _answer(waiters, _failure(status, f"{detail}; the request goes into the next batch"))
        if not undone:
            return
        log.warning(
            "%s: %d of %d requests not done (%s)%s",
            entry.batch_id or entry.file,
            len(undone),
            len(entry.custom_ids),
            why,
            "; sending them online" if self.options.fallback == "online" else "; resubmitting them",
        )
        if self.options.fallback == "online":
            self._tasks.append(asyncio.create_task(self._online(entry, undone)))

    async def _online(self, entry: BatchEntry, undone: dict[str, list[asyncio.Future[Reply]]]) -> None:
        """Send the undone requests of a batch online, read back from its batch file."""
        try:
            bodies = _request_bodies(self.out / entry.file, set(undone))
        except Exception as exc:  # a missing or unreadable request file: its waiters must hear
            for future in (f for waiters in undone.values() for f in waiters):
                if not future.done():
                    future.set_exception(exc)
            raise
        gate = asyncio.Semaphore(_ONLINE_CONCURRENCY)

        async def one(cid: str, waiters: list[asyncio.Future[Reply]]) -> None:
            async with gate:
                try:
                    reply = await self.online.post("chat/completions", json.dumps(bodies[cid]).encode())
                except Exception as exc:
                    for future in waiters:
                        if not future.done():
                            future.set_exception(exc)
                    return
            _answer(waiters, reply)

        await asyncio.gather(*(one(cid, waiters) for cid, waiters in undone.items() if waiters))

    def _fail(self, chunk: list[_Request], status: int, detail: str) -> None:
        for request in chunk:
            _answer(request.waiters, _failure(status, detail))

    def _reply(self, row: Row) -> Reply:
        """A result row as the reply the client expects; a failed row is retried at once (the
        next batch round is the backoff)."""
        assert row.status is not None
        return Reply(row.status, row.body, None if row.status == 200 else "0")


def _answer(waiters: list[asyncio.Future[Reply]], reply: Reply) -> None:
    for future in waiters:
        if not future.done():
            future.set_result(reply)


def _failure(status: int, detail: str) -> Reply:
    return Reply(status, json.dumps({"error": {"message": detail, "type": "batch"}}).encode(), "0")


def _request_bodies(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    import jsonlines

    try:
        with jsonlines.open(path) as reader:
            bodies = {line["custom_id"]: line["body"] for line in reader if line.get("custom_id") in wanted}
    except OSError as exc:
        raise UserError(
            f"{path}: cannot read the batch file for the online fallback ({exc.strerror})"
        ) from None
    if len(bodies) < len(wanted):
        raise UserError(f"{path}: requests missing from the batch file; was it changed or removed?")
    return bodies


async def refresh(out: Path, *, cancel: bool = False) -> list[BatchEntry]:
    """The batches of a run directory with their current states (asked of the server, and
    recorded); with `cancel`, unfinished ones are cancelled first. Their finished rows are kept
    and the rest go into new batches when the run is resumed."""
    import openai

    from .llm import resolve_api_key

    manifest = Manifest(out).load()
    if not manifest.entries:
        raise UserError(f"{out}: no {MANIFEST}; this run has sent no batch")
    clients: dict[tuple[str, str], Any] = {}
    try:
        for entry in manifest.entries.values():
            if entry.batch_id is None or entry.terminal:
                continue
            where = (entry.base_url, entry.api_key_env)
            if where not in clients:
                endpoint = EndpointConfig(base_urls=[entry.base_url], api_key_env=entry.api_key_env)
                key = resolve_api_key(endpoint, entry.role or "teacher")
                clients[where] = openai.AsyncOpenAI(base_url=entry.base_url, api_key=key or "none")
            client = clients[where]
            try:
                batch = await (client.batches.cancel if cancel else client.batches.retrieve)(entry.batch_id)
            except openai.APIError as exc:
                raise UserError(f"batch {entry.batch_id}: the server refused ({str(exc)[:200]})") from None
            manifest.state(batch)
    finally:
        for client in clients.values():
            await client.close()
    return list(manifest.entries.values())
