"""Fault, resume and rate-limit benchmarks against the project's test server.

    python benchmarks/bench_faults.py --part resume|faults|rpm|hidden|all

resume: a run killed with SIGKILL at random moments, rerun each time, then run to the end:
        lost and duplicated records, and requests sent again (from the server's request log)
        next to how many were in flight at the kills.
faults: 10% 429 with Retry-After, 5% 500, 2% hangs past the timeout, 5% invalid JSON, next
        to a clean run: completion, extra requests, wall time.
rpm:    600 requests/minute and a tokens/minute limit configured, two minutes: the rate
        measured at the server, and the busiest 60-second window.
hidden: the server answers 429 over its own (hidden) 600 requests/minute; the client has no
        configured limit: where it settles, and how often it is refused.
burst:  429s answered at once (as real APIs send them) at 2% and 10%, a 90% storm and an
        exhausted quota, next to a no-fault run: throughput and time to finish.
hostile: replies of 200 MB, gzip bombs and endless bodies: peak RSS and the rejects file size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GENERATE, Server, header, make_problems, run_child, teacher_config


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip().endswith(b"}")]


def _busiest_window(times: list[float], weights: list[int] | None = None, span: float = 60.0) -> int:
    """The most requests (or tokens) in any `span`-second window."""
    weights = weights or [1] * len(times)
    best = total = start = 0
    for end in range(len(times)):
        total += weights[end]
        while times[end] - times[start] > span:
            total -= weights[start]
            start += 1
        best = max(best, total)
    return best


def part_resume(tmp: Path, requests: int, kills: int, seed: int) -> list[str]:
    problems = make_problems(tmp / "resume.jsonl", requests)
    out = tmp / "resume-out"
    rng = random.Random(seed)
    in_flight = []
    sent_before = done_before = 0
    with Server("--latency", "0.2") as server:
        config = json.dumps(teacher_config(server.url, problems, 64))
        for _ in range(kills):
            child = subprocess.Popen(
                [sys.executable, "-c", GENERATE, config, str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(1.5, 4.0))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            sent = len(server.log())
            done = {r["key"] for r in _lines(out / "critiques.jsonl")} | {
                r["key"] for r in _lines(out / "rejected.jsonl")
            }
            in_flight.append((sent - sent_before) - (len(done) - done_before))
            sent_before, done_before = sent, len(done)
        run_child(GENERATE, config, str(out))
        log = server.log()
    records = _lines(out / "critiques.jsonl") + _lines(out / "rejected.jsonl")
    keys = [r["key"] for r in records]
    fingerprints = Counter(e["fingerprint"] for e in log)
    resent = sum(n - 1 for n in fingerprints.values())
    return [
        f"{requests:,} requests, 200 ms latency, concurrency 64, SIGKILL at {kills} random moments "
        "(1.5-4 s into "
        "each run, start-up included), then one run to the end",
        "",
        "| units | records | lost | duplicated | requests sent | sent again | in flight at the kills (sum) |",
        "|---|---|---|---|---|---|---|",
        f"| {requests:,} | {len(set(keys)):,} | {requests - len(set(keys))} | {len(keys) - len(set(keys))} "
        f"| {len(log):,} | {resent} | {sum(in_flight)} (per kill: {', '.join(map(str, in_flight))}) |",
    ]


def part_faults(tmp: Path, requests: int) -> list[str]:
    problems = make_problems(tmp / "faults.jsonl", requests)
    rows = [
        "| run | critiques | rejected (reason: n) | requests sent | extra requests | wall s |",
        "|---|---|---|---|---|---|",
    ]
    clean_wall = None
    faults = [
        "--fault",
        "429=0.10",
        "--fault",
        "500=0.05",
        "--fault",
        "hang=0.02",
        "--fault",
        "invalid_json=0.05",
        "--hang",
        "5",
        "--retry-after",
        "0.5",
    ]
    for name, args in (("clean", []), ("faults", faults)):
        with Server("--latency", "0.02", *args) as server:
            config = teacher_config(server.url, problems, 64, timeout=1.0, max_retries=6)
            result, _ = run_child(GENERATE, json.dumps(config), str(tmp / f"faults-{name}"))
            sent = len(server.log())
        rejected = Counter(r["reason"] for r in _lines(tmp / f"faults-{name}" / "rejected.jsonl"))
        clean_wall = clean_wall or result["wall"]
        rows.append(
            f"| {name} | {result['critiques']:,} | {dict(rejected) or 0} | {sent:,} "
            f"| {sent / requests - 1:+.1%} | {result['wall']:.1f} ({result['wall'] / clean_wall:.1f}x) |"
        )
        assert result["critiques"] + sum(rejected.values()) == requests, "a unit went missing"
    return [
        f"{requests:,} requests, 20 ms latency, concurrency 64, client timeout 1 s (hangs last 5 s), "
        "Retry-After 0.5 s, up to 6 retries",
        "",
        *rows,
    ]


def part_rpm(tmp: Path, seconds: int) -> list[str]:
    rpm, tpm = 600, 1_000_000
    requests = rpm * seconds // 60
    problems = make_problems(tmp / "rpm.jsonl", requests)
    with Server("--latency", "0.05") as server:
        config = teacher_config(server.url, problems, 32, rpm=rpm, tpm=tpm)
        run_child(GENERATE, json.dumps(config), str(tmp / "rpm-out"))
        log = server.log()
    times = sorted(e["t"] for e in log)
    tokens = [e.get("tokens", 0) for e in sorted(log, key=lambda e: e["t"])]
    rate = (len(times) - 1) / (times[-1] - times[0]) * 60
    return [
        f"rpm = {rpm}, tpm = {tpm:,}, {requests:,} requests ({seconds} s at the limit), concurrency 32",
        "",
        "| limit | measured rate | busiest 60 s window | tokens in busiest 60 s window |",
        "|---|---|---|---|",
        f"| {rpm} req/min, {tpm:,} tok/min | {rate:.1f} req/min ({rate / rpm:.1%} of the limit) "
        f"| {_busiest_window(times)} requests | {_busiest_window(times, tokens):,} |",
    ]


def part_hidden(tmp: Path, seconds: int) -> list[str]:
    hidden = 600
    requests = hidden * seconds // 60
    problems = make_problems(tmp / "hidden.jsonl", requests)
    with Server("--latency", "0.05", "--hidden-rpm", str(hidden), "--retry-after", "1") as server:
        config = teacher_config(server.url, problems, 32, max_retries=20)
        result, _ = run_child(GENERATE, json.dumps(config), str(tmp / "hidden-out"))
        log = sorted(server.log(), key=lambda e: e["t"])
    end = log[-1]["t"]
    last = [e for e in log if e["t"] >= end - 60]
    ok_last = sum(1 for e in last if e["fault"] != "429")
    refused = sum(1 for e in log if e["fault"] == "429")
    return [
        f"server limit {hidden} req/min (token bucket, 1 s burst), Retry-After 1 s; "
        "client: no configured limit, "
        f"concurrency 32, {requests:,} units",
        "",
        "| completed | requests sent | refused (429) | last 60 s: accepted/min | last 60 s: refused "
        "| wall s |",
        "|---|---|---|---|---|---|",
        f"| {result['critiques']:,} | {len(log):,} | {refused:,} ({refused / len(log):.1%}) | {ok_last} "
        f"({ok_last / hidden:.0%} of the limit) | {len(last) - ok_last} | {result['wall']:.0f} |",
    ]


def part_burst(tmp: Path, requests: int) -> list[str]:
    rows = [
        "| run | units | critiques | rejected (reason: n) | requests sent | wall s | units/s "
        "| vs no faults |",
        "|---|---|---|---|---|---|---|---|",
    ]
    clean_rate = None
    cases = [
        ("no faults", requests, []),
        ("2% immediate 429", requests, ["--fault", "429now=0.02"]),
        ("10% immediate 429", requests, ["--fault", "429now=0.10"]),
        ("90% immediate 429 (storm)", 40, ["--fault", "429now=0.90"]),
        ("100% 429, insufficient_quota", 10, ["--fault", "quota=1.0"]),
        ("100% immediate 429", 10, ["--fault", "429now=1.0"]),
    ]
    for i, (name, units, faults) in enumerate(cases):
        problems = make_problems(tmp / f"burst-{units}.jsonl", units)
        out = tmp / f"burst-{i}"
        with Server("--latency", "0.2", "--retry-after", "0.5", *faults) as server:
            config = teacher_config(server.url, problems, 64, max_retries=6)
            result, _ = run_child(GENERATE, json.dumps(config), str(out))
            sent = len(server.log())
        rejected = Counter(r["reason"] for r in _lines(out / "rejected.jsonl"))
        rate = units / result["wall"]
        clean_rate = clean_rate or rate
        rows.append(
            f"| {name} | {units:,} | {result['critiques']:,} | {dict(rejected) or 0} | {sent:,} "
            f"| {result['wall']:.1f} | {rate:.0f} | {rate / clean_rate:.2f}x |"
        )
        assert result["critiques"] + sum(rejected.values()) == units, "a unit went missing"
    return [
        "200 ms latency, concurrency 64, Retry-After 0.5 s on each 429, up to 6 retries; the 429s "
        "come back at once, before the latency",
        "",
        *rows,
    ]


def part_hostile(tmp: Path, units: int) -> list[str]:
    rows = ["| replies | units | rejected (reason: n) | peak RSS MiB | rejected.jsonl KiB | wall s |"]
    rows.append("|---|---|---|---|---|---|")
    problems = make_problems(tmp / "hostile.jsonl", units)
    for name, fault in (
        ("none (baseline)", []),
        ("200 MB bodies", ["--fault", "huge=1.0"]),
        ("gzip bombs (200 MB of zeros)", ["--fault", "gzip_bomb=1.0"]),
        ("endless chunked bodies", ["--fault", "endless=1.0"]),
    ):
        out = tmp / f"hostile-{len(rows)}"
        with Server("--huge-bytes", "200000000", *fault) as server:
            config = teacher_config(server.url, problems, 8, max_retries=1)
            result, rss = run_child(GENERATE, json.dumps(config), str(out))
        rejected = Counter(r["reason"] for r in _lines(out / "rejected.jsonl"))
        size = (out / "rejected.jsonl").stat().st_size / 1024
        rows.append(
            f"| {name} | {units} | {dict(rejected) or 0} | {rss / 1024:.0f} | {size:.1f} "
            f"| {result['wall']:.1f} |"
        )
    return ["default max_reply_bytes (10 MB), concurrency 8", "", *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["resume", "faults", "rpm", "hidden", "burst", "hostile", "all"]
    parser.add_argument("--part", choices=parts, default="all")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    lines = [header()]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.part in ("resume", "all"):
            lines += [
                "### Resume after SIGKILL",
                "",
                *part_resume(tmp, args.requests, args.kills, args.seed),
                "",
            ]
        if args.part in ("faults", "all"):
            lines += ["### Faults", "", *part_faults(tmp, 2000), ""]
        if args.part in ("rpm", "all"):
            lines += ["### Configured rate limits", "", *part_rpm(tmp, args.seconds), ""]
        if args.part in ("hidden", "all"):
            lines += ["### A server's own (hidden) limit", "", *part_hidden(tmp, args.seconds), ""]
        if args.part in ("burst", "all"):
            lines += ["### Immediate 429s", "", *part_burst(tmp, 2000), ""]
        if args.part in ("hostile", "all"):
            lines += ["### Hostile reply bodies", "", *part_hostile(tmp, 20), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
