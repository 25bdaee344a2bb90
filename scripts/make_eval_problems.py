"""Regenerate the bundled held-out eval problems (critique_synth/data/eval_problems.jsonl).

`critique-synth eval` defaults to this file, so it must share no question with the sample
`generate` trains on (sample_problems.jsonl, made by make_sample_problems.py): same source
(reasoning-gym's gsm_symbolic, Apache-2.0), another seed, and every question that also
appears in the sample left out. Only clean numeric gold answers are kept, so the score
measures the model, not the answer checker, and only reference solutions that pass our
exact arithmetic check, as in the sample.

Caveat: gsm_symbolic instantiates about 100 GSM8K templates with new names and numbers, and
the sample already uses most of them; disjoint questions are not disjoint templates. For a
paper-grade comparison evaluate on GSM8K's test split or MATH-500 too (`--data`).

Run by maintainers (`pip install reasoning-gym`, not a dependency of the package):

    python scripts/make_eval_problems.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import reasoning_gym

from critique_synth.critic import builtin_critique
from critique_synth.records import Problem

DATA = Path(__file__).resolve().parent.parent / "critique_synth" / "data"
OUT = DATA / "eval_problems.jsonl"
SAMPLE = DATA / "sample_problems.jsonl"
SEED = 20260315  # make_sample_problems.py uses 20251127
SIZE = 200
CANDIDATES = 600
CLEAN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def main() -> None:
    seen = {json.loads(line)["question"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()}
    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=CANDIDATES, seed=SEED)
    kept: list[Problem] = []
    for i, item in enumerate(dataset):
        problem = Problem(
            id=f"gsm_symbolic-{SEED}-{i:04d}",
            question=item["question"],
            answer=str(item["answer"]).strip(),
            solution=item["metadata"]["answer_cot"],
        )
        if problem.question in seen or not CLEAN_NUMBER.fullmatch(problem.answer or ""):
            continue
        if builtin_critique(problem, problem.solution or "").verdict != "right":
            continue
        seen.add(problem.question)
        kept.append(problem)
        if len(kept) == SIZE:
            break
    if len(kept) < SIZE:
        raise SystemExit(f"only {len(kept)} usable problems among {CANDIDATES}; raise CANDIDATES")
    OUT.write_text("".join(p.model_dump_json(exclude_none=True) + "\n" for p in kept), encoding="utf-8")
    print(f"wrote {len(kept)} problems (of {i + 1} drawn) to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
