"""One async client for OpenAI-compatible chat endpoints, shared by students and teachers.

Why not the openai SDK: a CFT run is one endpoint called millions of times, so the client's
CPU per request sets the ceiling. Measured on these machines the SDK costs ~5 ms of CPU per
request on httpx and ~1.9 ms on its aiohttp transport; a bare aiohttp call costs ~0.3 ms.

The client composes small parts, each with one job: the transport moves bytes
(`transport.py`), the pacer keeps to rate limits (`pacing.py`), the concurrency limit finds
how many requests the server serves well (`limits.py`), the price book prices usage
(`pricing.py`). Here: request bodies, retries with backoff that honour a capped Retry-After,
failing fast on errors that will not fix themselves, and type-checked parsing of replies, so
a hostile or broken server costs a reject, never the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .budget import BudgetExceeded
from .config import EndpointConfig
from .errors import UserError
from .limits import ConcurrencyLimit
from .pacing import Pacer
from .pricing import PriceBook
from .records import Usage
from .tokens import estimate_tokens
from .transport import RAW_KEEP, AiohttpTransport, LLMError, Reply, Transport, clip, endpoint_headers
from .urls import is_local, safe_url, split_credentials

__all__ = ["RAW_KEEP", "Completion", "LLMClient", "LLMError", "clip", "resolve_api_key", "retry_delay"]

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_QUOTA_CODES = (b"insufficient_quota", b"billing_hard_limit", b"quota_exceeded")
_FORMAT_WORDS = (b"response_format", b"json_schema")
_PARAMETER_WORDS = ("unsupported", "not supported", "unknown parameter", "unrecognized", "extra inputs")
_REASONING_RE = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)(?!.*-chat)")
_REPEATS = 3  # the same endpoint error on this many requests, with no success yet, stops the run


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str | None
    reasoning: str | None = None


@dataclass(frozen=True)
class Completion:
    """The first choice's text, finish reason and reasoning; `choices` holds all (with `n`)."""

    text: str
    finish_reason: str | None
    usage: Usage
    reasoning: str | None = None
    choices: tuple[Choice, ...] = ()


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


def is_reasoning_model(model: str) -> bool:
    """OpenAI's o-series and GPT-5 reasoning models: max_completion_tokens, default sampling only."""
    return bool(_REASONING_RE.match(model))


class LLMClient:
    """Chat completions against one endpoint (one or more base URLs serving the same models)."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        api_key: str | None,
        *,
        role: str = "llm",
        transport: Transport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.role = role
        self.stats = ClientStats()
        self.transport = transport or AiohttpTransport(endpoint, endpoint_headers(endpoint, api_key, role))
        self.limit = ConcurrencyLimit(endpoint.concurrency, adaptive=endpoint.adaptive)
        self._pacer = Pacer(endpoint.rpm, endpoint.tpm)
        self._prices = PriceBook(endpoint.prices, batch=endpoint.batch)
        self._guard = FailFast(self)

    async def __aenter__(self) -> LLMClient:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(*exc)

    async def check(self) -> None:
        """Fail fast, before any work, on an endpoint that is down or refuses the key. Azure
        deployments have no /models; their first requests answer the same questions."""
        if self.endpoint.kind == "azure":
            return
        for url, reply in await self.transport.get("models", timeout=10):
            if reply.status in (401, 403):
                raise UserError(
                    f"{url} refused the API key (HTTP {reply.status}); check the key in "
                    f"${self.endpoint.api_key_env}"
                )

    async def list_models(self) -> list[str]:
        """Model ids the first base URL serves (GET /models); empty if it does not say."""
        try:
            (_, reply), *_ = await self.transport.get("models", timeout=10)
            data = json.loads(reply.body) if reply.status == 200 else {}
        except (UserError, ValueError):
            return []
        models = data.get("data") if isinstance(data, dict) else None
        return [m["id"] for m in models or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def body(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
        n: int = 1,
    ) -> bytes:
        """The request body: the token parameter and sampling fields the model takes, then the
        endpoint's `reasoning_effort` and `extra_body`."""
        token_param = self.endpoint.token_param
        reasoning = is_reasoning_model(model) if token_param == "auto" else False
        body: dict[str, Any] = {"model": model, "messages": messages}
        if not reasoning:
            body["temperature"] = temperature
            body["top_p"] = top_p
        if token_param == "max_completion_tokens" or reasoning:
            body["max_completion_tokens"] = max_tokens
        else:
            body["max_tokens"] = max_tokens
        if n > 1:
            body["n"] = n
        if self.endpoint.reasoning_effort:
            body["reasoning_effort"] = self.endpoint.reasoning_effort
        if response_format is not None:
            body["response_format"] = response_format
        if self.endpoint.extra_body:
            body.update(self.endpoint.extra_body)
        return json.dumps(body, ensure_ascii=False).encode()

    async def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
        n: int = 1,
    ) -> Completion:
        """One chat completion, retried on transient failures; raises LLMError when it gives up,
        and UserError once the endpoint has shown it will refuse every request."""
        payload = self.body(
            model,
            messages,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            response_format=response_format,
            n=n,
        )
        estimate = estimate_tokens(len(payload)) + max_tokens * n
        attempt = 0
        while True:
            try:
                completion = await self._send(payload, estimate)
                break
            except LLMError as exc:
                held = self._guard.hold(exc, model)
                if not held and (not exc.retryable or attempt >= self.endpoint.max_retries):
                    self.stats.failures[exc.reason] = self.stats.failures.get(exc.reason, 0) + 1
                    raise
                delay = retry_delay(exc, attempt)
                attempt += not held
                self.stats.retries += 1
                log.debug("retrying after %s", exc)
                await asyncio.sleep(delay)
        self._guard.succeeded()
        return self._account(model, completion)

    async def _send(self, payload: bytes, estimate: int) -> Completion:
        await self._pacer.acquire(estimate)
        paced = time.monotonic()  # what the pacer judges: when the request passed it
        await self.limit.acquire()
        self.stats.requests += 1
        sent = time.monotonic()
        try:
            reply = await self.transport.post("chat/completions", payload)
        except LLMError as exc:
            self.limit.release(timed_out=sent if exc.reason == "timeout" else None)
            raise
        except BaseException as exc:  # cancelled, a budget stop, a bug: the slot must not leak
            self.limit.release()
            if isinstance(exc, BudgetExceeded):  # the budget refused it: it never went out
                self.stats.requests -= 1
            raise
        if reply.status != 200:
            self.limit.release()
            if reply.status == 429:
                self._pacer.rate_limited(sent=paced)
            raise self._http_error(reply)
        self.limit.release(time.monotonic() - sent)
        self._pacer.succeeded(sent=paced)
        completion = _parse_completion(reply.body)
        used = completion.usage.prompt_tokens + completion.usage.completion_tokens
        if used:  # a reply with no usable usage keeps its whole booking: tpm must still hold
            self._pacer.refund(estimate - used)
        return completion

    def _http_error(self, reply: Reply) -> LLMError:
        status, head = reply.status, reply.body[:2000]
        detail = f"HTTP {status}: {self.transport.redact(head[:300].decode('utf-8', 'replace'))}"
        wait = _seconds(reply.retry_after, self.endpoint.max_retry_after)
        if status in (400, 422, 500) and any(word in head for word in _FORMAT_WORDS):
            return LLMError("unsupported_format", detail)
        if status == 429 and any(code in head for code in _QUOTA_CODES):
            return LLMError("quota_exhausted", detail)
        if status == 429:
            return LLMError("rate_limited", detail, wait)
        if status in _RETRYABLE_STATUS or status >= 500:
            return LLMError("server_error", detail, wait)
        return LLMError(f"http_{status}", detail)

    def _redact(self, text: str) -> str:
        return self.transport.redact(text)

    def _account(self, model: str, completion: Completion) -> Completion:
        usage = self._prices.priced(model, completion.usage)
        self.stats.prompt_tokens += usage.prompt_tokens
        self.stats.completion_tokens += usage.completion_tokens
        self.stats.cost += usage.cost
        return dataclasses.replace(completion, usage=usage)


