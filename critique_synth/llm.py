"""One async client for OpenAI-compatible chat endpoints, shared by students and teachers.

Why not the openai SDK: a CFT run is one endpoint called millions of times, so the client's
CPU per request sets the ceiling. Measured on these machines the SDK costs ~5 ms of CPU per
request on httpx and ~1.9 ms on its aiohttp transport; a bare aiohttp call costs ~0.3 ms.
This module is that bare call plus what a long run needs: a concurrency cap, pacing
(pacing.py), retries with backoff that honour a capped Retry-After, several base URLs for one
model, and token and cost accounting. A reply is untrusted input: its size is capped while it
streams (decompressed bytes, so a gzip bomb stops at the cap too), and every field is
type-checked, so a hostile or broken server costs a reject, never the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .config import DEFAULT_PRICES, EndpointConfig, Price
from .errors import UserError
from .pacing import Pacer
from .records import Usage
from .urls import is_local, safe_url, split_credentials

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_KEYLIKE_RE = re.compile(r"\b(sk|hf|key)[-_][A-Za-z0-9_*.-]{6,}")
_QUOTA_CODES = (b"insufficient_quota", b"billing_hard_limit", b"quota_exceeded")
RAW_KEEP = 4000  # characters of an invalid reply kept in rejects and sent back in repairs


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


def clip(text: str, keep: int = RAW_KEEP) -> str:
    """At most `keep` characters of an untrusted text, marked where it was cut."""
    if len(text) <= keep:
        return text
    return f"{text[:keep]}\n[... cut: {len(text) - keep:,} more characters]"


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


def resolve_api_key(endpoint: EndpointConfig, role: str) -> str | None:
    """The key from the environment; required unless every base URL is on this machine or
    carries its own credentials (`https://user:password@host/v1`, sent as Basic auth)."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    with_credentials = [url for url in endpoint.base_urls if split_credentials(url)[1:] != (None, None)]
    if key and with_credentials:
        raise UserError(
            f"{role} endpoint {safe_url(with_credentials[0])} has credentials in its URL and an API "
            f"key is set in ${endpoint.api_key_env}: use one (remove user:password from the URL, or "
            f"set {role}.endpoint.api_key_env = '' to send the URL's credentials)"
        )
    if key:
        return key
    if all(is_local(url) or url in with_credentials for url in endpoint.base_urls):
        return None
    raise UserError(
        f"{role} endpoint {safe_url(endpoint.base_urls[0])} needs an API key: set the "
        f"{endpoint.api_key_env or 'OPENAI_API_KEY'} environment variable "
        f"(or name another one with {role}.endpoint.api_key_env)"
    )


@dataclass(frozen=True)
class _Base:
    """One base URL taken apart: where its paths go, its query, and its own credentials."""

    url: str
    query: str
    headers: dict[str, str] | None
    password: str | None

    def at(self, path: str) -> str:
        return f"{self.url}/{path}?{self.query}" if self.query else f"{self.url}/{path}"


def _base(url: str) -> _Base:
    bare, user, password = split_credentials(url)
    parts = urlsplit(bare)
    headers = None
    if user or password:
        headers = {"Authorization": aiohttp.encode_basic_auth(user or "", password or "")}
    return _Base(urlunsplit((*parts[:3], "", "")).rstrip("/"), parts.query, headers, password)


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
        self._bases = [_base(url) for url in endpoint.base_urls]
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
        for base in self._bases:
            url = base.url
            try:
                async with self._session.get(
                    base.at("models"), timeout=aiohttp.ClientTimeout(total=10), headers=base.headers
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
            base = self._bases[0]
            async with self._session.get(base.at("models"), headers=base.headers) as resp:
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
            base = self._bases[slot]
            self._inflight[slot] += 1
            self.stats.requests += 1
            try:
                async with self._session.post(
                    base.at("chat/completions"), data=payload, headers=base.headers
                ) as resp:
                    if resp.status == 429:
                        self._pacer.rate_limited()
                    raw = await _read_capped(resp, self.endpoint.max_reply_bytes)
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
        wait = _seconds(retry_after, self.endpoint.max_retry_after)
        if status == 429 and any(code in raw[:2000] for code in _QUOTA_CODES):
            return LLMError("quota_exhausted", detail)
        if status == 429:
            return LLMError("rate_limited", detail, wait)
        if status in _RETRYABLE_STATUS or status >= 500:
            return LLMError("server_error", detail, wait)
        return LLMError(f"http_{status}", detail)

    def _redact(self, text: str) -> str:
        for secret in (self._api_key, *(base.password for base in self._bases)):
            if secret:
                text = text.replace(secret, "***")
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


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, refused as soon as it passes `cap` bytes (counted after decompression)."""
    if resp.content_length is not None and resp.content_length > cap:
        raise LLMError("too_large", f"reply of {resp.content_length:,} bytes > max_reply_bytes {cap:,}")
    chunks, size = [], 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise LLMError("too_large", f"reply passed max_reply_bytes {cap:,} while streaming; cut off")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_completion(raw: bytes) -> Completion:
    """A chat completion from a reply body, every field type-checked: anything off is a
    `bad_response` (retried, then rejected), never an exception that ends the run."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else 0
    if content is not None and not isinstance(content, str):
        raise LLMError("bad_response", f"not a chat completion: {raw[:200]!r}")
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return Completion(
        text=content or "",
        finish_reason=finish if isinstance(finish, str) else None,
        usage=_usage(data.get("usage") if isinstance(data, dict) else None),
    )


def _usage(usage: object) -> Usage:
    """Token counts where the server reports them as non-negative integers; else unknown (0)."""
    if not isinstance(usage, dict):
        return Usage()
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**53 for n in counts):
        return Usage()
    return Usage(prompt_tokens=counts[0], completion_tokens=counts[1])


def _seconds(header: str | None, cap: float) -> float | None:
    """A Retry-After in seconds, capped: a server asking for a day-long pause gets `cap`."""
    try:
        value = float(header) if header else None
    except ValueError:
        return None
    return None if value is None or value != value else min(cap, max(0.0, value))


def retry_delay(exc: LLMError, attempt: int, base: float = 0.5, cap: float = 60.0) -> float:
    """The server's Retry-After (plus up to 10% jitter) where it gives one, else exponential
    backoff with full jitter. A plain loop, not tenacity: it runs on every request, and
    tenacity's per-call setup measured ~55 us of CPU a request, a tenth of the whole budget."""
    if exc.retry_after is not None:
        return exc.retry_after * (1 + random.random() / 10)
    return random.uniform(0, min(cap, base * 2**attempt))
