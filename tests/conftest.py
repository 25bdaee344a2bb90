"""Shared fixtures: a real OpenAI-compatible server on 127.0.0.1, and the real CLI in this process
(`invoke`) or in a child process (`run_cli`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from critique_synth.cli import app
from critique_synth.testserver import MockLLMServer, ServerConfig

SECRET = "sk-test-DO-NOT-LEAK-4f9a1c2b7e"


@pytest.fixture
def server() -> Iterator[MockLLMServer]:
    srv = MockLLMServer(ServerConfig()).start()
    yield srv
    srv.stop()


@pytest.fixture
def problems_file(tmp_path: Path) -> Path:
    """Six small GSM8K-style problems with gold answers and worked solutions."""
    rows = [
        {
            "id": f"p{i}",
            "question": f"Tom has {a} apples and buys {b} bags of {c} apples. How many apples now?",
            "answer": str(a + b * c),
            "solution": f"The bags hold {b} * {c} = {b * c} apples.\n"
            f"In total {a} + {b * c} = {a + b * c} apples.\n#### {a + b * c}",
        }
        for i, (a, b, c) in enumerate([(3, 2, 5), (7, 4, 6), (10, 3, 3), (1, 9, 2), (12, 5, 4), (8, 8, 8)])
    ]
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HF_TOKEN")}
    env.update({"OPENAI_API_KEY": SECRET, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "critique_synth", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
    )


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process (typer's CliRunner): the same code as `run_cli` without a new
    interpreter; for everything but signals, kills, locks between processes and install."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env or cli_env())


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
