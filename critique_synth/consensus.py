"""Several critiques of one response (from several teachers, or samples): consensus, pairwise
teacher agreement, and which critique a dataset row should carry.

Critiques are grouped by the response they judge. Each keeps only what these decisions need
(a few small fields), so grouping a 200,000-record run costs tens of MiB, not the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from .fingerprint import unit_hash
from .records import CritiqueRecord

Select = Literal["best", "majority", "all"]


@dataclass(frozen=True)
class Vote:
    """One critique, as consensus sees it."""

    key: int
    teacher: str
    verdict: str
    step: int | None
    agrees: bool | None
    length: int


def vote_of(record: CritiqueRecord) -> Vote:
    return Vote(
        unit_hash(record.key),
        record.teacher,
        record.critique.verdict,
        record.critique.first_wrong_step,
        record.agrees,
        len(record.text),
    )


def group(records: Iterable[CritiqueRecord]) -> dict[int, list[Vote]]:
    """Votes by response (its key), in the order they were read."""
    groups: dict[int, list[Vote]] = {}
    for record in records:
        groups.setdefault(unit_hash(record.response.key), []).append(vote_of(record))
    return groups


def majority(votes: list[Vote]) -> str | None:
    """The verdict most critiques give, or None on a tie."""
    counts = Counter(v.verdict for v in votes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return counts[0][0]


def steps_agree(votes: list[Vote]) -> bool | None:
    """Whether the critiques that call the response wrong name the same first wrong step."""
    steps = {v.step for v in votes if v.verdict == "wrong"}
    return None if not steps else len(steps) == 1


def choose(votes: list[Vote], how: Select) -> list[tuple[Vote, str]]:
    """The critiques a dataset keeps for one response, each with why it was kept.

    best: the longest critique whose verdict agrees with the best label (the CFT paper kept the
    longest critiques); where none agrees or the label is unknown, the longest critique of the
    majority verdict, marked `majority`. majority: that one always. all: every critique.
    A tie between verdicts with no label to break it keeps nothing.
    """
    if how == "all":
        return [(v, "all") for v in votes]
    if how == "best":
        agreeing = [v for v in votes if v.agrees]
        if agreeing:
            return [(max(agreeing, key=_longest), "label")]
    verdict = majority(votes)
    if verdict is None:
        return []
    return [(max((v for v in votes if v.verdict == verdict), key=_longest), "majority")]


def _longest(vote: Vote) -> tuple[int, int]:
    """Longest first; equal lengths by key hash, so the pick does not depend on file order."""
    return vote.length, vote.key


def pairwise(groups: dict[int, list[Vote]]) -> dict[str, dict[str, Any]]:
    """For each pair of teachers: how often their verdicts agree, and, where both call the
    response wrong, how often they name the same first wrong step."""
    tally: dict[tuple[str, str], Counter[str]] = {}
    for votes in groups.values():
        by_teacher = {v.teacher: v for v in votes}
        for a, b in combinations(sorted(by_teacher), 2):
            va, vb = by_teacher[a], by_teacher[b]
            t = tally.setdefault((a, b), Counter())
            t["both"] += 1
            t["verdict"] += va.verdict == vb.verdict
            if va.verdict == vb.verdict == "wrong":
                t["both_wrong"] += 1
                t["step"] += va.step == vb.step
    return {
        f"{a} vs {b}": {
            "responses": t["both"],
            "verdict_agreement": t["verdict"] / t["both"],
            "step_agreement": t["step"] / t["both_wrong"] if t["both_wrong"] else None,
        }
        for (a, b), t in sorted(tally.items())
    }
