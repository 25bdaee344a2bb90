"""A calibration set for auditing teachers: responses whose correctness is known exactly.

Rows come from the bundled sample: its reference solutions (right by construction) and wrong
variants of them with one injected error of every kind, so a teacher's verdicts and error
steps can be scored per kind. The same (n, seed) always gives the same rows.
"""

from __future__ import annotations

import hashlib
import json

from .inject import ERROR_KINDS, inject_error
from .records import Problem
from .sources import SAMPLE_PATH
from .verify import check_response

CLEAN = "clean"


def calibration_rows(n: int = 160, seed: int = 0) -> list[dict]:
    """`n` rows {id, question, answer, response, process_correct, first_error_step, error_kind,
    final_correct}: half clean references, half wrong variants spread evenly over the error
    kinds (error_kind None for clean), each from a different problem while the sample lasts.
    Ids are unique: an audit reads each once."""
    problems = _problems(seed)
    labels = [label for kind in ERROR_KINDS for label in (CLEAN, kind)]
    rows: list[dict] = []
    seen: set[str] = set()
    for attempt in range(n * len(labels)):
        if len(rows) == n:
            break
        row = _row(problems[attempt % len(problems)], labels[len(rows) % len(labels)], seed)
        if row is not None and row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows


def _problems(seed: int) -> list[Problem]:
    rows = [Problem(**json.loads(line)) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]
    return sorted(rows, key=lambda p: hashlib.sha256(f"{seed}:{p.id}".encode()).hexdigest())


def _row(problem: Problem, label: str, seed: int) -> dict | None:
    assert problem.solution is not None
    if label == CLEAN:
        text, step, kind = problem.solution, None, None
    else:
        injected = inject_error(
            problem.solution,
            1,
            f"calibration:{seed}:{problem.id}",
            question=problem.question,
            kinds={label: 1.0},
        )
        if injected is None:
            return None
        text, step, kind = injected.text, injected.step, injected.kind
    _, final_correct = check_response(text, problem.answer)
    return {
        "id": f"{problem.id}:{kind or CLEAN}",
        "question": problem.question,
        "answer": problem.answer,
        "response": text,
        "process_correct": kind is None,
        "first_error_step": step,
        "error_kind": kind,
        "final_correct": final_correct,
    }


def critic_report(rows: list[dict], with_gold: bool = True) -> dict[str, dict[str, float]]:
    """The built-in critic scored per error kind on labelled rows: how often its verdict matches
    the process label, and (for wrong rows) how often it names the first wrong step. Without
    gold it sees only what arithmetic and the solution's own values show."""
    from .critic import builtin_critique

    tally: dict[str, list[int]] = {}
    for row in rows:
        problem = Problem(id=row["id"], question=row["question"], answer=row["answer"] if with_gold else None)
        critique = builtin_critique(problem, row["response"])
        counts = tally.setdefault(row["error_kind"] or CLEAN, [0, 0, 0])
        counts[0] += 1
        counts[1] += (critique.verdict == "right") == row["process_correct"]
        counts[2] += not row["process_correct"] and critique.first_wrong_step == row["first_error_step"]
    return {
        kind: {"n": n, "verdict": right / n, "step": None if kind == CLEAN else step / n}
        for kind, (n, right, step) in sorted(tally.items())
    }
