"""Export benchmark: time and peak RSS to export synthetic run stores of growing size.

The run store is written directly (records cycled from the bundled sample, each with its own
key and problem id), so the benchmark measures export alone. Each export runs in a fresh
child process and its peak RSS comes from that child's rusage.

    python benchmarks/bench_export.py --sizes 20000,200000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow
from common import run_child

import critique_synth
from critique_synth.critic import builtin_critique
from critique_synth.fingerprint import fingerprint
from critique_synth.inject import inject_error
from critique_synth.labels import agrees_with
from critique_synth.records import CritiqueRecord, Problem, Response
from critique_synth.sources import SAMPLE_PATH
from critique_synth.verify import check_response

EXPORT = """
import json, sys, time
from critique_synth.config import ExportOptions
from critique_synth.export import export
options = ExportOptions.model_validate(json.loads(sys.argv[3]))
t0 = time.perf_counter()
result = export([sys.argv[1]], sys.argv[2], options)
print(json.dumps({"wall": time.perf_counter() - t0, "rows": result.rows, "counts": result.counts}))
"""


def templates() -> list[CritiqueRecord]:
    """One right and one wrong record per bundled problem, made by the real critic."""
    out = []
    for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines():
        problem = Problem.model_validate_json(line)
        assert problem.solution is not None
        for variant, text in ((0, problem.solution), (1, inject_error(problem.solution, 1, problem.id).text)):  # type: ignore[union-attr]
            final, correct = check_response(text, problem.answer)
            response = Response(
                key="r",
                problem_id=problem.id,
                text=text,
                source="bench",
                sample=variant,
                final_answer=final,
                correct=correct,
            )
            critique = builtin_critique(problem, text)
            out.append(
                CritiqueRecord(
                    key="k",
                    problem=problem,
                    response=response,
                    critique=critique,
                    text=critique.render(),
                    teacher="builtin",
                    gold_agrees=agrees_with(critique.verdict, correct),
                )
            )
    return out


def write_store(run_dir: Path, n: int) -> float:
    run_dir.mkdir(parents=True)
    base = templates()
    with (run_dir / "critiques.jsonl").open("w", encoding="utf-8") as f:
        for i in range(n):
            template = base[i % len(base)]
            problem = template.problem.model_copy(
                update={"id": f"bench-{i // 2}", "question": f"{template.problem.question} [{i // 2}]"}
            )
            record = template.model_copy(update={"key": fingerprint("bench", i), "problem": problem})
            f.write(record.model_dump_json() + "\n")
    (run_dir / "run.json").write_text(json.dumps({"teacher": "builtin", "counts": {"critiques": n}}))
    return (run_dir / "critiques.jsonl").stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000")
    args = parser.parse_args()
    settings = {
        "all formats": {},
        "all formats, test 5%, split disagreements, balance 0.5, max 2048 tokens": {
            "test_size": 0.05,
            "disagreements": "split",
            "balance": 0.5,
            "max_tokens": 2048,
        },
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, critique-synth {critique_synth.__version__}, {date.today()}\n"
    )
    print("| records | store MiB | options | export s | records/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for n in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            size = write_store(tmp / f"run-{n}", n)
            print(f"<!-- wrote {n} records in {time.perf_counter() - t0:.1f}s -->", file=sys.stderr)
            for name, options in settings.items():
                result, rss = run_child(
                    EXPORT, str(tmp / f"run-{n}"), str(tmp / f"ds-{n}"), json.dumps(options)
                )
                print(
                    f"| {n:,} | {size:.0f} | {name} | {result['wall']:.1f} | {n / result['wall']:,.0f} "
                    f"| {rss / 1024:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
