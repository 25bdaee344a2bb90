"""Synthesis benchmarks: offline records/s, client overhead next to a bare aiohttp loop, peak RSS.

Each measurement runs in its own child process, so CPU time and peak RSS are that process's
alone (from rusage), and the test server runs in yet another process. Prints markdown tables.

    python benchmarks/bench_synthesis.py                 # all parts
    python benchmarks/bench_synthesis.py --part client --requests 2000 --latency 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import aiohttp

import critique_synth
from critique_synth.sources import SAMPLE_PATH

HERE = Path(__file__).resolve().parent


def make_problems(path: Path, n: int) -> Path:
    """`n` problems cycled from the bundled sample, each with a given response (its reference)."""
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            row = dict(rows[i % len(rows)], id=f"bench-{i}")
            row["response"] = row["solution"]
            f.write(json.dumps(row) + "\n")
    return path


def run_child(code: str, *args: str) -> tuple[dict, int]:
    """Run python code in a fresh child; returns the JSON it printed and its own peak RSS (KiB)."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            raise RuntimeError(stderr.read()[-2000:])
        return json.loads(stdout.read().strip().splitlines()[-1]), usage.ru_maxrss


GENERATE = """
import json, sys, time
import critique_synth
config = json.loads(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
result = critique_synth.generate(config, out=sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "critiques": result.stats.critiques,
                  "rejected": result.stats.rejected, "requests": result.stats.requests}))
"""

BARE = """
import asyncio, json, sys, time
import aiohttp
url, n, concurrency, body = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
async def main():
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one():
            async with sem:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    json.loads(await r.read())
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(n)))
        return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
print(json.dumps(asyncio.run(main())))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "critique_synth.testserver", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("test server did not start")


def teacher_config(url: str, problems: Path, concurrency: int) -> dict:
    return {
        "problems": {"path": str(problems)},
        "students": {"kind": "dataset"},
        "teacher": {
            "kind": "llm",
            "model": "bench-teacher",
            "endpoint": {"base_urls": [url], "concurrency": concurrency, "timeout": 60},
        },
        "export": False,
    }


def part_offline(n: int, tmp: Path) -> list[str]:
    problems = make_problems(tmp / f"offline-{n}.jsonl", n)
    config = {"problems": {"path": str(problems)}, "export": False}
    result, rss = run_child(GENERATE, json.dumps(config), str(tmp / f"offline-out-{n}"))
    return [
        "| problems | records | wall s | records/s | CPU ms/record | peak RSS MiB |",
        "|---|---|---|---|---|---|",
        f"| {n:,} | {result['critiques']:,} | {result['wall']:.2f} "
        f"| {result['critiques'] / result['wall']:,.0f} "
        f"| {result['cpu'] / result['critiques'] * 1000:.2f} | {rss / 1024:.0f} |",
    ]


def _median(runs: list[dict]) -> dict:
    """The run with the median wall time (its CPU figure comes with it)."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def part_client(requests: int, concurrency: int, latency: float, tmp: Path, rounds: int = 3) -> list[str]:
    """Bare loop and `generate` alternate on the same warm server; medians of `rounds` each."""
    server, url = start_server(latency)
    try:
        problems = make_problems(tmp / f"client-{requests}.jsonl", requests)
        config = teacher_config(url, problems, concurrency)
        from critique_synth.config import TeacherConfig
        from critique_synth.records import Problem
        from critique_synth.teachers import LLMTeacher

        first = Problem.model_validate_json(problems.read_text().splitlines()[0])
        teacher = LLMTeacher(TeacherConfig(kind="llm", model="bench-teacher"), client=None)  # type: ignore[arg-type]
        body = json.dumps(
            {
                "model": "bench-teacher",
                "messages": teacher.messages(first, first.solution or ""),
                "temperature": 0.3,
                "top_p": 0.95,
                "max_tokens": 3200,
                "response_format": teacher._format,
            }
        )
        bare_runs, our_runs = [], []
        for round_ in range(rounds):
            bare_runs.append(
                run_child(BARE, f"{url}/chat/completions", str(requests), str(concurrency), body)[0]
            )
            our_runs.append(run_child(GENERATE, json.dumps(config), str(tmp / f"client-out-{round_}"))[0])
    finally:
        server.terminate()
        server.wait()
    assert all(r["requests"] == requests for r in our_runs), our_runs
    bare, ours = _median(bare_runs), _median(our_runs)
    bare_rate = requests / bare["wall"]
    ours_rate = requests / ours["wall"]
    return [
        f"latency {latency * 1000:.0f} ms, concurrency {concurrency}, {requests:,} requests, "
        f"median of {rounds} alternating rounds; ideal {concurrency / latency:,.0f} req/s",
        "",
        "| client | req/s | ratio to bare | CPU ms/request |",
        "|---|---|---|---|",
        f"| bare aiohttp + semaphore | {bare_rate:,.0f} | 1.00 | {bare['cpu'] / requests * 1000:.2f} |",
        f"| critique-synth generate (validation + store) | {ours_rate:,.0f} | {ours_rate / bare_rate:.2f}"
        f" | {ours['cpu'] / requests * 1000:.2f} |",
    ]


def part_memory(sizes: list[int], tmp: Path) -> list[str]:
    rows = ["| problems | records | wall s | peak RSS MiB |", "|---|---|---|---|"]
    for n in sizes:
        problems = make_problems(tmp / f"mem-{n}.jsonl", n)
        config = {"problems": {"path": str(problems)}, "export": False}
        result, rss = run_child(GENERATE, json.dumps(config), str(tmp / f"mem-out-{n}"))
        rows.append(f"| {n:,} | {result['critiques']:,} | {result['wall']:.1f} | {rss / 1024:.0f} |")
    return rows


def header() -> list[str]:
    return [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, critique-synth {critique_synth.__version__}, {date.today()}",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["offline", "client", "memory", "all"], default="all")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--memory-sizes", default="1000,100000")
    args = parser.parse_args()
    lines = header()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.part in ("offline", "all"):
            lines += [
                "### Offline default (inject students, built-in critic)",
                "",
                *part_offline(1000, tmp),
                "",
            ]
        if args.part in ("client", "all"):
            lines += [
                "### LLM teacher against the test server",
                "",
                *part_client(args.requests, args.concurrency, args.latency, tmp),
                "",
            ]
        if args.part in ("memory", "all"):
            sizes = [int(s) for s in args.memory_sizes.split(",")]
            lines += ["### Peak RSS, offline default", "", *part_memory(sizes, tmp), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
