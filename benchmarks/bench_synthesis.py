"""Synthesis benchmarks: offline records/s, client overhead next to a bare aiohttp loop, peak RSS.

Each measurement runs in its own child process, so CPU time (`process_time` around the run)
and peak RSS (the child's rusage) are that process's alone; the test server runs in another
process. Prints markdown tables.

    python benchmarks/bench_synthesis.py --part offline|client|grid|memory|all
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GENERATE, Server, header, make_problems, run_child, teacher_config

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


def teacher_body(problems: Path) -> str:
    """The request body `generate` sends for the first problem, for the bare loop to repeat."""
    from critique_synth.config import TeacherConfig
    from critique_synth.records import Problem
    from critique_synth.teachers import LLMTeacher, response_format

    first = Problem.model_validate_json(problems.read_text().splitlines()[0])
    teacher = LLMTeacher(TeacherConfig(kind="llm", model="bench-teacher"), client=None)  # type: ignore[arg-type]
    return json.dumps(
        {
            "model": "bench-teacher",
            "messages": teacher.messages(first, first.response or ""),
            "temperature": 0.3,
            "top_p": 0.95,
            "max_tokens": 3200,
            "response_format": response_format(teacher.output),
        }
    )


def _median(runs: list[dict]) -> dict:
    """The run with the median wall time (its CPU figure comes with it)."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def compare(requests: int, concurrency: int, latency: float, tmp: Path, rounds: int) -> tuple[dict, dict]:
    """Bare loop and `generate` alternate on one warm server; medians of `rounds` each."""
    problems = make_problems(tmp / f"client-{requests}.jsonl", requests)
    body = teacher_body(problems)
    bare_runs, our_runs = [], []
    with Server("--latency", str(latency)) as server:
        config = teacher_config(server.url, problems, concurrency)
        for r in range(rounds):
            bare_runs.append(
                run_child(BARE, f"{server.url}/chat/completions", str(requests), str(concurrency), body)[0]
            )
            our_runs.append(
                run_child(GENERATE, json.dumps(config), str(tmp / f"out-{concurrency}-{latency}-{r}"))[0]
            )
    assert all(r["requests"] == requests for r in our_runs), our_runs
    return _median(bare_runs), _median(our_runs)


def row(requests: int, concurrency: int, latency: float, bare: dict, ours: dict) -> str:
    bare_rate, ours_rate = requests / bare["wall"], requests / ours["wall"]
    return (
        f"| {latency * 1000:.0f} | {concurrency} | {requests:,} | {bare_rate:,.0f} | {ours_rate:,.0f} "
        f"| {ours_rate / bare_rate:.2f} | {bare['cpu'] / requests * 1000:.2f} "
        f"| {ours['cpu'] / requests * 1000:.2f} |"
    )


TABLE = [
    "| latency ms | concurrency | requests | bare req/s | generate req/s | ratio | bare CPU ms/req "
    "| generate CPU ms/req |",
    "|---|---|---|---|---|---|---|---|",
]


def part_client(tmp: Path, requests: int, concurrency: int, latency: float, rounds: int) -> list[str]:
    bare, ours = compare(requests, concurrency, latency, tmp, rounds)
    return [
        f"median of {rounds} alternating rounds; ideal {concurrency / latency:,.0f} req/s",
        "",
        *TABLE,
        row(requests, concurrency, latency, bare, ours),
    ]


def part_grid(tmp: Path, rounds: int) -> list[str]:
    lines = [f"median of {rounds} alternating round(s) per cell", "", *TABLE]
    for latency in (0.0, 0.02, 0.2):
        for concurrency in (16, 128, 512):
            requests = 2000 if latency < 0.1 else max(320, min(2000, concurrency * 8))
            bare, ours = compare(requests, concurrency, latency, tmp, rounds)
            lines.append(row(requests, concurrency, latency, bare, ours))
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def part_offline(tmp: Path, n: int = 1000) -> list[str]:
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


def part_memory(tmp: Path, sizes: list[int]) -> list[str]:
    lines = [
        "| mode | problems | records | wall s | peak RSS MiB | vs smallest |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("offline default", "LLM teacher, test server"):
        base = None
        for n in sizes:
            problems = make_problems(tmp / f"mem-{n}.jsonl", n)
            if mode == "offline default":
                result, rss = run_child(
                    GENERATE,
                    json.dumps({"problems": {"path": str(problems)}, "export": False}),
                    str(tmp / f"mem-off-{n}"),
                )
            else:
                with Server() as server:
                    config = teacher_config(server.url, problems, 64)
                    result, rss = run_child(GENERATE, json.dumps(config), str(tmp / f"mem-srv-{n}"))
            base = base or rss
            lines.append(
                f"| {mode} | {n:,} | {result['critiques']:,} | {result['wall']:.1f} | {rss / 1024:.0f} "
                f"| {rss / base:.2f}x |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["offline", "client", "grid", "memory", "all"], default="all")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grid-rounds", type=int, default=1)
    parser.add_argument("--memory-sizes", default="1000,10000,100000")
    args = parser.parse_args()
    lines = [header()]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.part in ("offline", "all"):
            lines += ["### Offline default (inject students, built-in critic)", "", *part_offline(tmp), ""]
        if args.part in ("client", "all"):
            lines += [
                f"### LLM teacher against the test server ({args.latency * 1000:.0f} ms, "
                f"concurrency {args.concurrency})",
                "",
                *part_client(tmp, args.requests, args.concurrency, args.latency, args.rounds),
                "",
            ]
        if args.part in ("grid", "all"):
            lines += ["### Latency x concurrency", "", *part_grid(tmp, args.grid_rounds), ""]
        if args.part in ("memory", "all"):
            sizes = [int(s) for s in args.memory_sizes.split(",")]
            lines += ["### Peak RSS", "", *part_memory(tmp, sizes), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
