"""A stand-in for the Hugging Face Hub at the HTTP boundary: the endpoints huggingface_hub calls
for create_repo, repo_exists, create_branch and upload_folder, with tokens and permissions.

It keeps uploaded files in memory, so tests can check what a push really sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

WRITE_TOKEN = "hf_write_0123456789abcdef"
READ_TOKEN = "hf_read_0123456789abcdef"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[str, Any]] = {
            ("model", "alice/my-model"): {"private": False, "branches": {"main": {}}}
        }
        self.commits: list[dict[str, Any]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return self.repos[("dataset", repo_id)]["branches"][branch]

    def start(self) -> FakeHub:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _user(self, request: web.Request) -> tuple[str, bool] | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return {WRITE_TOKEN: ("alice", True), READ_TOKEN: ("alice", False)}.get(token)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        user = self._user(request)
        if parts[:2] == ["api", "repos"] and parts[2:] == ["create"]:
            return await self._create(request, user)
        if parts[:2] == ["api", "validate-yaml"]:
            content = (await request.json())["content"]
            yaml.safe_load(content.split("---")[1])
            return web.json_response({"errors": [], "warnings": []})
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "datasets", "spaces"):
            kind, repo_id, rest = parts[1][:-1], f"{parts[2]}/{parts[3]}", parts[4:]
            return await self._repo(request, user, kind, repo_id, rest)
        return _error(404, "Not Found", "EntryNotFound")

    async def _create(self, request: web.Request, user: tuple[str, bool] | None) -> web.Response:
        body = await request.json()
        if user is None:
            return _error(401, "Invalid credentials")
        repo_id = f"{body.get('organization') or user[0]}/{body['name']}"
        if not user[1] or not repo_id.startswith(f"{user[0]}/"):
            return _error(403, "You don't have the rights to create a dataset under this namespace")
        key = (body.get("type", "model"), repo_id)
        url = f"{self.endpoint}/datasets/{repo_id}"
        if key in self.repos:
            return web.json_response(
                {"error": "You already created this dataset repo", "url": url}, status=409
            )
        self.repos[key] = {"private": body.get("visibility") == "private", "branches": {"main": {}}}
        return web.json_response({"url": url, "name": repo_id})

    async def _repo(
        self, request: web.Request, user: tuple[str, bool] | None, kind: str, repo_id: str, rest: list[str]
    ) -> web.Response:
        repo = self.repos.get((kind, repo_id))
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        if not rest or rest[0] == "revision":
            return web.json_response(
                {"id": repo_id, "sha": "0" * 40, "private": repo["private"], "siblings": []}
            )
        if user is None:
            return _error(401, "Invalid credentials", "RepoNotFound")
        if not user[1]:
            return _error(403, "You don't have write access to this repo")
        action, revision = rest[0], "/".join(rest[1:])
        if action == "branch":
            if revision in repo["branches"]:
                return _error(409, "Branch already exists")
            repo["branches"][revision] = dict(repo["branches"]["main"])
            return web.json_response({})
        if action == "preupload":
            files = (await request.json())["files"]
            return web.json_response(
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                }
            )
        if action == "commit":
            branch = repo["branches"].setdefault(revision, {})
            lines = [json.loads(line) for line in (await request.text()).splitlines() if line.strip()]
            for line in lines:
                if line["key"] == "file":
                    branch[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            self.commits.append({"repo": repo_id, "branch": revision, "header": lines[0]["value"]})
            oid = f"{len(self.commits):040d}"
            return web.json_response(
                {"commitOid": oid, "commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{oid}"}
            )
        return _error(404, "Not Found", "EntryNotFound")


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    headers = {"X-Error-Code": code, "X-Error-Message": message} if code else {"X-Error-Message": message}
    return web.json_response({"error": message}, status=status, headers=headers)
