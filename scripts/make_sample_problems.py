"""Regenerate the bundled sample problems from reasoning-gym's gsm_symbolic (Apache-2.0).

Run once by maintainers (`pip install reasoning-gym`); the output ships in the package so
users and CI never need reasoning-gym or a network. The fixed seed makes the file reproducible.
Problems whose reference solution fails our own exact arithmetic check (a few templates
write `15÷2/5=37`, or round `899.2 / 1.25 = 719`) are left out: the sample's references must be
right by construction. One template states a percent of a quantity as a bare `17=17`; that
step is written out (`50*0.34=17`), so every step of a reference says how it got its number.
Ids follow the generator's index, so leaving a problem out keeps every other id.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from pathlib import Path

from critique_synth.critic import builtin_critique
from critique_synth.records import Problem

OUT = Path(__file__).resolve().parent.parent / "critique_synth" / "data" / "sample_problems.jsonl"
SEED = 20251127
SIZE = 300


_DEGENERATE_RE = re.compile(r"(?<![\d.*/+x×÷-])(\d+(?:\.\d+)?)=\1(?![\d.])")
_PERCENT_OF_RE = re.compile(r"(\d+(?:\.\d+)?) (?:\w+ )*?\w+ a day\. (\d+(?:\.\d+)?)%")


def repair_solution(question: str, solution: str) -> str | None:
    """The solution with a bare `v=v` step written out as the percent it takes of a quantity the
    question gives; None where a degenerate step has no such reading (the problem is left out)."""
    if not _DEGENERATE_RE.search(solution):
        return solution
    match = _PERCENT_OF_RE.search(question)
    if match is None:
        return None
    amount, percent = match.group(1), Fraction(match.group(2)) / 100
    factor = str(float(percent)).removeprefix("0")

    def written_out(m: re.Match[str]) -> str:
        value = m.group(1)
        return f"{amount}*0{factor}={value}" if Fraction(amount) * percent == Fraction(value) else m.group()

    repaired = _DEGENERATE_RE.sub(written_out, solution)
    return None if _DEGENERATE_RE.search(repaired) else repaired


def keep(problem: Problem) -> Problem | None:
    """The problem with its reference repaired, or None where the reference is not right."""
    solution = repair_solution(problem.question, problem.solution or "")
    if solution is None:
        return None
    problem = problem.model_copy(update={"solution": solution})
    return problem if builtin_critique(problem, solution).verdict == "right" else None


def main() -> None:
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=SIZE, seed=SEED)
    kept = 0
    with OUT.open("w", encoding="utf-8") as f:
        for i, item in enumerate(dataset):
            problem = keep(
                Problem(
                    id=f"gsm_symbolic-{SEED}-{i:04d}",
                    question=item["question"],
                    answer=str(item["answer"]),
                    solution=item["metadata"]["answer_cot"],
                )
            )
            if problem is None:
                continue
            f.write(problem.model_dump_json(exclude_none=True) + "\n")
            kept += 1
    print(f"wrote {kept} of {SIZE} problems to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
