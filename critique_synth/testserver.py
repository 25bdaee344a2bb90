"""An OpenAI-compatible chat server for tests and benchmarks, with fault injection.

It answers /v1/chat/completions in the shape the request asks for: a JSON critique when a
JSON schema is requested, a CFT text critique when a teacher prompt comes without one, and a
worked answer for a student prompt. Critiques come from our own critic run *without* the
gold answer, so they are plausible and sometimes wrong, like a real teacher's. Faults
(429 with Retry-After, 500, hangs, dropped connections, invalid or schema-violating JSON,
`finish_reason: length`, garbage bodies) are drawn per request from a seeded RNG or taken
from a script, and every request is logged with a fingerprint of its body.

Endpoint modes copy real servers: `models` (404 model_not_found for others), `schema_support`
(which `response_format` it takes, refusing the rest with llama-cpp-python's HTTP 500
validation error or another server's 400), `slots` (a fixed number served at once, the rest
queue), `reasoning_models` (max_tokens refused, max_completion_tokens required, and a
reasoning_content beside the content), `azure` (api-key header and api-version checked on
deployment URLs) and `honour_n=False` (one choice whatever `n` asks, as llama-cpp-python).

Run standalone for benchmarks: `python -m critique_synth.testserver --port 8011 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .critic import builtin_critique
from .records import Problem
from .testserver_batch import attach as attach_batch_api

FAULTS = (
    "429",
    "429now",
    "quota",
    "500",
    "400",
    "401",
    "404",
    "hang",
    "drop",
    "invalid_json",
    "bad_schema",
    "length",
    "garbage",
    "huge",
    "endless",
    "gzip_bomb",
    "odd_types",
)
ODD_REPLIES: tuple[dict[str, Any], ...] = (
    {"usage": [1, 2]},
    {"usage": {"prompt_tokens": "12", "completion_tokens": 3}},
    {"usage": {"prompt_tokens": -5, "completion_tokens": -1}},
    {"usage": {"prompt_tokens": 1e300, "completion_tokens": True}},
    {"content": {"analysis": "a dict, not a string"}},
    {"content": 42},
    {"choices": {"0": "not a list"}},
    {"choices": []},
    {"choices": [None]},
    {"message": "a string"},
    {"finish_reason": 7},
)
_TAG_RE = {tag: re.compile(rf"<{tag}>\n?(.*?)\n?</{tag}>", re.DOTALL) for tag in ("question", "solution")}
_NUMBER_RE = re.compile(r"\d+")


@dataclass
class ServerConfig:
    latency: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    script: deque[str] = field(default_factory=deque)
    retry_after: float = 0.05
    hang: float = 30.0
    seed: int = 0
    hidden_rpm: int | None = None
    answers: dict[str, str] = field(default_factory=dict)
    require_auth: tuple[str, ...] = ()  # accepted Authorization headers; empty: any
    huge_bytes: int = 200_000_000
    endless_seconds: float = 30.0
    models: tuple[str, ...] = ()  # served model names; empty: any
    schema_support: str = "json_schema"  # json_schema | json_object_schema | json_object | none
    schema_refusal: int = 500  # 500: llama-cpp-python's validation error; 400: other servers
    slots: int | None = None  # requests served at once; the rest wait in a queue
    reasoning_models: tuple[str, ...] = ()  # name prefixes that need max_completion_tokens
    azure: tuple[str, str] | None = None  # (api-key, api-version) an Azure deployment requires
    honour_n: bool = True


def body_fingerprint(body: dict[str, Any]) -> str:
    """Identity of a request's content, for 'was this request sent again?' checks."""
    keep = {k: body.get(k) for k in ("model", "messages", "temperature", "top_p", "max_tokens", "n")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


class MockLLMServer:
    """Start with `start()` (a background thread) or `serve()` (in the current loop)."""

    def __init__(self, config: ServerConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or ServerConfig()
        self.host, self.port = host, port
        self.log: list[dict[str, Any]] = []
        self._rng = random.Random(self.config.seed)
        self._bucket, self._refilled = 1.0, time.monotonic()
        self._counter = 0
        self._odd = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._slots: asyncio.Semaphore | None = None
        self.busy = 0
        self.peak_busy = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_log", self._log)
        attach_batch_api(self, app)
        return app

    async def serve(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    def start(self) -> MockLLMServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="mock-llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def fingerprints(self, kind: str | None = None) -> list[str]:
        return [e["fingerprint"] for e in self.log if kind is None or e["kind"] == kind]

    def _refused(self, request: web.Request) -> web.Response | None:
        """401 unless the request carries one of the accepted Authorization headers, or on an
        Azure deployment the right api-key (and 404 without the api-version it serves)."""
        if self.config.azure is not None:
            key, version = self.config.azure
            if request.headers.get("api-key") != key:
                return _error(401, "Access denied due to invalid subscription key", code="401")
            if request.query.get("api-version") != version:
                return _error(404, "Resource not found", code="404")
            return None
        accepted = self.config.require_auth
        if accepted and request.headers.get("Authorization") not in accepted:
            return _error(401, "Incorrect API key provided", code="invalid_api_key")
        return None

    def _unfit(self, body: dict[str, Any]) -> web.Response | None:
        """A request this server cannot take: unknown model, wrong token parameter, or a
        response_format it does not support."""
        model = body.get("model")
        if self.config.models and model not in self.config.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return _error(404, message, code="model_not_found")
        if any(str(model).startswith(p) for p in self.config.reasoning_models) and "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return _error(400, message, code="unsupported_parameter")
        fmt = body.get("response_format") or {}
        kind = fmt.get("type")
        support = self.config.schema_support
        taken = {
            "json_schema": ("json_schema", "json_object"),
            "json_object_schema": ("json_object",),
            "json_object": ("json_object",),
            "none": (),
        }[support]
        if support == "json_object" and "schema" in fmt:
            kind = "json_object with a schema"  # a strict server: unknown fields are errors
        if kind is None or kind == "text" or kind in taken:
            return None
        if self.config.schema_refusal == 500:
            message = (
                "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  "
                f"Input should be 'text' or 'json_object' [type=literal_error, input_value='{kind}']"
            )
            return _error(500, message)
        return _error(400, f"response_format of type '{kind}' is not supported by this server")

    async def _models(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        names = self.config.models or ("mock",)
        return web.json_response({"object": "list", "data": [{"id": n, "object": "model"} for n in names]})

    async def _log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log)

    def _draw_fault(self) -> str | None:
        if self.config.script:
            fault = self.config.script.popleft()
            return None if fault == "ok" else fault
        roll = self._rng.random()
        for name, rate in self.config.faults.items():
            if roll < rate:
                return name
            roll -= rate
        return None

    def _over_hidden_limit(self) -> bool:
        """A token bucket refilled at hidden_rpm/60 a second holding one second's worth, as real
        rate limiters work; requests refused with 429 take no token."""
        if not self.config.hidden_rpm:
            return False
        rate = self.config.hidden_rpm / 60.0
        now = time.monotonic()
        self._bucket = min(max(rate, 1.0), self._bucket + (now - self._refilled) * rate)
        self._refilled = now
        if self._bucket < 1.0:
            return True
        self._bucket -= 1.0
        return False

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fault = self._draw_fault()
        kind = _kind(body)
        entry = {
            "t": time.time(),
            "kind": kind,
            "model": body.get("model"),
            "fingerprint": body_fingerprint(body),
            "turns": len(body.get("messages", [])),
            "bytes": request.content_length,
            "fault": fault,
            "authorization": "Authorization" in request.headers,
        }
        self.log.append(entry)
        if (refused := self._refused(request)) is not None:
            entry["fault"] = str(refused.status)
            return refused
        if (unfit := self._unfit(body)) is not None:
            entry["fault"] = str(unfit.status)
            return unfit
        if self.config.slots:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.config.slots)
            async with self._slots:
                return await self._serve(request, body, kind, fault, entry)
        return await self._serve(request, body, kind, fault, entry)

    async def _serve(
        self, request: web.Request, body: dict[str, Any], kind: str, fault: str | None, entry: dict[str, Any]
    ) -> web.StreamResponse:
        self.busy += 1
        self.peak_busy = max(self.peak_busy, self.busy)
        try:
            return await self._reply(request, body, kind, fault, entry)
        finally:
            self.busy -= 1

    async def _reply(
        self, request: web.Request, body: dict[str, Any], kind: str, fault: str | None, entry: dict[str, Any]
    ) -> web.StreamResponse:
        if self._over_hidden_limit():
            entry["fault"] = "429"
            return _error(429, "rate limit exceeded", retry_after=self.config.retry_after)
        if fault == "429now":
            return _error(429, "rate limit exceeded", retry_after=self.config.retry_after)
        if fault == "quota":
            return _error(429, "You exceeded your current quota", code="insufficient_quota")
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        if fault == "429":
            return _error(429, "rate limit exceeded", retry_after=self.config.retry_after)
        if fault in ("500", "400", "401", "404"):
            return _error(int(fault), f"mock error {fault}")
        if fault == "hang":
            await asyncio.sleep(self.config.hang)
        if fault == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if fault == "garbage":
            return web.Response(text="<html>bad gateway</html>", content_type="application/json")
        if fault in ("huge", "endless", "gzip_bomb"):
            return await self._oversized(request, fault)
        self._counter += 1
        n = int(body.get("n") or 1) if self.config.honour_n else 1
        choices = [self._choice(body, kind, fault, i) for i in range(n)]
        if any(str(body.get("model")).startswith(p) for p in self.config.reasoning_models):
            for choice in choices:
                choice["message"]["reasoning_content"] = "Let me check each step before I answer."
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        completion_chars = sum(len(c["message"]["content"]) for c in choices)
        entry["tokens"] = (prompt_chars + completion_chars) // 4
        reply = {
            "id": f"mock-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": completion_chars // 4,
                "total_tokens": (prompt_chars + completion_chars) // 4,
            },
        }
        if fault == "odd_types":
            self._odd += 1
            _make_odd(reply, ODD_REPLIES[(self._odd - 1) % len(ODD_REPLIES)])
        return web.json_response(reply)

    async def _oversized(self, request: web.Request, fault: str) -> web.StreamResponse:
        """A body past any sane cap: one huge JSON reply, a gzip bomb, or a chunked body that
        goes on until the client hangs up (or `endless_seconds` pass: loops here are bounded)."""
        if fault == "huge":
            padding = b"x" * self.config.huge_bytes
            return web.Response(body=b'{"choices": [{"message": {"content": "' + padding + b'"}}]}')
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if fault == "gzip_bomb":
            response.headers["Content-Encoding"] = "gzip"
            response.content_length = len(_bomb(self.config.huge_bytes))
            await response.prepare(request)
            await response.write(_bomb(self.config.huge_bytes))
            return response
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"x" * 65536
        deadline = time.monotonic() + self.config.endless_seconds
        try:
            while time.monotonic() < deadline:
                await response.write(block)
        except (ConnectionError, RuntimeError):
            pass
        return response

    def _scripted(self, body: dict[str, Any]) -> str | None:
        """A canned reply for a request whose last message contains one of `answers`' keys."""
        last = (body.get("messages") or [{}])[-1].get("content") or ""
        return next((reply for key, reply in self.config.answers.items() if key in last), None)

    def _choice(self, body: dict[str, Any], kind: str, fault: str | None, index: int) -> dict[str, Any]:
        text = self._scripted(body) or _answer(body, kind, index + self._counter)
        finish = "stop"
        if fault == "invalid_json":
            text = '{"analysis": "The solution looks'
        elif fault == "bad_schema":
            text = json.dumps({"analysis": "Looks fine.", "verdict": "maybe"})
        elif fault == "length":
            text, finish = text[: max(1, len(text) // 3)], "length"
        return {"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": finish}


def _make_odd(reply: dict[str, Any], odd: dict[str, Any]) -> None:
    """Swap one field of a good reply for a well-formed JSON value of the wrong type."""
    for name, value in odd.items():
        if name in ("content", "finish_reason", "message"):
            target = reply["choices"][0] if name != "content" else reply["choices"][0]["message"]
            target[name] = value
        else:
            reply[name] = value


_BOMBS: dict[int, bytes] = {}


def _bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped (about 1,000:1), made once per size."""
    if size not in _BOMBS:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(1 << 20)
        parts = [packer.compress(block) for _ in range(size >> 20)]
        _BOMBS[size] = b"".join(parts) + packer.flush()
    return _BOMBS[size]


def _kind(body: dict[str, Any]) -> str:
    if body.get("response_format"):
        return "teacher_json"
    user = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"), "")
    return "teacher_text" if "<solution>" in user else "student"


def _answer(body: dict[str, Any], kind: str, salt: int) -> str:
    user = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"), "")
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if schema is not None and "verdict" not in schema.get("properties", {}):
        return json.dumps(_instance(schema, schema))
    if kind == "student":
        numbers = [int(n) for n in _NUMBER_RE.findall(user)[:2]] or [1, 1]
        a, b = numbers[0], numbers[-1]
        slip = salt % 3 == 0
        total = a + b + (1 if slip else 0)
        return f"First, {a} + {b} = {total}.\nSo the answer is \\boxed{{{total}}}."
    question = _TAG_RE["question"].search(user)
    solution = _TAG_RE["solution"].search(user)
    problem = Problem(id="mock", question=question.group(1) if question else "?")
    critique = builtin_critique(problem, solution.group(1) if solution else "")
    if kind == "teacher_json":
        return critique.model_dump_json()
    return critique.render()


def _instance(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A minimal value that satisfies a JSON Schema, for requests with schemas we do not know."""
    if "$ref" in schema:
        return _instance(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _instance(schema["anyOf"][0], root)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(sub, root) for name, sub in props.items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), root)] * schema.get("minItems", 0)
    return {
        "string": "x",
        "integer": max(0, schema.get("minimum", 0)),
        "number": 0.5,
        "boolean": True,
        "null": None,
    }.get(kind)


def _error(
    status: int, message: str, retry_after: float | None = None, code: str | int | None = None
) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    error = {"message": message, "code": code or status}
    return web.json_response({"error": error}, status=status, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault", action="append", default=[], help="NAME=RATE, e.g. 429=0.1")
    parser.add_argument("--hang", type=float, default=30.0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--hidden-rpm", type=int)
    parser.add_argument("--slots", type=int, help="requests served at once; the rest queue")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--huge-bytes", type=int, default=200_000_000, help="size of huge/bomb bodies")
    args = parser.parse_args()
    faults = {name: float(rate) for name, _, rate in (f.partition("=") for f in args.fault)}
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    config = ServerConfig(
        latency=args.latency,
        faults=faults,
        retry_after=args.retry_after,
        hang=args.hang,
        seed=args.seed,
        hidden_rpm=args.hidden_rpm,
        slots=args.slots,
        huge_bytes=args.huge_bytes,
    )
    server = MockLLMServer(config, args.host, args.port)
    web.run_app(server.app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
