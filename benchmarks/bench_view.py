"""View benchmark: index build time, memory, and how fast the list page answers a filter.

The run store is made from real records (an offline `generate`: inject students, built-in
critic), cycled to `--records` lines as two teachers critiquing the same responses, the second
one disagreeing on one response in ten, plus one reject in a hundred. A fresh child process
indexes it and serves the page on 127.0.0.1; each filter is a real HTTP request for one page
of 50 rows (`/api/records`), timed as the page's fetch would see it, median of `--repeat`.

    python benchmarks/bench_view.py --records 200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_child

import critique_synth
from critique_synth.fingerprint import fingerprint

QUERIES = {
    "no filter": "",
    "verdict wrong": "verdict=wrong",
    "disagrees with label": "agreement=disagree",
    "teachers disagree": "agreement=teachers_disagree",
    "teacher + disagree + search": "teacher=llm:other&agreement=disagree&q=dozen",
    "reject reason": "kind=reject&reason=invalid_json",
    "search 'pastries'": "q=pastries",
    "search a problem id": "q=bench-12345",
    "unreviewed, last page": "review=unreviewed&offset={last}",
}

SERVE = """
import json, resource, statistics, sys, time, urllib.request
from pathlib import Path
from critique_synth.view.server import View, ViewServer
queries, repeat = json.loads(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
view = View([Path(sys.argv[1])])
index_s = time.perf_counter() - t0
indexed_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
view.index.arrays()
arrays_s = time.perf_counter() - t0
server = ViewServer(view, port=0).start()
def get(path):
    t = time.perf_counter()
    body = urllib.request.urlopen(server.url + path).read()
    return time.perf_counter() - t, json.loads(body)
out = {"index_s": index_s, "indexed_rss": indexed_rss, "arrays_s": arrays_s, "lines": len(view.index)}
out["queries"] = {}
out["summary_s"] = statistics.median(get("api/summary")[0] for _ in range(repeat))
for name, query in queries.items():
    _, first = get("api/records?limit=1&" + query.replace("&offset={last}", ""))
    query = query.replace("{last}", str(max(0, first["total"] - 50)))
    times = [get("api/records?limit=50&" + query) for _ in range(repeat)]
    out["queries"][name] = {"s": statistics.median(t for t, _ in times), "total": times[0][1]["total"]}
row = get("api/records?limit=1&agreement=teachers_disagree")[1]["rows"][0]["row"]
page = f"api/record/{row}?agreement=teachers_disagree"
out["record_s"] = statistics.median(get(page)[0] for _ in range(repeat))
with open(Path(sys.argv[1]) / "critiques.jsonl", "rb") as f:
    f.seek(-min(8 << 20, f.seek(0, 2)), 2)
    tail = f.read().split(b"\\n")[1:-1][-1000:]
with open(Path(sys.argv[1]) / "critiques.jsonl", "ab") as f:
    for i, line in enumerate(tail):
        item = json.loads(line)
        item["key"] = f"{i:016x}" + "live"
        f.write(json.dumps(item).encode() + b"\\n")
out["append_s"], page = get("api/records?limit=50")
out["after_append"] = page["total"]
server.stop()
print(json.dumps(out))
"""


def seed_records(tmp: Path, problems: int) -> list[dict]:
    """Real records from an offline run of the bundled sample."""
    config = {"limit": problems, "export": {"enabled": False}}
    critique_synth.generate(config, out=tmp / "seed")
    return [json.loads(line) for line in (tmp / "seed" / "critiques.jsonl").read_text().splitlines()]


def write_store(run_dir: Path, n: int, seeds: list[dict]) -> float:
    """`n` records: two teachers a response (the second flips one verdict in ten), 1% rejects."""
    run_dir.mkdir(parents=True)
    with (run_dir / "critiques.jsonl").open("w") as f, (run_dir / "rejected.jsonl").open("w") as rej:
        for i in range(n):
            unit, second = divmod(i, 2)
            item = json.loads(json.dumps(seeds[unit % len(seeds)]))
            item["key"] = fingerprint("bench-view", i)
            item["problem"]["id"] = item["response"]["problem_id"] = f"bench-{unit}"
            item["problem"]["question"] += f" [{unit}]"
            item["response"]["key"] = fingerprint("bench-response", unit)
            if second:
                item["teacher"] = "llm:other"
                if unit % 10 == 0:
                    flipped = "right" if item["critique"]["verdict"] == "wrong" else "wrong"
                    step = None if flipped == "right" else 1
                    item["critique"].update(verdict=flipped, first_wrong_step=step)
                    item["agrees"] = None if item.get("agrees") is None else not item["agrees"]
            f.write(json.dumps(item) + "\n")
            if i % 100 == 0:
                reject = {
                    "key": fingerprint("bench-reject", i),
                    "problem_id": f"bench-{unit}",
                    "stage": "teacher",
                    "reason": "invalid_json" if i % 200 else "too_long",
                    "detail": "bench",
                    "raw": "{not json",
                }
                rej.write(json.dumps(reject) + "\n")
    return (run_dir / "critiques.jsonl").stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="20000,200000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"critique-synth {critique_synth.__version__}, {date.today()}\n"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seeds = seed_records(tmp, 200)
        for n in (int(s) for s in args.records.split(",")):
            size = write_store(tmp / f"run-{n}", n, seeds)
            result, rss = run_child(SERVE, str(tmp / f"run-{n}"), json.dumps(QUERIES), str(args.repeat))
            print(f"### {n:,} records ({size:,.0f} MiB of critiques.jsonl)\n")
            print(
                f"index {result['index_s']:.1f} s ({result['lines']:,} lines, "
                f"{result['lines'] / result['index_s']:,.0f}/s), "
                f"columns {result['arrays_s'] * 1000:.0f} ms, "
                f"peak RSS {result['indexed_rss'] / 1024:.0f} MiB once indexed "
                f"({rss / 1024:.0f} MiB at the end); summary "
                f"{result['summary_s'] * 1000:.0f} ms; record page {result['record_s'] * 1000:.0f} ms; "
                f"1,000 lines appended, next list request {result['append_s'] * 1000:.0f} ms "
                f"({result['after_append']:,} rows)\n"
            )
            print("| filter (one page of 50) | matches | ms |")
            print("|---|---|---|")
            for name, q in result["queries"].items():
                print(f"| {name} | {q['total']:,} | {q['s'] * 1000:.0f} |")
            print(flush=True)


if __name__ == "__main__":
    main()