class FailFast:
    """Stop a run whose first requests all meet the same error that no retry will fix: a
    refused key, a model the server does not have, a parameter it does not take.
    Until the first success such an error is held (the request waits and is sent again)
    instead of becoming a reject, so a run with a wrong key leaves nothing to redo."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.ok = False
        self.error: UserError | None = None
        self._seen: Counter[str] = Counter()

    def succeeded(self) -> None:
        self.ok = True

    def hold(self, exc: LLMError, model: str) -> bool:
        """True: try the request again; False: an ordinary failure; raises once it is fatal."""
        if self.error is not None:
            raise self.error
        if self.ok or not _fatal(exc):
            return False
        self._seen[exc.reason] += 1
        if self._seen[exc.reason] >= _REPEATS:
            self.error = UserError(self._explain(exc, model))
            raise self.error
        return True

    def _explain(self, exc: LLMError, model: str) -> str:
        c = self.client
        where = f"{c.role} endpoint {c.transport.where}"
        said = f"(the first {_REPEATS} requests: {exc.detail[:200]})"
        if exc.reason in ("http_401", "http_403"):
            key = "api-key" if c.endpoint.kind == "azure" else "API key"
            return f"{where} refused the {key} {said}; check ${c.endpoint.api_key_env}, then rerun to resume"
        if exc.reason == "http_404":
            return f"{where} has no model {model!r} {said}; check the model name and base URL, then rerun"
        hint = ""
        if "max_tokens" in exc.detail and "max_completion_tokens" in exc.detail:
            hint = f"set {c.role}.endpoint.token_param = 'max_completion_tokens'; "
        return (
            f"{where} refused a request parameter {said}; {hint}check {c.role}.endpoint.extra_body, "
            "reasoning_effort and token_param, then rerun to resume"
        )


def _fatal(exc: LLMError) -> bool:
    if exc.reason in ("http_401", "http_403", "http_404"):
        return True
    lowered = exc.detail.lower()
    return exc.reason in ("http_400", "http_422") and any(word in lowered for word in _PARAMETER_WORDS)


def _parse_completion(raw: bytes) -> Completion:
    """A chat completion from a reply body, every field type-checked: anything off is a
    `bad_response` (retried, then rejected), never an exception that ends the run."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    items = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        items = [None]
    choices = tuple(_choice(item, raw) for item in items)
    first = choices[0]
    usage = _usage(data.get("usage") if isinstance(data, dict) else None)
    return Completion(first.text, first.finish_reason, usage, first.reasoning, choices)


def _choice(choice: object, raw: bytes) -> Choice:
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else 0
    if content is not None and not isinstance(content, str):
        raise LLMError("bad_response", f"not a chat completion: {raw[:200]!r}")
    assert isinstance(message, dict) and isinstance(choice, dict)
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish = choice.get("finish_reason")
    return Choice(
        content or "",
        finish if isinstance(finish, str) else None,
        reasoning if isinstance(reasoning, str) and reasoning else None,
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
