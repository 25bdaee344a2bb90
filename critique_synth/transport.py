"""Moving bytes: one request body to one of an endpoint's base URLs, one capped reply back.

The transport knows URLs, headers and sockets, nothing about retries or JSON. It is the part
to replace for another way of sending (an SDK-backed one for the Batch API): the client
(`llm.py`) only calls `post`, `get` and `redact`. A reply is untrusted input: its size is
capped while it streams (decompressed bytes, so a gzip bomb stops at the cap too).

Endpoint kinds: `openai` sends the key as `Authorization: Bearer`; `azure` sends it as
`api-key`, treats each base URL as a deployment URL and adds `api-version` to every request.
Extra headers take their values from environment variables, so no secret is ever in a config
or in run.json.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from .config import EndpointConfig
from .errors import UserError
from .urls import safe_url, secret_query_values, split_credentials

RAW_KEEP = 4000  # characters of an invalid reply kept in rejects and sent back in repairs
_KEYLIKE_RE = re.compile(r"\b(sk|hf|key)[-_][A-Za-z0-9_*.-]{6,}")


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


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    retry_after: str | None = None


class Transport(Protocol):
    """What the client needs from a way of sending requests."""

    where: str  # the first base URL, safe to show

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def post(self, path: str, payload: bytes) -> Reply: ...

    async def get(self, path: str, timeout: float) -> list[tuple[str, Reply]]: ...

    def redact(self, text: str) -> str: ...


@dataclass(frozen=True)
class _Base:
    """One base URL taken apart: where its paths go, its query, and its own credentials."""

    url: str
    query: str
    headers: dict[str, str] | None
    password: str | None

    def at(self, path: str) -> str:
        return f"{self.url}/{path}?{self.query}" if self.query else f"{self.url}/{path}"


def _base(url: str, api_version: str | None) -> _Base:
    bare, user, password = split_credentials(url)
    parts = urlsplit(bare)
    headers = None
    if user or password:
        headers = {"Authorization": aiohttp.encode_basic_auth(user or "", password or "")}
    query = parts.query
    if api_version:
        query = "&".join(q for q in (query, urlencode({"api-version": api_version})) if q)
    return _Base(urlunsplit((*parts[:3], "", "")).rstrip("/"), query, headers, password)


def endpoint_headers(endpoint: EndpointConfig, api_key: str | None, role: str) -> dict[str, str]:
    """The headers every request carries: content type, the key as this kind wants it, extras."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        if endpoint.kind == "azure":
            headers["api-key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {api_key}"
    for name, env in endpoint.headers_env.items():
        value = os.environ.get(env)
        if value is None:
            raise UserError(
                f"{role}.endpoint.headers_env.{name} names ${env}, which is not set: export it or "
                "remove the header"
            )
        headers[name] = value
    return headers


class AiohttpTransport:
    """aiohttp, one session, the base URL with the fewest requests in flight (ties round-robin)."""

    def __init__(self, endpoint: EndpointConfig, headers: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.where = safe_url(endpoint.base_urls[0])
        self._headers = headers
        self._bases = [_base(url, endpoint.api_version) for url in endpoint.base_urls]
        self._inflight = [0] * len(self._bases)
        self._turn = 0
        self._secrets = [v.removeprefix("Bearer ") for k, v in headers.items() if k != "Content-Type"]
        self._secrets += [b.password for b in self._bases if b.password]
        self._secrets += [value for url in endpoint.base_urls for value in secret_query_values(url)]
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpTransport:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=self.endpoint.timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, payload: bytes) -> Reply:
        """One POST; the timeout counts from here, when the request is sent, not while it queued."""
        assert self._session is not None, "use `async with` on the client"
        slot = self._pick()
        base = self._bases[slot]
        self._inflight[slot] += 1
        try:
            async with self._session.post(
                base.at(path), data=payload, headers=base.headers, allow_redirects=False
            ) as resp:
                body = await _read_capped(resp, self.endpoint.max_reply_bytes)
                return Reply(resp.status, body, resp.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            raise LLMError("timeout", f"no answer within {self.endpoint.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise LLMError("connection", self.redact(str(exc) or type(exc).__name__)) from None
        finally:
            self._inflight[slot] -= 1

    async def get(self, path: str, timeout: float) -> list[tuple[str, Reply]]:
        """GET `path` from every base URL: (safe URL, reply); unreachable ones raise UserError."""
        assert self._session is not None, "use `async with` on the client"
        replies = []
        for base in self._bases:
            try:
                async with self._session.get(
                    base.at(path), timeout=aiohttp.ClientTimeout(total=timeout), headers=base.headers
                ) as resp:
                    body = await _read_capped(resp, 1_000_000)
                    replies.append((safe_url(base.url), Reply(resp.status, body)))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, LLMError) as exc:
                raise UserError(
                    f"cannot reach {safe_url(base.url)} ({self.redact(str(exc) or type(exc).__name__)}); "
                    "is the server running and the base URL right?"
                ) from None
        return replies

    def _pick(self) -> int:
        n = len(self._inflight)
        if n == 1:
            return 0
        self._turn = (self._turn + 1) % n
        return min(range(n), key=lambda i: (self._inflight[i], (i - self._turn) % n))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return _KEYLIKE_RE.sub("***", text)


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, refused as soon as it passes `cap` bytes (counted after decompression)."""
    if resp.content_length is not None and resp.content_length > cap:
        raise LLMError("too_large", f"reply of {resp.content_length:,} bytes > max_reply_bytes {cap:,}")
    if resp.content_length is not None and resp.headers.get("Content-Encoding", "identity") == "identity":
        return await resp.read()  # a stated, uncompressed length under the cap: one read, the fast path
    chunks, size = [], 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise LLMError("too_large", f"reply passed max_reply_bytes {cap:,} while streaming; cut off")
        chunks.append(chunk)
    return b"".join(chunks)
