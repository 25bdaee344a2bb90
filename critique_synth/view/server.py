"""The page's HTTP server: static files and a small JSON API over the index (aiohttp).

It binds 127.0.0.1 unless told otherwise, answers only requests addressed to a loopback name
when bound to loopback (a web page elsewhere cannot reach it through DNS rebinding), and takes
writes only as same-origin JSON. It never takes the run lock: it reads files that `generate`
only appends to, and writes nothing but the review file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import UserError
from ..steps import split_steps
from ..store import CRITIQUES
from .index import Index, key_id
from .query import Filter, select, summary
from .review import DECISIONS, REVIEW, ReviewLog

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PAGE_MAX = 200
_SNIPPET = 200


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class View:
    """The state behind the API: the index of the run directories and the review log."""

    def __init__(self, run_dirs: list[Path], review_path: Path | None = None) -> None:
        for run_dir in run_dirs:
            if not (run_dir / CRITIQUES).exists():
                raise UserError(f"{run_dir}: no {CRITIQUES}; is this a critique-synth run directory?")
        self.index = Index(run_dirs)
        self.review = ReviewLog(review_path or run_dirs[0] / REVIEW)
        t0 = time.perf_counter()
        self.index.refresh()
        log.info("indexed %d lines in %.1fs", len(self.index), time.perf_counter() - t0)

    def records(self, flt: Filter, offset: int, limit: int) -> dict[str, Any]:
        self.index.refresh()
        rows = select(self.index, flt, self.review.decisions)
        page = rows[offset : offset + min(max(limit, 1), PAGE_MAX)]
        return {"total": len(rows), "offset": offset, "rows": [self._brief(i) for i in self.index.read(page)]}

    def record(self, row: int, flt: Filter) -> dict[str, Any]:
        self.index.refresh()
        if not 0 <= row < len(self.index):
            raise _error(web.HTTPNotFound, f"no record {row}")
        item = self.index.read([row])[0]
        rows = select(self.index, flt, self.review.decisions)
        at = int(rows.searchsorted(row))
        found = at < len(rows) and rows[at] == row
        item["_nav"] = {
            "position": at if found else None,
            "total": len(rows),
            "prev": int(rows[at - 1]) if at > 0 else None,
            "next": int(rows[at + 1 if found else at]) if (at + 1 if found else at) < len(rows) else None,
        }
        item["_review"] = self.review.decisions.get(item["key"])
        if item["_kind"] == "record":
            item["_steps"] = [
                {"number": s.number, "text": s.text} for s in split_steps(item["response"]["text"])
            ]
            item["_teachers"] = self._siblings(row)
        return item

    def _siblings(self, row: int) -> list[dict[str, Any]]:
        """Every critique of this record's response (one per teacher), this one first."""
        cols = self.index.arrays()
        group = cols["group"][row]
        others = [int(r) for r in (cols["group"] == group).nonzero()[0] if r != row]
        return [
            {
                "row": item["_row"],
                "key": item["key"],
                "teacher": item["teacher"],
                "critique": item["critique"],
                "agrees": item.get("agrees"),
                "step_agrees": item.get("step_agrees"),
                "usage": item.get("usage"),
                "review": self.review.decisions.get(item["key"]),
            }
            for item in self.index.read([row, *others])
        ]

    def _brief(self, item: dict[str, Any]) -> dict[str, Any]:
        if item["_kind"] == "reject":
            question, extra = "", {"reason": item["reason"], "stage": item["stage"]}
        else:
            question = item["problem"]["question"]
            response, critique = item["response"], item["critique"]
            extra = {
                "teacher": item["teacher"],
                "verdict": critique["verdict"],
                "first_wrong_step": critique.get("first_wrong_step"),
                "label_step": response.get("first_error_step"),
                "error_kind": response.get("error_kind"),
                "reference": item.get("reference"),
                "agrees": item.get("agrees"),
                "step_agrees": item.get("step_agrees"),
            }
        return {
            "row": item["_row"],
            "kind": item["_kind"],
            "key": item["key"],
            "problem_id": item.get("problem_id") or item["problem"]["id"],
            "question": question[:_SNIPPET],
            "review": self.review.decisions.get(item["key"]),
            **extra,
        }

    def mark(self, body: Any) -> dict[str, object]:
        """Record a decision for a key the index holds: a review of a record that does not exist
        would sit in the review file and be mistaken for one later."""
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            raise _error(web.HTTPBadRequest, "send a JSON object {key, decision} with a string key")
        decision = body.get("decision")
        if decision not in DECISIONS:
            raise _error(web.HTTPBadRequest, f"decision must be one of {', '.join(DECISIONS)}")
        self.index.refresh()
        rows = (self.index.arrays()["key"] == key_id(body["key"])).nonzero()[0]
        if not any(item["key"] == body["key"] for item in self.index.read(rows)):  # ids are prefixes
            raise _error(web.HTTPNotFound, f"no record with key {body['key'][:64]!r} in these runs")
        return self.review.mark(body["key"], decision)

    def summary(self) -> dict[str, Any]:
        self.index.refresh()
        return summary(self.index, self.review.decisions) | {"review_file": str(self.review.path)}


