"""Counters of a run, for progress, run.json and the dataset card.

Seeded from the store when a run resumes, so the numbers always describe the whole run
directory, not just the current process.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .records import CritiqueRecord, Rejection, Usage


@dataclass
class Stats:
    problems: int = 0
    resumed: int = 0
    critiques: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    responses_correct: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)

    def add_record(self, record: CritiqueRecord) -> None:
        self.critiques += 1
        self.verdicts[record.critique.verdict] += 1
        self.responses_correct[_label(record.response.final_correct, "right", "wrong")] += 1
        self.gold[_label(record.gold_agrees, "agree", "disagree")] += 1
        self.usage = self.usage.add(record.usage)

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejects[rejection.reason] += 1
        self.usage = self.usage.add(rejection.usage)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    @property
    def agreement(self) -> float | None:
        judged = self.gold["agree"] + self.gold["disagree"]
        return self.gold["agree"] / judged if judged else None

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.requests / elapsed if elapsed > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "critiques": self.critiques,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejects),
            "verdicts": {"right": self.verdicts["right"], "wrong": self.verdicts["wrong"]},
            "responses": dict(self.responses_correct),
            "gold_agreement": dict(self.gold),
            "gold_agreement_rate": self.agreement,
            "usage": self.usage.model_dump(),
            "requests": self.requests,
            "retries": self.retries,
        }


def _label(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no
