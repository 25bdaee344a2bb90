"""Adaptive concurrency next to fixed settings, on a 1-slot, a 4-slot and an unlimited server.

Each server (the project's test server in its own process) takes `--latency` seconds per
request and serves `--slots` at once; the rest wait in its queue, as a single llama.cpp
process or a small vLLM replica would. The client's timeout is short enough that a fixed
concurrency of 64 times out on the 1-slot server, as 64 x 120 s would with a real model.
Every setting sends the same requests through `LLMClient`; the table gives wall time,
requests/s, timeouts and the concurrency it ended at. Prints a markdown table.

    python benchmarks/bench_concurrency.py [--requests 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Server, header

from critique_synth.config import EndpointConfig
from critique_synth.llm import LLMClient, LLMError

MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]
FIXED = (1, 2, 4, 8, 16, 64)


async def _run(url: str, requests: int, timeout: float, concurrency: int, adaptive: bool) -> dict:
    endpoint = EndpointConfig(
        base_urls=[url], concurrency=concurrency, adaptive=adaptive, timeout=timeout, max_retries=6
    )
    async with LLMClient(endpoint, None) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.chat("m", MESSAGES, temperature=0, top_p=1, max_tokens=8) for _ in range(requests)),
            return_exceptions=True,
        )
        wall = time.perf_counter() - started
    failed = sum(isinstance(r, LLMError) for r in results)
    return {"wall": wall, "failed": failed, "timeouts": client.limit.timeouts, "limit": client.limit.limit}


def measure(slots: int | None, requests: int, latency: float, timeout: float) -> list[str]:
    args = ["--latency", str(latency), *(["--slots", str(slots)] if slots else [])]
    lines = []
    runs = [(f"fixed {c}", c, False) for c in FIXED] + [("adaptive (ceiling 64)", 64, True)]
    for name, concurrency, adaptive in runs:
        with Server(*args) as server:  # a fresh one: no backlog left by the setting before
            r = asyncio.run(_run(server.url, requests, timeout, concurrency, adaptive))
            lines.append(
                f"| {slots or 'unlimited'} | {name} | {r['wall']:.2f} | {requests / r['wall']:,.0f} "
                f"| {r['timeouts']} | {r['failed']} | {r['limit']:.0f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request at the server")
    parser.add_argument("--timeout", type=float, default=1.0, help="the client's timeout, seconds")
    args = parser.parse_args()
    lines = [
        header(),
        f"{args.requests} requests, {args.latency * 1000:.0f} ms each at the server, client timeout "
        f"{args.timeout:g} s, up to 6 retries",
        "",
        "| server slots | client concurrency | wall s | req/s | timeouts | failed | final limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for slots in (1, 4, None):
        lines += measure(slots, args.requests, args.latency, args.timeout)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