def make_app(view: View, *, loopback_only: bool = True) -> web.Application:
    """The aiohttp application: `/` the page, `/static/*` its assets, `/api/*` JSON."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if loopback_only and not is_loopback(request.url.host or ""):
            raise _error(web.HTTPForbidden, "this page answers only to 127.0.0.1 or localhost")
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def stats(_: web.Request) -> web.Response:
        return _json(view.summary)

    async def records(request: web.Request) -> web.Response:
        query = request.query
        flt = Filter.from_query(query)
        return _json(lambda: view.records(flt, _int(query, "offset", 0), _int(query, "limit", 50)))

    async def record(request: web.Request) -> web.Response:
        flt = Filter.from_query(request.query)
        return _json(lambda: view.record(int(request.match_info["row"]), flt))

    async def review(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            raise _error(web.HTTPUnsupportedMediaType, "send JSON")
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise _error(web.HTTPForbidden, "cross-origin review refused")
        try:
            body = await request.json()
        except ValueError:
            raise _error(web.HTTPBadRequest, "the body is not JSON; send {key, decision}") from None
        return _json(lambda: view.mark(body))

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/summary", stats)
    app.router.add_get("/api/records", records)
    app.router.add_get(r"/api/record/{row:\d+}", record)
    app.router.add_post("/api/review", review)
    return app


def _json(make: Any) -> web.Response:
    try:
        return web.json_response(make())
    except UserError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None


def _error(kind: type[web.HTTPError], message: str) -> web.HTTPError:
    """An API error the page and scripts can read alike: {"error": message} as JSON."""
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def _int(query: Any, name: str, default: int) -> int:
    try:
        return max(0, int(query.get(name, default)))
    except ValueError:
        raise _error(web.HTTPBadRequest, f"{name} must be a whole number") from None


class ViewServer:
    """The server on its own thread and loop: for tests, benchmarks and the CLI alike."""

    def __init__(self, view: View, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.view, self.host, self.port = view, host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> ViewServer:
        if not 0 <= self.port <= 65535:  # 0 asks the system for a free port (tests do)
            self._loop.close()
            raise UserError(f"--port {self.port}: a port is a number from 1 to 65535")
        app = make_app(self.view, loopback_only=is_loopback(self.host))
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            self._loop.run_until_complete(site.start())
        except OSError as exc:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()
            raise UserError(
                f"cannot serve on {self.host}:{self.port} ({exc.strerror or exc}); choose another --port"
            ) from None
        self.port = self._runner.addresses[0][1]
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="critique-synth-view", daemon=True
        )
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._thread is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = None


def serve(
    run_dirs: list[Path], *, host: str | None = None, port: int = 8000, review: Path | None = None
) -> ViewServer:
    """Index `run_dirs` and serve the page. 127.0.0.1 unless `host` names another address on
    purpose: the page has no login, so anyone who reaches it reads the run and its review."""
    if host is not None and not is_loopback(host):
        log.warning(
            "serving on %s: anyone who can reach this address can read the run and mark records", host
        )
    return ViewServer(View(run_dirs, review), host or "127.0.0.1", port).start()
