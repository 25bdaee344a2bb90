"""Helpers shared by the benchmark scripts: problem files, child processes, the test server."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import aiohttp

import critique_synth
from critique_synth.sources import SAMPLE_PATH

GENERATE = """
import json, sys, time
import critique_synth
config = json.loads(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
result = critique_synth.generate(config, out=sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "critiques": result.stats.critiques, "rejected": result.stats.rejected,
                  "requests": result.stats.requests}))
"""


def make_problems(path: Path, n: int) -> Path:
    """`n` problems cycled from the bundled sample, each with a given response (its reference)."""
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            row = dict(rows[i % len(rows)], id=f"bench-{i}")
            row["question"] = f"{row['question']} (problem {i})"  # every request body distinct
            row["response"] = row["solution"]
            f.write(json.dumps(row) + "\n")
    return path


def run_child(code: str, *args: str) -> tuple[dict, int]:
    """Run python code in a fresh child; returns the JSON it printed and its own peak RSS (KiB)."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        stdout.seek(0)
        stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(stderr.read()[-2000:])
        return json.loads(stdout.read().strip().splitlines()[-1]), usage.ru_maxrss


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The project's test server in its own process (so its CPU is not the client's)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "critique_synth.testserver", "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/v1"
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("test server did not start")

    def log(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=30) as resp:
            return json.loads(resp.read())

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def teacher_config(url: str, problems: Path, concurrency: int, **endpoint: object) -> dict:
    """Dataset students (one teacher request a problem) and an LLM teacher on `url`."""
    return {
        "problems": {"path": str(problems)},
        "students": {"kind": "dataset"},
        "teacher": {
            "kind": "llm",
            "model": "bench-teacher",
            "endpoint": {"base_urls": [url], "concurrency": concurrency, "timeout": 60, **endpoint},
        },
        "export": False,
    }


def header() -> str:
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, critique-synth {critique_synth.__version__}, {date.today()}\n"
    )
