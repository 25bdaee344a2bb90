"""One async client for OpenAI-compatible chat endpoints, shared by students and teachers.

Why not the openai SDK: a CFT run is one endpoint called millions of times, so the client's
CPU per request sets the ceiling. Measured on these machines the SDK costs ~5 ms of CPU per
request on httpx and ~1.9 ms on its aiohttp transport; a bare aiohttp call costs ~0.3 ms.
This module is that bare call plus what a long run needs: a concurrency cap, requests- and
tokens-per-minute pacing, retries with backoff that honour Retry-After, several
base URLs for one model, and token and cost accounting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .config import DEFAULT_PRICES, EndpointConfig, Price
from .errors import UserError
from .records import Usage
from .urls import is_local, safe_url

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_KEYLIKE_RE = re.compile(r"\b(sk|hf|key)[-_][A-Za-z0-9_*.-]{6,}")
_RATE_WINDOW = 5.0
_SLACK = 1.01  # aim 1% under configured limits: network jitter must not push a minute over
_GROWTH = 1.10
_CUT_EVERY = 2.0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage


class LLMError(Exception):
    """A request that failed for good; `reason` is a short code that ends up in rejected.jsonl."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.reason in ("rate_limited", "server_error", "timeout", "connection", "bad_response")


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class Pacer:
    """Spaces requests and tokens so no minute exceeds the limits, configured or discovered.

    A generic cell-rate algorithm: each acquire books the next free slot on each clock; with no
    burst allowance the count in any 60-second window stays at or under the configured limit.
    A server's own limit is found from its 429s: the pace drops to 95% of the rate that was
    getting through, then grows 10% a second, and is cut again at most every 2 seconds. Under
    a real limit that is a small sawtooth just below it; under occasional 429s (faults, not a
    limit) the growth wins and the pace stops mattering.
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.adaptive: float | None = None
        self._next_request = 0.0
        self._next_token = 0.0
        self._successes: deque[float] = deque()
        self._grown = 0.0
        self._cut = -math.inf

    async def acquire(self, tokens: int) -> None:
        now = time.monotonic()
        start = self.book(tokens, now)
        if start > now:
            await asyncio.sleep(start - now)

    def book(self, tokens: int, now: float) -> float:
        """The first moment both clocks allow; both advance from that same moment (booking one
        clock before the other's wait lets delayed requests bunch up later)."""
        interval = max(60.0 * _SLACK / self.rpm if self.rpm else 0.0, 1.0 / self._adaptive_rate(now))
        start = max(now, self._next_request if interval else now, self._next_token if self.tpm else now)
        if interval:
            self._next_request = start + interval
        if self.tpm:
            self._next_token = start + tokens * 60.0 * _SLACK / self.tpm
        return start

    def _adaptive_rate(self, now: float) -> float:
        if self.adaptive is None:
            return math.inf
        self.adaptive *= _GROWTH ** (now - self._grown)
        self._grown = now
        return self.adaptive

    def refund(self, tokens: int, now: float | None = None) -> None:
        """Give back booked tokens that the response did not use (estimates are pessimistic)."""
        if self.tpm and tokens > 0:
            now = time.monotonic() if now is None else now
            self._next_token = max(now, self._next_token - tokens * 60.0 / self.tpm)

    def succeeded(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._successes.append(now)
        while now - self._successes[0] > _RATE_WINDOW:
            self._successes.popleft()

    def rate_limited(self, now: float | None = None) -> None:
        """A 429: pace at 95% of what got through lately, at most one cut every 2 seconds."""
        now = time.monotonic() if now is None else now
        if now - self._cut < _CUT_EVERY:
            return
        recent = [t for t in self._successes if now - t <= _RATE_WINDOW]
        span = now - recent[0] if len(recent) > 1 else 0.0
        through = len(recent) / span if span > 0 else 0.0
        current = self._adaptive_rate(now)
        self.adaptive = 0.95 * through if through else min(current, 10.0) / 2
        self._cut = self._grown = now
        log.info("server rate limit: pacing at %.1f requests/s", self.adaptive)


def resolve_api_key(endpoint: EndpointConfig, role: str) -> str | None:
    """The key from the environment; required unless every base URL is on this machine."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    if key:
        return key
    if all(is_local(url) for url in endpoint.base_urls):
        return None
    raise UserError(
        f"{role} endpoint {safe_url(endpoint.base_urls[0])} needs an API key: set the "
        f"{endpoint.api_key_env or 'OPENAI_API_KEY'} environment variable "
        f"(or name another one with {role}.endpoint.api_key_env)"
    )


class LLMClient:
    """Chat completions against one endpoint (one or more base URLs serving the same models)."""

    def __init__(self, endpoint: EndpointConfig, api_key: str | None) -> None:
        self.endpoint = endpoint
        self.stats = ClientStats()
        self._api_key = api_key
        self._prices: dict[str, Price] = {**DEFAULT_PRICES, **endpoint.prices}
        self._pacer = Pacer(endpoint.rpm, endpoint.tpm)
        self._semaphore = asyncio.Semaphore(endpoint.concurrency)
        self._inflight = [0] * len(endpoint.base_urls)
        self._turn = 0
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    async def __aenter__(self) -> LLMClient:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=self.endpoint.timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self) -> None:
        """Fail fast, before any work, on an endpoint that is down or refuses the key."""
        assert self._session is not None
        for url in self.endpoint.base_urls:
            try:
                async with self._session.get(
                    f"{url}/models", timeout=aiohttp.ClientTimeout(total=10)
                ) as resp:
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise UserError(
                    f"cannot reach {safe_url(url)} ({self._redact(str(exc) or type(exc).__name__)}); "
                    "is the server running and the base URL right?"
                ) from None
            if status in (401, 403):
                raise UserError(
                    f"{safe_url(url)} refused the API key (HTTP {status}); check the key in "
                    f"${self.endpoint.api_key_env}"
                )

    async def list_models(self) -> list[str]:
        """Model ids the first base URL serves (GET /models); empty if it does not say."""
        assert self._session is not None
        try:
            async with self._session.get(f"{self.endpoint.base_urls[0]}/models") as resp:
                data = await resp.json(content_type=None) if resp.status == 200 else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return []
        return [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]

    async def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion, retried on transient failures; raises LLMError when it gives up."""
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
        }
        if response_format is not None:
            body["response_format"] = response_format
        payload = json.dumps(body, ensure_ascii=False).encode()
        estimate = len(payload) // 4 + max_tokens
        for attempt in range(self.endpoint.max_retries + 1):
            try:
                completion = await self._send(payload, estimate)
                break
            except LLMError as exc:
                if not exc.retryable or attempt == self.endpoint.max_retries:
                    self.stats.failures[exc.reason] = self.stats.failures.get(exc.reason, 0) + 1
                    raise
                self.stats.retries += 1
                log.debug("retrying after %s", exc)
                await asyncio.sleep(retry_delay(exc, attempt))
        return self._account(model, completion)

    async def _send(self, payload: bytes, estimate: int) -> Completion:
        assert self._session is not None, "use `async with LLMClient(...)`"
        await self._pacer.acquire(estimate)
        async with self._semaphore:
            slot = self._pick()
            url = f"{self.endpoint.base_urls[slot]}/chat/completions"
            self._inflight[slot] += 1
            self.stats.requests += 1
            try:
                async with self._session.post(url, data=payload) as resp:
                    raw = await resp.read()
                    if resp.status == 429:
                        self._pacer.rate_limited()
                    if resp.status != 200:
                        raise self._http_error(resp.status, raw, resp.headers.get("Retry-After"))
                    self._pacer.succeeded()
            except asyncio.TimeoutError:
                raise LLMError("timeout", f"no answer within {self.endpoint.timeout:g}s") from None
            except aiohttp.ClientError as exc:
                detail = self._redact(str(exc) or type(exc).__name__)
                raise LLMError("connection", detail) from None
            finally:
                self._inflight[slot] -= 1
        completion = _parse_completion(raw)
        self._pacer.refund(estimate - completion.usage.prompt_tokens - completion.usage.completion_tokens)
        return completion

    def _pick(self) -> int:
        """The base URL with the fewest requests in flight; ties go round-robin."""
        n = len(self._inflight)
        self._turn = (self._turn + 1) % n
        return min(range(n), key=lambda i: (self._inflight[i], (i - self._turn) % n))

    def _http_error(self, status: int, raw: bytes, retry_after: str | None) -> LLMError:
        detail = f"HTTP {status}: {self._redact(raw[:300].decode('utf-8', 'replace'))}"
        if status == 429:
            return LLMError("rate_limited", detail, _seconds(retry_after))
        if status in _RETRYABLE_STATUS or status >= 500:
            return LLMError("server_error", detail, _seconds(retry_after))
        return LLMError(f"http_{status}", detail)

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _KEYLIKE_RE.sub("***", text)

    def _account(self, model: str, completion: Completion) -> Completion:
        usage = completion.usage
        price = self._prices.get(model)
        if price is not None:
            cost = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6
            usage = usage.model_copy(update={"cost": cost})
        self.stats.prompt_tokens += usage.prompt_tokens
        self.stats.completion_tokens += usage.completion_tokens
        self.stats.cost += usage.cost
        return Completion(completion.text, completion.finish_reason, usage)


def _parse_completion(raw: bytes) -> Completion:
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise LLMError("bad_response", f"not a chat completion: {raw[:200]!r}") from None
    usage = data.get("usage") or {}
    return Completion(
        text=text,
        finish_reason=choice.get("finish_reason"),
        usage=Usage(
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
        ),
    )


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def retry_delay(exc: LLMError, attempt: int, base: float = 0.5, cap: float = 60.0) -> float:
    """The server's Retry-After (plus up to 10% jitter) where it gives one, else exponential
    backoff with full jitter. A plain loop, not tenacity: it runs on every request, and
    tenacity's per-call setup measured ~55 us of CPU a request, a tenth of the whole budget."""
    if exc.retry_after is not None:
        return exc.retry_after * (1 + random.random() / 10)
    return random.uniform(0, min(cap, base * 2**attempt))
