"""Regenerate the bundled sample problems from reasoning-gym's gsm_symbolic (Apache-2.0).

Run once by maintainers (`pip install reasoning-gym`); the output ships in the package so
users and CI never need reasoning-gym or a network. The fixed seed makes the file reproducible.
Problems whose reference solution fails our own exact arithmetic check (a few templates
write `15÷2/5=37`) are left out: the sample's references must be right by construction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import reasoning_gym

from critique_synth.critic import builtin_critique
from critique_synth.records import Problem

OUT = Path(__file__).resolve().parent.parent / "critique_synth" / "data" / "sample_problems.jsonl"
SEED = 20251127
SIZE = 300


def main() -> None:
    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=SIZE, seed=SEED)
    kept = 0
    with OUT.open("w", encoding="utf-8") as f:
        for i, item in enumerate(dataset):
            problem = Problem(
                id=f"gsm_symbolic-{SEED}-{i:04d}",
                question=item["question"],
                answer=str(item["answer"]),
                solution=item["metadata"]["answer_cot"],
            )
            if builtin_critique(problem, problem.solution or "").verdict != "right":
                continue
            f.write(problem.model_dump_json(exclude_none=True) + "\n")
            kept += 1
    print(f"wrote {kept} of {SIZE} problems to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
